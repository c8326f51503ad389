//! A fake systemd's end of `$NOTIFY_SOCKET`: every datagram the daemon
//! sends is read at once (as systemd does) and noted with its time.

use std::{
    os::unix::net::UnixDatagram,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// The datagrams received on `$NOTIFY_SOCKET`.
pub struct Notifications {
    path: PathBuf,
    got: Arc<Mutex<Vec<(Instant, String)>>>,
    stop: Arc<AtomicBool>,
}

impl Notifications {
    /// Binds `notify.sock` in `dir` and starts reading it.
    pub fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (Arc::clone(&got), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s.load(Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    g.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((Instant::now(), text));
                }
            }
        });
        Self { path, got, stop }
    }

    /// The daemon's environment for a watchdog of `usec` (petted at half).
    pub fn env(&self, cmd: &mut Command, usec: u64) {
        cmd.env("NOTIFY_SOCKET", &self.path)
            .env("WATCHDOG_USEC", usec.to_string());
    }

    fn all(&self) -> Vec<(Instant, String)> {
        self.got
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The longest time without a `WATCHDOG=1` within `from..to`.
    pub fn max_watchdog_gap(&self, from: Instant, to: Instant) -> Duration {
        let mut at: Vec<Instant> = self
            .all()
            .into_iter()
            .filter(|(t, m)| m == "WATCHDOG=1" && *t >= from && *t <= to)
            .map(|(t, _)| t)
            .collect();
        at.insert(0, from);
        at.push(to);
        at.windows(2)
            .map(|w| w[1].duration_since(w[0]))
            .max()
            .unwrap_or_default()
    }

    /// The longest time without a `WATCHDOG=1` over the next `span`.
    pub fn watchdog_gap_over(&self, span: Duration) -> Duration {
        let from = Instant::now();
        std::thread::sleep(span);
        self.max_watchdog_gap(from, Instant::now())
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
