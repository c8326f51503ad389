//! The datapath's maps. Names, key and value types come from
//! `hostfw_common`; sizes here are defaults that userspace may change
//! before load.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, RingBuf},
};
use hostfw_common::{
    config::{Config, GENERATIONS, GenMeta},
    conntrack::{CtKey, CtValue, DEFAULT_CT_ESTABLISHED, DEFAULT_CT_NEW, FragKey, FragValue},
    policy::{IdentKeyV4, IdentKeyV6, PolicyKey, PolicyValue},
    stats::{DEFAULT_MAX_RULE_IDS, EventBudget, IfCounters, MAX_IFINDEX, STAT_COUNT},
};

const BPF_F_NO_PREALLOC: u32 = 1;

#[map(name = "HFW_CONFIG")]
pub static CONFIG: Array<Config> = Array::pinned(1, 0);

#[map(name = "HFW_GEN_META")]
pub static GEN_META: Array<GenMeta> = Array::pinned(GENERATIONS, 0);

#[map(name = "HFW_IDENT_V4")]
pub static IDENT_V4: LpmTrie<IdentKeyV4, u32> = LpmTrie::pinned(262_144, BPF_F_NO_PREALLOC);

#[map(name = "HFW_IDENT_V6")]
pub static IDENT_V6: LpmTrie<IdentKeyV6, u32> = LpmTrie::pinned(262_144, BPF_F_NO_PREALLOC);

#[map(name = "HFW_HOSTS_V4")]
pub static HOSTS_V4: HashMap<IdentKeyV4, u32> = HashMap::pinned(262_144, BPF_F_NO_PREALLOC);

#[map(name = "HFW_HOSTS_V6")]
pub static HOSTS_V6: HashMap<IdentKeyV6, u32> = HashMap::pinned(262_144, BPF_F_NO_PREALLOC);

#[map(name = "HFW_POLICY_EX")]
pub static POLICY_EXACT: HashMap<PolicyKey, PolicyValue> =
    HashMap::pinned(524_288, BPF_F_NO_PREALLOC);

#[map(name = "HFW_POLICY")]
pub static POLICY: LpmTrie<PolicyKey, PolicyValue> = LpmTrie::pinned(524_288, BPF_F_NO_PREALLOC);

#[map(name = "HFW_CT")]
pub static CONNTRACK: LruHashMap<CtKey, CtValue> = LruHashMap::pinned(DEFAULT_CT_ESTABLISHED, 0);

#[map(name = "HFW_CT_NEW")]
pub static CONNTRACK_NEW: LruHashMap<CtKey, CtValue> = LruHashMap::pinned(DEFAULT_CT_NEW, 0);

#[map(name = "HFW_FRAGS")]
pub static FRAGS: LruHashMap<FragKey, FragValue> = LruHashMap::pinned(8192, 0);

#[map(name = "HFW_STATS")]
pub static STATS: PerCpuArray<u64> = PerCpuArray::pinned(STAT_COUNT, 0);

#[map(name = "HFW_RULE_STATS")]
pub static RULE_STATS: PerCpuArray<u64> =
    PerCpuArray::pinned(DEFAULT_MAX_RULE_IDS * GENERATIONS, 0);

#[map(name = "HFW_IF_STATS")]
pub static IF_STATS: PerCpuArray<IfCounters> = PerCpuArray::pinned(MAX_IFINDEX, 0);

/// 1 where XDP on that interface index is hostfw's own (set by the
/// loader): only there does TC ingress trust the hand-off mark.
#[map(name = "HFW_XDP_OWNED")]
pub static XDP_OWNED: Array<u32> = Array::pinned(MAX_IFINDEX, 0);

#[map(name = "HFW_EVENTS")]
pub static EVENTS: RingBuf = RingBuf::pinned(1 << 20, 0);

#[map(name = "HFW_EV_BUDGET")]
pub static EVENT_BUDGET: PerCpuArray<EventBudget> = PerCpuArray::pinned(1, 0);
