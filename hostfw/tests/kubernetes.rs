//! The Kubernetes source end to end: a `hostfw daemon` in a test network
//! namespace watches an in-process API server (tests/common/kubeapi.rs,
//! served inside the same namespace) through a kubeconfig, and real traffic
//! from the peer namespace shows what reached the datapath: CCNPs added,
//! changed and deleted; node labels and node addresses that change what a
//! policy selects and who is `remote-node`; an invalid CCNP left out while
//! the others apply; an outage (also across a daemon restart) that changes
//! nothing; resumed watches and relists after `410 Gone`; cluster changes
//! applied as trials. Needs root.

mod common;

use std::{fs, time::Duration};

use common::{
    Pair,
    daemon::{Daemon, SHORT, wait_until},
    kubeapi::FakeApiServer,
    traffic,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn node(name: &str, role: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"role": role, "kubernetes.io/hostname": name}},
        "spec": {"podCIDRs": ["10.244.7.0/24"]},
        "status": {"addresses": [
            {"type": "InternalIP", "address": ip},
            {"type": "Hostname", "address": name}
        ]}
    })
}

/// A CCNP selecting `role=ROLE` nodes, allowing `entity` to TCP `port`.
fn ccnp(name: &str, role: &str, entity: &str, port: u16) -> Value {
    json!({
        "apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"matchLabels": {"role": role}},
            "ingress": [{
                "fromEntities": [entity],
                "toPorts": [{"ports": [{"port": port.to_string(), "protocol": "TCP"}]}]
            }]
        }
    })
}

fn apiserver_slice(ip: &str) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]
    })
}

/// A cluster of two nodes: this one (node-a, role=db, the test's node
/// address) and node-b at the peer's address; the `db` CCNP lets
/// `remote-node` reach 5432 on db nodes.
struct Cluster {
    pair: Pair,
    api: FakeApiServer,
    daemon: Daemon,
}

impl Cluster {
    fn start(changes: &str) -> Self {
        let pair = Pair::new();
        let listener = pair.node.run(|| {
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind in the node namespace")
        });
        let api = FakeApiServer::start_on(listener);
        api.require_token("node-a-token");
        let node_ip = pair.node_v4.to_string();
        let peer_ip = pair.peer_v4.to_string();
        api.apply(node("node-a", "db", &node_ip));
        api.apply(node("node-b", "web", &peer_ip));
        api.apply(apiserver_slice("10.96.0.1"));
        api.apply(ccnp("db", "db", "remote-node", 5432));
        let daemon = Daemon::new(&pair);
        api.write_kubeconfig(&daemon.dir.join("kubeconfig"));
        fs::write(
            daemon.dir.join("hostfw.toml"),
            format!(
                "mode = \"enforce\"\n[interfaces]\ninclude = [\"hn*\"]\nexclude = []\n\
                 [failsafe]\ninbound = []\noutbound = []\n[trial]\ndefault = \"4s\"\n\
                 [policies]\npaths = [\"policies\"]\n\
                 [kubernetes]\nkubeconfig = \"kubeconfig\"\nnode_name = \"node-a\"\nchanges = \"{changes}\"\n"
            ),
        )
        .expect("config");
        for port in [5432, 7070, 8080] {
            traffic::tcp_server(&pair.node, port);
        }
        let mut c = Self { pair, api, daemon };
        c.daemon.start();
        c.wait_state("synced");
        wait_until("ccnp/db enforced", WAIT, || {
            c.policy_names().contains(&"db@ccnp/db".to_string())
        });
        c
    }

    fn reach(&self, port: u16) -> bool {
        traffic::tcp_ok(&self.pair.peer, self.pair.node_v4, port, SHORT)
    }

    fn kube(&self) -> Value {
        self.daemon.status()["kubernetes"].clone()
    }

    fn wait_state(&self, state: &str) {
        wait_until(&format!("kubernetes state {state}"), WAIT, || {
            self.kube()["state"] == state
        });
    }

    fn wait_reach(&self, port: u16, open: bool, why: &str) {
        let limit = WAIT;
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if self.reach(port) == open {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{why}: port {port} should be {}; status: {}\n--- daemon log ---\n{}",
            if open { "open" } else { "closed" },
            self.daemon.status(),
            self.daemon.log()
        );
    }

    fn policy_names(&self) -> Vec<String> {
        self.daemon.status()["policies"]
            .as_array()
            .expect("policies")
            .iter()
            .map(|p| {
                format!(
                    "{}@{}",
                    p["name"].as_str().unwrap_or(""),
                    p["file"].as_str().unwrap_or("")
                )
            })
            .collect()
    }
}

#[test]
fn cluster_objects_reach_the_datapath_and_follow_changes() {
    let c = Cluster::start("apply");
    let k = c.kube();
    assert_eq!(k["node"], "node-a", "{k}");
    assert!(
        k["server"]
            .as_str()
            .unwrap_or("")
            .starts_with("http://127.0.0.1:"),
        "{k}"
    );
    assert_eq!(
        k["summary"], "1 policy, 2 nodes, 1 API server address",
        "{k}"
    );
    let names = c.policy_names();
    assert!(names.contains(&"db@ccnp/db".to_string()), "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("web@")),
        "the local file's too: {names:?}"
    );
    c.wait_reach(5432, true, "the CCNP lets remote-node (the peer) in");
    assert!(
        c.reach(8080),
        "the local file's policy applies beside the cluster's"
    );
    assert!(!c.reach(7070), "default deny");

    // This node's labels: no longer role=db, the CCNP no longer selects it.
    c.api
        .apply(node("node-a", "web", &c.pair.node_v4.to_string()));
    c.wait_reach(5432, false, "node-a relabelled role=web");
    c.api
        .apply(node("node-a", "db", &c.pair.node_v4.to_string()));
    c.wait_reach(5432, true, "node-a labelled role=db again");

    // The peer's node moves: the peer is world now, not remote-node.
    c.api.apply(node("node-b", "web", "10.99.0.2"));
    c.wait_reach(5432, false, "node-b's address changed");
    c.api
        .apply(node("node-b", "web", &c.pair.peer_v4.to_string()));
    c.wait_reach(5432, true, "node-b back at the peer's address");

    // An invalid CCNP is left out and reported; the others still apply.
    let mut bad = ccnp("bad", "db", "remote-node", 7070);
    bad["spec"]["ingress"][0]["fromEntities"] = json!(["clustr"]);
    c.api.apply(bad);
    c.api.apply(ccnp("more", "db", "remote-node", 7070));
    c.wait_reach(7070, true, "a valid CCNP added beside an invalid one");
    let k = c.kube();
    let invalid = k["invalid_policies"].as_array().expect("list").clone();
    assert_eq!(invalid.len(), 1, "{k}");
    assert_eq!(invalid[0][0], "bad", "{k}");
    assert!(
        invalid[0][1].as_str().unwrap_or("").contains("clustr"),
        "{k}"
    );
    assert!(c.reach(5432), "db still enforced");
    wait_until("an InvalidPolicy Event on ccnp/bad", WAIT, || {
        c.api.events().iter().any(|e| {
            e["reason"] == "InvalidPolicy"
                && e["involvedObject"]["name"] == "bad"
                && e["involvedObject"]["kind"] == "CiliumClusterwideNetworkPolicy"
                && e["message"].as_str().unwrap_or("").contains("clustr")
        })
    });
    assert!(
        c.daemon.log().contains("CCNP bad is invalid"),
        "{}",
        c.daemon.log()
    );
    let text = String::from_utf8_lossy(&c.daemon.cli(&["status"]).stdout).into_owned();
    assert!(
        text.contains("kubernetes: synced") && text.contains("invalid, left out: ccnp/bad"),
        "{text}"
    );

    // The default/kubernetes EndpointSlices make kube-apiserver.
    traffic::tcp_server(&c.pair.node, 6443);
    c.api.apply(ccnp("from-api", "db", "kube-apiserver", 6443));
    std::thread::sleep(Duration::from_secs(1));
    assert!(!c.reach(6443), "the peer is not an API server yet");
    c.api.apply(apiserver_slice(&c.pair.peer_v4.to_string()));
    c.wait_reach(
        6443,
        true,
        "the peer's address in the kubernetes EndpointSlice",
    );

    // Deleted CCNPs go.
    c.api
        .delete("cilium.io/v2", "CiliumClusterwideNetworkPolicy", None, "db");
    c.wait_reach(5432, false, "ccnp/db deleted");
    assert!(c.reach(7070), "ccnp/more stays");
}

#[test]
fn an_outage_changes_nothing_even_across_a_restart_and_watches_resume() {
    let mut c = Cluster::start("apply");
    c.wait_reach(5432, true, "synced");

    // A dropped watch resumes from its resourceVersion, without a new list.
    let lists = |c: &Cluster| {
        c.api
            .requests()
            .iter()
            .filter(|r| {
                r.starts_with("GET /apis/cilium.io/v2/ciliumclusterwidenetworkpolicies")
                    && !r.contains("watch=")
            })
            .count()
    };
    let lists_before = lists(&c);
    let watches_before = c.api.watches_opened("ciliumclusterwidenetworkpolicies");
    c.api.drop_watches();
    wait_until("the CCNP watch reopened", WAIT, || {
        c.api.watches_opened("ciliumclusterwidenetworkpolicies") > watches_before
    });
    assert_eq!(
        lists(&c),
        lists_before,
        "a dropped watch is resumed, not relisted: {:?}",
        c.api.requests()
    );
    let rewatch = c
        .api
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.contains("/ciliumclusterwidenetworkpolicies?") && r.contains("watch="));
    let rewatch = rewatch.expect("a watch request");
    assert!(
        rewatch.contains("resourceVersion=") && !rewatch.contains("resourceVersion=0&"),
        "{rewatch}"
    );
    c.api.apply(ccnp("more", "db", "remote-node", 7070));
    c.wait_reach(7070, true, "a change after the resumed watch");

    // The API server goes away: the policy stays, status says stale.
    c.api.set_available(false);
    c.wait_state("stale");
    assert!(
        c.reach(5432) && c.reach(7070),
        "still enforced during the outage"
    );
    wait_until("data age grows", WAIT, || {
        c.kube()["data_age_secs"].as_u64().unwrap_or(0) >= 2
    });
    let k = c.kube();
    assert!(k["last_error"].is_string(), "{k}");

    // A restart during the outage enforces the cluster data it last had.
    c.daemon.kill();
    c.daemon.start();
    assert_ne!(c.kube()["state"], "synced");
    let names = c.policy_names();
    assert!(
        names.contains(&"db@ccnp/db".to_string()),
        "restored from the state directory: {names:?}"
    );
    assert!(
        c.reach(5432) && c.reach(7070),
        "still enforced after the restart"
    );
    assert!(!c.reach(9999), "default deny still");

    // Changes made meanwhile arrive once the API server is back.
    c.api.delete(
        "cilium.io/v2",
        "CiliumClusterwideNetworkPolicy",
        None,
        "more",
    );
    c.api.set_available(true);
    c.wait_state("synced");
    c.wait_reach(7070, false, "ccnp/more deleted during the outage");
    assert!(c.reach(5432));

    // 410 Gone: history compacted while the watch was down; the watcher
    // lists again and sees a deletion it never got an event for.
    let restarts = c.kube()["watch_restarts"].as_u64().unwrap_or(0);
    let lists_before = lists(&c);
    c.api.set_available(false);
    c.api
        .delete("cilium.io/v2", "CiliumClusterwideNetworkPolicy", None, "db");
    c.api.compact();
    c.api.set_available(true);
    c.wait_reach(
        5432,
        false,
        "ccnp/db deleted and compacted away: seen through a relist",
    );
    assert!(lists(&c) > lists_before, "relisted: {:?}", c.api.requests());
    c.wait_state("synced");
    assert!(
        c.kube()["watch_restarts"].as_u64().unwrap_or(0) > restarts,
        "{}",
        c.kube()
    );
    let log = c.daemon.log();
    assert!(
        log.contains("watch history expired (410 Gone): listing again"),
        "{log}"
    );
    assert!(
        log.contains("retrying, the last data stays in force"),
        "{log}"
    );
    assert!(
        !log.contains("hyper::Error"),
        "library noise in the log:\n{log}"
    );
}

#[test]
fn cluster_changes_as_trials_revert_unless_confirmed() {
    let c = Cluster::start("trial");
    // The first data from the cluster is itself a change: a trial.
    wait_until("the first cluster data as a trial", WAIT, || {
        !c.daemon.status()["trial"].is_null()
    });
    c.daemon.ok(&["confirm"]);
    c.wait_reach(5432, true, "confirmed");

    // A change that is not confirmed reverts by itself, and is not tried
    // again.
    c.api.apply(ccnp("more", "db", "remote-node", 7070));
    c.wait_reach(7070, true, "the change, as a trial");
    assert!(!c.daemon.status()["trial"].is_null());
    c.wait_reach(7070, false, "reverted after [trial] default (4 s)");
    wait_until("status says why the change is not enforced", WAIT, || {
        c.kube()["pending"]
            .as_str()
            .unwrap_or("")
            .contains("trial was reverted")
    });
    assert!(c.daemon.status()["trial"].is_null());
    assert!(c.reach(5432), "the confirmed cluster data stays");

    // The next change is tried, and kept once confirmed.
    c.api.apply(ccnp("more", "db", "remote-node", 8443));
    traffic::tcp_server(&c.pair.node, 8443);
    c.wait_reach(8443, true, "the next change, as a trial");
    c.daemon.ok(&["confirm"]);
    std::thread::sleep(Duration::from_secs(5));
    assert!(c.reach(8443), "confirmed: kept after the trial's deadline");
    assert!(c.kube()["pending"].is_null(), "{}", c.kube());
}
