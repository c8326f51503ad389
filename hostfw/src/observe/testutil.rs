//! Flows for tests.

use std::time::{Duration, SystemTime};

use super::{Flow, Icmp, WallTime};

/// An ingress TCP SYN from 192.0.2.1 to port 22 at `secs` after the epoch.
pub fn flow(verdict: &str, secs: u64) -> Flow {
    Flow {
        time: WallTime(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)),
        interface: Some("eth0".into()),
        ifindex: 2,
        direction: "ingress".into(),
        verdict: verdict.into(),
        reason: "default-deny".into(),
        rule_id: 0,
        policy: None,
        rule: None,
        src: "192.0.2.1".parse().expect("ip"),
        dst: "10.0.0.1".parse().expect("ip"),
        sport: Some(40000),
        dport: Some(22),
        proto: "TCP".into(),
        tcp_flags: Some("SYN".into()),
        icmp: None,
        revision: 1,
    }
}

/// An ICMP flow of `proto` (`ICMP` or `ICMPv6`) with this type.
pub fn icmp_flow(verdict: &str, secs: u64, proto: &str, icmp_type: u8) -> Flow {
    Flow {
        proto: proto.into(),
        sport: None,
        dport: None,
        tcp_flags: None,
        icmp: Some(Icmp { icmp_type, code: 0 }),
        ..flow(verdict, secs)
    }
}
