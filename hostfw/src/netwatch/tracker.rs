//! What the watcher knows (links by index, addresses) and the events a
//! notification or a resync turns into. Pure, so it is unit-tested.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use netlink_packet_route::{RouteNetlinkMessage, address::AddressMessage, link::LinkMessage};

use super::{
    NetEvent,
    parse::{address_info, link_info},
};

/// Known links and addresses.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    links: HashMap<u32, String>,
    addresses: HashSet<(u32, IpAddr)>,
}

/// Events of one batch of notifications; address changes are coalesced
/// into one [`NetEvent::AddressesChanged`] at the end.
#[derive(Debug, Default)]
pub(super) struct Batch {
    events: Vec<NetEvent>,
    addresses_changed: bool,
}

impl Batch {
    /// The events to send, in order.
    pub(super) fn finish(mut self) -> Vec<NetEvent> {
        if self.addresses_changed {
            self.events.push(NetEvent::AddressesChanged);
        }
        self.events
    }
}

fn address_set(addresses: &[AddressMessage]) -> HashSet<(u32, IpAddr)> {
    addresses.iter().filter_map(address_info).collect()
}

fn link_map(links: &[LinkMessage]) -> HashMap<u32, String> {
    links
        .iter()
        .filter_map(link_info)
        .map(|(index, name, _)| (index, name))
        .collect()
}

impl Tracker {
    /// Starts from dumps.
    pub(super) fn seed(links: &[LinkMessage], addresses: &[AddressMessage]) -> Self {
        Self {
            links: link_map(links),
            addresses: address_set(addresses),
        }
    }

    /// Applies one notification.
    pub(super) fn apply(&mut self, msg: &RouteNetlinkMessage, out: &mut Batch) {
        match msg {
            RouteNetlinkMessage::NewLink(m) => {
                if let Some((index, name, _)) = link_info(m) {
                    self.link_seen(index, name, out);
                }
            }
            RouteNetlinkMessage::DelLink(m) => {
                if let Some((index, name, _)) = link_info(m) {
                    self.link_gone(index, name, out);
                }
            }
            RouteNetlinkMessage::NewAddress(m) => {
                if let Some(key) = address_info(m) {
                    out.addresses_changed |= self.addresses.insert(key);
                }
            }
            RouteNetlinkMessage::DelAddress(m) => {
                if let Some(key) = address_info(m) {
                    out.addresses_changed |= self.addresses.remove(&key);
                }
            }
            _ => {}
        }
    }

    /// Replaces the state by fresh dumps (after lost notifications) and
    /// reports the differences.
    pub(super) fn resync(
        &mut self,
        links: &[LinkMessage],
        addresses: &[AddressMessage],
        out: &mut Batch,
    ) {
        let fresh = link_map(links);
        let mut gone: Vec<(u32, String)> = self
            .links
            .iter()
            .filter(|(index, _)| !fresh.contains_key(index))
            .map(|(index, name)| (*index, name.clone()))
            .collect();
        gone.sort_unstable();
        for (index, name) in gone {
            self.link_gone(index, name, out);
        }
        let mut fresh: Vec<(u32, String)> = fresh.into_iter().collect();
        fresh.sort_unstable();
        for (index, name) in fresh {
            self.link_seen(index, name, out);
        }
        let addresses = address_set(addresses);
        out.addresses_changed |= addresses != self.addresses;
        self.addresses = addresses;
    }

    fn link_seen(&mut self, index: u32, name: String, out: &mut Batch) {
        if self.links.get(&index) != Some(&name) {
            self.links.insert(index, name.clone());
            out.events.push(NetEvent::LinkAdded { index, name });
        }
    }

    fn link_gone(&mut self, index: u32, name: String, out: &mut Batch) {
        self.links.remove(&index);
        let before = self.addresses.len();
        self.addresses.retain(|(i, _)| *i != index);
        out.addresses_changed |= self.addresses.len() != before;
        out.events.push(NetEvent::LinkRemoved { index, name });
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_route::{AddressFamily, address::AddressAttribute};

    use super::{
        super::parse::tests::{addr_msg, link_msg},
        *,
    };

    fn new_link(index: u32, name: &str) -> RouteNetlinkMessage {
        RouteNetlinkMessage::NewLink(link_msg(index, name, AddressFamily::Unspec))
    }

    fn addr(index: u32, ip: &str) -> AddressMessage {
        let ip = ip.parse().expect("test address");
        addr_msg(index, vec![AddressAttribute::Local(ip)])
    }

    fn run(t: &mut Tracker, msgs: &[RouteNetlinkMessage]) -> Vec<NetEvent> {
        let mut b = Batch::default();
        for m in msgs {
            t.apply(m, &mut b);
        }
        b.finish()
    }

    fn added(index: u32, name: &str) -> NetEvent {
        NetEvent::LinkAdded {
            index,
            name: name.to_owned(),
        }
    }

    #[test]
    fn link_noise_is_deduplicated_and_renames_reported() {
        let mut t = Tracker::seed(&[link_msg(1, "lo", AddressFamily::Unspec)], &[]);
        let ev = run(
            &mut t,
            &[new_link(1, "lo"), new_link(7, "a0"), new_link(7, "a0")],
        );
        assert_eq!(ev, vec![added(7, "a0")]);
        assert_eq!(run(&mut t, &[new_link(7, "a9")]), vec![added(7, "a9")]);
    }

    #[test]
    fn bridge_port_removal_is_not_a_link_removal() {
        let mut t = Tracker::default();
        run(&mut t, &[new_link(7, "a0")]);
        let port_left = RouteNetlinkMessage::DelLink(link_msg(7, "a0", AddressFamily::Bridge));
        assert!(run(&mut t, &[port_left]).is_empty());
        let deleted = RouteNetlinkMessage::DelLink(link_msg(7, "a0", AddressFamily::Unspec));
        assert_eq!(
            run(&mut t, &[deleted]),
            vec![NetEvent::LinkRemoved {
                index: 7,
                name: "a0".to_owned()
            }]
        );
    }

    #[test]
    fn address_changes_coalesce_and_repeats_are_silent() {
        let mut t = Tracker::seed(&[], &[addr(1, "127.0.0.1")]);
        let msgs = [
            RouteNetlinkMessage::NewAddress(addr(1, "127.0.0.1")),
            RouteNetlinkMessage::NewAddress(addr(2, "10.0.0.1")),
            RouteNetlinkMessage::NewAddress(addr(2, "10.0.0.2")),
        ];
        assert_eq!(run(&mut t, &msgs), vec![NetEvent::AddressesChanged]);
        assert!(run(&mut t, &msgs).is_empty());
        let del = RouteNetlinkMessage::DelAddress(addr(2, "10.0.0.2"));
        assert_eq!(run(&mut t, &[del]), vec![NetEvent::AddressesChanged]);
    }

    #[test]
    fn resync_reports_differences() {
        let links = [
            link_msg(1, "lo", AddressFamily::Unspec),
            link_msg(2, "eth0", AddressFamily::Unspec),
        ];
        let mut t = Tracker::seed(&links, &[addr(2, "10.0.0.1")]);
        let now = [
            link_msg(1, "lo", AddressFamily::Unspec),
            link_msg(3, "eth1", AddressFamily::Unspec),
        ];
        let mut b = Batch::default();
        t.resync(&now, &[addr(3, "10.0.0.3")], &mut b);
        assert_eq!(
            b.finish(),
            vec![
                NetEvent::LinkRemoved {
                    index: 2,
                    name: "eth0".to_owned()
                },
                added(3, "eth1"),
                NetEvent::AddressesChanged,
            ]
        );
        let mut b = Batch::default();
        t.resync(&now, &[addr(3, "10.0.0.3")], &mut b);
        assert!(b.finish().is_empty());
    }
}
