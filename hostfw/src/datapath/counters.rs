//! Reading the datapath's packet counters.

use aya::maps::{MapData, PerCpuArray};
use hostfw_common::{
    names::MAP_STATS,
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
        let map = self.ebpf().map(MAP_STATS).ok_or(DatapathError::Missing {
            kind: "map",
            name: MAP_STATS,
        })?;
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
