//! Identities: the classes of remote addresses that the selectors tell
//! apart.
//!
//! Let P be every prefix that some selector names, as a net or as an
//! except. The longest prefix of P that contains an address decides which
//! selectors match it: a selector's CIDR matches the address exactly when
//! its net contains that prefix and none of its excepts does (prefixes that
//! contain one address form a chain). So each prefix of P gets the label
//! "selectors matching addresses whose longest prefix in P is this one",
//! labels are numbered, and the identity tries map every prefix of P to its
//! label's number. Prefixes whose label is that of their nearest ancestor in
//! P (or empty, without one) are left out: the trie gives the same answer
//! without them.

use std::collections::BTreeMap;

// A fast non-cryptographic hash: the keys are the policy's own prefixes
// and selectors, and hashing dominated the compile with SipHash.
use foldhash::{HashMap, HashSet};

use hostfw_common::policy::{IDENTITY_ANY, IDENTITY_NONE};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::ruleset::Cidr;

/// Index of a selector (a distinct list of CIDRs).
pub(crate) type SelectorId = u32;

/// The identity tries and what every identity stands for.
#[derive(Debug, Default)]
pub(crate) struct Identities {
    pub ident_v4: BTreeMap<Ipv4Net, u32>,
    pub ident_v6: BTreeMap<Ipv6Net, u32>,
    /// `labels[i - 1]`: the selectors (sorted) that identity `i` matches.
    pub labels: Vec<Vec<SelectorId>>,
}

/// More identities than the key can number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooManyIdentities;

/// A prefix of P as bits: (is IPv6, length, address bits right-aligned).
type Bits = (bool, u8, u128);

#[derive(Debug)]
struct Prefix {
    net: IpNet,
    /// CIDRs (global indexes) whose net is this prefix.
    nets: Vec<u32>,
    /// CIDRs that have this prefix as an except.
    excepts: Vec<u32>,
    identity: u32,
}

fn bits_of(net: &IpNet) -> Bits {
    match net {
        IpNet::V4(n) => (false, n.prefix_len(), u128::from(u32::from(n.network()))),
        IpNet::V6(n) => (true, n.prefix_len(), u128::from(n.network())),
    }
}

/// The first `len` of `width` bits of `bits`.
fn truncate(bits: u128, width: u8, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let mask = (u128::MAX << (128 - u32::from(len))) >> (128 - u32::from(width));
        bits & mask
    }
}

/// The identity tries of the policy in force: [`assign`] keeps their
/// numbers where it can, so that a small policy change rewrites few entries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Previous<'a> {
    pub ident_v4: &'a BTreeMap<Ipv4Net, u32>,
    pub ident_v6: &'a BTreeMap<Ipv6Net, u32>,
}

impl Previous<'_> {
    fn identity_of(&self, net: &IpNet) -> Option<u32> {
        match net {
            IpNet::V4(n) => self.ident_v4.get(n),
            IpNet::V6(n) => self.ident_v6.get(n),
        }
        .copied()
        .filter(|&id| id != IDENTITY_NONE && id != IDENTITY_ANY)
    }
}

/// Computes the identities of `selectors`. Every net and except must have
/// its host bits cleared and every except must lie inside its net.
///
/// Identities are numbered in address order, except that a class whose
/// prefix had a number in `previous` keeps it (the first such prefix, in
/// address order, decides); new classes take the smallest free numbers.
pub(crate) fn assign(
    selectors: &[Vec<Cidr>],
    previous: Option<Previous<'_>>,
) -> Result<Identities, TooManyIdentities> {
    let mut cidr_selector: Vec<SelectorId> = Vec::new();
    let mut index: HashMap<Bits, usize> = HashMap::default();
    let mut prefixes: Vec<Prefix> = Vec::new();
    let mut slot = |net: &IpNet, prefixes: &mut Vec<Prefix>| -> usize {
        *index.entry(bits_of(net)).or_insert_with(|| {
            prefixes.push(Prefix {
                net: *net,
                nets: Vec::new(),
                excepts: Vec::new(),
                identity: IDENTITY_NONE,
            });
            prefixes.len() - 1
        })
    };
    for (sel, cidrs) in (0..).zip(selectors) {
        for cidr in cidrs {
            let Ok(cidr_id) = u32::try_from(cidr_selector.len()) else {
                return Err(TooManyIdentities);
            };
            cidr_selector.push(sel);
            let i = slot(&cidr.net, &mut prefixes);
            prefixes[i].nets.push(cidr_id);
            for e in &cidr.except {
                let i = slot(e, &mut prefixes);
                prefixes[i].excepts.push(cidr_id);
            }
        }
    }
    // The distinct prefix lengths of each family, ascending: the only
    // lengths at which an ancestor can be found.
    let mut lengths: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for &(v6, len, _) in index.keys() {
        lengths[usize::from(v6)].push(len);
    }
    for l in &mut lengths {
        l.sort_unstable();
        l.dedup();
    }
    // Ancestors before descendants: sorted by family, address, length.
    let mut order: Vec<(Bits, usize)> = index.iter().map(|(&b, &i)| (b, i)).collect();
    order.sort_unstable_by_key(|&((v6, len, bits), _)| (v6, bits, len));

    let mut out = Identities::default();
    let mut interned: HashMap<Vec<SelectorId>, u32> = HashMap::default();
    let mut nets: Vec<u32> = Vec::new();
    let mut excepts: Vec<u32> = Vec::new();
    let mut label: Vec<SelectorId> = Vec::new();
    for &((v6, len, bits), i) in &order {
        let width = if v6 { 128 } else { 32 };
        nets.clear();
        excepts.clear();
        let mut parent = IDENTITY_NONE;
        for &l in lengths[usize::from(v6)].iter().take_while(|&&l| l <= len) {
            let Some(&a) = index.get(&(v6, l, truncate(bits, width, l))) else {
                continue;
            };
            let anc = &prefixes[a];
            nets.extend_from_slice(&anc.nets);
            excepts.extend_from_slice(&anc.excepts);
            if l < len {
                parent = anc.identity;
            }
        }
        excepts.sort_unstable();
        label.clear();
        label.extend(
            nets.iter()
                .filter(|c| excepts.binary_search(c).is_err())
                .filter_map(|&c| cidr_selector.get(c as usize).copied()),
        );
        label.sort_unstable();
        label.dedup();
        let identity = if label.is_empty() {
            IDENTITY_NONE
        } else if let Some(&id) = interned.get(&label) {
            id
        } else {
            let id = u32::try_from(interned.len() + 1).map_err(|_| TooManyIdentities)?;
            if id == IDENTITY_ANY {
                return Err(TooManyIdentities);
            }
            interned.insert(label.clone(), id);
            id
        };
        prefixes[i].identity = identity;
        if identity == parent {
            continue;
        }
        match prefixes[i].net {
            IpNet::V4(n) => {
                out.ident_v4.insert(n, identity);
            }
            IpNet::V6(n) => {
                out.ident_v6.insert(n, identity);
            }
        }
    }
    let Some(previous) = previous else {
        out.labels = vec![Vec::new(); interned.len()];
        for (label, id) in interned {
            out.labels[id as usize - 1] = label;
        }
        return Ok(out);
    };
    // Renumber: identities so far are provisional (first seen, first
    // numbered); each takes the previous number of its first prefix that
    // had one (in the address order above) and that no other identity took.
    let mut number: Vec<u32> = vec![IDENTITY_NONE; interned.len() + 1];
    let mut taken: HashSet<u32> = HashSet::default();
    for p in order.iter().map(|&(_, i)| &prefixes[i]) {
        let Some(slot) = number.get_mut(p.identity as usize) else {
            continue;
        };
        if p.identity == IDENTITY_NONE || *slot != IDENTITY_NONE {
            continue;
        }
        if let Some(old) = previous.identity_of(&p.net)
            && taken.insert(old)
        {
            *slot = old;
        }
    }
    let mut free = (1..IDENTITY_ANY).filter(|id| !taken.contains(id));
    for slot in number.iter_mut().skip(1) {
        if *slot == IDENTITY_NONE {
            *slot = free.next().ok_or(TooManyIdentities)?;
        }
    }
    let renumber = |id: &mut u32| *id = number[*id as usize];
    out.ident_v4.values_mut().for_each(renumber);
    out.ident_v6.values_mut().for_each(renumber);
    let largest = number.iter().copied().max().unwrap_or(0);
    out.labels = vec![Vec::new(); largest as usize];
    for (label, id) in interned {
        out.labels[number[id as usize] as usize - 1] = label;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse::<IpNet>().expect("valid net").trunc()
    }

    fn cidr(n: &str, except: &[&str]) -> Cidr {
        Cidr {
            net: net(n),
            except: except.iter().map(|e| net(e)).collect(),
        }
    }

    /// Identity of `addr` by longest prefix match, as the kernel does.
    fn resolve(ids: &Identities, addr: IpAddr) -> u32 {
        match addr {
            IpAddr::V4(a) => (0..=32)
                .rev()
                .find_map(|l| ids.ident_v4.get(&Ipv4Net::new(a, l).ok()?.trunc()).copied()),
            IpAddr::V6(a) => (0..=128)
                .rev()
                .find_map(|l| ids.ident_v6.get(&Ipv6Net::new(a, l).ok()?.trunc()).copied()),
        }
        .unwrap_or(IDENTITY_NONE)
    }

    fn label(ids: &Identities, id: u32) -> Vec<SelectorId> {
        if id == IDENTITY_NONE {
            return Vec::new();
        }
        ids.labels[id as usize - 1].clone()
    }

    /// The selectors that match `addr`, directly from their definition.
    fn matching(selectors: &[Vec<Cidr>], addr: IpAddr) -> Vec<SelectorId> {
        (0..)
            .zip(selectors)
            .filter(|(_, cidrs)| {
                cidrs
                    .iter()
                    .any(|c| c.net.contains(&addr) && !c.except.iter().any(|e| e.contains(&addr)))
            })
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn overlapping_prefixes_and_excepts() {
        let selectors = vec![
            // 0: 10/8 except 10.1/16
            vec![cidr("10.0.0.0/8", &["10.1.0.0/16"])],
            // 1: 10.1/16 except 10.1.2/24, plus a v6 net
            vec![
                cidr("10.1.0.0/16", &["10.1.2.0/24"]),
                cidr("2001:db8::/32", &[]),
            ],
            // 2: everything v4 except 10.1.2.3
            vec![cidr("0.0.0.0/0", &["10.1.2.3/32"])],
            // 3: 10.1.2.0/24 twice with different excepts: union of both
            vec![
                cidr("10.1.2.0/24", &["10.1.2.0/25"]),
                cidr("10.1.2.0/24", &["10.1.2.128/25"]),
            ],
            // 4: an except equal to its net matches nothing
            vec![cidr("192.168.0.0/16", &["192.168.0.0/16"])],
            // 5: v6 with nested excepts
            vec![
                cidr("2001:db8::/32", &["2001:db8:1::/48"]),
                cidr("2001:db8:1:1::/64", &[]),
            ],
        ];
        let ids = assign(&selectors, None).expect("assigns");
        let addrs = [
            "10.0.0.1",
            "10.1.0.1",
            "10.1.2.3",
            "10.1.2.4",
            "10.1.2.200",
            "11.0.0.1",
            "192.168.1.1",
            "0.0.0.0",
            "255.255.255.255",
            "10.255.255.255",
            "2001:db8::1",
            "2001:db8:1::1",
            "2001:db8:1:1::1",
            "2001:db9::1",
            "::",
        ];
        for a in addrs {
            let addr: IpAddr = a.parse().expect("valid address");
            let id = resolve(&ids, addr);
            assert_eq!(label(&ids, id), matching(&selectors, addr), "{a} -> {id}");
        }
        // 10.1.2.3: selectors 1 (no: excepted), 2 (no: excepted), 3 (yes).
        let id = resolve(&ids, "10.1.2.3".parse().expect("valid"));
        assert_eq!(label(&ids, id), vec![3]);
        // 192.168.1.1 is only in selector 2; 192.168.0.0/16 has the same
        // label as 0.0.0.0/0, so it is not inserted.
        assert!(
            !ids.ident_v4
                .contains_key(&"192.168.0.0/16".parse().expect("valid"))
        );
        // 2001:db9::1 matches nothing: no v6 entry covers it.
        assert_eq!(
            resolve(&ids, "2001:db9::1".parse().expect("valid")),
            IDENTITY_NONE
        );
        // 2001:db8:1::/48 is excepted from selector 5 but selector 1 still
        // covers it.
        let id = resolve(&ids, "2001:db8:1::1".parse().expect("valid"));
        assert_eq!(label(&ids, id), vec![1]);
    }

    #[test]
    fn empty_label_is_inserted_below_a_matching_prefix() {
        let selectors = vec![vec![cidr("10.0.0.0/8", &["10.1.0.0/16"])]];
        let ids = assign(&selectors, None).expect("assigns");
        assert_eq!(
            ids.ident_v4.get(&"10.1.0.0/16".parse().expect("valid")),
            Some(&IDENTITY_NONE)
        );
        assert_eq!(
            ids.ident_v4.get(&"10.0.0.0/8".parse().expect("valid")),
            Some(&1)
        );
        assert_eq!(ids.ident_v4.len(), 2);
        // Nothing above to fall through to: an empty label needs no entry.
        let selectors = vec![vec![cidr("10.0.0.0/8", &["10.0.0.0/8"])]];
        let ids = assign(&selectors, None).expect("assigns");
        assert!(ids.ident_v4.is_empty());
        assert!(ids.labels.is_empty());
    }

    #[test]
    fn identities_are_shared_and_deterministic() {
        let selectors = vec![
            vec![cidr("10.0.0.1/32", &[]), cidr("fd00::1/128", &[])],
            vec![cidr("10.0.0.2/32", &[])],
        ];
        let ids = assign(&selectors, None).expect("assigns");
        assert_eq!(ids.labels, vec![vec![0], vec![1]]);
        assert_eq!(
            ids.ident_v4.get(&"10.0.0.1/32".parse().expect("valid")),
            Some(&1)
        );
        assert_eq!(
            ids.ident_v6.get(&"fd00::1/128".parse().expect("valid")),
            Some(&1)
        );
        assert_eq!(
            ids.ident_v4.get(&"10.0.0.2/32".parse().expect("valid")),
            Some(&2)
        );
        let again = assign(&selectors, None).expect("assigns");
        assert_eq!(again.ident_v4, ids.ident_v4);
        assert_eq!(again.labels, ids.labels);
    }

    #[test]
    fn truncate_bits() {
        assert_eq!(truncate(0xffff_ffff, 32, 0), 0);
        assert_eq!(truncate(0xffff_ffff, 32, 1), 0x8000_0000);
        assert_eq!(truncate(0xffff_ffff, 32, 32), 0xffff_ffff);
        assert_eq!(truncate(u128::MAX, 128, 128), u128::MAX);
        assert_eq!(truncate(u128::MAX, 128, 1), 1 << 127);
    }
}
