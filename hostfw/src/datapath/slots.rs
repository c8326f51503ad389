//! Reading and writing one generation's entries in the shared maps.

use std::collections::BTreeMap;

use aya::{
    Pod,
    maps::{
        Array, MapData,
        lpm_trie::{Key, LpmTrie},
    },
};
use hostfw_common::{
    config::{Config, GenMeta},
    names::{MAP_CONFIG, MAP_GEN_META, MAP_IDENT_V4, MAP_IDENT_V6, MAP_POLICY},
    policy::{
        IDENT_PREFIX_GEN, IdentKeyV4, IdentKeyV6, POLICY_PREFIX_PORT_ANY, POLICY_PREFIX_PROTO_ANY,
        PolicyKey,
    },
};
use ipnet::{Ipv4Net, Ipv6Net};

use super::{Datapath, DatapathError};
use crate::mapstate::{MapChanges, MapDiff, MapState, PolicyEntry, ident_key_v4, ident_key_v6};

fn map_mut<'a>(
    dp: &'a mut Datapath,
    name: &'static str,
) -> Result<&'a mut aya::maps::Map, DatapathError> {
    dp.ebpf_mut()
        .map_mut(name)
        .ok_or(DatapathError::Missing { kind: "map", name })
}

fn map<'a>(dp: &'a Datapath, name: &'static str) -> Result<&'a aya::maps::Map, DatapathError> {
    dp.ebpf()
        .map(name)
        .ok_or(DatapathError::Missing { kind: "map", name })
}

impl Datapath {
    /// The config word.
    pub fn config(&self) -> Result<Config, DatapathError> {
        let a: Array<&MapData, Config> = Array::try_from(map(self, MAP_CONFIG)?)
            .map_err(|e| DatapathError::map(MAP_CONFIG, "open", e))?;
        a.get(&0, 0)
            .map_err(|e| DatapathError::map(MAP_CONFIG, "read", e))
    }

    /// Writes the config word: the one write that switches generations.
    pub fn set_config(&mut self, cfg: Config) -> Result<(), DatapathError> {
        let mut a: Array<&mut MapData, Config> = Array::try_from(map_mut(self, MAP_CONFIG)?)
            .map_err(|e| DatapathError::map(MAP_CONFIG, "open", e))?;
        a.set(0, cfg, 0)
            .map_err(|e| DatapathError::map(MAP_CONFIG, "write", e))
    }

    /// One generation's settings.
    pub fn gen_meta(&self, generation: u32) -> Result<GenMeta, DatapathError> {
        let a: Array<&MapData, GenMeta> = Array::try_from(map(self, MAP_GEN_META)?)
            .map_err(|e| DatapathError::map(MAP_GEN_META, "open", e))?;
        a.get(&generation, 0)
            .map_err(|e| DatapathError::map(MAP_GEN_META, "read", e))
    }

    pub(crate) fn set_gen_meta(
        &mut self,
        generation: u32,
        meta: GenMeta,
    ) -> Result<(), DatapathError> {
        let mut a: Array<&mut MapData, GenMeta> = Array::try_from(map_mut(self, MAP_GEN_META)?)
            .map_err(|e| DatapathError::map(MAP_GEN_META, "open", e))?;
        a.set(generation, meta, 0)
            .map_err(|e| DatapathError::map(MAP_GEN_META, "write", e))
    }

    /// Reads every entry of `generation` back from the maps (meta left
    /// default), to diff against.
    pub fn read_generation(&self, generation: u32) -> Result<MapState, DatapathError> {
        let mut state = MapState::default();
        state.ident_v4 = read_trie(self, MAP_IDENT_V4, |plen, k: &IdentKeyV4| {
            (k.generation == generation)
                .then(|| Ipv4Net::new(k.addr.into(), ident_bits(plen)?).ok())
                .flatten()
        })?;
        state.ident_v6 = read_trie(self, MAP_IDENT_V6, |plen, k: &IdentKeyV6| {
            (k.generation == generation)
                .then(|| Ipv6Net::new(k.addr.into(), ident_bits(plen)?).ok())
                .flatten()
        })?;
        state.policy = read_trie(self, MAP_POLICY, |plen, k: &PolicyKey| {
            (k.generation == generation)
                .then(|| entry_of(plen, k))
                .flatten()
        })?;
        Ok(state)
    }

    /// Writes a diff into `generation`'s entries (removals first).
    pub(crate) fn write_diff(
        &mut self,
        generation: u32,
        diff: &MapDiff,
    ) -> Result<(), DatapathError> {
        write_trie(self, MAP_IDENT_V4, &diff.ident_v4, |n| {
            let (plen, k) = ident_key_v4(generation, n);
            Key::new(plen, k)
        })?;
        write_trie(self, MAP_IDENT_V6, &diff.ident_v6, |n| {
            let (plen, k) = ident_key_v6(generation, n);
            Key::new(plen, k)
        })?;
        write_trie(self, MAP_POLICY, &diff.policy, |e| {
            Key::new(e.prefix_len(), e.key(generation))
        })
    }

    /// Removes every entry of `generation` and marks it unwritten.
    pub(crate) fn clear_generation(&mut self, generation: u32) -> Result<(), DatapathError> {
        let current = self.read_generation(generation)?;
        let diff = crate::mapstate::diff(&current, &MapState::default());
        self.write_diff(generation, &diff)?;
        self.set_gen_meta(generation, GenMeta::default())
    }
}

/// The entries of one LPM trie that `entry` accepts (it returns `None` for
/// keys of other generations).
fn read_trie<K: Pod, V: Pod, E: Ord>(
    dp: &Datapath,
    name: &'static str,
    entry: impl Fn(u32, &K) -> Option<E>,
) -> Result<BTreeMap<E, V>, DatapathError> {
    let trie: LpmTrie<&MapData, K, V> =
        LpmTrie::try_from(map(dp, name)?).map_err(|e| DatapathError::map(name, "open", e))?;
    let mut out = BTreeMap::new();
    for item in trie.iter() {
        let (k, v) = item.map_err(|e| DatapathError::map(name, "iterate", e))?;
        if let Some(e) = entry(k.prefix_len(), &k.data()) {
            out.insert(e, v);
        }
    }
    Ok(out)
}

/// Applies one trie's changes, removals first.
fn write_trie<K: Pod, V: Pod, E>(
    dp: &mut Datapath,
    name: &'static str,
    changes: &MapChanges<E, V>,
    key: impl Fn(&E) -> Key<K>,
) -> Result<(), DatapathError> {
    let mut trie: LpmTrie<&mut MapData, K, V> =
        LpmTrie::try_from(map_mut(dp, name)?).map_err(|e| DatapathError::map(name, "open", e))?;
    for e in &changes.removals {
        ignore_missing(trie.remove(&key(e)), name)?;
    }
    for (e, v) in &changes.upserts {
        trie.insert(&key(e), v, 0)
            .map_err(|err| DatapathError::map(name, "insert", err))?;
    }
    Ok(())
}

/// The address prefix length of an identity key's prefix length.
fn ident_bits(prefix_len: u32) -> Option<u8> {
    u8::try_from(prefix_len.checked_sub(IDENT_PREFIX_GEN)?).ok()
}

fn ignore_missing(
    r: Result<(), aya::maps::MapError>,
    map: &'static str,
) -> Result<(), DatapathError> {
    match r {
        Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(e) => Err(DatapathError::map(map, "remove", e)),
    }
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
