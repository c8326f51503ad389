//! Connection-tracking and fragment-tracking entries.

/// The entry was created in audit mode by a flow the policy denies.
pub const CT_FLAG_AUDIT: u8 = 1;
/// The entry was seeded by userspace from the kernel's sockets.
pub const CT_FLAG_SEEDED: u8 = 2;
/// The flow was cut: the policy of the entry's revision denies it. Its
/// packets are dropped in both directions (a packet from the node must not
/// start it again as a new outbound flow) until the policy changes.
pub const CT_FLAG_DENIED: u8 = 4;
/// The other side answered (entries of the new-flow table only). The
/// originator's next packet (TCP: one without SYN, i.e. the end of the
/// handshake) then moves the entry to the established table.
pub const CT_FLAG_SEEN_REPLY: u8 = 8;

/// Default capacity of the established table (`HFW_CT`): flows that got a
/// reply and were confirmed by their originator. New flows never evict them.
pub const DEFAULT_CT_ESTABLISHED: u32 = 262_144;
/// Default capacity of the new-flow table (`HFW_CT_NEW`): flows not yet
/// answered. A flood of new flows evicts only these.
pub const DEFAULT_CT_NEW: u32 = 65_536;

/// Idle timeout of TCP and SCTP entries.
pub const CT_TIMEOUT_STREAM_NS: u64 = 6 * 3600 * 1_000_000_000;
/// Idle timeout of UDP, ICMP and other entries.
pub const CT_TIMEOUT_DATAGRAM_NS: u64 = 120 * 1_000_000_000;
/// `last_seen_ns` is refreshed at most this often (fewer writes).
pub const CT_REFRESH_NS: u64 = 1_000_000_000;

/// A flow as sent by its originator. IPv4 addresses use the first four bytes;
/// the rest are zero. For ICMP echo both ports hold the echo identifier.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtKey {
    /// Source address of the originator's packets.
    pub src: [u8; 16],
    /// Destination address of the originator's packets.
    pub dst: [u8; 16],
    /// Source port, network order.
    pub sport_be: u16,
    /// Destination port, network order.
    pub dport_be: u16,
    /// IP protocol.
    pub proto: u8,
    /// [`crate::FAMILY_V4`] or [`crate::FAMILY_V6`].
    pub family: u8,
    /// Reserved, zero.
    pub reserved: [u8; 2],
}

impl CtKey {
    /// The key of the same flow seen from the other side.
    #[must_use]
    pub const fn reversed(&self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
            sport_be: self.dport_be,
            dport_be: self.sport_be,
            proto: self.proto,
            family: self.family,
            reserved: [0; 2],
        }
    }
}

/// State of a tracked flow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtValue {
    /// Boot-clock time of the last packet (refreshed coarsely).
    pub last_seen_ns: u64,
    /// Policy revision that admitted the flow. A flow of another revision is
    /// evaluated again before it passes.
    pub revision: u32,
    /// Rule that admitted the flow (`0` = none).
    pub rule_id: u32,
    /// The port (or ICMP type/code) the policy was asked about, host order.
    pub policy_port: u16,
    /// Direction of the originator's packets.
    pub origin_dir: u8,
    /// `CT_FLAG_*`.
    pub flags: u8,
    /// Reserved, zero.
    pub reserved: u32,
}

/// First fragment of a datagram, so later fragments find its ports.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Fragment identification (IPv4: 16 bits, IPv6: 32 bits), host order.
    pub id: u32,
    /// IP protocol.
    pub proto: u8,
    /// [`crate::FAMILY_V4`] or [`crate::FAMILY_V6`].
    pub family: u8,
    /// Reserved, zero.
    pub reserved: [u8; 2],
}

/// What later fragments need of their datagram's first fragment.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragValue {
    /// Source port (ICMP echo: identifier), network order.
    pub sport_be: u16,
    /// Destination port (ICMP echo: identifier), network order.
    pub dport_be: u16,
    /// The port (or ICMP `type << 8 | code`) the policy is asked about,
    /// host order.
    pub policy_port: u16,
    /// Reserved, zero.
    pub reserved: u16,
}

const _: () = assert!(core::mem::size_of::<CtKey>() == 40);
const _: () = assert!(core::mem::size_of::<CtValue>() == 24);
const _: () = assert!(core::mem::size_of::<FragKey>() == 40);
const _: () = assert!(core::mem::size_of::<FragValue>() == 8);
