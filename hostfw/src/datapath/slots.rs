//! Reading and writing one generation's entries in the shared maps.

use std::collections::BTreeMap;

use aya::maps::{
    Array, MapData,
    lpm_trie::{Key, LpmTrie},
};
use hostfw_common::{
    config::{Config, GenMeta},
    names::{MAP_CONFIG, MAP_GEN_META, MAP_IDENT_V4, MAP_IDENT_V6, MAP_POLICY},
    policy::{
        IDENT_PREFIX_GEN, IdentKeyV4, IdentKeyV6, POLICY_PREFIX_PORT_ANY, POLICY_PREFIX_PROTO_ANY,
        PolicyKey, PolicyValue,
    },
};
use ipnet::{Ipv4Net, Ipv6Net};

use super::{Datapath, DatapathError};
use crate::mapstate::{MapDiff, MapState, PolicyEntry};

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

/// Entries of one generation as stored in the maps.
#[derive(Default)]
pub struct Stored {
    pub ident_v4: BTreeMap<Ipv4Net, u32>,
    pub ident_v6: BTreeMap<Ipv6Net, u32>,
    pub policy: BTreeMap<PolicyEntry, PolicyValue>,
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

    /// Reads every entry of `generation` back from the maps.
    pub fn read_generation(&self, generation: u32) -> Result<Stored, DatapathError> {
        let mut out = Stored::default();
        let v4: LpmTrie<&MapData, IdentKeyV4, u32> = LpmTrie::try_from(map(self, MAP_IDENT_V4)?)
            .map_err(|e| DatapathError::map(MAP_IDENT_V4, "open", e))?;
        for item in v4.iter() {
            let (k, v) = item.map_err(|e| DatapathError::map(MAP_IDENT_V4, "iterate", e))?;
            let data = k.data();
            if data.generation == generation {
                let plen = k.prefix_len().saturating_sub(IDENT_PREFIX_GEN);
                if let Ok(net) = Ipv4Net::new(data.addr.into(), plen as u8) {
                    out.ident_v4.insert(net, v);
                }
            }
        }
        let v6: LpmTrie<&MapData, IdentKeyV6, u32> = LpmTrie::try_from(map(self, MAP_IDENT_V6)?)
            .map_err(|e| DatapathError::map(MAP_IDENT_V6, "open", e))?;
        for item in v6.iter() {
            let (k, v) = item.map_err(|e| DatapathError::map(MAP_IDENT_V6, "iterate", e))?;
            let data = k.data();
            if data.generation == generation {
                let plen = k.prefix_len().saturating_sub(IDENT_PREFIX_GEN);
                if let Ok(net) = Ipv6Net::new(data.addr.into(), plen as u8) {
                    out.ident_v6.insert(net, v);
                }
            }
        }
        let pol: LpmTrie<&MapData, PolicyKey, PolicyValue> =
            LpmTrie::try_from(map(self, MAP_POLICY)?)
                .map_err(|e| DatapathError::map(MAP_POLICY, "open", e))?;
        for item in pol.iter() {
            let (k, v) = item.map_err(|e| DatapathError::map(MAP_POLICY, "iterate", e))?;
            let data = k.data();
            if data.generation == generation
                && let Some(entry) = entry_of(k.prefix_len(), &data)
            {
                out.policy.insert(entry, v);
            }
        }
        Ok(out)
    }

    /// Writes a diff into `generation`'s entries (removals first).
    pub(crate) fn write_diff(
        &mut self,
        generation: u32,
        diff: &MapDiff,
    ) -> Result<(), DatapathError> {
        {
            let mut t: LpmTrie<&mut MapData, IdentKeyV4, u32> =
                LpmTrie::try_from(map_mut(self, MAP_IDENT_V4)?)
                    .map_err(|e| DatapathError::map(MAP_IDENT_V4, "open", e))?;
            let key = |n: &Ipv4Net| {
                Key::new(
                    IDENT_PREFIX_GEN + u32::from(n.prefix_len()),
                    IdentKeyV4 {
                        generation,
                        addr: n.network().octets(),
                    },
                )
            };
            for n in &diff.ident_v4.removals {
                ignore_missing(t.remove(&key(n)), MAP_IDENT_V4)?;
            }
            for (n, id) in &diff.ident_v4.upserts {
                t.insert(&key(n), id, 0)
                    .map_err(|e| DatapathError::map(MAP_IDENT_V4, "insert", e))?;
            }
        }
        {
            let mut t: LpmTrie<&mut MapData, IdentKeyV6, u32> =
                LpmTrie::try_from(map_mut(self, MAP_IDENT_V6)?)
                    .map_err(|e| DatapathError::map(MAP_IDENT_V6, "open", e))?;
            let key = |n: &Ipv6Net| {
                Key::new(
                    IDENT_PREFIX_GEN + u32::from(n.prefix_len()),
                    IdentKeyV6 {
                        generation,
                        addr: n.network().octets(),
                    },
                )
            };
            for n in &diff.ident_v6.removals {
                ignore_missing(t.remove(&key(n)), MAP_IDENT_V6)?;
            }
            for (n, id) in &diff.ident_v6.upserts {
                t.insert(&key(n), id, 0)
                    .map_err(|e| DatapathError::map(MAP_IDENT_V6, "insert", e))?;
            }
        }
        let mut t: LpmTrie<&mut MapData, PolicyKey, PolicyValue> =
            LpmTrie::try_from(map_mut(self, MAP_POLICY)?)
                .map_err(|e| DatapathError::map(MAP_POLICY, "open", e))?;
        for e in &diff.policy.removals {
            ignore_missing(
                t.remove(&Key::new(e.prefix_len(), e.key(generation))),
                MAP_POLICY,
            )?;
        }
        for (e, v) in &diff.policy.upserts {
            t.insert(&Key::new(e.prefix_len(), e.key(generation)), v, 0)
                .map_err(|e| DatapathError::map(MAP_POLICY, "insert", e))?;
        }
        Ok(())
    }

    /// Removes every entry of `generation` and marks it unwritten.
    pub(crate) fn clear_generation(&mut self, generation: u32) -> Result<(), DatapathError> {
        let stored = self.read_generation(generation)?;
        let empty = MapState::default();
        let current = stored.into_state();
        let diff = crate::mapstate::diff(&current, &empty);
        self.write_diff(generation, &diff)?;
        self.set_gen_meta(generation, GenMeta::default())
    }
}

impl Stored {
    /// As a `MapState` (meta left default), to diff against.
    #[must_use]
    pub fn into_state(self) -> MapState {
        let mut state = MapState::default();
        state.ident_v4 = self.ident_v4;
        state.ident_v6 = self.ident_v6;
        state.policy = self.policy;
        state
    }
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
