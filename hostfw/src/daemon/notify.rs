//! systemd's notify protocol (`Type=notify`, `WatchdogSec`): a datagram
//! to `$NOTIFY_SOCKET`. Outside systemd these are no-ops.

use std::{os::unix::net::UnixDatagram, time::Duration};

fn send(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let sent = if let Some(abstract_name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt as _;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())
            .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = sent {
        log::warn!("cannot notify systemd ({state}): {e}");
    }
}

/// Tells systemd the service is ready (programs attached, socket open).
pub fn ready() {
    send("READY=1");
}

/// The unit's status text (`systemctl status` shows it), one line.
pub fn status(text: &str) {
    let line: String = text
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .take(1024)
        .collect();
    send(&format!("STATUS={line}"));
}

/// Pets the watchdog.
pub fn watchdog() {
    send("WATCHDOG=1");
}

/// Half the watchdog interval systemd asks for, if it asks.
#[must_use]
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
