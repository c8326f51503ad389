//! An in-process fake Kubernetes API server for tests, written from the
//! Kubernetes API conventions (`api-conventions.md`) and the "API concepts"
//! page (efficient detection of changes, resource versions, watch bookmarks,
//! 410 Gone, retrieving large results in chunks), not from one client.
//!
//! Served, GET only (objects change through [`FakeApiServer::apply`] and
//! [`FakeApiServer::delete`], as another controller would change them): core
//! v1 `nodes`, `cilium.io/v2` `ciliumclusterwidenetworkpolicies` (both
//! cluster-scoped) and `discovery.k8s.io/v1` `endpointslices` (namespaced,
//! and across namespaces). Events (core v1 and `events.k8s.io/v1`, one store
//! as in the API server) take POST only. `/version`, `/api` and `/apis`
//! answer discovery. Every error is a `Status` object.
//!
//! Resource versions: one global counter, like etcd's revision, starting at
//! 1; every write (object, event, compaction) increments it. Lists and
//! watches at an older version are served from the change history kept since
//! the last compaction.
//!
//! For client authors: a watch without `resourceVersion` (or with "0")
//! starts with synthetic ADDED events for the current state and no marker
//! of their end (the conventions' legacy "get state and start"); a list's
//! `metadata.resourceVersion` is the version to watch from. A version newer
//! than the current one is not waited for (a list answers 504, a watch
//! starts there). Unknown query parameters are ignored; request bodies need
//! Content-Length.
//!
//! Streaming lists (`sendInitialEvents=true`, which requires
//! `resourceVersionMatch=NotOlderThan` and `allowWatchBookmarks=true`, else
//! 422 Invalid as the API server validates ListOptions) are implemented:
//! synthetic ADDED events for the current state, then a BOOKMARK annotated
//! `k8s.io/initial-events-end: "true"` at that state's version, then changes.

use std::{
    collections::BTreeMap,
    io,
    net::SocketAddr,
    ops::Bound,
    path::Path,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    thread::JoinHandle,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader},
    net::TcpStream,
    sync::{
        Notify,
        mpsc::{self, UnboundedReceiver, UnboundedSender, error::TryRecvError},
    },
    time::{Instant, sleep_until},
};

#[derive(PartialEq)]
enum Scope {
    Cluster,
    Namespaced,
    /// Namespaced events: POST only, kept in [`State::events`].
    Events,
}

/// A served resource type.
struct Res {
    api_version: &'static str,
    kind: &'static str,
    plural: &'static str,
    scope: Scope,
}

const fn res(
    api_version: &'static str,
    kind: &'static str,
    plural: &'static str,
    scope: Scope,
) -> Res {
    Res {
        api_version,
        kind,
        plural,
        scope,
    }
}

const RESOURCES: [Res; 5] = [
    res("v1", "Node", "nodes", Scope::Cluster),
    res(
        "cilium.io/v2",
        "CiliumClusterwideNetworkPolicy",
        "ciliumclusterwidenetworkpolicies",
        Scope::Cluster,
    ),
    res(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        "endpointslices",
        Scope::Namespaced,
    ),
    res("v1", "Event", "events", Scope::Events),
    res("events.k8s.io/v1", "Event", "events", Scope::Events),
];

impl Res {
    /// The path prefix of its group version: `/api/v1` (core) or `/apis/GROUP/VERSION`.
    fn prefix(&self) -> String {
        let apis = if self.api_version.contains('/') {
            "apis"
        } else {
            "api"
        };
        format!("/{apis}/{}", self.api_version)
    }

    fn group(&self) -> &'static str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }

    /// `plural` (core) or `plural.group`, as API server messages name a resource.
    fn qualified(&self) -> String {
        let dot = if self.group().is_empty() { "" } else { "." };
        format!("{}{dot}{}", self.plural, self.group())
    }
}

/// An error answer: HTTP code and `Status` object.
type Fail = (u16, Value);

/// (namespace, name); namespace "" for cluster-scoped objects. Its order is
/// the order of list items (and of continue tokens).
type Key = (String, String);

/// One write, kept for watch replay and for lists at an older version.
struct Change {
    rv: u64,
    res: usize,
    key: Key,
    prev: Option<Value>,
    new: Option<Value>,
}

struct Watcher {
    id: u64,
    res: usize,
    tx: UnboundedSender<Arc<Change>>,
}

#[derive(Default)]
struct State {
    rv: u64,
    /// Versions below this one are compacted away (410 Gone, reason Expired).
    compacted: u64,
    objects: Vec<BTreeMap<Key, Value>>,
    history: Vec<Arc<Change>>,
    watchers: Vec<Watcher>,
    counter: u64,
    seed: u64,
    token: Option<String>,
    unavailable: bool,
    bookmark_interval: Duration,
    events: Vec<Value>,
    forbid_events: bool,
    requests: Vec<String>,
    watches: BTreeMap<String, usize>,
}

impl State {
    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// A random-looking (version 4 format) uid, unique in this server.
    fn uid(&mut self) -> String {
        let n = self.next();
        let h = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ self.seed;
        let (a, b, c) = (h >> 32, (h >> 16) & 0xffff, h & 0xfff);
        format!("{a:08x}-{b:04x}-4{c:03x}-8000-{n:012x}")
    }

    /// Commits a change and hands it to the open watches of its resource.
    fn record(&mut self, res: usize, key: Key, prev: Option<Value>, new: Option<Value>) {
        let c = Arc::new(Change {
            rv: self.rv,
            res,
            key,
            prev,
            new,
        });
        self.history.push(Arc::clone(&c));
        self.watchers
            .retain(|w| w.res != res || w.tx.send(Arc::clone(&c)).is_ok());
    }

    /// The objects of a resource as they were at version `at` (>= compacted).
    fn snapshot(&self, res: usize, at: u64) -> BTreeMap<Key, Value> {
        let mut objs = self.objects[res].clone();
        let later = self.history.iter().rev().take_while(|c| c.rv > at);
        for c in later.filter(|c| c.res == res) {
            match &c.prev {
                Some(p) => objs.insert(c.key.clone(), p.clone()),
                None => objs.remove(&c.key),
            };
        }
        objs
    }
}

struct Shared {
    state: Mutex<State>,
    shutdown: Notify,
    addr: SocketAddr,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The fake API server; it runs on its own thread and tokio runtime until dropped.
pub struct FakeApiServer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl FakeApiServer {
    /// Listens on 127.0.0.1:0 in the current network namespace.
    pub fn start() -> FakeApiServer {
        Self::start_on(std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
    }

    /// Serves on a listener the caller bound (e.g. inside another network namespace).
    pub fn start_on(listener: std::net::TcpListener) -> FakeApiServer {
        let addr = listener.local_addr().expect("listener address");
        listener.set_nonblocking(true).expect("non-blocking");
        let now = SystemTime::now().duration_since(UNIX_EPOCH);
        let state = State {
            rv: 1,
            objects: RESOURCES.iter().map(|_| BTreeMap::new()).collect(),
            seed: now.map_or(1, |d| d.as_nanos() as u64),
            bookmark_interval: Duration::from_secs(1),
            ..State::default()
        };
        let (state, shutdown) = (Mutex::new(state), Notify::new());
        let shared = Arc::new(Shared {
            state,
            shutdown,
            addr,
        });
        let sh = Arc::clone(&shared);
        let serve = move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                loop {
                    tokio::select! {
                        () = sh.shutdown.notified() => break,
                        accepted = listener.accept() => if let Ok((stream, _)) = accepted {
                            tokio::spawn(serve_connection(Arc::clone(&sh), stream));
                        },
                    }
                }
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        };
        let thread = std::thread::Builder::new()
            .name("fake-apiserver".into())
            .spawn(serve);
        let thread = Some(thread.expect("spawn the API server thread"));
        FakeApiServer { shared, thread }
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// "http://IP:PORT"
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// Requires `Authorization: Bearer TOKEN` on every request from now on
    /// (else 401 Unauthorized Status, as the authentication filter answers).
    pub fn require_token(&self, token: &str) {
        self.shared.lock().token = Some(token.to_string());
    }

    /// Writes a kubeconfig pointing at this server: cluster, user and context
    /// "fake", `insecure-skip-tls-verify`, the bearer token if one is required.
    pub fn write_kubeconfig(&self, path: &Path) {
        let user = match &self.shared.lock().token {
            Some(t) => format!("token: {t}"),
            None => "{}".to_string(),
        };
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n    \
             insecure-skip-tls-verify: true\nusers:\n- name: fake\n  user:\n    {user}\ncontexts:\n- \
             name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
             current-context: fake\n",
            self.url()
        );
        let written = std::fs::write(path, yaml);
        written.unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Creates or replaces an object (by apiVersion+kind, metadata.namespace,
    /// metadata.name; a namespaced object without namespace goes to
    /// "default"). Assigns a new global resourceVersion; metadata.uid and
    /// metadata.creationTimestamp are assigned on creation and kept across
    /// updates; the rest (generation included) is stored as given. Watchers
    /// get ADDED or MODIFIED. Returns the new resourceVersion.
    pub fn apply(&self, mut obj: Value) -> u64 {
        let (api_version, kind) = (obj["apiVersion"].as_str(), obj["kind"].as_str());
        let idx = resource_of(api_version.unwrap_or(""), kind.unwrap_or(""));
        let name = obj["metadata"]["name"].as_str().expect("metadata.name");
        let namespaced = RESOURCES[idx].scope == Scope::Namespaced;
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
        let ns = if namespaced { ns } else { "" };
        let key = (ns.to_string(), name.to_string());
        let mut st = self.shared.lock();
        let prev = st.objects[idx].get(&key).cloned();
        let (uid, created) = match &prev {
            Some(p) => (
                p["metadata"]["uid"].clone(),
                p["metadata"]["creationTimestamp"].clone(),
            ),
            None => (st.uid().into(), rfc3339(SystemTime::now()).into()),
        };
        st.rv += 1;
        let meta = obj["metadata"].as_object_mut();
        let meta = meta.expect("metadata is an object");
        if namespaced {
            meta.insert("namespace".into(), key.0.clone().into());
        } else {
            meta.remove("namespace");
        }
        meta.insert("uid".into(), uid);
        meta.insert("creationTimestamp".into(), created);
        meta.insert("resourceVersion".into(), st.rv.to_string().into());
        st.objects[idx].insert(key.clone(), obj.clone());
        st.record(idx, key, prev, Some(obj));
        st.rv
    }

    /// Deletes an object: watchers get DELETED carrying its last state at a
    /// new resourceVersion (the deletion's). Returns whether it existed.
    pub fn delete(&self, api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> bool {
        let idx = resource_of(api_version, kind);
        let namespaced = RESOURCES[idx].scope == Scope::Namespaced;
        let ns = if namespaced {
            ns.unwrap_or("default")
        } else {
            ""
        };
        let key = (ns.to_string(), name.to_string());
        let mut st = self.shared.lock();
        let Some(prev) = st.objects[idx].remove(&key) else {
            return false;
        };
        st.rv += 1;
        st.record(idx, key, Some(prev), None);
        true
    }

    /// Forgets the event history. Like the API server's compactor, which
    /// writes its compaction key (a new revision) and compacts etcd there,
    /// every version from before now becomes too old: a watch from it gets
    /// an ERROR event 410 Expired, a list `continue` token from before gets
    /// 410 Expired. Open watches are not affected.
    pub fn compact(&self) {
        let mut st = self.shared.lock();
        st.rv += 1;
        st.compacted = st.rv;
        st.history.clear();
    }

    /// Closes every open watch stream abruptly (no terminating chunk), as a dropped connection.
    pub fn drop_watches(&self) {
        self.shared.lock().watchers.clear();
    }

    /// false: drops open watches, and every request read from now on is
    /// answered by closing its connection without a response (a dead API
    /// server behind a load balancer); true: serves again.
    pub fn set_available(&self, up: bool) {
        let mut st = self.shared.lock();
        st.unavailable = !up;
        if !up {
            st.watchers.clear();
        }
    }

    /// Interval between BOOKMARK events on watches that asked for them (default 1 s).
    pub fn set_bookmark_interval(&self, d: Duration) {
        self.shared.lock().bookmark_interval = d;
    }

    /// Events POSTed (either API group), in order, as stored (metadata filled in).
    pub fn events(&self) -> Vec<Value> {
        self.shared.lock().events.clone()
    }

    /// Makes event POSTs answer 403 Forbidden (RBAC without events).
    pub fn forbid_events(&self, forbid: bool) {
        self.shared.lock().forbid_events = forbid;
    }

    /// Request lines served so far (not those dropped while unavailable),
    /// e.g. "GET /api/v1/nodes?limit=500".
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().requests.clone()
    }

    /// Watch requests accepted for a resource plural (a 200 stream, including
    /// one that carries only a 410 ERROR event).
    pub fn watches_opened(&self, plural: &str) -> usize {
        self.shared.lock().watches.get(plural).copied().unwrap_or(0)
    }

    pub fn current_resource_version(&self) -> u64 {
        self.shared.lock().rv
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.shared.shutdown.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn resource_of(api_version: &str, kind: &str) -> usize {
    let served =
        |r: &Res| r.scope != Scope::Events && (r.api_version, r.kind) == (api_version, kind);
    let idx = RESOURCES.iter().position(served);
    idx.unwrap_or_else(|| panic!("the fake API server does not serve {api_version} {kind}"))
}

/// RFC 3339 UTC time with seconds, as `metav1.Time` is serialized.
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, s) = ((secs / 86_400) as i64 + 719_468, secs % 86_400);
    // Civil date from days since 0000-03-01 (H. Hinnant's algorithm).
    let (era, doe) = (days.div_euclid(146_097), days.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, min) = (s / 3600, s / 60 % 60);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{:02}Z", s % 60)
}

/// A `Status` failure (conventions: "Response Status Kind"). Every error
/// answer, HTTP or ERROR watch event, is one.
fn status(code: u16, reason: &str, message: impl Into<String>) -> Fail {
    let message = message.into();
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (code, body)
}

fn bad(message: impl Into<String>) -> Fail {
    status(400, "BadRequest", message)
}

/// 422 Invalid, as the API server's ListOptions validation answers.
fn invalid(field: &str, message: &str) -> Fail {
    let msg = format!("ListOptions.meta.k8s.io \"\" is invalid: {field}: Forbidden: {message}");
    status(422, "Invalid", msg)
}

fn not_found(r: &Res, name: &str) -> Fail {
    let msg = format!("{} \"{name}\" not found", r.qualified());
    let (code, mut body) = status(404, "NotFound", msg);
    body["details"] = json!({"name": name, "group": r.group(), "kind": r.plural});
    (code, body)
}

fn too_old(rv: u64, compacted: u64) -> Fail {
    let msg = format!("too old resource version: {rv} ({compacted})");
    status(410, "Expired", msg)
}

const NO_SUCH_PATH: &str = "the server could not find the requested resource";
const NOT_ALLOWED: &str = "the server does not allow this method on the requested resource";
const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a \
    consistent list result. You can start a new list without the continue parameter, or use the \
    continue token in this response to retrieve the remainder of the results. Continuing with the \
    provided token results in an inconsistent list.";

/// A parsed HTTP/1.1 request (header names in lower case).
struct Req {
    method: String,
    target: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    close: bool,
}

impl Req {
    fn q(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }
}

/// `application/x-www-form-urlencoded` decoding of one query component.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let (mut out, mut i) = (Vec::with_capacity(b.len()), 0);
    while i < b.len() {
        let hex = b.get(i + 1..i + 3).map(String::from_utf8_lossy);
        match (b[i], hex.and_then(|h| u8::from_str_radix(&h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 2;
            }
            (b'+', _) => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one request; `Err(None)` when the connection ended, `Err(Some)`
/// when malformed. Bodies need Content-Length (chunked request bodies: 400).
async fn read_request<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Req, Option<String>> {
    let mut line = String::new();
    while line.trim().is_empty() {
        line.clear();
        if r.read_line(&mut line).await.map_err(|_| None)? == 0 {
            return Err(None);
        }
    }
    let parts: Vec<&str> = line.trim_end().split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(Some(format!("bad request {line:?}")));
    };
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).await.map_err(|_| None)? == 0 {
            return Err(None);
        }
        if h.trim_end().is_empty() {
            break;
        }
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| Some(format!("bad header {h:?}")))?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let pairs = query.split('&').filter(|p| !p.is_empty());
    let pairs = pairs.map(|p| p.split_once('=').unwrap_or((p, "")));
    let query = pairs.map(|(k, v)| (decode(k), decode(v))).collect();
    let conn = headers.get("connection").cloned().unwrap_or_default();
    let conn = conn.to_ascii_lowercase();
    let close = conn.contains("close") || (version == "HTTP/1.0" && !conn.contains("keep-alive"));
    if headers.contains_key("transfer-encoding") {
        return Err(Some("chunked request bodies are not supported".into()));
    }
    let len = headers.get("content-length").map_or("0", String::as_str);
    let mut body = vec![0; len.parse().map_err(|_| Some(format!("bad length {len}")))?];
    r.read_exact(&mut body).await.map_err(|_| None)?;
    let (method, target, path) = (method.to_string(), target.to_string(), path.to_string());
    Ok(Req {
        method,
        target,
        path,
        query,
        headers,
        body,
        close,
    })
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        422 => "Unprocessable Entity",
        504 => "Gateway Timeout",
        _ => "Internal Server Error",
    }
}

/// The response head; `Content-Length`, or a chunked body when `len` is None.
fn head(code: u16, len: Option<usize>, close: bool) -> String {
    let framing = len.map_or("Transfer-Encoding: chunked".into(), |n| {
        format!("Content-Length: {n}")
    });
    let conn = if close { "Connection: close\r\n" } else { "" };
    let phrase = reason_phrase(code);
    format!(
        "HTTP/1.1 {code} {phrase}\r\nContent-Type: application/json\r\n\
         Cache-Control: no-cache, private\r\n{framing}\r\n{conn}\r\n"
    )
}

/// HTTP/1.1 persistent connection: requests in sequence, Content-Length
/// answers, until `Connection: close`, an error or an abruptly ended watch.
async fn serve_connection(sh: Arc<Shared>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (r, mut w) = stream.split();
    let mut r = BufReader::new(r);
    loop {
        let (reply, close) = match read_request(&mut r).await {
            Ok(req) => (handle(&sh, &req), req.close),
            Err(Some(msg)) => (
                Some(Reply::Full(bad(msg))).filter(|_| !sh.lock().unavailable),
                true,
            ),
            Err(None) => return,
        };
        let Some(reply) = reply else { return };
        let done = match reply {
            Reply::Full((code, body)) => {
                let body = body.to_string();
                let out = head(code, Some(body.len()), close) + &body;
                w.write_all(out.as_bytes()).await
            }
            Reply::Watch(plan) => watch(&sh, plan, &mut r, &mut w, close).await,
        };
        if done.is_err() || close {
            return;
        }
    }
}

enum Reply {
    Full(Fail),
    Watch(Box<WatchPlan>),
}

/// Answers a request; `None` (close without an answer) while unavailable.
/// The check and a watch's registration are under one lock, so a watch
/// never outlives `set_available(false)`.
fn handle(sh: &Shared, req: &Req) -> Option<Reply> {
    let mut st = sh.lock();
    if st.unavailable {
        return None;
    }
    st.requests.push(format!("{} {}", req.method, req.target));
    let auth = req.headers.get("authorization");
    if let Some(token) = &st.token
        && auth.is_none_or(|a| *a != format!("Bearer {token}"))
    {
        return Some(Reply::Full(status(401, "Unauthorized", "Unauthorized")));
    }
    Some(route(&mut st, sh.addr, req).unwrap_or_else(Reply::Full))
}

fn route(st: &mut State, addr: SocketAddr, req: &Req) -> Result<Reply, Fail> {
    let (get, post) = (req.method == "GET", req.method == "POST");
    if let Some(body) = discovery(&req.path, addr) {
        let reply = if get { (200, body) } else { not_allowed() };
        return Ok(Reply::Full(reply));
    }
    let unknown = || status(404, "NotFound", NO_SUCH_PATH);
    let (idx, ns, name) = parse_path(&req.path).ok_or_else(unknown)?;
    let events = RESOURCES[idx].scope == Scope::Events;
    match (events, ns, name) {
        (true, Some(ns), None) if post => create_event(st, idx, &ns, &req.body),
        (false, ns, Some(name)) if get => {
            let key = (ns.unwrap_or_default(), name);
            let found = st.objects[idx].get(&key).map(|o| (200, o.clone()));
            Ok(Reply::Full(
                found.unwrap_or_else(|| not_found(&RESOURCES[idx], &key.1)),
            ))
        }
        (false, ns, None) if get => {
            let filter = Filter::parse(req, ns)?;
            if req.q("watch").map(parse_bool).transpose()? == Some(true) {
                Ok(Reply::Watch(Box::new(start_watch(st, idx, filter, req)?)))
            } else {
                Ok(Reply::Full((200, list(st, idx, &filter, req)?)))
            }
        }
        _ => Err(not_allowed()),
    }
}

fn not_allowed() -> Fail {
    status(405, "MethodNotAllowed", NOT_ALLOWED)
}

/// `/version`, `/api` and `/apis` (the served groups).
fn discovery(path: &str, addr: SocketAddr) -> Option<Value> {
    let group = |r: &Res| {
        let v = r.api_version.rsplit('/').next();
        let gv = json!({"groupVersion": r.api_version, "version": v});
        json!({"name": r.group(), "versions": [gv], "preferredVersion": gv})
    };
    Some(match path {
        "/version" => json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake",
            "gitTreeState": "clean", "goVersion": "go1.24.2", "compiler": "gc", "platform": "linux/amd64"}),
        "/api" => json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr.to_string()}]}),
        "/apis" => {
            let grouped = RESOURCES.iter().filter(|r| !r.group().is_empty());
            let groups: Vec<Value> = grouped.map(group).collect();
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        }
        _ => return None,
    })
}

/// Resource paths (conventions: "API resources"): `PREFIX/PLURAL[/NAME]` for
/// cluster-scoped resources and for namespaced ones across all namespaces
/// (collection only), `PREFIX/namespaces/NS/PLURAL[/NAME]` for namespaced ones.
fn parse_path(path: &str) -> Option<(usize, Option<String>, Option<String>)> {
    RESOURCES.iter().enumerate().find_map(|(idx, r)| {
        let rest = path.strip_prefix(&r.prefix())?.strip_prefix('/')?;
        let segs: Vec<&str> = rest.split('/').collect();
        let (ns, plural, name) = match segs[..] {
            [p] => (None, p, None),
            [p, n] => (None, p, Some(n)),
            ["namespaces", ns, p] => (Some(ns), p, None),
            ["namespaces", ns, p, n] => (Some(ns), p, Some(n)),
            _ => return None,
        };
        let cluster = r.scope == Scope::Cluster;
        let scoped = if cluster {
            ns.is_none()
        } else {
            ns.is_some() || name.is_none()
        };
        let ok = plural == r.plural && scoped && !segs.contains(&"");
        ok.then(|| (idx, ns.map(str::to_string), name.map(str::to_string)))
    })
}

fn parse_bool(v: &str) -> Result<bool, Fail> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(bad(format!("invalid boolean value {v:?}"))),
    }
}

fn parse_num(what: &str, v: &str) -> Result<u64, Fail> {
    v.parse().map_err(|_| bad(format!("invalid {what}: {v:?}")))
}

#[derive(Clone, Copy)]
enum Op {
    In,
    NotIn,
    Exists,
    NotExists,
}

/// The namespace of the path plus label and field selectors (API concepts:
/// "Label selectors", "Field selectors"); the same filter serves lists and
/// watches.
struct Filter {
    ns: Option<String>,
    labels: Vec<(String, Op, Vec<String>)>,
    /// (field, equal, value); metadata.name and metadata.namespace only.
    fields: Vec<(String, bool, String)>,
}

impl Filter {
    fn parse(req: &Req, ns: Option<String>) -> Result<Filter, Fail> {
        let unparsable = |what: &str, t: &str| bad(format!("unable to parse {what}: {t:?}"));
        let mut labels = Vec::new();
        for t in split_top_level(req.q("labelSelector").unwrap_or("")) {
            labels.push(parse_requirement(t).ok_or_else(|| unparsable("requirement", t))?);
        }
        let mut fields = Vec::new();
        for t in split_top_level(req.q("fieldSelector").unwrap_or("")) {
            let (f, eq, v) = match t.split_once("!=") {
                Some((f, v)) => (f.trim(), false, v),
                None => {
                    let eq = t.split_once("==").or_else(|| t.split_once('='));
                    let (f, v) = eq.ok_or_else(|| unparsable("field selector", t))?;
                    (f.trim(), true, v)
                }
            };
            if f != "metadata.name" && f != "metadata.namespace" {
                return Err(bad(format!("field label not supported: {f}")));
            }
            fields.push((f.to_string(), eq, v.trim().to_string()));
        }
        Ok(Filter { ns, labels, fields })
    }

    fn matches(&self, o: &Value) -> bool {
        let meta = &o["metadata"];
        let name = meta["name"].as_str().unwrap_or("");
        let ns = meta["namespace"].as_str().unwrap_or("");
        let label = |(k, op, vals): &(String, Op, Vec<String>)| {
            let v = meta["labels"][k.as_str()].as_str();
            let listed = v.is_some_and(|v| vals.iter().any(|x| x == v));
            match op {
                Op::In => listed,
                Op::NotIn => !listed,
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
            }
        };
        let field = |(f, eq, want): &(String, bool, String)| {
            let v = if f == "metadata.name" { name } else { ns };
            (v == want) == *eq
        };
        self.ns.as_ref().is_none_or(|want| want == ns)
            && self.labels.iter().all(label)
            && self.fields.iter().all(field)
    }
}

/// Splits a selector at the commas (AND) outside parentheses; "" is no requirement.
fn split_top_level(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    if s.trim().is_empty() { Vec::new() } else { out }
}

/// One label requirement: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`.
fn parse_requirement(t: &str) -> Option<(String, Op, Vec<String>)> {
    let (key, op, values) = if let Some((k, v)) = t.split_once("!=") {
        (k.trim(), Op::NotIn, vec![v.trim()])
    } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
        (k.trim(), Op::In, vec![v.trim()])
    } else if let Some(k) = t.strip_prefix('!') {
        (k.trim(), Op::NotExists, Vec::new())
    } else if let Some((k, rest)) = t.split_once(char::is_whitespace) {
        let rest = rest.trim_start();
        let (op, set) = match rest.strip_prefix("notin") {
            Some(set) => (Op::NotIn, set),
            None => (Op::In, rest.strip_prefix("in")?),
        };
        let set = set.trim().strip_prefix('(')?.strip_suffix(')')?;
        let values: Vec<&str> = set.split(',').map(str::trim).collect();
        if values.contains(&"") {
            return None;
        }
        (k, op, values)
    } else {
        (t, Op::Exists, Vec::new())
    };
    let char_ok = |c: char, extra: &str| c.is_ascii_alphanumeric() || extra.contains(c);
    let valid = |s: &str, extra: &str| s.chars().all(|c| char_ok(c, extra));
    let ok = !key.is_empty() && valid(key, "-_./") && values.iter().all(|v| valid(v, "-_."));
    let values = values.into_iter().map(str::to_string).collect();
    ok.then(|| (key.to_string(), op, values))
}

/// The opaque continue token: hex of `[listRV, namespace, name]` (the last key served).
fn encode_continue(rv: u64, key: &Key) -> String {
    let json = json!([rv, key.0, key.1]).to_string();
    json.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Option<(u64, Key)> {
    let hex = |i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok();
    let bytes: Option<Vec<u8>> = (0..token.len()).step_by(2).map(hex).collect();
    let (rv, ns, name): (u64, String, String) = serde_json::from_slice(&bytes?).ok()?;
    Some((rv, (ns, name)))
}

/// LIST (API concepts: "Semantics for get and list", "Retrieving large
/// results sets in chunks"). `resourceVersion` unset, "" or "0": current
/// state; N with `resourceVersionMatch=Exact`: the state at N (410 Expired
/// if compacted); N otherwise (NotOlderThan, or legacy): current state; N
/// newer than current: 504 "Too large resource version". `limit` pages;
/// every page is the snapshot at the first page's version (in the list's
/// metadata.resourceVersion); `remainingItemCount` without selectors; a
/// token from before a compaction: 410 Expired (with a fresh, inconsistent
/// continue token in the Status metadata, as the API server gives).
fn list(st: &State, idx: usize, filter: &Filter, req: &Req) -> Result<Value, Fail> {
    let r = &RESOURCES[idx];
    let rv = req.q("resourceVersion").unwrap_or("");
    let rvm = req.q("resourceVersionMatch").unwrap_or("");
    let token = req.q("continue").unwrap_or("");
    let limit = req.q("limit").map_or(Ok(0), |l| parse_num("limit", l))?;
    let (rvm_field, exact) = ("resourceVersionMatch", rvm == "Exact");
    if req.q("sendInitialEvents").is_some() {
        let msg = "sendInitialEvents is forbidden for list";
        return Err(invalid("sendInitialEvents", msg));
    }
    if !rvm.is_empty() && (rv.is_empty() || !token.is_empty()) {
        let msg = "resourceVersionMatch is forbidden unless resourceVersion is provided, without continue";
        return Err(invalid(rvm_field, msg));
    }
    if !["", "NotOlderThan", "Exact"].contains(&rvm) || (exact && rv == "0") {
        let msg = format!("{rvm:?} is not allowed with resourceVersion {rv:?}");
        return Err(invalid(rvm_field, &msg));
    }
    let (at, after) = if token.is_empty() {
        let n = if rv.is_empty() {
            Ok(0)
        } else {
            parse_num("version", rv)
        }?;
        if n > st.rv {
            let msg = format!("Too large resource version: {n}, current: {}", st.rv);
            let (code, mut body) = status(504, "Timeout", msg);
            body["details"] =
                json!({"causes": [{"reason": "ResourceVersionTooLarge"}], "retryAfterSeconds": 1});
            return Err((code, body));
        }
        if exact && n < st.compacted {
            return Err(too_old(n, st.compacted));
        }
        (if exact { n } else { st.rv }, None)
    } else {
        if !rv.is_empty() && rv != "0" {
            let msg = "specifying resource version is not allowed when using continue";
            return Err(bad(msg));
        }
        let (at, after) = decode_continue(token).ok_or_else(|| bad("continue key is not valid"))?;
        if at < st.compacted {
            let (code, mut body) = status(410, "Expired", CONTINUE_EXPIRED);
            body["metadata"] = json!({"continue": encode_continue(st.rv, &after)});
            return Err((code, body));
        }
        (at, Some(after))
    };
    let objs = st.snapshot(idx, at);
    let lower = after.as_ref().map_or(Bound::Unbounded, Bound::Excluded);
    let objs = objs.range((lower, Bound::Unbounded));
    let mut items: Vec<(&Key, &Value)> = objs.filter(|(_, o)| filter.matches(o)).collect();
    let mut meta = json!({"resourceVersion": at.to_string()});
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if limit > 0 && items.len() > limit {
        let remaining = items.len() - limit;
        items.truncate(limit);
        if let Some((key, _)) = items.last() {
            meta["continue"] = encode_continue(at, key).into();
        }
        if filter.labels.is_empty() && filter.fields.is_empty() {
            meta["remainingItemCount"] = remaining.into();
        }
    }
    let items: Vec<&Value> = items.into_iter().map(|(_, o)| o).collect();
    let kind = format!("{}List", r.kind);
    Ok(json!({"kind": kind, "apiVersion": r.api_version, "metadata": meta, "items": items}))
}

/// A watch ready to stream: registered (so no write is missed), with the
/// events to send first.
struct WatchPlan {
    id: u64,
    idx: usize,
    rx: UnboundedReceiver<Arc<Change>>,
    filter: Filter,
    first: Vec<Value>,
    /// Ends the stream right after `first` (the 410 ERROR event).
    ended: bool,
    /// Changes at or below this version are not sent (already covered).
    start: u64,
    bookmarks: bool,
    interval: Duration,
    timeout: Duration,
}

impl WatchPlan {
    fn event(&self, c: &Change) -> Option<Value> {
        if c.rv > self.start {
            to_event(c, &self.filter)
        } else {
            None
        }
    }
}

/// A BOOKMARK event (API concepts: "Watch bookmarks"): only kind,
/// apiVersion and metadata.resourceVersion.
fn bookmark(r: &Res, rv: u64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"type": "BOOKMARK", "object": {"kind": r.kind, "apiVersion": r.api_version, "metadata": meta}})
}

/// WATCH (API concepts: "Efficient detection of changes", "Semantics for
/// watch"). `resourceVersion` unset or "0": synthetic ADDED events for the
/// current state, then the changes after it; N: the changes after N
/// (replayed from history, then live), or one ERROR event 410 Expired then
/// the end of the stream if N is compacted; `sendInitialEvents=true`: as
/// unset, then a BOOKMARK with `k8s.io/initial-events-end`;
/// `sendInitialEvents=false`: the changes after max(N, current).
/// `timeoutSeconds` (default 1800, the API server's minimum request
/// timeout) ends the stream cleanly.
fn start_watch(st: &mut State, idx: usize, filter: Filter, req: &Req) -> Result<WatchPlan, Fail> {
    let r = &RESOURCES[idx];
    let rv = req.q("resourceVersion").unwrap_or("");
    let rvm = req.q("resourceVersionMatch").unwrap_or("");
    let bookmarks = parse_bool(req.q("allowWatchBookmarks").unwrap_or(""))?;
    let initial = req.q("sendInitialEvents").map(parse_bool).transpose()?;
    let timeout = req.q("timeoutSeconds").unwrap_or("0");
    let timeout = parse_num("timeoutSeconds", timeout)?;
    let requires = "sendInitialEvents requires setting";
    if initial.is_some() && rvm != "NotOlderThan" {
        let msg = format!("{requires} resourceVersionMatch to NotOlderThan");
        return Err(invalid("resourceVersionMatch", &msg));
    }
    if initial.is_some() && !bookmarks {
        let msg = format!("{requires} allowWatchBookmarks to true");
        return Err(invalid("allowWatchBookmarks", &msg));
    }
    if initial.is_none() && !rvm.is_empty() {
        let msg =
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided";
        return Err(invalid("resourceVersionMatch", msg));
    }
    let given = (!rv.is_empty() && rv != "0").then(|| parse_num("version", rv));
    let given = given.transpose()?;
    let synthetic = initial.unwrap_or(given.is_none());
    let start = match (initial, given) {
        (Some(false), n) => n.unwrap_or(0).max(st.rv),
        (None, Some(n)) => n,
        _ => st.rv,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let mut first = Vec::new();
    let ended = !synthetic && start < st.compacted;
    if synthetic {
        let current = st.objects[idx].values().filter(|o| filter.matches(o));
        first.extend(current.map(|o| json!({"type": "ADDED", "object": o})));
        if initial == Some(true) {
            first.push(bookmark(r, st.rv, true));
        }
    } else if ended {
        first.push(json!({"type": "ERROR", "object": too_old(start, st.compacted).1}));
    }
    let id = st.next();
    if !ended {
        for c in st.history.iter().filter(|c| c.res == idx && c.rv > start) {
            let _ = tx.send(Arc::clone(c));
        }
        st.watchers.push(Watcher { id, res: idx, tx });
    }
    *st.watches.entry(r.plural.to_string()).or_default() += 1;
    let timeout = Duration::from_secs(if timeout == 0 { 1800 } else { timeout });
    let interval = st.bookmark_interval;
    Ok(WatchPlan {
        id,
        idx,
        rx,
        filter,
        first,
        ended,
        start,
        bookmarks,
        interval,
        timeout,
    })
}

/// The watch event a change is for this filter: an object that starts
/// matching is ADDED, one that stops matching is DELETED (API concepts:
/// watch with selectors), a deleted one is DELETED with its last state at
/// the deletion's resourceVersion.
fn to_event(c: &Change, f: &Filter) -> Option<Value> {
    let was = c.prev.as_ref().is_some_and(|o| f.matches(o));
    let (ty, obj) = match (&c.new, c.new.as_ref().is_some_and(|o| f.matches(o))) {
        (Some(n), true) => (if was { "MODIFIED" } else { "ADDED" }, n.clone()),
        (Some(n), false) if was => ("DELETED", n.clone()),
        (None, _) if was => {
            let mut o = c.prev.clone()?;
            o["metadata"]["resourceVersion"] = c.rv.to_string().into();
            ("DELETED", o)
        }
        _ => return None,
    };
    Some(json!({"type": ty, "object": obj}))
}

/// One event in its own chunk, a JSON document ending with "\n".
fn chunk(ev: &Value) -> Vec<u8> {
    let line = format!("{ev}\n");
    format!("{:x}\r\n{line}\r\n", line.len()).into_bytes()
}

/// Removes a watch from the watchers when its stream ends.
struct WatchGuard<'a>(&'a Shared, u64);

impl Drop for WatchGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().watchers.retain(|w| w.id != self.1);
    }
}

/// Streams a watch: `Ok` after a clean end (terminating chunk; the connection
/// stays usable), `Err` when it was dropped or the client went away.
async fn watch<R, W>(
    sh: &Shared,
    mut plan: Box<WatchPlan>,
    r: &mut R,
    w: &mut W,
    close: bool,
) -> io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let _guard = WatchGuard(sh, plan.id);
    let mut out = head(200, None, close).into_bytes();
    out.extend(plan.first.iter().flat_map(chunk));
    if plan.ended {
        out.extend_from_slice(b"0\r\n\r\n");
        return w.write_all(&out).await;
    }
    w.write_all(&out).await?;
    let gone = || io::Error::new(io::ErrorKind::ConnectionAborted, "watch dropped");
    let deadline = Instant::now() + plan.timeout;
    let mut next_bookmark = Instant::now() + plan.interval;
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            c = plan.rx.recv() => {
                let c = c.ok_or_else(gone)?;
                if let Some(ev) = plan.event(&c) {
                    w.write_all(&chunk(&ev)).await?;
                }
            }
            () = sleep_until(deadline) => return w.write_all(b"0\r\n\r\n").await,
            () = sleep_until(next_bookmark), if plan.bookmarks => {
                // Every change up to the version read under the lock is in
                // the channel: those go first, a bookmark never passes one.
                let (rv, interval) = {
                    let st = sh.lock();
                    (st.rv, st.bookmark_interval)
                };
                let (mut events, mut later) = (Vec::new(), None);
                loop {
                    match plan.rx.try_recv() {
                        Ok(c) if c.rv <= rv => events.extend(plan.event(&c)),
                        Ok(c) => {
                            later = plan.event(&c);
                            break;
                        }
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => return Err(gone()),
                    }
                }
                events.push(bookmark(&RESOURCES[plan.idx], rv, false));
                events.extend(later);
                w.write_all(&events.iter().flat_map(chunk).collect::<Vec<u8>>()).await?;
                next_bookmark = Instant::now() + interval;
            }
            n = r.read(&mut buf) => if !matches!(n, Ok(n) if n > 0) {
                return Err(gone());
            },
        }
    }
}

/// POST an event (conventions: "Events"; create semantics): stored as
/// given with apiVersion, kind and metadata (namespace, uid,
/// resourceVersion, creationTimestamp) filled in; 201 with the object; 409
/// AlreadyExists for a taken name; 422 without a name; 403 when forbidden.
fn create_event(st: &mut State, idx: usize, ns: &str, body: &[u8]) -> Result<Reply, Fail> {
    let r = &RESOURCES[idx];
    if st.forbid_events {
        let user = "system:serviceaccount:kube-system:hostfw";
        let (group, what) = (r.group(), r.qualified());
        let msg = format!(
            "{what} is forbidden: User \"{user}\" cannot create resource \"events\" in API group \
             \"{group}\" in the namespace \"{ns}\""
        );
        return Err(status(403, "Forbidden", msg));
    }
    let ev = serde_json::from_slice::<Value>(body);
    let mut ev = ev.map_err(|e| bad(format!("invalid JSON: {e}")))?;
    if !ev.is_object() || !(ev["metadata"].is_object() || ev["metadata"].is_null()) {
        return Err(bad("the body is not an object with object metadata"));
    }
    let other_ns = ev["metadata"]["namespace"].as_str();
    if other_ns.is_some_and(|n| n != ns) {
        let msg =
            "the namespace of the provided object does not match the namespace sent on the request";
        return Err(bad(msg));
    }
    let Some(name) = ev["metadata"]["name"].as_str().map(str::to_string) else {
        let msg = "Event \"\" is invalid: metadata.name: Required value: name is required";
        return Err(status(422, "Invalid", msg));
    };
    let same = |e: &Value| e["metadata"]["namespace"] == ns && e["metadata"]["name"] == *name;
    if st.events.iter().any(same) {
        let msg = format!("{} \"{name}\" already exists", r.qualified());
        return Err(status(409, "AlreadyExists", msg));
    }
    st.rv += 1;
    let (uid, rv) = (st.uid(), st.rv.to_string());
    ev["apiVersion"] = r.api_version.into();
    ev["kind"] = r.kind.into();
    let meta = &mut ev["metadata"];
    meta["namespace"] = ns.into();
    meta["uid"] = uid.into();
    meta["resourceVersion"] = rv.into();
    meta["creationTimestamp"] = rfc3339(SystemTime::now()).into();
    st.events.push(ev.clone());
    Ok(Reply::Full((201, ev)))
}
