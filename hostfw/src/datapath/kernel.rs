//! What hostfw's programs need from the kernel, probed before loading them,
//! so that an old kernel gets one clear error instead of a verifier log.
//!
//! The floor is Linux 5.18: the XDP program reads headers with
//! `bpf_xdp_load_bytes`. The rest is older (ring buffer and boot clock 5.8,
//! LRU and LPM maps 4.x). Features are probed, not inferred from the version:
//! distribution kernels (RHEL's 5.14, say) carry newer BPF than their number.

use aya::{
    maps::MapType,
    programs::ProgramType,
    sys::{BpfHelper, is_helper_supported, is_map_supported},
};

/// One thing the programs use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Need {
    /// A helper, from one program type.
    Helper {
        /// The program type that calls it.
        program: ProgramType,
        /// The helper.
        helper: BpfHelper,
        /// Its name, for people.
        name: &'static str,
        /// The release that added it.
        since: &'static str,
    },
    /// A map type.
    Map {
        /// The map type.
        map: MapType,
        /// Its name, for people.
        name: &'static str,
        /// The release that added it.
        since: &'static str,
    },
}

impl Need {
    fn describe(&self) -> String {
        match self {
            Self::Helper {
                program,
                name,
                since,
                ..
            } => format!(
                "helper {name} in {} programs (Linux {since})",
                if *program == ProgramType::Xdp {
                    "XDP"
                } else {
                    "TC"
                }
            ),
            Self::Map { name, since, .. } => format!("map type {name} (Linux {since})"),
        }
    }
}

/// Everything the programs use that is newer than 4.15.
pub const NEEDS: &[Need] = &[
    Need::Helper {
        program: ProgramType::Xdp,
        helper: BpfHelper::BPF_FUNC_xdp_load_bytes,
        name: "bpf_xdp_load_bytes",
        since: "5.18",
    },
    Need::Helper {
        program: ProgramType::Xdp,
        helper: BpfHelper::BPF_FUNC_ktime_get_boot_ns,
        name: "bpf_ktime_get_boot_ns",
        since: "5.8",
    },
    Need::Helper {
        program: ProgramType::Xdp,
        helper: BpfHelper::BPF_FUNC_ringbuf_reserve,
        name: "bpf_ringbuf_reserve",
        since: "5.8",
    },
    Need::Helper {
        program: ProgramType::SchedClassifier,
        helper: BpfHelper::BPF_FUNC_ktime_get_boot_ns,
        name: "bpf_ktime_get_boot_ns",
        since: "5.8",
    },
    Need::Helper {
        program: ProgramType::SchedClassifier,
        helper: BpfHelper::BPF_FUNC_ringbuf_reserve,
        name: "bpf_ringbuf_reserve",
        since: "5.8",
    },
    Need::Map {
        map: MapType::RingBuf,
        name: "ringbuf",
        since: "5.8",
    },
    Need::Map {
        map: MapType::LruHash,
        name: "lru_hash",
        since: "4.10",
    },
    Need::Map {
        map: MapType::LpmTrie,
        name: "lpm_trie",
        since: "4.11",
    },
];

/// What of [`NEEDS`] this kernel lacks. A probe that cannot run (no
/// privilege, say) counts as present: loading then reports the real error.
#[must_use]
pub fn missing() -> Vec<Need> {
    NEEDS
        .iter()
        .copied()
        .filter(|n| match *n {
            Need::Helper {
                program, helper, ..
            } => matches!(is_helper_supported(program, helper), Ok(false)),
            Need::Map { map, .. } => matches!(is_map_supported(map), Ok(false)),
        })
        .collect()
}

/// The error for a kernel that lacks `missing` (`release`: `uname -r`).
#[must_use]
pub fn refusal(release: &str, missing: &[Need]) -> Option<String> {
    if missing.is_empty() {
        return None;
    }
    let list: Vec<String> = missing.iter().map(Need::describe).collect();
    Some(format!(
        "kernel {release} lacks what hostfw's eBPF programs need: {}. hostfw supports \
         Linux 5.18 and later (distribution kernels with these features backported work too); \
         see \"Supported kernels\" in the README",
        list.join(", ")
    ))
}

/// The running kernel's release (`uname -r`).
#[must_use]
pub fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "(unknown)".into(), |r| r.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_names_each_missing_feature_and_the_floor() {
        assert_eq!(refusal("6.18.0", &[]), None);
        let msg = refusal("5.10.0-32-amd64", &NEEDS[..2]).expect("refused");
        assert!(msg.starts_with("kernel 5.10.0-32-amd64 lacks"), "{msg}");
        assert!(
            msg.contains("helper bpf_xdp_load_bytes in XDP programs (Linux 5.18)"),
            "{msg}"
        );
        assert!(msg.contains("bpf_ktime_get_boot_ns in XDP programs (Linux 5.8)"));
        assert!(msg.contains("Linux 5.18 and later"));
        let maps = refusal("4.9", &NEEDS[5..6]).expect("refused");
        assert!(maps.contains("map type ringbuf (Linux 5.8)"), "{maps}");
    }
}
