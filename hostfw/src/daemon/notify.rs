//! systemd's notify protocol (`Type=notify`, `WatchdogSec`): a datagram
//! to `$NOTIFY_SOCKET`. Outside systemd these are no-ops.
//!
//! One unbound datagram socket, created at the first message and kept for
//! the daemon's life, sends them all: the watchdog is petted even when
//! the process is out of descriptors.

use std::{
    os::unix::net::{SocketAddr, UnixDatagram},
    sync::OnceLock,
    time::Duration,
};

/// Where the messages go and the socket they are sent from; `None` when
/// there is no `$NOTIFY_SOCKET` or the socket could not be created (said
/// once in the log).
struct Notifier {
    addr: SocketAddr,
    sock: UnixDatagram,
}

static NOTIFIER: OnceLock<Option<Notifier>> = OnceLock::new();

fn notifier() -> Option<&'static Notifier> {
    NOTIFIER.get_or_init(open).as_ref()
}

fn open() -> Option<Notifier> {
    let path = std::env::var_os("NOTIFY_SOCKET")?;
    let path = path.to_string_lossy().into_owned();
    let addr = if let Some(abstract_name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt as _;
        SocketAddr::from_abstract_name(abstract_name.as_bytes())
    } else {
        SocketAddr::from_pathname(&path)
    };
    // Non-blocking: a receiver that does not read (a full queue) must
    // never stall the main loop; the message is dropped and logged.
    let opened = addr.and_then(|addr| {
        let sock = UnixDatagram::unbound()?;
        sock.set_nonblocking(true)?;
        Ok((addr, sock))
    });
    match opened {
        Ok((addr, sock)) => Some(Notifier { addr, sock }),
        Err(e) => {
            log::warn!("cannot notify systemd at NOTIFY_SOCKET={path}: {e}");
            None
        }
    }
}

fn send(state: &str) {
    let Some(n) = notifier() else {
        return;
    };
    if let Err(e) = n.sock.send_to_addr(state.as_bytes(), &n.addr) {
        log::warn!("cannot notify systemd ({state}): {e}");
    }
}

/// Tells systemd the service is ready (programs attached, socket open).
pub fn ready() {
    send("READY=1");
}

/// Pets the watchdog.
pub fn watchdog() {
    send("WATCHDOG=1");
}

/// Sets the one-line status `systemctl status` shows. Newlines (and other
/// control characters) in `text` become spaces: the protocol is one
/// assignment per line.
pub fn status(text: &str) {
    send(&status_message(text));
}

fn status_message(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(1024)
        .collect();
    format!("STATUS={}", line.trim())
}

/// Half the watchdog interval systemd asks for, if it asks.
#[must_use]
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_one_line() {
        assert_eq!(
            status_message("enforce, revision 3"),
            "STATUS=enforce, revision 3"
        );
        assert_eq!(
            status_message("reload failed:\na.yaml:1:2: bad\r\n"),
            "STATUS=reload failed: a.yaml:1:2: bad"
        );
    }
}
