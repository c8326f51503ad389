//! The watches: CCNPs, Nodes and the `default/kubernetes` EndpointSlices,
//! each a kube-runtime watcher (list, then watch from the list's
//! resourceVersion; on a dropped watch, watch again from the last
//! resourceVersion; on `410 Gone`, list again; after an error, back off).
//! A new [`ClusterView`] is sent only once every watch has listed, and only
//! when it differs from the last one sent. While the API server fails, the
//! stores keep the last data and nothing is sent: enforcement stays as it
//! was.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use k8s_openapi::api::{core::v1::Node, discovery::v1::EndpointSlice};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::DynamicObject,
    runtime::{
        WatchStreamExt as _,
        watcher::{self, Event},
    },
};
use tokio::sync::mpsc;

use super::{
    events::Reporter,
    objects::{self, APISERVER_SLICES},
    view::ClusterView,
};
use crate::control::KubeStatus;

/// The running source: views to enforce, and its health for `status`.
pub struct Source {
    /// A new view each time the cluster's data changes.
    pub views: mpsc::Receiver<ClusterView>,
    /// Health and data, updated by the watches.
    pub status: Arc<Mutex<KubeStatus>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Source {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects (reads the kubeconfig or the pod's service account; no request
/// is made yet) and starts the watches. Fails only on a configuration that
/// cannot work; an unreachable API server is retried for ever.
pub async fn start(cfg: &crate::config::Kubernetes, node: String) -> Result<Source, String> {
    let config = match &cfg.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("[kubernetes] {e}"))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("[kubernetes] kubeconfig {}: {e}", path.display()))?
        }
        None => kube::Config::incluster().map_err(|e| {
            format!("[kubernetes] in_cluster: not in a pod with a service account: {e}")
        })?,
    };
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| format!("[kubernetes] client: {e}"))?;
    let status = Arc::new(Mutex::new(KubeStatus {
        server: server.clone(),
        node: node.clone(),
        state: "connecting".into(),
        ..KubeStatus::default()
    }));
    let (tx, views) = mpsc::channel(4);
    log::info!("kubernetes: watching {server} as node {node}");
    let task = tokio::spawn(run(client, node, tx, status.clone()));
    Ok(Source {
        views,
        status,
        task,
    })
}

/// One watched kind: its objects by namespace/name, and its health.
struct Store<K> {
    what: &'static str,
    items: BTreeMap<String, K>,
    /// Objects of a list in progress; replaces `items` when complete.
    relist: Option<BTreeMap<String, K>>,
    listed: bool,
    restarts: u64,
    error: Option<String>,
}

fn key<K: Resource>(o: &K) -> String {
    format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any())
}

impl<K: Resource + Clone> Store<K> {
    fn new(what: &'static str) -> Self {
        Self {
            what,
            items: BTreeMap::new(),
            relist: None,
            listed: false,
            restarts: 0,
            error: None,
        }
    }

    /// Takes one watcher event; true if the objects changed.
    fn on(&mut self, ev: Result<Event<K>, watcher::Error>) -> bool {
        match ev {
            Ok(Event::Init) => {
                if self.listed || self.error.is_some() {
                    self.restarts += 1;
                }
                self.relist = Some(BTreeMap::new());
                false
            }
            Ok(Event::InitApply(o)) => {
                self.relist.get_or_insert_default().insert(key(&o), o);
                false
            }
            Ok(Event::InitDone) => {
                self.recovered();
                self.listed = true;
                self.items = self.relist.take().unwrap_or_default();
                // Whether anything changed is for the view to tell: the run
                // loop sends a view only when it differs from the last.
                true
            }
            Ok(Event::Apply(o)) => {
                self.recovered();
                self.items.insert(key(&o), o);
                true
            }
            Ok(Event::Delete(o)) => {
                self.recovered();
                self.items.remove(&key(&o)).is_some()
            }
            Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                // Expected after a long disconnection: the history the
                // watch would resume from is compacted. The watcher lists
                // again at once; nothing is wrong with the API server.
                log::info!(
                    "kubernetes: {}: watch history expired (410 Gone): listing again",
                    self.what
                );
                false
            }
            Err(e) => {
                if self.error.is_none() {
                    log::warn!(
                        "kubernetes: {}: {e}; retrying, the last data stays in force",
                        self.what
                    );
                } else {
                    log::debug!("kubernetes: {}: {e}", self.what);
                }
                self.restarts += 1;
                self.error = Some(e.to_string());
                false
            }
        }
    }

    fn recovered(&mut self) {
        if self.error.take().is_some() {
            log::info!("kubernetes: {}: watching again", self.what);
        }
    }
}

/// The three stores and what is derived from them.
struct Cluster {
    node: String,
    nodes: Store<Node>,
    ccnps: Store<DynamicObject>,
    slices: Store<EndpointSlice>,
    /// Validation results by CCNP name, with the resourceVersion checked.
    checked: BTreeMap<String, (Option<String>, Result<String, String>)>,
    stale_since: Option<Instant>,
    node_missing_logged: bool,
}

impl Cluster {
    fn listed(&self) -> bool {
        self.nodes.listed && self.ccnps.listed && self.slices.listed
    }

    fn error(&self) -> Option<String> {
        [&self.nodes.error, &self.ccnps.error, &self.slices.error]
            .into_iter()
            .zip([
                "nodes",
                "ciliumclusterwidenetworkpolicies",
                "endpointslices",
            ])
            .find_map(|(e, what)| e.as_ref().map(|e| format!("{what}: {e}")))
    }

    /// Validates CCNPs not checked at their resourceVersion yet; returns
    /// the newly invalid ones (to report).
    fn check_ccnps(&mut self) -> Vec<(DynamicObject, String)> {
        let mut newly_invalid = Vec::new();
        let names: Vec<String> = self
            .ccnps
            .items
            .values()
            .map(ResourceExt::name_any)
            .collect();
        self.checked.retain(|n, _| names.contains(n));
        for obj in self.ccnps.items.values() {
            let name = obj.name_any();
            let rv = obj.metadata.resource_version.clone();
            if self.checked.get(&name).is_some_and(|(v, _)| *v == rv) {
                continue;
            }
            let result = objects::validate_ccnp(obj);
            if let Err(e) = &result {
                log::error!(
                    "kubernetes: CCNP {name} is invalid and left out (the others apply):\n{e}"
                );
                newly_invalid.push((obj.clone(), e.clone()));
            }
            self.checked.insert(name, (rv, result));
        }
        newly_invalid
    }

    fn view(&mut self) -> ClusterView {
        let mut view = ClusterView::default();
        for n in self.nodes.items.values() {
            let name = n.name_any();
            if name == self.node {
                view.node_labels = Some(objects::node_labels(n));
            }
            view.nodes.insert(name, objects::node_facts(n));
        }
        if view.node_labels.is_none() && !self.node_missing_logged {
            log::warn!(
                "kubernetes: no Node named {:?}: policies select this node by [node] labels only (set [kubernetes] node_name)",
                self.node
            );
            self.node_missing_logged = true;
        }
        for s in self.slices.items.values() {
            view.apiservers.extend(objects::slice_addresses(s));
        }
        for (name, (_, result)) in &self.checked {
            if let Ok(text) = result {
                view.policies.insert(name.clone(), text.clone());
            }
        }
        view
    }

    fn update_status(&mut self, status: &Mutex<KubeStatus>, view: Option<&ClusterView>) {
        let error = self.error();
        match (&error, self.stale_since) {
            (Some(_), None) if self.listed() => self.stale_since = Some(Instant::now()),
            (None, Some(since)) => {
                log::info!(
                    "kubernetes: data current again after {} s",
                    since.elapsed().as_secs()
                );
                self.stale_since = None;
            }
            _ => {}
        }
        let Ok(mut st) = status.lock() else { return };
        st.state = match (&error, view.is_some()) {
            (_, false) => "connecting",
            (Some(_), true) => "stale",
            (None, true) => "synced",
        }
        .into();
        st.data_age_secs = self.stale_since.map_or(0, |s| s.elapsed().as_secs());
        st.last_error = error;
        st.watch_restarts = self.nodes.restarts + self.ccnps.restarts + self.slices.restarts;
        st.invalid_policies = self
            .checked
            .iter()
            .filter_map(|(n, (_, r))| r.as_ref().err().map(|e| (n.clone(), e.clone())))
            .collect();
        if let Some(v) = view {
            st.summary = v.summary();
        }
    }
}

async fn run(
    client: Client,
    node: String,
    tx: mpsc::Sender<ClusterView>,
    status: Arc<Mutex<KubeStatus>>,
) {
    let nodes = watcher(Api::<Node>::all(client.clone()), watcher::Config::default());
    let ccnps = watcher(
        Api::<DynamicObject>::all_with(client.clone(), &objects::ccnp_resource()),
        watcher::Config::default(),
    );
    let slices = watcher(
        Api::<EndpointSlice>::namespaced(client.clone(), "default"),
        watcher::Config::default().labels(APISERVER_SLICES),
    );
    let (mut nodes, mut ccnps, mut slices) = (nodes, ccnps, slices);
    let mut reporter = Reporter::new(client, node.clone());
    let mut cluster = Cluster {
        node,
        nodes: Store::new("nodes"),
        ccnps: Store::new("ciliumclusterwidenetworkpolicies"),
        slices: Store::new("endpointslices (default/kubernetes)"),
        checked: BTreeMap::new(),
        stale_since: None,
        node_missing_logged: false,
    };
    let mut last: Option<ClusterView> = None;
    // A burst of events (a relist, kubectl apply of several objects) makes
    // one view.
    let mut flush_at: Option<tokio::time::Instant> = None;
    let mut status_tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let changed = tokio::select! {
            Some(ev) = nodes.next() => cluster.nodes.on(ev),
            Some(ev) = ccnps.next() => cluster.ccnps.on(ev),
            Some(ev) = slices.next() => cluster.slices.on(ev),
            () = async {
                if let Some(t) = flush_at { tokio::time::sleep_until(t).await }
            }, if flush_at.is_some() => {
                flush_at = None;
                for (obj, errors) in cluster.check_ccnps() {
                    reporter.invalid_policy(&obj, &errors).await;
                }
                let view = cluster.view();
                if last.as_ref() != Some(&view) {
                    log::info!("kubernetes: {}", view.summary());
                    if tx.send(view.clone()).await.is_err() {
                        return;
                    }
                    last = Some(view);
                }
                cluster.update_status(&status, last.as_ref());
                continue;
            }
            _ = status_tick.tick() => {
                cluster.update_status(&status, last.as_ref());
                continue;
            }
        };
        if (changed || last.is_none()) && cluster.listed() && flush_at.is_none() {
            flush_at = Some(tokio::time::Instant::now() + Duration::from_millis(200));
        }
        cluster.update_status(&status, last.as_ref());
    }
}

/// A watcher with kube-runtime's default backoff after errors (800 ms
/// doubling to 30 s, with jitter; reset once a watch works).
fn watcher<K>(
    api: Api<K>,
    config: watcher::Config,
) -> std::pin::Pin<Box<dyn futures::Stream<Item = Result<Event<K>, watcher::Error>> + Send>>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    watcher::watcher(api, config).default_backoff().boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, rv: &str) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "resourceVersion": rv}
        }))
        .expect("node")
    }

    #[test]
    fn a_relist_replaces_the_objects_and_counts_as_a_restart() {
        let mut s: Store<Node> = Store::new("nodes");
        assert!(!s.on(Ok(Event::Init)));
        assert!(!s.on(Ok(Event::InitApply(node("a", "1")))));
        assert!(s.on(Ok(Event::InitDone)), "first list is a change");
        assert!(s.listed && s.restarts == 0);
        assert!(s.on(Ok(Event::Apply(node("b", "2")))));
        // 410 Gone: the watcher lists again; "b" was deleted meanwhile.
        assert!(!s.on(Ok(Event::Init)));
        assert!(!s.on(Ok(Event::InitApply(node("a", "1")))));
        assert!(s.on(Ok(Event::InitDone)), "b went away");
        assert_eq!(s.items.len(), 1);
        assert_eq!(s.restarts, 1);
        // The same list again leaves the same objects (so the same view,
        // which the run loop does not send again).
        let before = s.items.clone();
        s.on(Ok(Event::Init));
        s.on(Ok(Event::InitApply(node("a", "1"))));
        assert!(s.on(Ok(Event::InitDone)));
        assert_eq!(s.items, before);
    }

    #[test]
    fn an_error_keeps_the_objects_until_the_watch_works_again() {
        let mut s: Store<Node> = Store::new("nodes");
        s.on(Ok(Event::Init));
        s.on(Ok(Event::InitApply(node("a", "1"))));
        s.on(Ok(Event::InitDone));
        let err = watcher::Error::NoResourceVersion;
        assert!(!s.on(Err(err)));
        assert_eq!(s.items.len(), 1, "kept");
        assert!(s.error.is_some());
        assert!(s.on(Ok(Event::Delete(node("a", "3")))));
        assert!(s.error.is_none(), "recovered");
        assert_eq!(s.restarts, 1);
    }
}
