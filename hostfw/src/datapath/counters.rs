//! Reading the datapath's packet counters.

use std::os::fd::AsFd;

use aya::{
    Ebpf,
    maps::{HashMap, IterableMap, MapData, PerCpuArray, PerCpuValues},
};
use hostfw_common::{
    conntrack::{CtKey, CtValue},
    names::{MAP_CONNTRACK, MAP_CONNTRACK_NEW, MAP_RULE_STATS, MAP_STATS},
    stats::{STAT_COUNT, STAT_NAMES, Stat},
};

use super::{Datapath, DatapathError};

/// A snapshot of the packet counters, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    values: Vec<u64>,
}

impl Counters {
    /// The value of one counter.
    #[must_use]
    pub fn get(&self, stat: Stat) -> u64 {
        self.values.get(stat as usize).copied().unwrap_or(0)
    }

    /// `(name, value)` pairs in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        STAT_NAMES.iter().copied().zip(self.values.iter().copied())
    }
}

impl Datapath {
    /// Reads the packet counters.
    pub fn counters(&self) -> Result<Counters, DatapathError> {
        let map = self.map_named(MAP_STATS)?;
        let stats: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(map).map_err(|e| DatapathError::map(MAP_STATS, "open", e))?;
        let mut values = Vec::with_capacity(STAT_COUNT as usize);
        for i in 0..STAT_COUNT {
            let per_cpu = stats
                .get(&i, 0)
                .map_err(|e| DatapathError::map(MAP_STATS, "read", e))?;
            values.push(per_cpu.iter().sum());
        }
        Ok(Counters { values })
    }
}

/// Adds `n` to a counter that userspace keeps, on the first CPU's slot
/// (readers sum over CPUs).
pub(crate) fn add_to_stat(ebpf: &mut Ebpf, stat: Stat, n: u64) -> Result<(), DatapathError> {
    let map = ebpf.map_mut(MAP_STATS).ok_or(DatapathError::Missing {
        kind: "map",
        name: MAP_STATS,
    })?;
    let mut stats: PerCpuArray<&mut MapData, u64> =
        PerCpuArray::try_from(map).map_err(|e| DatapathError::map(MAP_STATS, "open", e))?;
    let index = stat as u32;
    let mut values: Vec<u64> = stats
        .get(&index, 0)
        .map_err(|e| DatapathError::map(MAP_STATS, "read", e))?
        .to_vec();
    if let Some(first) = values.first_mut() {
        *first += n;
    }
    let values = PerCpuValues::try_from(values)
        .map_err(|e| DatapathError::map(MAP_STATS, "write", aya::maps::MapError::IoError(e)))?;
    stats
        .set(index, values, 0)
        .map_err(|e| DatapathError::map(MAP_STATS, "write", e))
}

impl Datapath {
    /// New-flow decisions per rule of `generation`, for rules `1..=max_rule_id`
    /// (summed over CPUs; zero counts left out).
    pub fn rule_counts(
        &self,
        generation: u32,
        max_rule_id: u32,
    ) -> Result<Vec<(u32, u64)>, DatapathError> {
        let base = self.gen_meta(generation)?.rule_stats_base;
        let map = self.map_named(MAP_RULE_STATS)?;
        // Checks the key and value types against the map.
        let stats: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map)
            .map_err(|e| DatapathError::map(MAP_RULE_STATS, "open", e))?;
        let last = max_rule_id.min(self.sizes().rule_ids.saturating_sub(1));
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| {
            DatapathError::map(MAP_RULE_STATS, "read", aya::maps::MapError::IoError(e))
        })?;
        let sums = super::batch::percpu_u64_sums(stats.map().fd().as_fd(), base + 1, last, cpus)
            .map_err(|e| DatapathError::batch(MAP_RULE_STATS, "read", e))?;
        Ok((1..).zip(sums).filter(|&(_, n)| n > 0).collect())
    }

    /// The use of both connection trackers (reads the maps in chunks of
    /// thousands of entries: one call per chunk). `counters` is a snapshot
    /// of the packet counters, which tell how many entries each tracker
    /// took in.
    pub fn conntrack_usage(&self, counters: &Counters) -> Result<ConntrackUsage, DatapathError> {
        let (est_used, est_cap) = self.tracker(MAP_CONNTRACK)?;
        let (new_used, new_cap) = self.tracker(MAP_CONNTRACK_NEW)?;
        Ok(ConntrackUsage {
            established: TableUsage {
                used: est_used,
                capacity: est_cap,
                // Entries leave the established tracker only by eviction.
                evicted: (counters.get(Stat::CtPromoted) + counters.get(Stat::CtUserspaceAdded))
                    .saturating_sub(est_used),
            },
            new: TableUsage {
                used: new_used,
                capacity: new_cap,
                // ... and the new-flow tracker by eviction or promotion.
                evicted: counters
                    .get(Stat::CtNewCreated)
                    .saturating_sub(counters.get(Stat::CtNewRemoved))
                    .saturating_sub(new_used),
            },
        })
    }

    /// Entries in use and capacity of one tracker, as the kernel has it.
    fn tracker(&self, name: &'static str) -> Result<(u64, u64), DatapathError> {
        let map = self.map_named(name)?;
        let ct: HashMap<&MapData, CtKey, CtValue> =
            HashMap::try_from(map).map_err(|e| DatapathError::map(name, "open", e))?;
        let capacity = ct
            .map()
            .info()
            .map_err(|e| DatapathError::map(name, "read info", e))?
            .max_entries();
        let used = super::batch::count::<CtKey, CtValue>(ct.map().fd().as_fd())
            .map_err(|e| DatapathError::batch(name, "read", e))?;
        Ok((used as u64, u64::from(capacity)))
    }
}

/// One connection tracker's use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableUsage {
    /// Entries in use.
    pub used: u64,
    /// Capacity (the kernel map's size).
    pub capacity: u64,
    /// Entries evicted to make room, since the maps were created.
    pub evicted: u64,
}

/// Both connection trackers' use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConntrackUsage {
    /// Established flows (answered, and confirmed by their originator).
    pub established: TableUsage,
    /// New flows, not established yet.
    pub new: TableUsage,
}

impl Datapath {
    /// Packets per interface (summed over CPUs) for interface `ifindex`.
    pub fn interface_counters(
        &self,
        ifindex: u32,
    ) -> Result<hostfw_common::stats::IfCounters, DatapathError> {
        use hostfw_common::{
            names::MAP_IF_STATS,
            stats::{IfCounters, MAX_IFINDEX},
        };
        let map = self.map_named(MAP_IF_STATS)?;
        let stats: PerCpuArray<&MapData, IfCounters> =
            PerCpuArray::try_from(map).map_err(|e| DatapathError::map(MAP_IF_STATS, "open", e))?;
        let per_cpu = stats
            .get(&ifindex.min(MAX_IFINDEX - 1), 0)
            .map_err(|e| DatapathError::map(MAP_IF_STATS, "read", e))?;
        Ok(per_cpu
            .iter()
            .fold(IfCounters::default(), |a, c| IfCounters {
                passed: a.passed + c.passed,
                dropped: a.dropped + c.dropped,
                audited: a.audited + c.audited,
            }))
    }
}
