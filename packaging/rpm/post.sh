# hostfw %post ($1: 1 install, 2 upgrade).
systemctl daemon-reload >/dev/null 2>&1 || :
if [ "$1" -eq 1 ]; then
    # Fresh install: enabled or not as the distribution's presets say (what
    # %systemd_post does: Fedora and RHEL leave new services disabled; the
    # administrator runs `systemctl enable --now hostfw`). Started if
    # enabled: it ships in audit mode, so starting it drops nothing.
    systemctl preset hostfw.service >/dev/null 2>&1 || :
    if systemctl is-enabled --quiet hostfw.service 2>/dev/null; then
        systemctl start hostfw.service >/dev/null 2>&1 || :
    fi
else
    # Upgrade: the new daemon adopts the pinned maps and replaces the
    # programs in place; the old programs enforce until then.
    systemctl try-restart hostfw.service >/dev/null 2>&1 || :
fi
