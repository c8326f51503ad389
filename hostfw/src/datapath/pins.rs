//! Pinned maps whose size differs from what this load asks for: a changed
//! `[conntrack]` size, or counters of an older release with fewer slots.
//!
//! The kernel cannot resize a map. Before the load, such a pin is opened
//! (which keeps the old map alive) and unlinked, so the load creates the
//! map afresh at the new size; afterwards the old entries are copied over.
//! Tracked flows thus survive a resize (as far as they fit), and a restart
//! with the same sizes touches nothing.
//!
//! The tracker of an older release (one `HFW_CT`, no `HFW_CT_NEW`, keys in
//! the originator's orientation) is converted the same way: its flows are
//! copied under their canonical keys.

use std::path::Path;

use aya::{
    Ebpf,
    maps::{HashMap, Map, MapData, PerCpuArray},
};
use hostfw_common::{
    conntrack::{CT_FLAG_KEY_REVERSED, CtKey, CtValue},
    names::{MAP_CONNTRACK, MAP_CONNTRACK_NEW, MAP_STATS},
    stats::{STAT_COUNT, Stat},
};

use super::{DatapathError, MapSizes, counters::add_to_stat};

/// An old map, unpinned, whose entries go to its successor after the load.
pub(crate) struct SetAside {
    name: &'static str,
    old: MapData,
    old_entries: u32,
    new_entries: u32,
    /// An older release's tracker: its flows were never counted as taken
    /// in, so the copies are (or its evictions would be under-reported).
    legacy: bool,
}

/// The resizable maps and the size this load wants for each.
fn wanted(sizes: &MapSizes) -> [(&'static str, u32); 3] {
    [
        (MAP_CONNTRACK, sizes.conntrack_established),
        (MAP_CONNTRACK_NEW, sizes.conntrack_new),
        (MAP_STATS, STAT_COUNT),
    ]
}

/// Unpins every resizable map whose pinned size differs from `sizes`,
/// keeping it open.
pub(crate) fn set_aside_resized(
    pin_root: &Path,
    sizes: &MapSizes,
) -> Result<Vec<SetAside>, DatapathError> {
    let mut out = Vec::new();
    let legacy =
        pin_root.join(MAP_CONNTRACK).exists() && !pin_root.join(MAP_CONNTRACK_NEW).exists();
    for (name, want) in wanted(sizes) {
        let path = pin_root.join(name);
        if !path.exists() {
            continue;
        }
        let old = MapData::from_pin(&path).map_err(|e| DatapathError::map(name, "open pin", e))?;
        let old_entries = old
            .info()
            .map_err(|e| DatapathError::map(name, "read info", e))?
            .max_entries();
        let legacy = legacy && name == MAP_CONNTRACK;
        if old_entries == want && !legacy {
            continue;
        }
        std::fs::remove_file(&path).map_err(|source| DatapathError::PinDir {
            path: path.clone(),
            source,
        })?;
        out.push(SetAside {
            name,
            old,
            old_entries,
            new_entries: want,
            legacy,
        });
    }
    Ok(out)
}

/// Copies the entries of the set-aside maps into their successors.
pub(crate) fn migrate(ebpf: &mut Ebpf, set_aside: Vec<SetAside>) -> Result<(), DatapathError> {
    for s in set_aside {
        let new = ebpf.map_mut(s.name).ok_or(DatapathError::Missing {
            kind: "map",
            name: s.name,
        })?;
        let copied = if s.name == MAP_STATS {
            copy_counters(s.name, s.old, new)?
        } else {
            copy_flows(s.name, s.old, new)?
        };
        if s.legacy {
            add_to_stat(ebpf, Stat::CtUserspaceAdded, copied)?;
        }
        log::info!(
            "{}: recreated ({} entries, was {}); {copied} entries carried over",
            s.name,
            s.new_entries,
            s.old_entries
        );
    }
    Ok(())
}

/// Copies tracked flows, as many as the new map holds.
fn copy_flows(name: &'static str, old: MapData, new: &mut Map) -> Result<u64, DatapathError> {
    let old: HashMap<MapData, CtKey, CtValue> = HashMap::try_from(Map::LruHashMap(old))
        .map_err(|e| DatapathError::map(name, "open old", e))?;
    let mut new: HashMap<&mut MapData, CtKey, CtValue> =
        HashMap::try_from(new).map_err(|e| DatapathError::map(name, "open", e))?;
    let mut copied = 0;
    for (k, mut v) in old.iter().flatten() {
        // Canonical keys stay as they are; an older release's get theirs.
        let (k, reversed) = k.canonical();
        if reversed {
            v.flags |= CT_FLAG_KEY_REVERSED;
        }
        if new.insert(k, v, 0).is_ok() {
            copied += 1;
        }
    }
    Ok(copied)
}

/// Copies the counters of the slots both layouts have (slots are only ever
/// appended).
fn copy_counters(name: &'static str, old: MapData, new: &mut Map) -> Result<u64, DatapathError> {
    let old: PerCpuArray<MapData, u64> = PerCpuArray::try_from(Map::PerCpuArray(old))
        .map_err(|e| DatapathError::map(name, "open old", e))?;
    let mut new: PerCpuArray<&mut MapData, u64> =
        PerCpuArray::try_from(new).map_err(|e| DatapathError::map(name, "open", e))?;
    let mut copied = 0;
    for i in 0..old.len().min(new.len()) {
        let values = old
            .get(&i, 0)
            .map_err(|e| DatapathError::map(name, "read old", e))?;
        new.set(i, values, 0)
            .map_err(|e| DatapathError::map(name, "write", e))?;
        copied += 1;
    }
    Ok(copied)
}
