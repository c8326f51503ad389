//! Reading and writing one generation's entries in the shared maps.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, Ipv6Addr},
};

use std::os::fd::{AsFd, BorrowedFd};

use aya::{
    Pod,
    maps::{
        Array, HashMap, Map, MapData,
        lpm_trie::{Key, LpmTrie},
    },
};
use hostfw_common::{
    config::{Config, GenMeta},
    names::{
        MAP_CONFIG, MAP_GEN_META, MAP_HOSTS_V4, MAP_HOSTS_V6, MAP_IDENT_V4, MAP_IDENT_V6,
        MAP_POLICY, MAP_POLICY_EXACT,
    },
    policy::{
        IDENT_PREFIX_GEN, IdentKeyV4, IdentKeyV6, POLICY_PREFIX_PORT_ANY, POLICY_PREFIX_PROTO_ANY,
        PolicyKey, exact_prefix_len,
    },
};
use ipnet::{Ipv4Net, Ipv6Net};

use super::{Datapath, DatapathError, batch};
use crate::mapstate::{MapChanges, MapDiff, MapState, PolicyEntry, ident_key_v4, ident_key_v6};

impl Datapath {
    /// The config word.
    pub fn config(&self) -> Result<Config, DatapathError> {
        let a: Array<&MapData, Config> = Array::try_from(self.map_named(MAP_CONFIG)?)
            .map_err(|e| DatapathError::map(MAP_CONFIG, "open", e))?;
        a.get(&0, 0)
            .map_err(|e| DatapathError::map(MAP_CONFIG, "read", e))
    }

    /// Writes the config word: the one write that switches generations.
    pub fn set_config(&mut self, cfg: Config) -> Result<(), DatapathError> {
        let mut a: Array<&mut MapData, Config> =
            Array::try_from(self.map_mut_named(MAP_CONFIG)?)
                .map_err(|e| DatapathError::map(MAP_CONFIG, "open", e))?;
        a.set(0, cfg, 0)
            .map_err(|e| DatapathError::map(MAP_CONFIG, "write", e))
    }

    /// One generation's settings.
    pub fn gen_meta(&self, generation: u32) -> Result<GenMeta, DatapathError> {
        let a: Array<&MapData, GenMeta> = Array::try_from(self.map_named(MAP_GEN_META)?)
            .map_err(|e| DatapathError::map(MAP_GEN_META, "open", e))?;
        a.get(&generation, 0)
            .map_err(|e| DatapathError::map(MAP_GEN_META, "read", e))
    }

    pub(crate) fn set_gen_meta(
        &mut self,
        generation: u32,
        meta: GenMeta,
    ) -> Result<(), DatapathError> {
        let mut a: Array<&mut MapData, GenMeta> =
            Array::try_from(self.map_mut_named(MAP_GEN_META)?)
                .map_err(|e| DatapathError::map(MAP_GEN_META, "open", e))?;
        a.set(generation, meta, 0)
            .map_err(|e| DatapathError::map(MAP_GEN_META, "write", e))?;
        if let Some((revision, _)) = &mut self.slots[slot_index(generation)] {
            *revision = meta.revision;
        }
        Ok(())
    }

    /// Reads every entry of `generation` back from the maps (meta left
    /// default), to diff against. Each table lives in a hash (its longest
    /// entries, see [`PolicyEntry::is_exact`]) and a trie (the rest).
    pub fn read_generation(&self, generation: u32) -> Result<MapState, DatapathError> {
        let mine = |g: u32| g == generation;
        let mut state = MapState::default();
        state.ident_v4 = read_trie(self, MAP_IDENT_V4, |plen, k: &IdentKeyV4| {
            mine(k.generation).then(|| Ipv4Net::new(k.addr.into(), ident_bits(plen)?).ok())?
        })?;
        state
            .ident_v4
            .extend(read_hash(self, MAP_HOSTS_V4, |k: &IdentKeyV4| {
                mine(k.generation).then(|| Ipv4Net::from(Ipv4Addr::from(k.addr)))
            })?);
        state.ident_v6 = read_trie(self, MAP_IDENT_V6, |plen, k: &IdentKeyV6| {
            mine(k.generation).then(|| Ipv6Net::new(k.addr.into(), ident_bits(plen)?).ok())?
        })?;
        state
            .ident_v6
            .extend(read_hash(self, MAP_HOSTS_V6, |k: &IdentKeyV6| {
                mine(k.generation).then(|| Ipv6Net::from(Ipv6Addr::from(k.addr)))
            })?);
        state.policy = read_trie(self, MAP_POLICY, |plen, k: &PolicyKey| {
            mine(k.generation).then(|| entry_of(plen, k))?
        })?;
        state
            .policy
            .extend(read_hash(self, MAP_POLICY_EXACT, |k: &PolicyKey| {
                mine(k.generation).then(|| entry_of(exact_prefix_len(k.proto), k))?
            })?);
        Ok(state)
    }

    /// Writes a diff into `generation`'s entries (removals first).
    pub(crate) fn write_diff(
        &mut self,
        generation: u32,
        diff: &MapDiff,
    ) -> Result<(), DatapathError> {
        let (hosts, nets) = split(&diff.ident_v4, crate::mapstate::is_host_v4);
        write_hash(self, MAP_HOSTS_V4, &hosts, |n| {
            ident_key_v4(generation, n).1
        })?;
        write_trie(self, MAP_IDENT_V4, &nets, |n| {
            let (plen, k) = ident_key_v4(generation, n);
            Key::new(plen, k)
        })?;
        let (hosts, nets) = split(&diff.ident_v6, crate::mapstate::is_host_v6);
        write_hash(self, MAP_HOSTS_V6, &hosts, |n| {
            ident_key_v6(generation, n).1
        })?;
        write_trie(self, MAP_IDENT_V6, &nets, |n| {
            let (plen, k) = ident_key_v6(generation, n);
            Key::new(plen, k)
        })?;
        let (exact, rest) = split(&diff.policy, PolicyEntry::is_exact);
        write_hash(self, MAP_POLICY_EXACT, &exact, |e| e.key(generation))?;
        write_trie(self, MAP_POLICY, &rest, |e| {
            Key::new(e.prefix_len(), e.key(generation))
        })
    }

    /// What `generation` holds: known from this loader's last write while
    /// the generation's revision is still the one written, else read back
    /// from the maps (after a restart, or another loader's write).
    pub(crate) fn slot(&mut self, generation: u32) -> Result<&MapState, DatapathError> {
        let i = slot_index(generation);
        let revision = self.gen_meta(generation)?.revision;
        if !matches!(&self.slots[i], Some((r, _)) if *r == revision) {
            self.slots[i] = Some((revision, self.read_generation(generation)?));
        }
        Ok(&self.slots[i].get_or_insert_default().1)
    }

    /// Makes `generation` hold `new`, writing only the difference. Returns
    /// the number of entries written or removed.
    pub(crate) fn write_state(
        &mut self,
        generation: u32,
        new: MapState,
    ) -> Result<usize, DatapathError> {
        let diff = crate::mapstate::diff(self.slot(generation)?, &new);
        let i = slot_index(generation);
        // Unknown until the write is done: a failed write leaves the slot
        // to be read back next time.
        self.slots[i] = None;
        self.write_diff(generation, &diff)?;
        let revision = self.gen_meta(generation)?.revision;
        self.slots[i] = Some((revision, new));
        Ok(diff.upserts() + diff.removals())
    }
}

pub(super) fn slot_index(generation: u32) -> usize {
    usize::from(generation & 1 == 1)
}

/// Splits changes into those `exact` accepts and the rest.
fn split<E: Copy, V: Copy>(
    changes: &MapChanges<E, V>,
    exact: impl Fn(&E) -> bool,
) -> (MapChanges<E, V>, MapChanges<E, V>) {
    let (mut yes, mut no) = (MapChanges::default(), MapChanges::default());
    for &(e, v) in &changes.upserts {
        if exact(&e) { &mut yes } else { &mut no }
            .upserts
            .push((e, v));
    }
    for &e in &changes.removals {
        if exact(&e) { &mut yes } else { &mut no }.removals.push(e);
    }
    (yes, no)
}

/// The descriptor of map `name` once its typed wrapper `M` accepts it (aya's
/// wrappers compare key and value sizes with the map's), for the batched
/// calls. Only hash maps and tries are written this way.
fn typed_fd<'a, M>(dp: &'a Datapath, name: &'static str) -> Result<BorrowedFd<'a>, DatapathError>
where
    M: TryFrom<&'a Map, Error = aya::maps::MapError>,
{
    let map = dp.map_named(name)?;
    M::try_from(map).map_err(|e| DatapathError::map(name, "open", e))?;
    match map {
        Map::HashMap(d) | Map::LpmTrie(d) => Ok(d.fd().as_fd()),
        _ => Err(DatapathError::Missing {
            kind: "hash map or trie",
            name,
        }),
    }
}

/// The entries of one hash map that `entry` accepts.
fn read_hash<K: Pod, V: Pod, E: Ord>(
    dp: &Datapath,
    name: &'static str,
    entry: impl Fn(&K) -> Option<E>,
) -> Result<BTreeMap<E, V>, DatapathError> {
    let all = batch::lookup_all::<K, V>(typed_fd::<HashMap<&MapData, K, V>>(dp, name)?)
        .map_err(|e| DatapathError::batch(name, "read", e))?;
    Ok(all
        .into_iter()
        .filter_map(|(k, v)| Some((entry(&k)?, v)))
        .collect())
}

/// The entries of one LPM trie that `entry` accepts (it returns `None` for
/// keys of other generations).
fn read_trie<K: Pod, V: Pod, E: Ord>(
    dp: &Datapath,
    name: &'static str,
    entry: impl Fn(u32, &K) -> Option<E>,
) -> Result<BTreeMap<E, V>, DatapathError> {
    let all = batch::lookup_all::<Key<K>, V>(typed_fd::<LpmTrie<&MapData, K, V>>(dp, name)?)
        .map_err(|e| DatapathError::batch(name, "read", e))?;
    Ok(all
        .into_iter()
        .filter_map(|(k, v)| Some((entry(k.prefix_len(), &k.data())?, v)))
        .collect())
}

/// Applies one map's changes in two calls: removals, then upserts.
fn write_batch<K: Pod, V: Pod, E>(
    fd: BorrowedFd<'_>,
    name: &'static str,
    changes: &MapChanges<E, V>,
    key: impl Fn(&E) -> K,
) -> Result<(), DatapathError> {
    let gone: Vec<K> = changes.removals.iter().map(&key).collect();
    batch::delete(fd, &gone).map_err(|e| DatapathError::batch(name, "remove", e))?;
    let keys: Vec<K> = changes.upserts.iter().map(|(e, _)| key(e)).collect();
    let values: Vec<V> = changes.upserts.iter().map(|&(_, v)| v).collect();
    batch::update(fd, &keys, &values).map_err(|e| DatapathError::batch(name, "insert", e))
}

/// Applies one hash map's changes, removals first.
fn write_hash<K: Pod, V: Pod, E>(
    dp: &mut Datapath,
    name: &'static str,
    changes: &MapChanges<E, V>,
    key: impl Fn(&E) -> K,
) -> Result<(), DatapathError> {
    write_batch(
        typed_fd::<HashMap<&MapData, K, V>>(dp, name)?,
        name,
        changes,
        key,
    )
}

/// Applies one trie's changes, removals first.
fn write_trie<K: Pod, V: Pod, E>(
    dp: &mut Datapath,
    name: &'static str,
    changes: &MapChanges<E, V>,
    key: impl Fn(&E) -> Key<K>,
) -> Result<(), DatapathError> {
    write_batch(
        typed_fd::<LpmTrie<&MapData, K, V>>(dp, name)?,
        name,
        changes,
        key,
    )
}

/// The address prefix length of an identity key's prefix length.
fn ident_bits(prefix_len: u32) -> Option<u8> {
    u8::try_from(prefix_len.checked_sub(IDENT_PREFIX_GEN)?).ok()
}

/// The policy entry a stored key stands for.
fn entry_of(prefix_len: u32, key: &PolicyKey) -> Option<PolicyEntry> {
    if prefix_len == POLICY_PREFIX_PROTO_ANY {
        return Some(PolicyEntry::any_proto(key.identity, key.direction));
    }
    let port_prefix = u8::try_from(prefix_len.checked_sub(POLICY_PREFIX_PORT_ANY)?).ok()?;
    (port_prefix <= 16).then(|| {
        PolicyEntry::ports(
            key.identity,
            key.direction,
            key.proto,
            u16::from_be(key.port_be),
            port_prefix,
        )
    })
}
