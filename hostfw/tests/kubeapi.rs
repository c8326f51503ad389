//! The fake Kubernetes API server (tests/common/kubeapi.rs) checked over raw
//! HTTP/1.1: lists and chunked lists, watches, bookmarks, compaction (410),
//! timeouts, dropped watches, an unavailable server, authentication, events
//! and keep-alive. No root needed.

#[path = "common/kubeapi.rs"]
mod kubeapi;

use std::{
    io::{self, BufRead, BufReader, Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use kubeapi::FakeApiServer;
use serde_json::{Value, json};

/// A raw HTTP/1.1 client connection.
struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }
}

impl Conn {
    fn open(api: &FakeApiServer) -> Conn {
        let w = TcpStream::connect(api.addr()).expect("connect to the fake API server");
        w.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let r = BufReader::new(w.try_clone().expect("clone the stream"));
        Conn { r, w }
    }

    fn send(&mut self, method: &str, target: &str, headers: &str, body: &str) {
        let len = body.len();
        let req = format!(
            "{method} {target} HTTP/1.1\r\nHost: fake\r\n{headers}Content-Length: {len}\r\n\r\n{body}"
        );
        self.w.write_all(req.as_bytes()).expect("send the request");
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.r.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end().to_string())
    }

    /// Status code and headers; an error when the server closed the connection instead.
    fn head(&mut self) -> io::Result<(u16, Vec<(String, String)>)> {
        let status = self.line()?;
        let code = status.split(' ').nth(1).and_then(|c| c.parse().ok());
        let code = code.unwrap_or_else(|| panic!("bad status line {status:?}"));
        let mut headers = Vec::new();
        loop {
            let h = self.line()?;
            let Some((k, v)) = h.split_once(':') else {
                break;
            };
            headers.push((k.to_string(), v.trim().to_string()));
        }
        Ok((code, headers))
    }

    /// The next chunk of a chunked body: `None` for the terminating chunk.
    fn chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        let size = self.line()?;
        let size =
            usize::from_str_radix(&size, 16).unwrap_or_else(|_| panic!("chunk size {size:?}"));
        let mut data = vec![0; size + 2];
        self.r.read_exact(&mut data)?;
        assert_eq!(&data[size..], b"\r\n", "chunk trailer");
        data.truncate(size);
        Ok((size > 0).then_some(data))
    }

    fn response(&mut self) -> Resp {
        let (status, headers) = self.head().expect("a response");
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        if resp.header("transfer-encoding") == Some("chunked") {
            while let Some(c) = self.chunk().expect("a chunk") {
                resp.body.extend(c);
            }
        } else {
            let len = resp
                .header("content-length")
                .expect("Content-Length")
                .parse();
            resp.body = vec![0; len.expect("a length")];
            self.r.read_exact(&mut resp.body).expect("the body");
        }
        resp
    }

    fn get(&mut self, target: &str) -> Resp {
        self.send("GET", target, "", "");
        self.response()
    }

    /// Opens a watch on this connection: 200, JSON, chunked.
    fn watch(mut self, target: &str) -> Conn {
        self.send("GET", target, "", "");
        let (status, headers) = self.head().expect("a watch response");
        assert_eq!(status, 200, "watch {target}");
        let resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
        assert_eq!(resp.header("content-type"), Some("application/json"));
        self
    }

    /// The next watch event: one JSON document ending with "\n" per chunk.
    fn event(&mut self) -> Value {
        let chunk = self
            .chunk()
            .expect("a watch event")
            .expect("not the end of the stream");
        assert_eq!(chunk.last(), Some(&b'\n'), "an event ends with a newline");
        serde_json::from_slice(&chunk).expect("a JSON event")
    }

    /// The next event that is not a BOOKMARK, as "TYPE name@resourceVersion".
    fn change(&mut self) -> String {
        loop {
            let ev = self.event();
            let (ty, o) = (ev["type"].as_str().expect("type"), &ev["object"]);
            if ty != "BOOKMARK" {
                return format!("{ty} {}@{}", name(o), rv(o));
            }
        }
    }
}

fn get(api: &FakeApiServer, target: &str) -> Resp {
    Conn::open(api).get(target)
}

fn node(name: &str, labels: Value) -> Value {
    let mut node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}});
    node["metadata"]["labels"] = labels;
    node
}

fn name(o: &Value) -> String {
    o["metadata"]["name"]
        .as_str()
        .expect("metadata.name")
        .to_string()
}

fn rv(o: &Value) -> u64 {
    let rv = o["metadata"]["resourceVersion"]
        .as_str()
        .expect("metadata.resourceVersion");
    rv.parse().expect("a numeric resourceVersion")
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(name)
        .collect()
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    let keep = |b: u8| b.is_ascii_alphanumeric() || b"-_.".contains(&b);
    s.bytes()
        .map(|b| {
            if keep(b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn assert_status(resp: &Resp, code: u16, reason: &str) {
    assert_eq!(resp.status, code, "{}", String::from_utf8_lossy(&resp.body));
    let s = resp.json();
    assert_eq!(
        (s["kind"].as_str(), s["apiVersion"].as_str()),
        (Some("Status"), Some("v1"))
    );
    assert_eq!(
        (s["status"].as_str(), s["reason"].as_str()),
        (Some("Failure"), Some(reason))
    );
    assert_eq!(s["code"], code);
    assert!(
        s["message"].as_str().is_some_and(|m| !m.is_empty()),
        "a message: {s}"
    );
}

#[test]
fn get_list_and_errors_on_one_keep_alive_connection() {
    let api = FakeApiServer::start();
    assert_eq!(api.url(), format!("http://{}", api.addr()));
    api.apply(node("b", json!({})));
    let first = api.apply(node("a", json!({"role": "db"})));
    let mut c = Conn::open(&api);
    let list = c.get("/api/v1/nodes");
    assert_eq!(list.status, 200);
    let list = list.json();
    assert_eq!(
        (list["kind"].as_str(), list["apiVersion"].as_str()),
        (Some("NodeList"), Some("v1"))
    );
    assert_eq!(
        list["metadata"]["resourceVersion"],
        api.current_resource_version().to_string()
    );
    assert_eq!(names(&list), ["a", "b"], "sorted by name");
    let a = c.get("/api/v1/nodes/a").json();
    assert_eq!((name(&a), rv(&a)), ("a".to_string(), first));
    assert!(a["metadata"]["uid"].is_string() && a["metadata"]["creationTimestamp"].is_string());
    let again = api.apply(node("a", json!({"role": "web"})));
    let a2 = c.get("/api/v1/nodes/a").json();
    assert!(again > first && rv(&a2) == again);
    assert_eq!(
        a2["metadata"]["uid"], a["metadata"]["uid"],
        "uid kept across updates"
    );
    assert_eq!(a2["metadata"]["labels"]["role"], "web");
    assert_status(&c.get("/api/v1/nodes/zz"), 404, "NotFound");
    assert_status(&c.get("/api/v1/pods"), 404, "NotFound");
    assert_status(
        &c.get("/apis/cilium.io/v2/namespaces/x/ciliumclusterwidenetworkpolicies"),
        404,
        "NotFound",
    );
    c.send("DELETE", "/api/v1/nodes/a", "", "");
    assert_status(&c.response(), 405, "MethodNotAllowed");
    assert_eq!(c.get("/version").json()["major"], "1");
    c.send("GET", "/apis", "Connection: close\r\n", "");
    let apis = c.response();
    assert_eq!(apis.header("connection"), Some("close"));
    assert!(apis.json()["groups"].to_string().contains("cilium.io"));
    let mut rest = Vec::new();
    assert_eq!(
        c.r.read_to_end(&mut rest)
            .expect("EOF after Connection: close"),
        0
    );
    assert!(
        api.requests().contains(&"GET /api/v1/nodes/zz".to_string()),
        "{:?}",
        api.requests()
    );
}

#[test]
fn chunked_list_pages_are_one_snapshot_across_modifications() {
    let api = FakeApiServer::start();
    for n in 1..=5 {
        api.apply(node(&format!("n{n}"), json!({"v": "old"})));
    }
    let at = api.current_resource_version();
    let page = get(&api, "/api/v1/nodes?limit=2").json();
    assert_eq!(names(&page), ["n1", "n2"]);
    assert_eq!(page["metadata"]["remainingItemCount"], 3);
    assert_eq!(page["metadata"]["resourceVersion"], at.to_string());
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("a continue token")
        .to_string();
    api.apply(node("n3", json!({"v": "new"})));
    api.delete("v1", "Node", None, "n4");
    api.apply(node("n0", json!({})));
    api.apply(node("n6", json!({})));
    let page = get(
        &api,
        &format!("/api/v1/nodes?limit=2&continue={}", enc(&token)),
    )
    .json();
    assert_eq!(names(&page), ["n3", "n4"], "the snapshot of the first page");
    assert_eq!(page["items"][0]["metadata"]["labels"]["v"], "old");
    assert_eq!(page["metadata"]["resourceVersion"], at.to_string());
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("a second token")
        .to_string();
    let page = get(
        &api,
        &format!("/api/v1/nodes?limit=2&continue={}", enc(&token)),
    )
    .json();
    assert_eq!(names(&page), ["n5"]);
    assert!(page["metadata"]["continue"].is_null(), "last page: {page}");
    let now = get(&api, "/api/v1/nodes").json();
    assert_eq!(names(&now), ["n0", "n1", "n2", "n3", "n5", "n6"]);
    let exact = get(
        &api,
        &format!("/api/v1/nodes?resourceVersion={at}&resourceVersionMatch=Exact"),
    )
    .json();
    assert_eq!(names(&exact), ["n1", "n2", "n3", "n4", "n5"]);
    let both = get(
        &api,
        &format!(
            "/api/v1/nodes?limit=2&continue={}&resourceVersion={at}",
            enc(&token)
        ),
    );
    assert_status(&both, 400, "BadRequest");
    let future = format!(
        "/api/v1/nodes?resourceVersion={}&resourceVersionMatch=NotOlderThan",
        at + 100
    );
    assert_status(&get(&api, &future), 504, "Timeout");
}

#[test]
fn watch_from_a_resource_version_replays_in_order_then_streams_live() {
    let api = FakeApiServer::start();
    let from = api.apply(node("a", json!({})));
    let b = api.apply(node("b", json!({})));
    let a2 = api.apply(node("a", json!({"x": "y"})));
    api.delete("v1", "Node", None, "b");
    let mut w = Conn::open(&api).watch(&format!("/api/v1/nodes?watch=true&resourceVersion={from}"));
    assert_eq!(w.change(), format!("ADDED b@{b}"));
    assert_eq!(w.change(), format!("MODIFIED a@{a2}"));
    let deleted = api.current_resource_version();
    assert_eq!(
        w.change(),
        format!("DELETED b@{deleted}"),
        "at the deletion's version"
    );
    let c = api.apply(node("c", json!({})));
    assert_eq!(w.change(), format!("ADDED c@{c}"));
    let c2 = api.apply(node("c", json!({"z": "1"})));
    assert_eq!(w.change(), format!("MODIFIED c@{c2}"));
    assert!(api.delete("v1", "Node", None, "c") && !api.delete("v1", "Node", None, "c"));
    assert_eq!(w.change(), format!("DELETED c@{}", c2 + 1));
    assert_eq!(api.watches_opened("nodes"), 1);
}

#[test]
fn watch_without_resource_version_starts_with_the_current_state() {
    let api = FakeApiServer::start();
    let b = api.apply(node("b", json!({})));
    let a = api.apply(node("a", json!({})));
    let mut w = Conn::open(&api).watch("/api/v1/nodes?watch=1");
    assert_eq!(
        [w.change(), w.change()],
        [format!("ADDED a@{a}"), format!("ADDED b@{b}")]
    );
    let c = api.apply(node("c", json!({})));
    assert_eq!(w.change(), format!("ADDED c@{c}"));
    let streaming = "/api/v1/nodes?watch=true&sendInitialEvents=true&allowWatchBookmarks=true";
    let mut s = Conn::open(&api).watch(&format!("{streaming}&resourceVersionMatch=NotOlderThan"));
    let added = [s.change(), s.change(), s.change()];
    assert_eq!(
        added,
        [
            format!("ADDED a@{a}"),
            format!("ADDED b@{b}"),
            format!("ADDED c@{c}")
        ]
    );
    let end = s.event();
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(
        end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(rv(&end["object"]), c);
    assert_status(
        &get(&api, "/api/v1/nodes?watch=true&sendInitialEvents=true"),
        422,
        "Invalid",
    );
}

#[test]
fn selectors_filter_lists_and_watches() {
    let api = FakeApiServer::start();
    api.apply(node("a", json!({"role": "worker", "zone": "x"})));
    api.apply(node("b", json!({"role": "db", "zone": "y", "gpu": "true"})));
    api.apply(node("c", json!({"role": "worker"})));
    api.apply(node("d", json!({})));
    let cases = [
        ("labelSelector", "role=worker", "a c"),
        ("labelSelector", "role==worker", "a c"),
        ("labelSelector", "role!=worker", "b d"),
        ("labelSelector", "gpu", "b"),
        ("labelSelector", "!gpu", "a c d"),
        ("labelSelector", "zone in (x, y)", "a b"),
        ("labelSelector", "zone notin (x)", "b c d"),
        ("labelSelector", "role=worker,zone", "a"),
        ("labelSelector", "role in (worker,db),!gpu", "a c"),
        ("fieldSelector", "metadata.name=b", "b"),
        ("fieldSelector", "metadata.name!=b", "a c d"),
    ];
    for (param, selector, want) in cases {
        let list = get(&api, &format!("/api/v1/nodes?{param}={}", enc(selector))).json();
        assert_eq!(names(&list).join(" "), want, "{param} {selector}");
    }
    assert_status(
        &get(
            &api,
            &format!("/api/v1/nodes?labelSelector={}", enc("a b c")),
        ),
        400,
        "BadRequest",
    );
    assert_status(
        &get(&api, "/api/v1/nodes?fieldSelector=spec.x%3D1"),
        400,
        "BadRequest",
    );
    for (ns, n) in [("ns2", "s1"), ("ns1", "s2"), ("ns1", "s1")] {
        let meta = json!({"name": n, "namespace": ns, "labels": {"kubernetes.io/service-name": "kubernetes"}});
        api.apply(
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta}),
        );
    }
    let slices = "/apis/discovery.k8s.io/v1";
    assert_eq!(
        names(&get(&api, &format!("{slices}/namespaces/ns1/endpointslices")).json()),
        ["s1", "s2"]
    );
    let all = get(&api, &format!("{slices}/endpointslices")).json();
    assert_eq!(all["kind"], "EndpointSliceList");
    let key = |o: &Value| {
        format!(
            "{}/{}",
            o["metadata"]["namespace"].as_str().unwrap_or(""),
            name(o)
        )
    };
    let keys: Vec<String> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(key)
        .collect();
    assert_eq!(keys, ["ns1/s1", "ns1/s2", "ns2/s1"]);
    let ns2 = get(
        &api,
        &format!("{slices}/endpointslices?fieldSelector=metadata.namespace%3Dns2"),
    )
    .json();
    assert_eq!(names(&ns2), ["s1"]);
    let now = api.current_resource_version();
    let target =
        format!("/api/v1/nodes?watch=true&resourceVersion={now}&labelSelector=role%3Dworker");
    let mut w = Conn::open(&api).watch(&target);
    let d = api.apply(node("d", json!({"role": "worker"})));
    let a = api.apply(node("a", json!({"role": "db"})));
    api.apply(node("b", json!({"role": "db", "zone": "z"})));
    let c = api.apply(node("c", json!({"role": "worker", "zone": "q"})));
    let seen = [w.change(), w.change(), w.change()];
    let want = [
        format!("ADDED d@{d}"),
        format!("DELETED a@{a}"),
        format!("MODIFIED c@{c}"),
    ];
    assert_eq!(seen, want, "a stops matching, b never matches");
}

#[test]
fn bookmarks_carry_the_current_resource_version() {
    let api = FakeApiServer::start();
    api.set_bookmark_interval(Duration::from_millis(100));
    let now = api.apply(node("a", json!({})));
    let target = format!("/api/v1/nodes?watch=true&resourceVersion={now}&allowWatchBookmarks=true");
    let mut w = Conn::open(&api).watch(&target);
    let bookmark = w.event();
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(
        bookmark["object"],
        json!({"kind": "Node", "apiVersion": "v1", "metadata": {"resourceVersion": now.to_string()}})
    );
    let b = api.apply(node("b", json!({})));
    assert_eq!(w.change(), format!("ADDED b@{b}"));
    assert_eq!(rv(&w.event()["object"]), b, "the next bookmark is at b");
    let ccnp =
        "/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies?watch=true&allowWatchBookmarks=true";
    let mut p = Conn::open(&api).watch(&format!("{ccnp}&resourceVersion={b}"));
    let bookmark = p.event();
    assert_eq!(bookmark["object"]["kind"], "CiliumClusterwideNetworkPolicy");
    assert_eq!(bookmark["object"]["apiVersion"], "cilium.io/v2");
}

#[test]
fn timeout_ends_a_watch_cleanly_and_the_connection_is_reused() {
    let api = FakeApiServer::start();
    api.set_bookmark_interval(Duration::from_millis(100));
    let now = api.apply(node("a", json!({})));
    let start = Instant::now();
    let mut w = Conn::open(&api).watch(&format!(
        "/api/v1/nodes?watch=true&resourceVersion={now}&timeoutSeconds=1"
    ));
    assert_eq!(
        w.chunk().expect("a clean end"),
        None,
        "no bookmark unless asked, then the terminating chunk"
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(
        w.get("/api/v1/nodes/a").status,
        200,
        "the connection is still usable"
    );
}

#[test]
fn compaction_expires_old_watches_and_continue_tokens() {
    let api = FakeApiServer::start();
    for n in ["n1", "n2", "n3"] {
        api.apply(node(n, json!({})));
    }
    let old = api.current_resource_version();
    let page = get(&api, "/api/v1/nodes?limit=1").json();
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("a continue token")
        .to_string();
    let mut live =
        Conn::open(&api).watch(&format!("/api/v1/nodes?watch=true&resourceVersion={old}"));
    api.compact();
    let mut w = Conn::open(&api).watch(&format!("/api/v1/nodes?watch=true&resourceVersion={old}"));
    let error = w.event();
    assert_eq!(error["type"], "ERROR");
    let status = &error["object"];
    assert_eq!(
        (status["kind"].as_str(), status["code"].as_u64()),
        (Some("Status"), Some(410))
    );
    assert_eq!(
        (status["status"].as_str(), status["reason"].as_str()),
        (Some("Failure"), Some("Expired"))
    );
    let msg = status["message"].as_str().expect("a message");
    assert!(
        msg.starts_with(&format!("too old resource version: {old} (")),
        "{msg}"
    );
    assert_eq!(w.chunk().expect("the end of the stream"), None);
    let expired = get(
        &api,
        &format!("/api/v1/nodes?limit=1&continue={}", enc(&token)),
    );
    assert_status(&expired, 410, "Expired");
    let exact = get(
        &api,
        &format!("/api/v1/nodes?resourceVersion={old}&resourceVersionMatch=Exact"),
    );
    assert_status(&exact, 410, "Expired");
    let now = api.current_resource_version();
    let mut fresh =
        Conn::open(&api).watch(&format!("/api/v1/nodes?watch=true&resourceVersion={now}"));
    let n4 = api.apply(node("n4", json!({})));
    assert_eq!(fresh.change(), format!("ADDED n4@{n4}"));
    assert_eq!(
        live.change(),
        format!("ADDED n4@{n4}"),
        "open watches are not affected"
    );
    assert_eq!(api.watches_opened("nodes"), 3);
}

#[test]
fn drop_watches_cuts_streams_without_a_terminating_chunk() {
    let api = FakeApiServer::start();
    let now = api.apply(node("a", json!({})));
    let target = format!("/api/v1/nodes?watch=true&resourceVersion={now}");
    let mut w = Conn::open(&api).watch(&target);
    api.drop_watches();
    let end = w.chunk();
    assert!(
        end.is_err(),
        "an abrupt end, not a terminating chunk: {end:?}"
    );
    let mut again = Conn::open(&api).watch(&target);
    let b = api.apply(node("b", json!({})));
    assert_eq!(again.change(), format!("ADDED b@{b}"));
    assert_eq!(api.watches_opened("nodes"), 2);
    assert_eq!(api.watches_opened("endpointslices"), 0);
}

#[test]
fn an_unavailable_server_closes_connections_without_answering() {
    let api = FakeApiServer::start();
    let mut w = Conn::open(&api).watch("/api/v1/nodes?watch=true");
    let mut idle = Conn::open(&api);
    assert_eq!(idle.get("/api/v1/nodes").status, 200);
    let served = api.requests().len();
    api.set_available(false);
    assert!(w.chunk().is_err(), "the open watch is dropped");
    let mut fresh = Conn::open(&api);
    fresh.send("GET", "/api/v1/nodes", "", "");
    assert_eq!(
        fresh.head().map_err(|e| e.kind()),
        Err(io::ErrorKind::UnexpectedEof)
    );
    idle.send("GET", "/api/v1/nodes", "", "");
    assert_eq!(
        idle.head().map_err(|e| e.kind()),
        Err(io::ErrorKind::UnexpectedEof)
    );
    assert_eq!(api.requests().len(), served, "nothing served while down");
    api.set_available(true);
    assert_eq!(get(&api, "/api/v1/nodes").status, 200);
}

#[test]
fn a_required_bearer_token_is_checked_on_every_request() {
    let api = FakeApiServer::start();
    assert_eq!(get(&api, "/version").status, 200);
    api.require_token("s3cret");
    assert_status(&get(&api, "/version"), 401, "Unauthorized");
    assert_status(&get(&api, "/api/v1/nodes?watch=true"), 401, "Unauthorized");
    let mut c = Conn::open(&api);
    c.send(
        "GET",
        "/api/v1/nodes",
        "Authorization: Bearer wrong\r\n",
        "",
    );
    assert_status(&c.response(), 401, "Unauthorized");
    c.send(
        "GET",
        "/api/v1/nodes",
        "Authorization: Bearer s3cret\r\n",
        "",
    );
    assert_eq!(c.response().status, 200);
    let path = std::env::temp_dir().join(format!("hostfw-kubeapi-{}.yaml", std::process::id()));
    api.write_kubeconfig(&path);
    let kubeconfig = std::fs::read_to_string(&path).expect("the kubeconfig");
    let _ = std::fs::remove_file(&path);
    for want in [
        format!("server: {}", api.url()),
        "token: s3cret".into(),
        "current-context: fake".into(),
    ] {
        assert!(kubeconfig.contains(&want), "{want} in {kubeconfig}");
    }
}

#[test]
fn events_are_stored_or_forbidden() {
    let api = FakeApiServer::start();
    let mut c = Conn::open(&api);
    let core = "/api/v1/namespaces/default/events";
    let event = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"}, "reason": "InvalidPolicy"});
    c.send(
        "POST",
        core,
        "Content-Type: application/json\r\n",
        &event.to_string(),
    );
    let created = c.response();
    assert_eq!(created.status, 201);
    let e1 = created.json();
    assert_eq!(
        (e1["reason"].as_str(), e1["metadata"]["namespace"].as_str()),
        (Some("InvalidPolicy"), Some("default"))
    );
    assert!(rv(&e1) > 1 && e1["metadata"]["uid"].is_string());
    c.send("POST", core, "", &event.to_string());
    assert_status(&c.response(), 409, "AlreadyExists");
    let other = json!({"metadata": {"name": "e2", "namespace": "default"}, "note": "n"});
    c.send(
        "POST",
        "/apis/events.k8s.io/v1/namespaces/default/events",
        "",
        &other.to_string(),
    );
    assert_eq!(c.response().json()["apiVersion"], "events.k8s.io/v1");
    let wrong_ns = json!({"metadata": {"name": "e3", "namespace": "kube-system"}});
    c.send("POST", core, "", &wrong_ns.to_string());
    assert_status(&c.response(), 400, "BadRequest");
    assert_status(&c.get(core), 405, "MethodNotAllowed");
    api.forbid_events(true);
    c.send(
        "POST",
        core,
        "",
        &json!({"metadata": {"name": "e4"}}).to_string(),
    );
    assert_status(&c.response(), 403, "Forbidden");
    let stored: Vec<String> = api.events().iter().map(name).collect();
    assert_eq!(stored, ["e1", "e2"]);
}

#[test]
fn start_on_serves_the_callers_listener_until_dropped() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let api = FakeApiServer::start_on(listener);
    assert_eq!(api.addr(), addr);
    assert_eq!(get(&api, "/api").json()["kind"], "APIVersions");
    drop(api);
    assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
}
