//! Reading the datapath's packet counters.

use aya::maps::{HashMap, MapData, PerCpuArray};
use hostfw_common::{
    conntrack::{CtKey, CtValue},
    names::{MAP_CONNTRACK, MAP_RULE_STATS, MAP_STATS},
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
        let stats: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map)
            .map_err(|e| DatapathError::map(MAP_RULE_STATS, "open", e))?;
        let mut out = Vec::new();
        for id in 1..=max_rule_id.min(self.sizes().rule_ids.saturating_sub(1)) {
            let per_cpu = stats
                .get(&(base + id), 0)
                .map_err(|e| DatapathError::map(MAP_RULE_STATS, "read", e))?;
            let n: u64 = per_cpu.iter().sum();
            if n > 0 {
                out.push((id, n));
            }
        }
        Ok(out)
    }

    /// Entries in the connection tracker (walks the map: call sparingly).
    pub fn conntrack_entries(&self) -> Result<u64, DatapathError> {
        let map = self.map_named(MAP_CONNTRACK)?;
        let ct: HashMap<&MapData, CtKey, CtValue> =
            HashMap::try_from(map).map_err(|e| DatapathError::map(MAP_CONNTRACK, "open", e))?;
        Ok(ct.keys().count() as u64)
    }
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
