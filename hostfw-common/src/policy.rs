//! Keys and values of the identity and policy LPM tries.
//!
//! Lookup for a new flow: the remote address gives an identity (longest
//! prefix match in `HFW_IDENT_V4`/`_V6`), then at most two policy lookups —
//! for that identity and for [`IDENTITY_ANY`] — each a longest prefix match
//! over (generation, identity, direction, protocol, port). The cost does not
//! depend on the number of rules.

/// Identity of an address that no selector matches.
pub const IDENTITY_NONE: u32 = 0;
/// Identity of policy entries that apply to every peer.
pub const IDENTITY_ANY: u32 = u32::MAX;

/// Allow action; lowest precedence.
pub const ACTION_ALLOW: u8 = 1;
/// Deny action; beats allow.
pub const ACTION_DENY: u8 = 2;
/// Failsafe allow; beats deny (Calico-style failsafe ports).
pub const ACTION_FAILSAFE: u8 = 3;

/// Bits of a [`PolicyKey`] before the protocol: generation, identity,
/// direction.
pub const POLICY_PREFIX_PROTO_ANY: u32 = 32 + 32 + 8;
/// Bits of a [`PolicyKey`] up to and including the protocol: a key with this
/// prefix matches every port of the protocol.
pub const POLICY_PREFIX_PORT_ANY: u32 = POLICY_PREFIX_PROTO_ANY + 8;
/// Bits of a full [`PolicyKey`].
pub const POLICY_PREFIX_FULL: u32 = POLICY_PREFIX_PORT_ANY + 16;

/// The port bits an exact policy entry of `proto` matches: all 16 for
/// ports, the type byte for ICMP and ICMPv6 (rules name a type, any code).
#[must_use]
pub const fn exact_port_mask(proto: u8) -> u16 {
    if proto == crate::proto::ICMP || proto == crate::proto::ICMPV6 {
        0xff00
    } else {
        0xffff
    }
}

/// The prefix length of the policy entries of `proto` that live in the
/// exact-match hash instead of the trie. The longest entry that can match
/// a packet is of this length, so a hit there is the longest match and the
/// trie is consulted only on a miss.
#[must_use]
pub const fn exact_prefix_len(proto: u8) -> u32 {
    POLICY_PREFIX_PORT_ANY + exact_port_mask(proto).count_ones()
}

/// Bits of the generation in identity keys.
pub const IDENT_PREFIX_GEN: u32 = 32;

/// IPv4 identity key: generation, then the address in network order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentKeyV4 {
    /// Generation (fully matched).
    pub generation: u32,
    /// Address bytes, network order.
    pub addr: [u8; 4],
}

/// IPv6 identity key: generation, then the address in network order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentKeyV6 {
    /// Generation (fully matched).
    pub generation: u32,
    /// Address bytes, network order.
    pub addr: [u8; 16],
}

/// Policy trie key. The trie's prefix length covers the fields in order;
/// `port_be` is in network order so that a port prefix is a bit prefix.
///
/// For ICMP and ICMPv6 the "port" is `type << 8 | code`; a rule on a type
/// matches 8 bits of it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyKey {
    /// Generation.
    pub generation: u32,
    /// Identity of the remote address, or [`IDENTITY_ANY`].
    pub identity: u32,
    /// [`crate::DIR_INGRESS`] or [`crate::DIR_EGRESS`].
    pub direction: u8,
    /// IP protocol number (wildcarded below [`POLICY_PREFIX_PORT_ANY`]).
    pub proto: u8,
    /// Destination port (or ICMP type and code), network order.
    pub port_be: u16,
}

impl PolicyKey {
    /// Builds a key from a port in host order.
    #[must_use]
    pub const fn new(generation: u32, identity: u32, direction: u8, proto: u8, port: u16) -> Self {
        Self {
            generation,
            identity,
            direction,
            proto,
            port_be: port.to_be(),
        }
    }

    /// The ICMP "port" of a type and code.
    #[must_use]
    pub const fn icmp_port(icmp_type: u8, code: u8) -> u16 {
        (icmp_type as u16) << 8 | code as u16
    }
}

/// What a policy entry decides.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyValue {
    /// The deciding rule (`0` = none).
    pub rule_id: u32,
    /// [`ACTION_ALLOW`], [`ACTION_DENY`] or [`ACTION_FAILSAFE`].
    pub action: u8,
    /// Reserved, zero.
    pub reserved: [u8; 3],
}

impl PolicyValue {
    /// A value for `action` decided by `rule_id`.
    #[must_use]
    pub const fn new(action: u8, rule_id: u32) -> Self {
        Self {
            rule_id,
            action,
            reserved: [0; 3],
        }
    }

    /// Combines two matching entries: the higher action wins; between equal
    /// actions the lower rule id. Kernel, compiler and reference evaluator
    /// all use this one rule.
    #[must_use]
    pub const fn combine(self, other: Self) -> Self {
        if other.action > self.action
            || (other.action == self.action && other.rule_id < self.rule_id)
        {
            other
        } else {
            self
        }
    }
}

const _: () = assert!(core::mem::size_of::<IdentKeyV4>() == 8);
const _: () = assert!(core::mem::size_of::<IdentKeyV6>() == 20);
const _: () = assert!(core::mem::size_of::<PolicyKey>() == 12);
const _: () = assert!(core::mem::size_of::<PolicyValue>() == 8);
