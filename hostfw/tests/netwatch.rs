//! The netlink watcher sees interfaces and addresses come and go within a
//! second. Runs in a fresh network namespace (entered by a dedicated
//! thread); no traffic. Needs root (CI runs as root); does not skip.

mod common;

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use common::{Netns, require_root, sh};
use hostfw::netwatch::{self, Link, NetEvent, Watcher};
use tokio::{
    sync::mpsc::{self, UnboundedReceiver},
    time::timeout_at,
};

/// The daemon's promise: a change is seen within one second.
const DEADLINE: Duration = Duration::from_secs(1);
/// How long to wait for events that must not come.
const QUIET: Duration = Duration::from_millis(300);

/// An event the test waits for.
#[derive(Debug, Clone, Copy)]
enum Want<'a> {
    Added(&'a str),
    Removed(&'a str),
    Addresses,
}

impl Want<'_> {
    fn matches(self, ev: &NetEvent) -> bool {
        match (self, ev) {
            (Want::Added(n), NetEvent::LinkAdded { name, .. })
            | (Want::Removed(n), NetEvent::LinkRemoved { name, .. }) => name == n,
            (Want::Addresses, NetEvent::AddressesChanged) => true,
            _ => false,
        }
    }
}

/// The watcher's events, stamped with their arrival time by a task that
/// runs while the test awaits the `ip` commands.
struct Events {
    rx: UnboundedReceiver<(Instant, NetEvent)>,
}

impl Events {
    fn new(mut events: mpsc::Receiver<NetEvent>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                if tx.send((Instant::now(), ev)).is_err() {
                    return;
                }
            }
        });
        Self { rx }
    }

    /// Waits until each wanted event arrived, within [`DEADLINE`] of `t0`;
    /// returns them in `wanted`'s order with their latency since `t0`.
    async fn expect(
        &mut self,
        step: &str,
        t0: Instant,
        wanted: &[Want<'_>],
    ) -> Vec<(NetEvent, Duration)> {
        let mut found: Vec<Option<(NetEvent, Duration)>> = vec![None; wanted.len()];
        let mut others = Vec::new();
        while found.iter().any(Option::is_none) {
            let got = timeout_at((t0 + DEADLINE).into(), self.rx.recv()).await;
            let (at, ev) = match got {
                Ok(Some(x)) => x,
                Ok(None) => panic!("{step}: the watcher stopped"),
                Err(_) => panic!(
                    "{step}: not all of {wanted:?} within {DEADLINE:?}; got {found:?}, other events {others:?}"
                ),
            };
            let slot = wanted
                .iter()
                .zip(found.iter_mut())
                .find(|(w, f)| f.is_none() && w.matches(&ev));
            match slot {
                Some((_, f)) => *f = Some((ev, at - t0)),
                None => others.push(ev),
            }
        }
        let found: Vec<(NetEvent, Duration)> = found.into_iter().flatten().collect();
        for (ev, latency) in &found {
            println!("{step}: {ev:?} after {latency:?}");
        }
        found
    }

    /// The events arriving within [`QUIET`].
    async fn quiet(&mut self) -> Vec<NetEvent> {
        let end = Instant::now() + QUIET;
        let mut out = Vec::new();
        while let Ok(Some((_, ev))) = timeout_at(end.into(), self.rx.recv()).await {
            out.push(ev);
        }
        out
    }
}

/// Runs `ip -n NS ARGS…` without blocking the runtime (the watcher keeps
/// running meanwhile); returns when it started.
async fn ip(ns: &str, args: &[&str]) -> Instant {
    let mut cmd = vec!["ip".to_owned(), "-n".to_owned(), ns.to_owned()];
    cmd.extend(args.iter().map(|a| (*a).to_owned()));
    let t0 = Instant::now();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        sh(&args);
    })
    .await
    .expect("ip command thread");
    println!("ip {}: command took {:?}", args.join(" "), t0.elapsed());
    t0
}

fn index_of(ev: &NetEvent) -> u32 {
    match ev {
        NetEvent::LinkAdded { index, .. } | NetEvent::LinkRemoved { index, .. } => *index,
        NetEvent::AddressesChanged => panic!("not a link event"),
    }
}

async fn snapshot() -> Vec<Link> {
    netwatch::snapshot().await.expect("netwatch::snapshot")
}

fn is_link_event(ev: &NetEvent) -> bool {
    !matches!(ev, NetEvent::AddressesChanged)
}

async fn scenario(ns: String) {
    let (watcher, rx) = Watcher::start().await.expect("Watcher::start");
    let mut events = Events::new(rx);

    // The snapshot is of the fresh namespace: only loopback addresses.
    let links = snapshot().await;
    assert!(
        links.iter().any(|l| l.name == "lo" && l.up),
        "no lo in {links:?}"
    );
    let all: Vec<&IpAddr> = links.iter().flat_map(|l| &l.addresses).collect();
    assert!(
        all.iter().all(|a| a.is_loopback()),
        "not the test namespace? addresses {all:?}"
    );

    let t0 = ip(
        &ns,
        &["link", "add", "a0", "type", "veth", "peer", "name", "a1"],
    )
    .await;
    let added = events
        .expect("veth", t0, &[Want::Added("a0"), Want::Added("a1")])
        .await;
    let (a0, a1) = (index_of(&added[0].0), index_of(&added[1].0));

    // State changes of known links are not reported as new links.
    ip(&ns, &["link", "set", "a0", "up"]).await;
    let noise = events.quiet().await;
    assert!(
        !noise.iter().any(is_link_event),
        "link up reported as {noise:?}"
    );

    let t0 = ip(&ns, &["addr", "add", "10.210.0.1/24", "dev", "a0"]).await;
    events.expect("address", t0, &[Want::Addresses]).await;
    let links = snapshot().await;
    let link = links
        .iter()
        .find(|l| l.index == a0)
        .expect("a0 in snapshot");
    let want: IpAddr = "10.210.0.1".parse().expect("address");
    assert!(
        link.name == "a0" && link.up && link.addresses.contains(&want),
        "snapshot: {link:?}"
    );

    // Joining and leaving a bridge: AF_BRIDGE RTM_NEWLINK/RTM_DELLINK
    // notifications for the port, which must not read as removal.
    let t0 = ip(&ns, &["link", "add", "br0", "type", "bridge"]).await;
    events.expect("bridge", t0, &[Want::Added("br0")]).await;
    ip(&ns, &["link", "set", "a1", "master", "br0"]).await;
    ip(&ns, &["link", "set", "a1", "nomaster"]).await;
    let noise = events.quiet().await;
    assert!(
        !noise.iter().any(is_link_event),
        "bridge port changes reported as {noise:?}"
    );

    let t0 = ip(&ns, &["link", "set", "a1", "name", "a1x"]).await;
    let renamed = events.expect("rename", t0, &[Want::Added("a1x")]).await;
    assert_eq!(index_of(&renamed[0].0), a1, "rename kept the index");

    // Deleting one end deletes the pair, and a0's address with it.
    let t0 = ip(&ns, &["link", "del", "a0"]).await;
    let removed = events
        .expect(
            "delete",
            t0,
            &[Want::Removed("a0"), Want::Removed("a1x"), Want::Addresses],
        )
        .await;
    assert_eq!((index_of(&removed[0].0), index_of(&removed[1].0)), (a0, a1));
    let links = snapshot().await;
    assert!(
        !links.iter().any(|l| l.index == a0 || l.index == a1),
        "deleted links still in {links:?}"
    );

    // Dropping the watcher ends the event stream.
    drop(watcher);
    let end = tokio::time::timeout(DEADLINE, async {
        while events.rx.recv().await.is_some() {}
    })
    .await;
    assert!(
        end.is_ok(),
        "events still flowing after the watcher was dropped"
    );
}

#[test]
fn watcher_sees_links_and_addresses_within_a_second() {
    require_root();
    let ns = Netns::new(format!("hfwnw{}", std::process::id()));
    let name = ns.name.clone();
    ns.run(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(scenario(name));
    });
}
