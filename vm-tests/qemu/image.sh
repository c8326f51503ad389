# vm-tests/qemu/image.sh: the VMs' disk image and kernels, built once and
# cached. Sourced by vm-tests/qemu.sh.
#
# One Debian 12 root file system (mmdebstrap minbase) with both kernels
# installed (their modules: virtio_net, sch_ingress, cls_bpf ...): Debian's
# linux-image-cloud-amd64 6.1 from bookworm + bookworm-updates +
# bookworm-security, and linux-image-cloud-amd64 6.12 from
# bookworm-backports. It becomes one raw ext4 image; each VM boots it
# through a qcow2 overlay of its own with one of the kernels passed to QEMU
# (-kernel, no initrd: the cloud kernels have NVMe and ext4 built in).
# root's authorized_keys holds the tier's test key; sshd and networkd are
# enabled; eth0's addresses come from the kernel command line
# (systemd-network-generator). The .deb under test is never in the image:
# the scenarios copy it in over ssh.
#
# Cached in vm-tests/.cache/qemu-image-KEY/, KEY a hash of the suites,
# mirrors, packages, this file's customisation and the test key: a change
# to any of them builds a new image (and removes the old one).

IMAGE_SUITE=bookworm
IMAGE_PACKAGES=systemd,systemd-sysv,dbus,openssh-server,iproute2,procps,netcat-openbsd,iputils-ping,socat,linux-image-cloud-amd64
IMAGE_SIZE=2G

# image_customize ROOT: what the image gets beyond its packages.
image_customize() {
  local r=$1
  echo hfwq >"$r/etc/hostname"
  printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
  printf '# / is root=/dev/nvme0n1 rw on the kernel command line\n' >"$r/etc/fstab"
  rm -f "$r/etc/resolv.conf"
  install -d -m 700 "$r/root/.ssh"
  install -m 600 "$SSH_KEY.pub" "$r/root/.ssh/authorized_keys"
  # eth0 from ip= on the kernel command line; nothing waits for "online".
  chroot "$r" systemctl enable systemd-networkd.service systemd-network-generator.service \
    >/dev/null 2>&1
  # Quiet, deterministic machines: no gettys, no timers that wake apt or
  # scrub the disk in the middle of a test.
  chroot "$r" systemctl mask getty@tty1.service serial-getty@ttyS0.service \
    systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
    dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
    >/dev/null 2>&1
  # Static addresses are usable at once (no duplicate address detection on
  # a bridge the test owns).
  printf 'net.ipv6.conf.all.accept_dad = 0\nnet.ipv6.conf.default.accept_dad = 0\n' \
    >"$r/etc/sysctl.d/50-hfwq.conf"
  rm -f "$r"/boot/initrd.img-* "$r"/var/cache/apt/archives/*.deb
}

# build_image: sets $image (the ext4 file), $kernel_61 and $kernel_612,
# building them if the cache has none for the key.
build_image() {
  local mirror security key dir t0 k
  mirror=$(debian_mirror)
  security=$(debian_security_mirror)
  key=$( (printf '%s\n' "$IMAGE_SUITE" minbase "$mirror" "$security" "$IMAGE_PACKAGES" \
    "$IMAGE_SIZE" backports:linux-image-cloud-amd64
    declare -f image_customize
    cat "$SSH_KEY.pub") | sha256sum | cut -c1-16)
  dir=$cache/qemu-image-$key
  image=$dir/rootfs.ext4
  kernel_61=$dir/vmlinuz-6.1
  kernel_612=$dir/vmlinuz-6.12
  if [[ -e $dir/.complete ]]; then
    say "image cached: $dir ($(cat "$dir/kernels.txt"))"
    return 0
  fi
  say "building the VM image $dir ($IMAGE_SUITE from $mirror; about a minute)"
  t0=$SECONDS
  rm -rf --one-file-system "$dir.tmp"
  mkdir -p "$dir.tmp"
  # INITRD=No: the kernels' postinst makes no initramfs (we boot without).
  # Both kernels: bookworm's 6.1 by --include; then the backports
  # metapackage, which pulls 6.12 and leaves 6.1 installed.
  if ! INITRD=No mmdebstrap --variant=minbase --include="$IMAGE_PACKAGES" \
    --chrooted-customize-hook='DEBIAN_FRONTEND=noninteractive INITRD=No apt-get install -y -q -t bookworm-backports linux-image-cloud-amd64' \
    "$IMAGE_SUITE" "$dir.tmp/root" \
    "deb $mirror $IMAGE_SUITE main" "deb $mirror $IMAGE_SUITE-updates main" \
    "deb $security $IMAGE_SUITE-security main" "deb $mirror $IMAGE_SUITE-backports main" \
    >"$log_dir/mmdebstrap.log" 2>&1; then
    tail -n 20 "$log_dir/mmdebstrap.log" >&2
    die "mmdebstrap failed (log: $log_dir/mmdebstrap.log)"
  fi
  image_customize "$dir.tmp/root"
  for k in "$dir.tmp"/root/boot/vmlinuz-*; do
    case ${k##*/vmlinuz-} in
      6.1.*) cp "$k" "$dir.tmp/vmlinuz-6.1" ;;
      6.12.*) cp "$k" "$dir.tmp/vmlinuz-6.12" ;;
    esac
  done
  [[ -f $dir.tmp/vmlinuz-6.1 && -f $dir.tmp/vmlinuz-6.12 ]] \
    || die "the image lacks a 6.1 or a 6.12 kernel: $(ls "$dir.tmp/root/boot")"
  (cd "$dir.tmp/root/boot" && ls vmlinuz-*) | sed 's/^vmlinuz-//' | xargs >"$dir.tmp/kernels.txt"
  mke2fs -q -t ext4 -L hfwq-root -d "$dir.tmp/root" "$dir.tmp/rootfs.ext4" "$IMAGE_SIZE" \
    || die "mke2fs failed"
  rm -rf --one-file-system "$dir.tmp/root"
  touch "$dir.tmp/.complete"
  # Images of other keys go; this one takes their place.
  find "$cache" -maxdepth 1 -name 'qemu-image-*' ! -name "qemu-image-$key.tmp" \
    -exec rm -rf --one-file-system {} +
  mv "$dir.tmp" "$dir"
  say "image built in $((SECONDS - t0)) s ($(cat "$dir/kernels.txt"))"
}
