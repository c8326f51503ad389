//! The daemon's end of the control socket: one request per connection,
//! handed to the main loop, its answer written back.

use std::{os::unix::fs::PermissionsExt as _, path::Path};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use std::sync::Arc;

use crate::{
    control::{MAX_MESSAGE, Request, Response},
    observe::{Filter, Recorder},
};

/// A request with the channel its answer goes back on.
pub type Incoming = (Request, oneshot::Sender<Response>);

/// Binds the socket (root only: mode 0600) and serves it.
pub fn serve(
    path: &Path,
    tx: mpsc::Sender<Incoming>,
    recorder: Arc<Recorder>,
) -> std::io::Result<JoinHandle<()>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket file left by a daemon that died is removed; a live daemon
    // would still answer on it.
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("another hostfw daemon answers on {}", path.display()),
        ));
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let tx = tx.clone();
            let recorder = recorder.clone();
            tokio::spawn(async move {
                if let Err(e) = one(stream, tx, &recorder).await {
                    log::warn!("control connection: {e}");
                }
            });
        }
    }))
}

async fn one(
    stream: UnixStream,
    tx: mpsc::Sender<Incoming>,
    recorder: &Recorder,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(MAX_MESSAGE as u64))
        .read_line(&mut line)
        .await?;
    let answer = match serde_json::from_str::<Request>(&line) {
        Ok(Request::Observe { filter, follow }) => {
            return observe(&mut write, recorder, &filter, follow).await;
        }
        Ok(req) => {
            let (reply, rx) = oneshot::channel();
            if tx.send((req, reply)).await.is_err() {
                return Ok(());
            }
            match rx.await {
                Ok(a) => a,
                Err(_) => return Ok(()),
            }
        }
        Err(e) => Response {
            ok: false,
            message: format!("request not understood: {e}"),
            status: None,
            data: None,
        },
    };
    let mut text = serde_json::to_string(&answer).map_err(std::io::Error::other)?;
    text.push('\n');
    write.write_all(text.as_bytes()).await
}

/// Streams flows: the recent ones, then new ones while `follow` and the
/// client stays.
async fn observe(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    recorder: &Recorder,
    filter: &Filter,
    follow: bool,
) -> std::io::Result<()> {
    let mut live = follow.then(|| recorder.subscribe());
    for flow in recorder.recent(filter) {
        send(write, &flow).await?;
    }
    let Some(rx) = live.as_mut() else {
        return Ok(());
    };
    loop {
        match rx.recv().await {
            Ok(flow) if filter.matches(&flow) => send(write, &flow).await?,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

async fn send(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    flow: &crate::observe::Flow,
) -> std::io::Result<()> {
    let mut text = serde_json::to_string(flow).map_err(std::io::Error::other)?;
    text.push('\n');
    write.write_all(text.as_bytes()).await
}
