//! Reading rtnetlink messages into plain values.

use std::{collections::HashMap, net::IpAddr};

use netlink_packet_route::{
    AddressFamily,
    address::{AddressAttribute, AddressMessage},
    link::{LinkAttribute, LinkFlags, LinkMessage},
};

use super::Link;

/// Index, name and admin state of a link message, or `None` for messages
/// that are not about a device as a whole: `AF_BRIDGE` ones report bridge
/// port changes (an `RTM_DELLINK` of that family means "left the bridge",
/// not "deleted").
pub(super) fn link_info(msg: &LinkMessage) -> Option<(u32, String, bool)> {
    if msg.header.interface_family != AddressFamily::Unspec {
        return None;
    }
    let name = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })?;
    let up = msg.header.flags.contains(LinkFlags::Up);
    Some((msg.header.index, name, up))
}

/// Interface index and address of an address message. `IFA_LOCAL` is the
/// local address when present (on point-to-point links `IFA_ADDRESS` is the
/// peer); otherwise `IFA_ADDRESS`.
pub(super) fn address_info(msg: &AddressMessage) -> Option<(u32, IpAddr)> {
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let address = || {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    };
    Some((msg.header.index, local.or_else(address)?))
}

/// Links with their addresses, sorted by index. Addresses of a link absent
/// from `links` (deleted between the two dumps) are dropped.
pub(super) fn assemble(links: &[LinkMessage], addresses: &[AddressMessage]) -> Vec<Link> {
    let mut by_index: HashMap<u32, Vec<IpAddr>> = HashMap::new();
    for (index, ip) in addresses.iter().filter_map(address_info) {
        by_index.entry(index).or_default().push(ip);
    }
    let mut out: Vec<Link> = links
        .iter()
        .filter_map(link_info)
        .map(|(index, name, up)| Link {
            index,
            name,
            up,
            addresses: by_index.remove(&index).unwrap_or_default(),
        })
        .collect();
    out.sort_by_key(|l| l.index);
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn link_msg(index: u32, name: &str, family: AddressFamily) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.interface_family = family;
        m.header.flags = LinkFlags::Up;
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        m
    }

    pub(crate) fn addr_msg(index: u32, attrs: Vec<AddressAttribute>) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.index = index;
        m.attributes = attrs;
        m
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn bridge_family_link_messages_are_ignored() {
        assert_eq!(
            link_info(&link_msg(3, "eth0", AddressFamily::Unspec)),
            Some((3, "eth0".to_owned(), true))
        );
        assert_eq!(link_info(&link_msg(3, "eth0", AddressFamily::Bridge)), None);
    }

    #[test]
    fn local_wins_over_peer_address() {
        let p2p = addr_msg(
            4,
            vec![
                AddressAttribute::Address(ip("10.0.0.2")),
                AddressAttribute::Local(ip("10.0.0.1")),
            ],
        );
        assert_eq!(address_info(&p2p), Some((4, ip("10.0.0.1"))));
        let v6 = addr_msg(4, vec![AddressAttribute::Address(ip("fd00::1"))]);
        assert_eq!(address_info(&v6), Some((4, ip("fd00::1"))));
        assert_eq!(address_info(&addr_msg(4, vec![])), None);
    }

    #[test]
    fn assemble_groups_addresses_and_sorts() {
        let links = [
            link_msg(5, "b", AddressFamily::Unspec),
            link_msg(1, "lo", AddressFamily::Unspec),
        ];
        let addrs = [
            addr_msg(1, vec![AddressAttribute::Local(ip("127.0.0.1"))]),
            addr_msg(9, vec![AddressAttribute::Local(ip("10.9.9.9"))]),
            addr_msg(1, vec![AddressAttribute::Address(ip("::1"))]),
        ];
        let got = assemble(&links, &addrs);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name, "lo");
        assert_eq!(got[0].addresses, vec![ip("127.0.0.1"), ip("::1")]);
        assert!(got[1].addresses.is_empty());
    }
}
