//! Prefix arithmetic for lowering: address sets, cutting cluster
//! addresses out of CIDR peers, overlap.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::ruleset::Cidr;

/// The /32 or /128 of an address.
pub(crate) fn host_net(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

/// Whether two prefixes share an address (prefixes either nest or are
/// disjoint).
pub(crate) fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// `net` without `except` and without the prefixes of `cut` that overlap
/// it; `None` when nothing is left.
pub(crate) fn carve(net: IpNet, except: &[IpNet], cut: &[IpNet]) -> Option<Cidr> {
    let net = net.trunc();
    if except
        .iter()
        .chain(cut)
        .any(|e| e.contains(&net.network()) && e.prefix_len() <= net.prefix_len())
    {
        return None;
    }
    let mut excepts: Vec<IpNet> = except
        .iter()
        .chain(cut)
        .map(IpNet::trunc)
        .filter(|e| net.contains(&e.network()) && e.prefix_len() > net.prefix_len())
        .collect();
    excepts.sort();
    excepts.dedup();
    // Drop an except inside another one.
    let all = excepts.clone();
    excepts.retain(|e| {
        !all.iter()
            .any(|o| o != e && o.prefix_len() < e.prefix_len() && o.contains(&e.network()))
    });
    Some(Cidr {
        net,
        except: excepts,
    })
}

/// Sorts and removes duplicates of a list of CIDRs.
pub(crate) fn dedup(mut cidrs: Vec<Cidr>) -> Vec<Cidr> {
    cidrs.sort();
    cidrs.dedup();
    cidrs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().expect("prefix")
    }

    #[test]
    fn carve_cuts_inside_and_drops_covered() {
        let c = carve(
            n("10.0.0.0/8"),
            &[],
            &[n("10.244.0.0/16"), n("10.0.0.1/32"), n("192.168.0.1/32")],
        )
        .expect("something left");
        assert_eq!(c.net, n("10.0.0.0/8"));
        assert_eq!(c.except, vec![n("10.0.0.1/32"), n("10.244.0.0/16")]);
        assert_eq!(carve(n("10.244.1.0/24"), &[], &[n("10.244.0.0/16")]), None);
        assert_eq!(carve(n("10.0.0.0/8"), &[n("10.0.0.0/8")], &[]), None);
        let c = carve(n("10.0.0.0/8"), &[n("10.1.0.0/16")], &[n("10.1.2.3/32")]).expect("left");
        assert_eq!(c.except, vec![n("10.1.0.0/16")]);
        // Other family: nothing to cut.
        let c = carve(n("2001:db8::/32"), &[], &[n("10.0.0.1/32")]).expect("left");
        assert!(c.except.is_empty());
        assert!(overlaps(&n("10.0.0.0/8"), &n("10.1.0.0/16")));
        assert!(!overlaps(&n("10.0.0.0/8"), &n("11.0.0.0/8")));
    }
}
