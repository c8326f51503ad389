//! The metrics endpoint over real loopback sockets: raw HTTP/1.1 requests,
//! responses parsed by hand.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use hostfw::datapath::counters::{ConntrackUsage, TableUsage};
use hostfw::metrics::{self, InterfaceSample, MetricsError, MetricsServer, RuleSample, Snapshot};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A parsed response: status code, headers (names lowercased), body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of the sample line starting with `series` (name and labels).
    fn sample(&self, series: &str) -> u64 {
        let prefix = format!("{series} ");
        let values: Vec<u64> = self
            .body
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.parse().expect("integer value"))
            .collect();
        assert_eq!(values.len(), 1, "{series} in\n{}", self.body);
        values[0]
    }
}

/// Sends `request` as is and reads the whole response (the server closes).
async fn exchange(addr: SocketAddr, request: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("receive");
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
    let status = parts.next().expect("status").parse().expect("status code");
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header: value");
            (n.to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let response = Response {
        status,
        headers,
        body: body.to_owned(),
    };
    let length = response.header("content-length").expect("Content-Length");
    assert_eq!(length.parse::<usize>().ok(), Some(response.body.len()));
    assert_eq!(response.header("connection"), Some("close"));
    response
}

async fn get(addr: SocketAddr, path: &str) -> Response {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n\r\n");
    exchange(addr, request.as_bytes()).await
}

/// A server on an ephemeral loopback port whose snapshot counts the scrapes
/// in `reloads_ok`.
async fn start() -> SocketAddr {
    let server = MetricsServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    let scrapes = Arc::new(AtomicU64::new(0));
    tokio::spawn(server.serve(move || {
        let n = scrapes.fetch_add(1, Ordering::SeqCst) + 1;
        metrics::render(&Snapshot {
            counters: vec![("dropped", 12), ("flow_allowed", 34)],
            rules: vec![RuleSample {
                policy: Some("allow-ssh".into()),
                rule: "ingress[0]".into(),
                packets: 56,
            }],
            interfaces: vec![InterfaceSample {
                name: "eth0".into(),
                xdp: "native".into(),
                tc: "tcx".into(),
                ..InterfaceSample::default()
            }],
            conntrack: ConntrackUsage {
                established: TableUsage {
                    used: 7,
                    capacity: 1024,
                    evicted: 0,
                },
                new: TableUsage::default(),
            },
            reloads_ok: n,
            policy_revision: 3,
            mode_enforce: true,
            kubernetes: None,
            ..Snapshot::default()
        })
    }));
    addr
}

#[tokio::test]
async fn get_metrics() {
    let addr = start().await;
    let r = get(addr, "/metrics").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let content_type = r.header("content-type").expect("Content-Type");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert_eq!(r.sample(r#"hostfw_packets_total{kind="dropped"}"#), 12);
    assert_eq!(r.sample(r#"hostfw_packets_total{kind="flow_allowed"}"#), 34);
    let flows = r#"hostfw_rule_flows_total{policy="allow-ssh",rule="ingress[0]"}"#;
    assert_eq!(r.sample(flows), 56);
    let eth0 = r#"hostfw_interface_info{interface="eth0",xdp="native",tc="tcx"}"#;
    assert_eq!(r.sample(eth0), 1);
    assert_eq!(
        r.sample("hostfw_conntrack_entries{table=\"established\"}"),
        7
    );
    assert_eq!(
        r.sample("hostfw_conntrack_capacity{table=\"established\"}"),
        1024
    );
    assert_eq!(r.sample(r#"hostfw_reloads_total{result="error"}"#), 0);
    assert_eq!(r.sample(r#"hostfw_trials_total{event="started"}"#), 0);
    assert_eq!(r.sample("hostfw_policy_revision"), 3);
    assert_eq!(r.sample("hostfw_mode_enforce"), 1);
    assert!(r.body.contains("# TYPE hostfw_packets_total counter\n"));

    // Fresh text per request.
    assert_eq!(r.sample(r#"hostfw_reloads_total{result="ok"}"#), 1);
    let again = get(addr, "/metrics").await;
    assert_eq!(again.sample(r#"hostfw_reloads_total{result="ok"}"#), 2);
}

#[tokio::test]
async fn other_requests() {
    let addr = start().await;
    for path in ["/other", "/", "/metrics/x"] {
        let r = get(addr, path).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.body.contains("hostfw_"), "{path}");
    }
    let r = exchange(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    let r = exchange(addr, b"nonsense\r\n\r\n").await;
    assert_eq!(r.status, 400);
    let mut huge = b"GET /metrics HTTP/1.1\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b"X-Pad: 0123456789\r\n", 1000).flatten());
    let r = exchange(addr, &huge).await;
    assert_eq!(r.status, 431);
    // Still serving after all that.
    assert_eq!(get(addr, "/metrics").await.status, 200);
}

#[tokio::test]
async fn a_silent_client_does_not_block_others() {
    let addr = start().await;
    let _silent = TcpStream::connect(addr).await.expect("connect");
    let _half = {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /metr").await.expect("send");
        s
    };
    assert_eq!(get(addr, "/metrics").await.status, 200);
}

#[tokio::test]
async fn refuses_non_loopback_addresses() {
    for addr in [
        "0.0.0.0:0",
        "192.0.2.1:9964",
        "[::]:0",
        "[2001:db8::1]:9964",
    ] {
        let addr: SocketAddr = addr.parse().expect("address");
        let e = MetricsServer::bind(addr).await.expect_err("refused");
        assert!(matches!(e, MetricsError::NotLoopback { .. }), "{addr}: {e}");
        assert!(e.to_string().contains("not a loopback address"), "{e}");
        let e = metrics::serve(addr, String::new)
            .await
            .expect_err("refused");
        assert!(matches!(e, MetricsError::NotLoopback { .. }), "{addr}: {e}");
    }
    let e = metrics::listen_addr("0.0.0.0:9964").expect_err("refused");
    assert!(matches!(e, MetricsError::NotLoopback { .. }), "{e}");
}

#[tokio::test]
async fn a_port_in_use_is_a_bind_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address");
    let e = metrics::serve(addr, String::new).await.expect_err("in use");
    assert!(matches!(e, MetricsError::Bind { .. }), "{e}");
    assert!(e.to_string().contains(&addr.to_string()), "{e}");
}
