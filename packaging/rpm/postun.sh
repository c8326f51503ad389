# hostfw %postun ($1: 0 erase, 1 upgrade).
systemctl daemon-reload >/dev/null 2>&1 || :
# Detach hostfw's programs from every interface, with iproute2 (the hostfw
# binary may be gone): XDP attached through netlink, clsact filters.
detach_all() {
    for dev in /sys/class/net/*; do
        i=${dev##*/}
        if ip -details link show dev "$i" 2>/dev/null | grep -q 'name hostfw_xdp'; then
            ip link set dev "$i" xdpgeneric off 2>/dev/null || true
            ip link set dev "$i" xdpdrv off 2>/dev/null || true
        fi
        for dir in ingress egress; do
            if tc filter show dev "$i" "$dir" 2>/dev/null | grep -q 'hostfw_tc_'; then
                tc filter del dev "$i" "$dir" pref 1 2>/dev/null || true
            fi
        done
    done
}

if [ "$1" -eq 0 ]; then
    # Whatever the detach in %preun left (daemon not running): programs on
    # the interfaces, the pins, the state and the runtime directory.
    detach_all
    rm -rf /sys/fs/bpf/hostfw /var/lib/hostfw /run/hostfw
fi
