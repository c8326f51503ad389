//! TCP request/response tools for `scripts/bench.sh` (run inside the
//! benchmark's network namespaces).
//!
//! - `tcp_rr server --port PORT`: answers each `SIZE`-byte request with as
//!   many bytes, on any number of connections, until killed.
//! - `tcp_rr client --connect ADDR:PORT --secs S [--size 64]`: one
//!   connection, one request in flight (ping-pong, `TCP_NODELAY`) for `S`
//!   seconds; prints transactions per second as JSON.
//! - `tcp_rr flip --file F --with G --connect ADDR:PORT --expect ok|fail
//!   [--timeout-ms 20] [--max-secs 10]`: replaces `F` with the contents of
//!   `G` (written beside `G`, then renamed over `F`: one atomic change, as an
//!   editor does), then connects to `ADDR:PORT` again and again until the
//!   outcome is `--expect`. Prints the milliseconds from the rename to the
//!   first connection attempt with the new verdict: for `ok`, when that
//!   connection completed; for `fail`, when its SYN was sent (the attempt
//!   then fails by timing out, and so do two more). Attempts are 2 ms apart.
//! - `tcp_rr connect --connect ADDR:PORT [--timeout-ms 300]`: one attempt;
//!   prints `ok` or `fail` (exit status 0 either way).

use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream},
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

#[path = "common/args.rs"]
mod args;
use args::Args;

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = argv.split_first() else {
        bail!("usage: tcp_rr server|client|flip|connect [--option value]...");
    };
    let args = Args(rest.to_vec());
    match cmd.as_str() {
        "server" => server(&args),
        "client" => client(&args),
        "flip" => flip(&args),
        "connect" => {
            let to: SocketAddr = args.req("--connect")?;
            let t = Duration::from_millis(args.opt("--timeout-ms", 300)?);
            println!("{}", if attempt(to, t) { "ok" } else { "fail" });
            Ok(())
        }
        other => bail!("unknown command {other}: server, client, flip or connect"),
    }
}

fn server(args: &Args) -> anyhow::Result<()> {
    let port: u16 = args.req("--port")?;
    let l = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
        .with_context(|| format!("listen on TCP port {port}"))?;
    println!("ready");
    for conn in l.incoming() {
        let Ok(mut s) = conn else { continue };
        std::thread::spawn(move || {
            let _ = s.set_nodelay(true);
            let mut buf = [0u8; 65536];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
    Ok(())
}

fn client(args: &Args) -> anyhow::Result<()> {
    let to: SocketAddr = args.req("--connect")?;
    let secs: f64 = args.req("--secs")?;
    let size: usize = args.opt("--size", 64)?;
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2))
        .with_context(|| format!("connect to {to}"))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let req = vec![0x5au8; size];
    let mut resp = vec![0u8; size];
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < limit {
        s.write_all(&req)?;
        s.read_exact(&mut resp).context("response")?;
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    #[expect(clippy::cast_precision_loss, reason = "counts fit easily")]
    let tps = n as f64 / secs;
    println!(
        "{}",
        serde_json::json!({ "transactions": n, "secs": secs, "tps": tps })
    );
    Ok(())
}

/// One connection attempt: true if it completed within `timeout`.
fn attempt(to: SocketAddr, timeout: Duration) -> bool {
    TcpStream::connect_timeout(&to, timeout).is_ok()
}

fn flip(args: &Args) -> anyhow::Result<()> {
    let file: PathBuf = args.req("--file")?;
    let with: PathBuf = args.req("--with")?;
    let to: SocketAddr = args.req("--connect")?;
    let want_ok = match args.req::<String>("--expect")?.as_str() {
        "ok" => true,
        "fail" => false,
        other => bail!("--expect {other}: ok or fail"),
    };
    let timeout = Duration::from_millis(args.opt("--timeout-ms", 20)?);
    let max = Duration::from_secs_f64(args.opt("--max-secs", 10.0)?);
    let text = std::fs::read(&with).with_context(|| format!("read {}", with.display()))?;
    // Written beside `with` (outside the watched directory), then renamed.
    let tmp = with.with_extension("flip.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &file).with_context(|| format!("rename onto {}", file.display()))?;
    let t0 = Instant::now();
    let mut attempts = 0u32;
    while t0.elapsed() < max {
        attempts += 1;
        let sent = t0.elapsed();
        let ok = attempt(to, timeout);
        // A failure counts once two more attempts (with a longer timeout)
        // fail too: one SYN lost to a full accept queue is not a verdict.
        let ok = ok || (!want_ok && (0..2).any(|_| attempt(to, timeout * 3)));
        if ok == want_ok {
            let at = if ok { t0.elapsed() } else { sent };
            println!(
                "{}",
                serde_json::json!({ "ms": at.as_secs_f64() * 1e3, "attempts": attempts })
            );
            return Ok(());
        }
        // Attempts 2 ms apart: the resolution, and no flood of connections.
        std::thread::sleep(Duration::from_millis(2));
    }
    bail!(
        "the connection to {to} did not become {} within {max:?} of the change",
        if want_ok { "possible" } else { "impossible" }
    )
}
