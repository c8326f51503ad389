//! The datapath's switch: which policy generation is active, and the
//! kernel-side dead-man switch of a trial.

/// Number of policy generations (slots) in every policy map.
pub const GENERATIONS: u32 = 2;

/// Generation mode: would-be drops pass and are reported as AUDIT.
pub const MODE_AUDIT: u32 = 0;
/// Generation mode: denied packets are dropped.
pub const MODE_ENFORCE: u32 = 1;

/// `GenMeta::flags` bit: ingress is default-deny.
pub const DEFAULT_DENY_INGRESS: u32 = 1;
/// `GenMeta::flags` bit: egress is default-deny.
pub const DEFAULT_DENY_EGRESS: u32 = 2;

/// `GenMeta::flags` bits naming lookups a generation can skip because it has
/// no entry in that map: the datapath does not probe an empty table. A set
/// bit means "empty", so a generation written by an older release (no such
/// bits) skips nothing.
pub const SKIP_HOSTS_V4: u32 = 1 << 8;
/// No IPv4 prefix shorter than /32 in `HFW_IDENT_V4`.
pub const SKIP_IDENT_V4: u32 = 1 << 9;
/// No IPv6 host (/128) in `HFW_HOSTS_V6`.
pub const SKIP_HOSTS_V6: u32 = 1 << 10;
/// No IPv6 prefix shorter than /128 in `HFW_IDENT_V6`.
pub const SKIP_IDENT_V6: u32 = 1 << 11;
/// No entry in the exact-match policy hash.
pub const SKIP_POLICY_EXACT: u32 = 1 << 12;
/// No entry in the policy trie.
pub const SKIP_POLICY_TRIE: u32 = 1 << 13;

const ACTIVE_BIT: u64 = 1;
const FALLBACK_BIT: u64 = 2;
const ARMED_BIT: u64 = 4;
const DEADLINE_SHIFT: u32 = 3;

/// The single entry of the config map.
///
/// Everything the datapath needs to pick a generation is packed in one
/// aligned `u64`, so that userspace switches generations with one map write
/// that a reader can never see half-done:
/// bit 0 the active generation, bit 1 the fallback generation, bit 2 set
/// while a trial deadline is armed, bits 3..64 the deadline in milliseconds
/// of `CLOCK_BOOTTIME` (the clock of `bpf_ktime_get_boot_ns`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The packed word described above.
    pub word: u64,
}

impl Config {
    /// A confirmed generation: no trial, no fallback.
    #[must_use]
    pub const fn confirmed(generation: u32) -> Self {
        let g = (generation & 1) as u64;
        Self {
            word: (g * ACTIVE_BIT) | (g * FALLBACK_BIT),
        }
    }

    /// A trial of `active` that falls back to `fallback` once the boot clock
    /// passes `deadline_ms`.
    #[must_use]
    pub const fn trial(active: u32, fallback: u32, deadline_ms: u64) -> Self {
        Self {
            word: ((active & 1) as u64 * ACTIVE_BIT)
                | ((fallback & 1) as u64 * FALLBACK_BIT)
                | ARMED_BIT
                | (deadline_ms << DEADLINE_SHIFT),
        }
    }

    /// The generation chosen by the last write.
    #[must_use]
    pub const fn active(self) -> u32 {
        (self.word & ACTIVE_BIT) as u32
    }

    /// The generation used once the trial deadline has passed.
    #[must_use]
    pub const fn fallback(self) -> u32 {
        ((self.word & FALLBACK_BIT) >> 1) as u32
    }

    /// The trial deadline in boot-clock milliseconds, if one is armed.
    #[must_use]
    pub const fn deadline_ms(self) -> Option<u64> {
        if self.word & ARMED_BIT == 0 {
            None
        } else {
            Some(self.word >> DEADLINE_SHIFT)
        }
    }

    /// The generation in force at boot-clock time `now_ns`: the datapath's
    /// dead-man switch. Used by the kernel and by userspace alike.
    #[must_use]
    pub const fn effective(self, now_ns: u64) -> u32 {
        match self.deadline_ms() {
            Some(deadline) if now_ns / 1_000_000 >= deadline => self.fallback(),
            _ => self.active(),
        }
    }
}

/// Per-generation settings, one entry per generation.
///
/// `revision == 0` means the generation was never written: the datapath
/// then passes everything without tracking (nothing is configured yet).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenMeta {
    /// Policy revision; connection-tracking entries record it.
    pub revision: u32,
    /// [`MODE_AUDIT`] or [`MODE_ENFORCE`].
    pub mode: u32,
    /// [`DEFAULT_DENY_INGRESS`] | [`DEFAULT_DENY_EGRESS`] | `SKIP_*` bits.
    pub flags: u32,
    /// Index of this generation's rule 0 in `HFW_RULE_STATS`.
    pub rule_stats_base: u32,
}

impl GenMeta {
    /// Whether `direction` ([`crate::DIR_INGRESS`] or [`crate::DIR_EGRESS`])
    /// is default-deny.
    #[must_use]
    pub const fn denies_by_default(&self, direction: u8) -> bool {
        let bit = if direction == crate::DIR_INGRESS {
            DEFAULT_DENY_INGRESS
        } else {
            DEFAULT_DENY_EGRESS
        };
        self.flags & bit != 0
    }

    /// Whether the lookup of `skip` (a `SKIP_*` bit) cannot match.
    #[inline(always)]
    #[must_use]
    pub const fn skips(&self, skip: u32) -> bool {
        self.flags & skip != 0
    }
}

const _: () = assert!(core::mem::size_of::<Config>() == 8);
const _: () = assert!(core::mem::size_of::<GenMeta>() == 16);
