//! `aya::Pod` for every type that crosses the user/kernel boundary.

use crate::{
    config::{Config, GenMeta},
    conntrack::{CtKey, CtValue, FragKey, FragValue},
    event::Event,
    policy::{IdentKeyV4, IdentKeyV6, PolicyKey, PolicyValue},
    stats::{EventBudget, IfCounters},
};

// SAFETY: each type is `#[repr(C)]`, `Copy`, made of integers and integer
// arrays only, and has no padding (size asserts beside each definition).
unsafe impl aya::Pod for Config {}
unsafe impl aya::Pod for GenMeta {}
unsafe impl aya::Pod for CtKey {}
unsafe impl aya::Pod for CtValue {}
unsafe impl aya::Pod for FragKey {}
unsafe impl aya::Pod for FragValue {}
unsafe impl aya::Pod for Event {}
unsafe impl aya::Pod for IdentKeyV4 {}
unsafe impl aya::Pod for IdentKeyV6 {}
unsafe impl aya::Pod for PolicyKey {}
unsafe impl aya::Pod for PolicyValue {}
unsafe impl aya::Pod for EventBudget {}
unsafe impl aya::Pod for IfCounters {}
