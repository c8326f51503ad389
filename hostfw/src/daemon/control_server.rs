//! The daemon's end of the control socket: one request per connection,
//! handed to the main loop, its answer written back.
//!
//! No local user can stall it (see [`crate::control`] for the contract):
//! the socket never exists with a looser mode than it keeps, every peer's
//! credentials are checked before anything is read, the connections
//! waiting for their request sit in a bounded [`WaitingRoom`] with a
//! deadline, requests are read up to [`MAX_REQUEST`] bytes, requests being
//! carried out and `observe` streams are capped, and the accept loop waits
//! after an error instead of spinning.

use std::{
    io,
    os::unix::fs::PermissionsExt as _,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{
        UnixListener, UnixStream,
        unix::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::{Semaphore, mpsc, oneshot},
    task::JoinHandle,
    time::timeout,
};

use crate::{
    config::ControlGroup,
    control::{MAX_REQUEST, Request, Response},
    observe::{Filter, LogLimiter, Recorder},
    waiting_room::{AcceptBackoff, Ticket, WaitingRoom},
};

/// A request with the channel its answer goes back on.
pub type Incoming = (Request, oneshot::Sender<Response>);

/// Connections waiting for their request at once.
const WAITING: usize = 64;
/// When the waiting room is full, a connection that has waited this long
/// gives its seat to a newcomer (a real client sends its request at once).
const EVICT_AFTER: Duration = Duration::from_millis(50);
/// Time a client has to send its request line after connecting.
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// Requests read and being carried out (queued for the main loop, or
/// their answer being written) at once.
const IN_FLIGHT: usize = 64;
/// `observe` streams served at once.
const STREAMS: usize = 32;
/// Time a client has to take each line of its answer.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);

mod access;
mod line;

pub use access::SocketError;
use access::{Access, bind_private, prepare_dir};
use line::{Line, LineReader};

/// Binds the socket (mode 0600; 0660 of `group` if set) and serves it.
pub fn serve(
    path: &Path,
    group: Option<ControlGroup>,
    tx: mpsc::Sender<Incoming>,
    recorder: Arc<Recorder>,
) -> Result<JoinHandle<()>, SocketError> {
    let euid = nix::unistd::geteuid();
    let io = |what| {
        move |source| SocketError::Io {
            path: path.to_path_buf(),
            what,
            source,
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        prepare_dir(dir, group.as_ref(), euid)?;
    }
    // A socket file left by a daemon that died is removed; a live daemon
    // would still answer on it.
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(SocketError::InUse {
            path: path.to_path_buf(),
        });
    }
    let _ = std::fs::remove_file(path);
    let listener = bind_private(path).map_err(io("bind"))?;
    // The mode is 0600 already; set it again (and the group's access
    // after the group) in case the file system ignores the umask.
    let mode = if let Some(g) = &group {
        nix::unistd::chown(path, None, Some(g.gid))
            .map_err(|e| io("giving the socket to the control group")(e.into()))?;
        0o660
    } else {
        0o600
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io("setting the socket's mode"))?;
    let server = Arc::new(Server {
        tx,
        recorder,
        in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
        streams: Arc::new(Semaphore::new(STREAMS)),
    });
    let access = Access { euid, group };
    let what = format!("control socket {}", path.display());
    Ok(tokio::spawn(accept_loop(listener, access, server, what)))
}

/// What the connections share.
struct Server {
    tx: mpsc::Sender<Incoming>,
    recorder: Arc<Recorder>,
    in_flight: Arc<Semaphore>,
    streams: Arc<Semaphore>,
}

async fn accept_loop(listener: UnixListener, access: Access, server: Arc<Server>, what: String) {
    let room = WaitingRoom::new(WAITING, EVICT_AFTER);
    let mut backoff = AcceptBackoff::new(what.clone());
    // One line a second at most (bursts of 5) for refused peers and for
    // a full waiting room, with the count of those not logged.
    let mut refusals = LogLimiter::new(1, 5);
    let mut busy = LogLimiter::new(1, 5);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                backoff.accepted();
                stream
            }
            Err(e) => {
                backoff.failed(&e).await;
                continue;
            }
        };
        // Checked before anything is read: a refused peer holds no
        // descriptor once told why.
        if let Err(message) = access.check(&stream) {
            if let Some(s) = refusals.allow(Instant::now()) {
                let pid = stream
                    .peer_cred()
                    .ok()
                    .and_then(|c| c.pid())
                    .map_or_else(String::new, |p| format!(" (pid {p})"));
                log::warn!(
                    "{what}: refused a connection{pid}: {message}{}",
                    not_logged(s.count, "refusals")
                );
            }
            tell(&stream, &message);
            continue;
        }
        let ticket = match room.admit() {
            Ok(ticket) => ticket,
            Err(full) => {
                let mut reader = LineReader::new(ARRIVED_MAX);
                if let Some(Line::Complete(text)) = reader.read_now(|b| stream.try_read(b)) {
                    let server = Arc::clone(&server);
                    tokio::spawn(async move {
                        let (read, write) = stream.into_split();
                        if let Err(e) = server.carry_out(read, write, &text).await {
                            log::debug!("control connection: {e}");
                        }
                    });
                    continue;
                }
                if let Some(s) = busy.allow(Instant::now()) {
                    log::warn!(
                        "{what}: {full} ({WAITING}, none for {} ms): refused a connection{}",
                        EVICT_AFTER.as_millis(),
                        not_logged(s.count, "such refusals")
                    );
                }
                tell(
                    &stream,
                    "the daemon is busy: too many connections are waiting to send their request; \
                     try again",
                );
                continue;
            }
        };
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            if let Err(e) = server.one(stream, ticket).await {
                log::debug!("control connection: {e}");
            }
        });
    }
}

fn not_logged(count: u64, what: &str) -> String {
    if count == 0 {
        String::new()
    } else {
        format!(" ({count} more {what} not logged)")
    }
}

fn refusal(message: String) -> Response {
    Response {
        ok: false,
        message,
        status: None,
        data: None,
    }
}

fn line(answer: &Response) -> io::Result<String> {
    let mut text = serde_json::to_string(answer).map_err(io::Error::other)?;
    text.push('\n');
    Ok(text)
}

/// Tells a client it is refused, without waiting: one line that fits
/// in the empty socket buffer, or nothing.
fn tell(stream: &impl TryWrite, message: &str) {
    if let Ok(text) = line(&refusal(message.to_owned())) {
        let _ = stream.try_write(text.as_bytes());
    }
}

/// The non-blocking write of a whole stream or of its write half.
trait TryWrite {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
}

impl TryWrite for UnixStream {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        UnixStream::try_write(self, buf)
    }
}

impl TryWrite for OwnedWriteHalf {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        OwnedWriteHalf::try_write(self, buf)
    }
}

/// A newcomer refused a seat is still served if its whole request has
/// arrived by the time it is accepted (at most this much is looked at):
/// under a flood the accept queue is long, and a real client's request
/// is there when its turn comes.
const ARRIVED_MAX: usize = 64 * 1024;

impl Server {
    /// Serves one connection: reads its request while it holds `ticket`,
    /// then carries it out. An evicted connection whose request has
    /// arrived meanwhile (the daemon was slow to read it) is served
    /// anyway; others are closed.
    async fn one(&self, stream: UnixStream, mut ticket: Ticket) -> io::Result<()> {
        let (mut read, write) = stream.into_split();
        let mut reader = LineReader::new(MAX_REQUEST);
        let got = tokio::select! {
            got = timeout(REQUEST_DEADLINE, reader.read(&mut read)) => Some(got),
            () = ticket.evicted() => None,
        };
        drop(ticket);
        let got = match got {
            Some(got) => got,
            None => match reader.read_now(|b| read.try_read(b)) {
                Some(line) => Ok(Ok(line)),
                None => {
                    tell(
                        &write,
                        "closed: no request yet while other connections were waiting",
                    );
                    return Ok(());
                }
            },
        };
        let text = match got {
            Ok(Ok(Line::Complete(text))) => text,
            Ok(Ok(Line::Closed)) => return Ok(()),
            Ok(Ok(Line::TooLarge)) => {
                tell(
                    &write,
                    &format!(
                        "request larger than {MAX_REQUEST} bytes: put large policy sets in \
                         [policies] paths and run `hostfw apply` without files"
                    ),
                );
                return Ok(());
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                tell(
                    &write,
                    &format!(
                        "no request within {} s of connecting",
                        REQUEST_DEADLINE.as_secs()
                    ),
                );
                return Ok(());
            }
        };
        self.carry_out(read, write, &text).await
    }

    /// Carries out one request read whole and writes the answer.
    async fn carry_out(
        &self,
        mut read: OwnedReadHalf,
        mut write: OwnedWriteHalf,
        text: &[u8],
    ) -> io::Result<()> {
        let answer = match serde_json::from_slice::<Request>(text) {
            Ok(Request::Observe { filter, follow }) => {
                let Ok(_slot) = Arc::clone(&self.streams).try_acquire_owned() else {
                    tell(
                        &write,
                        &format!(
                            "too many `hostfw observe` streams ({STREAMS}) are open: stop one \
                             (or use `hostfw observe` without --follow) and try again"
                        ),
                    );
                    return Ok(());
                };
                return observe(&mut read, &mut write, &self.recorder, &filter, follow).await;
            }
            Ok(req) => {
                let Ok(_slot) = Arc::clone(&self.in_flight).try_acquire_owned() else {
                    tell(
                        &write,
                        &format!(
                            "the daemon is busy: {IN_FLIGHT} requests are being carried out; \
                             try again"
                        ),
                    );
                    return Ok(());
                };
                let (reply, rx) = oneshot::channel();
                if self.tx.send((req, reply)).await.is_err() {
                    return Ok(());
                }
                match rx.await {
                    Ok(a) => a,
                    Err(_) => return Ok(()),
                }
            }
            Err(e) => refusal(format!("request not understood: {e}")),
        };
        send_line(&mut write, &line(&answer)?).await
    }
}

/// Writes one line of an answer within [`WRITE_DEADLINE`].
async fn send_line(write: &mut OwnedWriteHalf, text: &str) -> io::Result<()> {
    match timeout(WRITE_DEADLINE, write.write_all(text.as_bytes())).await {
        Ok(written) => written,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client does not take its answer",
        )),
    }
}

/// Streams flows: the recent ones, then new ones while `follow` and the
/// client stays (until it closes its end).
async fn observe(
    read: &mut OwnedReadHalf,
    write: &mut OwnedWriteHalf,
    recorder: &Recorder,
    filter: &Filter,
    follow: bool,
) -> io::Result<()> {
    let mut live = follow.then(|| recorder.subscribe());
    for flow in recorder.recent(filter) {
        send(write, &flow).await?;
    }
    let Some(rx) = live.as_mut() else {
        return Ok(());
    };
    let mut sink = [0u8; 256];
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Ok(flow) if filter.matches(&flow) => send(write, &flow).await?,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            },
            // The client sends nothing after its request: end of input
            // (or an error) is the client gone, and frees the stream's slot.
            n = read.read(&mut sink) => if n.unwrap_or(0) == 0 {
                return Ok(());
            },
        }
    }
}

async fn send(write: &mut OwnedWriteHalf, flow: &crate::observe::Flow) -> io::Result<()> {
    let mut text = serde_json::to_string(flow).map_err(io::Error::other)?;
    text.push('\n');
    send_line(write, &text).await
}

#[cfg(test)]
mod tests {
    use std::sync::PoisonError;

    use nix::{
        sys::stat::{Mode, umask},
        unistd::{Gid, Uid},
    };

    use super::*;

    fn group() -> ControlGroup {
        ControlGroup {
            name: "hostfw".into(),
            gid: Gid::from_raw(990),
        }
    }

    #[test]
    fn root_and_our_user_are_allowed_others_are_told_why() {
        let root_only = Access {
            euid: Uid::from_raw(0),
            group: None,
        };
        assert_eq!(root_only.decide(0, 0, &[]), Ok(()));
        assert_eq!(
            root_only.decide(65534, 65534, &[990]),
            Err("permission denied: uid 65534 is not root".into())
        );
        let ours = Access {
            euid: Uid::from_raw(1000),
            group: None,
        };
        assert_eq!(ours.decide(1000, 1000, &[]), Ok(()));
        assert!(ours.decide(1001, 1000, &[]).is_err());
        let grouped = Access {
            euid: Uid::from_raw(0),
            group: Some(group()),
        };
        assert_eq!(grouped.decide(1000, 990, &[]), Ok(()), "primary group");
        assert_eq!(
            grouped.decide(1000, 100, &[4, 990]),
            Ok(()),
            "supplementary"
        );
        assert_eq!(
            grouped.decide(1000, 100, &[4]),
            Err("permission denied: uid 1000 is not root nor in group hostfw".into())
        );
    }

    #[tokio::test]
    async fn request_lines_are_bounded() {
        let read = |input: Vec<u8>, max| async move {
            let (mut a, mut b) = tokio::io::duplex(1 << 16);
            let writer = tokio::spawn(async move {
                let _ = b.write_all(&input).await;
            });
            let got = LineReader::new(max).read(&mut a).await.expect("read");
            drop(a);
            let _ = writer.await;
            got
        };
        assert_eq!(
            read(b"{\"cmd\":\"status\"}\n".to_vec(), 64).await,
            Line::Complete(b"{\"cmd\":\"status\"}\n".to_vec())
        );
        assert_eq!(
            read(b"x\ny".to_vec(), 64).await,
            Line::Complete(b"x\n".to_vec())
        );
        assert_eq!(read(Vec::new(), 64).await, Line::Closed);
        assert_eq!(
            read(b"abc".to_vec(), 64).await,
            Line::Complete(b"abc".to_vec())
        );
        // The limit counts the newline.
        let mut exact = vec![b'a'; 63];
        exact.push(b'\n');
        assert_eq!(read(exact.clone(), 64).await, Line::Complete(exact));
        let mut over = vec![b'a'; 64];
        over.push(b'\n');
        assert_eq!(read(over, 64).await, Line::TooLarge);
        assert_eq!(read(vec![b'a'; 100_000], 20_000).await, Line::TooLarge);
    }

    #[test]
    fn what_has_arrived_is_read_without_waiting() {
        let chunks = |parts: Vec<&'static [u8]>| {
            let parts = std::sync::Mutex::new(std::collections::VecDeque::from(parts));
            move |buf: &mut [u8]| -> io::Result<usize> {
                let mut parts = parts.lock().unwrap_or_else(PoisonError::into_inner);
                let part = parts
                    .pop_front()
                    .ok_or_else(|| io::Error::from(io::ErrorKind::WouldBlock))?;
                buf[..part.len()].copy_from_slice(part);
                Ok(part.len())
            }
        };
        let mut r = LineReader::new(64);
        assert_eq!(
            r.read_now(chunks(vec![b"{\"cmd\":", b"\"status\"}\n"])),
            Some(Line::Complete(b"{\"cmd\":\"status\"}\n".to_vec()))
        );
        // Incomplete: more is to come; what was read is kept.
        let mut r = LineReader::new(64);
        assert_eq!(r.read_now(chunks(vec![b"{\"cmd\""])), None);
        assert_eq!(
            r.read_now(chunks(vec![b":1}\n"])),
            Some(Line::Complete(b"{\"cmd\":1}\n".to_vec()))
        );
        let mut r = LineReader::new(4);
        assert_eq!(r.read_now(chunks(vec![b"abcdef"])), Some(Line::TooLarge));
    }

    #[test]
    fn an_unsafe_directory_is_refused_by_name() {
        let base = std::env::temp_dir().join(format!("hostfw-ctl-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let euid = nix::unistd::geteuid();
        // Missing: created 0700.
        let made = base.join("run/hostfw");
        prepare_dir(&made, None, euid).expect("created");
        let mode = |p: &Path| {
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata(p).expect("exists").mode() & 0o7777
        };
        assert_eq!(mode(&made), 0o700);
        // World-writable (like /tmp): refused, naming it.
        let open = base.join("open");
        std::fs::create_dir(&open).expect("dir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        let e = prepare_dir(&open, None, euid)
            .expect_err("world-writable")
            .to_string();
        assert!(
            e.contains(&format!("control socket directory {}", open.display()))
                && e.contains("group- or world-writable (mode 1777)"),
            "{e}"
        );
        // An existing safe directory is left as it is.
        let plain = base.join("plain");
        std::fs::create_dir(&plain).expect("dir");
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        prepare_dir(&plain, None, euid).expect("safe");
        assert_eq!(mode(&plain), 0o755);
        // Someone else's: refused (only checkable as root, who can chown).
        if euid.is_root() {
            nix::unistd::chown(&plain, Some(Uid::from_raw(65534)), None).expect("chown");
            let e = prepare_dir(&plain, None, euid)
                .expect_err("not ours")
                .to_string();
            assert!(e.contains("owned by uid 65534"), "{e}");
        }
        let _ = std::fs::remove_dir_all(&base);
    }

    #[tokio::test]
    async fn the_socket_is_private_from_its_creation() {
        let dir = std::env::temp_dir().join(format!("hostfw-ctl-sock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("s.sock");
        let before = umask(Mode::empty());
        let bound = bind_private(&path);
        let after = umask(before);
        let _listener = bound.expect("bound");
        assert_eq!(after, Mode::empty(), "the umask is restored");
        use std::os::unix::fs::MetadataExt as _;
        let mode = std::fs::metadata(&path).expect("socket").mode() & 0o777;
        assert_eq!(
            mode, 0o600,
            "bound under umask 0177, whatever the process umask"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
