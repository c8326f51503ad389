//! A minimal HTTP/1.1 responder: `GET /metrics`, one request per
//! connection, loopback only.
//!
//! No local client can stop the scrapes: connections are accepted eagerly
//! and wait for their request head in a bounded
//! [`WaitingRoom`](crate::waiting_room::WaitingRoom) of 512 seats (the one
//! waiting longest gives its seat to a newcomer), a head must come within 1 s and a
//! whole exchange end within 3 s, at most 16 connections are answered at
//! once (more get a 503), and the accept loop waits after an error instead
//! of spinning.

use std::{
    io,
    net::{AddrParseError, SocketAddr},
    sync::Arc,
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    time::timeout,
};

use super::CONTENT_TYPE;
use crate::waiting_room::{AcceptBackoff, Ticket, WaitingRoom};

/// Largest request head (request line and headers) read.
const MAX_REQUEST: usize = 8192;
/// Connections waiting for their request head at once. More than the
/// control socket's 64: anyone on the machine may connect here, and while
/// hostile clients that reconnect as soon as they are closed outnumber the
/// seats, the seats are all taken by new arrivals and newcomers (a
/// scraper too) are refused. 512 seats hold hundreds of idle or trickling
/// clients, each for at most the head deadline.
const WAITING: usize = 512;
/// When the waiting room is full, a connection that has waited this long
/// gives its seat to a newcomer (a scraper sends its request at once).
const EVICT_AFTER: Duration = Duration::from_millis(50);
/// Time a client has to send its request head.
const HEAD_DEADLINE: Duration = Duration::from_secs(1);
/// Time a whole exchange may take, from accept to close.
const EXCHANGE_DEADLINE: Duration = Duration::from_secs(3);
/// Most input discarded after the response.
const MAX_DRAIN: usize = 64 * 1024;
/// Time the client has to close after the response.
const LINGER_TIMEOUT: Duration = Duration::from_secs(1);
/// Connections answered at once (their head read); more get a 503.
const SERVING: usize = 16;

/// Why the metrics endpoint cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listen address is not a socket address.
    #[error("metrics listen address {value:?}: {source} (expected IP:PORT, e.g. 127.0.0.1:9964)")]
    Address {
        /// The address as written.
        value: String,
        /// The parse error.
        source: AddrParseError,
    },
    /// The listen address is not a loopback address.
    #[error(
        "metrics listen address {addr} is not a loopback address: metrics are served on \
         loopback only (127.0.0.0/8 or [::1])"
    )]
    NotLoopback {
        /// The address refused.
        addr: SocketAddr,
    },
    /// The socket could not be bound.
    #[error("metrics: cannot listen on {addr}: {source}")]
    Bind {
        /// The listen address.
        addr: SocketAddr,
        /// The system's error.
        source: io::Error,
    },
}

/// Parses a `[metrics] listen` value and checks that it is loopback.
pub fn listen_addr(value: &str) -> Result<SocketAddr, MetricsError> {
    let addr = value.parse().map_err(|source| MetricsError::Address {
        value: value.to_owned(),
        source,
    })?;
    check_loopback(addr)?;
    Ok(addr)
}

fn check_loopback(addr: SocketAddr) -> Result<(), MetricsError> {
    if addr.ip().to_canonical().is_loopback() {
        Ok(())
    } else {
        Err(MetricsError::NotLoopback { addr })
    }
}

/// Binds `listen` (loopback only) and serves until the task is dropped.
/// `snapshot` gives the exposition text, called once per `GET /metrics`
/// on a blocking thread.
pub async fn serve<F>(listen: SocketAddr, snapshot: F) -> Result<(), MetricsError>
where
    F: Fn() -> String + Send + Sync + 'static,
{
    MetricsServer::bind(listen).await?.serve(snapshot).await;
    Ok(())
}

/// A bound metrics endpoint.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `listen`, which must be a loopback address (port 0 picks one:
    /// see [`Self::local_addr`]).
    pub async fn bind(listen: SocketAddr) -> Result<Self, MetricsError> {
        check_loopback(listen)?;
        let bind_err = |source| MetricsError::Bind {
            addr: listen,
            source,
        };
        let listener = TcpListener::bind(listen).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        Ok(Self { listener, addr })
    }

    /// The bound address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the task is dropped. `snapshot` gives the exposition
    /// text, called once per `GET /metrics` on a blocking thread. Errors of
    /// single connections are logged at debug level and do not stop it.
    pub async fn serve<F>(self, snapshot: F)
    where
        F: Fn() -> String + Send + Sync + 'static,
    {
        let snapshot = Arc::new(snapshot);
        let room = WaitingRoom::new(WAITING, EVICT_AFTER);
        let serving = Arc::new(Semaphore::new(SERVING));
        let mut backoff = AcceptBackoff::new(format!("metrics on {}", self.addr));
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => {
                    backoff.accepted();
                    accepted
                }
                Err(e) => {
                    backoff.failed(&e).await;
                    continue;
                }
            };
            let Ok(ticket) = room.admit() else {
                // Full of connections that just arrived: this one is
                // closed at once (it may try again).
                let _ = stream.try_write(&busy_response());
                continue;
            };
            let snapshot = Arc::clone(&snapshot);
            let serving = Arc::clone(&serving);
            tokio::spawn(async move {
                let exchange = exchange(stream, ticket, &serving, move || snapshot());
                match timeout(EXCHANGE_DEADLINE, exchange).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => log::debug!("metrics: {peer}: {e}"),
                    Err(_) => log::debug!("metrics: {peer}: exchange timed out"),
                }
            });
        }
    }
}

/// One connection: its head read while it holds `ticket`, then answered
/// if a serving slot is free.
async fn exchange<F>(
    mut stream: TcpStream,
    mut ticket: Ticket,
    serving: &Arc<Semaphore>,
    snapshot: F,
) -> io::Result<()>
where
    F: FnOnce() -> String + Send + 'static,
{
    let request = tokio::select! {
        head = timeout(HEAD_DEADLINE, read_head(&mut stream)) => match head {
            Ok(head) => head?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "request timed out")),
        },
        () = ticket.evicted() => {
            return Err(io::Error::other("closed: no request head while others were waiting"));
        }
    };
    drop(ticket);
    let Ok(_slot) = Arc::clone(serving).try_acquire_owned() else {
        let _ = stream.write_all(&busy_response()).await;
        return Err(io::Error::other("busy: answered 503"));
    };
    respond(stream, &request, snapshot).await
}

/// The whole response of a server too busy to answer.
fn busy_response() -> Vec<u8> {
    let mut response = head(
        "503 Service Unavailable",
        "text/plain",
        5,
        "Retry-After: 1\r\n",
    )
    .into_bytes();
    response.extend_from_slice(b"busy\n");
    response
}

/// A response head.
fn head(status: &str, content_type: &str, len: usize, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\
         {extra}Connection: close\r\n\r\n"
    )
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Metrics,
    NotFound,
    MethodNotAllowed,
    Bad,
    TooLarge,
}

/// Answers one request head and closes.
async fn respond<F>(mut stream: TcpStream, request: &Request, snapshot: F) -> io::Result<()>
where
    F: FnOnce() -> String + Send + 'static,
{
    let (status, content_type, body) = match request {
        Request::Metrics => match tokio::task::spawn_blocking(snapshot).await {
            Ok(text) => ("200 OK", CONTENT_TYPE, text),
            Err(e) => {
                log::warn!("metrics: rendering failed: {e}");
                let body = "rendering the metrics failed\n".to_owned();
                ("500 Internal Server Error", "text/plain", body)
            }
        },
        Request::NotFound => ("404 Not Found", "text/plain", "not found\n".to_owned()),
        Request::MethodNotAllowed => {
            let body = "only GET\n".to_owned();
            ("405 Method Not Allowed", "text/plain", body)
        }
        Request::Bad => ("400 Bad Request", "text/plain", "bad request\n".to_owned()),
        Request::TooLarge => {
            let body = "request too large\n".to_owned();
            ("431 Request Header Fields Too Large", "text/plain", body)
        }
    };
    let allow = if *request == Request::MethodNotAllowed {
        "Allow: GET\r\n"
    } else {
        ""
    };
    let head = head(status, content_type, body.len(), allow);
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await?;
    linger(&mut stream).await;
    Ok(())
}

/// Reads and discards what the client still sends, briefly, before the
/// socket is closed: closing with unread input resets the connection, and
/// the client could lose the response (after a 431, say).
async fn linger(stream: &mut TcpStream) {
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut total = 0;
        while total < MAX_DRAIN {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = timeout(LINGER_TIMEOUT, drain).await;
}

/// Reads up to the blank line ending the request head and classifies it.
async fn read_head(stream: &mut TcpStream) -> io::Result<Request> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Request::Bad);
        }
        let searched_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&buf, searched_from) {
            return Ok(classify(&buf[..end]));
        }
        if buf.len() >= MAX_REQUEST {
            return Ok(Request::TooLarge);
        }
    }
}

/// The end of the request head (`\r\n\r\n`, or `\n\n` from a lax client)
/// in `buf`, searching from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find(|&i| buf[i..].starts_with(b"\r\n\r\n") || buf[i..].starts_with(b"\n\n"))
}

/// Classifies a request head by its request line.
fn classify(head: &[u8]) -> Request {
    let Ok(head) = std::str::from_utf8(head) else {
        return Request::Bad;
    };
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad;
    };
    if !version.starts_with("HTTP/1.") {
        return Request::Bad;
    }
    if method != "GET" {
        return Request::MethodNotAllowed;
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if path == "/metrics" {
        Request::Metrics
    } else {
        Request::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_request_lines() {
        let cases: [(&[u8], Request); 9] = [
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\n", Request::Metrics),
            (b"GET /metrics?x=1 HTTP/1.0\r\n", Request::Metrics),
            (b"GET / HTTP/1.1\r\n", Request::NotFound),
            (b"GET /metrics/ HTTP/1.1\r\n", Request::NotFound),
            (b"POST /metrics HTTP/1.1\r\n", Request::MethodNotAllowed),
            (b"GET /metrics\r\n", Request::Bad),
            (b"GET /metrics SPDY/3\r\n", Request::Bad),
            (b"GET  /metrics HTTP/1.1\r\n", Request::Bad),
            (b"\xff\xfe\r\n", Request::Bad),
        ];
        for (head, want) in cases {
            assert_eq!(classify(head), want, "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn finds_the_end_of_the_head() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\n", 0), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n", 0), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), None);
    }

    #[test]
    fn listen_addresses() {
        for ok in [
            "127.0.0.1:9964",
            "127.1.2.3:1",
            "[::1]:9964",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(listen_addr(ok).is_ok(), "{ok}");
        }
        for bad in [
            "0.0.0.0:9964",
            "10.0.0.1:9964",
            "[::]:9964",
            "[fe80::1]:9964",
        ] {
            let e = listen_addr(bad).expect_err(bad);
            assert!(matches!(e, MetricsError::NotLoopback { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("not a loopback address"), "{e}");
        }
        for bad in ["localhost:9964", "127.0.0.1", ""] {
            let e = listen_addr(bad).expect_err(bad);
            assert!(matches!(e, MetricsError::Address { .. }), "{bad}: {e}");
        }
    }
}
