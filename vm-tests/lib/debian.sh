# vm-tests/lib/debian.sh: the Debian mirrors of this machine's apt sources,
# which the tiers build their images from. Sourced.

# apt_source_uri SUFFIX: the first URI of this machine's apt sources whose
# path ends in SUFFIX (deb822 first, then one-line), without a trailing
# slash; empty if none.
apt_source_uri() {
  local suffix=$1 m
  m=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/'"$suffix"'\)\/*[[:space:]]*$/\1/p' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1 || true)
  if [[ -z $m ]]; then
    m=$(awk -v re="/$suffix/?\$" '$1 == "deb" && $2 !~ /^\[/ && $2 ~ re {print $2; exit}' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  fi
  echo "${m%/}"
}

# The mirror of this machine's apt sources.
debian_mirror() {
  local m
  m=$(apt_source_uri debian)
  [[ -n $m ]] || die "no Debian mirror found in /etc/apt/sources.list{,.d}"
  echo "$m"
}

# The security mirror of the same sources; else the one beside the mirror
# (…/debian-security, as deb.debian.org and its mirrors lay it out).
debian_security_mirror() {
  local m
  m=$(apt_source_uri debian-security)
  [[ -n $m ]] || m=$(debian_mirror)-security
  echo "$m"
}
