# hostfw %preun ($1: 0 erase, 1 upgrade).
if [ "$1" -eq 0 ]; then
    # Erase: rpm has no remove/purge split, and once the binary is gone no
    # tool is left to manage the programs, so the firewall goes with the
    # package (like dpkg --purge): detach while the binary is still here,
    # then stop and disable.
    if [ -S /run/hostfw/hostfw.sock ]; then
        /usr/sbin/hostfw stop --detach >/dev/null 2>&1 || :
    fi
    systemctl disable --now hostfw.service >/dev/null 2>&1 || :
fi
