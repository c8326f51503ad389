# hostfw %post ($1: 1 install, 2 upgrade).
systemctl daemon-reload >/dev/null 2>&1 || :
if [ "$1" -eq 1 ]; then
    # Fresh install: ships in audit mode, so enabling and starting it
    # drops nothing (same as the .deb).
    systemctl enable --now hostfw.service >/dev/null 2>&1 || :
else
    # Upgrade: the new daemon adopts the pinned maps and replaces the
    # programs in place; the old programs enforce until then.
    systemctl try-restart hostfw.service >/dev/null 2>&1 || :
fi
