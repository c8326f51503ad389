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

/// The stored key is the reverse of the originator's orientation (a flow
/// is stored once, under its canonical key: see [`CtKey::canonical`]).
pub const CT_FLAG_KEY_REVERSED: u8 = 16;

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

/// A flow's addresses, ports and protocol. IPv4 addresses use the first four
/// bytes; the rest are zero. For ICMP echo both ports hold the echo
/// identifier. Stored in the trackers in canonical orientation (one lookup
/// finds a flow whichever way its packet goes), with
/// [`CT_FLAG_KEY_REVERSED`] telling the originator's.
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

    /// The flow's canonical key (its source side sorts before its
    /// destination side, addresses then ports), and whether that is this
    /// key reversed.
    #[inline(always)]
    #[must_use]
    pub fn canonical(&self) -> (Self, bool) {
        Self::canonical_of(
            &self.src,
            &self.dst,
            self.sport_be,
            self.dport_be,
            self.proto,
            self.family,
        )
    }

    /// The canonical key of a packet's flow, built in place (no
    /// intermediate keys: the BPF stack is small), and whether the packet
    /// goes against it.
    #[inline(always)]
    #[must_use]
    pub fn canonical_of(
        src: &[u8; 16],
        dst: &[u8; 16],
        sport_be: u16,
        dport_be: u16,
        proto: u8,
        family: u8,
    ) -> (Self, bool) {
        let reversed = upper(src, dst, sport_be, dport_be);
        let (a, b, pa, pb) = if reversed {
            (dst, src, dport_be, sport_be)
        } else {
            (src, dst, sport_be, dport_be)
        };
        (
            Self {
                src: *a,
                dst: *b,
                sport_be: pa,
                dport_be: pb,
                proto,
                family,
                reserved: [0; 2],
            },
            reversed,
        )
    }
}

/// Whether the source side sorts after the destination side.
#[inline(always)]
fn upper(src: &[u8; 16], dst: &[u8; 16], sport_be: u16, dport_be: u16) -> bool {
    let mut i = 0;
    while i < 16 {
        if src[i] != dst[i] {
            return src[i] > dst[i];
        }
        i += 1;
    }
    // Ports in network order: any fixed order will do.
    sport_be > dport_be
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(src: u8, dst: u8, sport: u16, dport: u16) -> CtKey {
        let mut k = CtKey {
            sport_be: sport,
            dport_be: dport,
            proto: 6,
            family: 4,
            ..CtKey::default()
        };
        k.src[3] = src;
        k.dst[3] = dst;
        k
    }

    #[test]
    fn both_orientations_have_one_canonical_key() {
        for k in [
            key(1, 2, 5, 6),
            key(2, 1, 5, 6),
            key(1, 1, 7, 3),
            key(1, 1, 3, 7),
            key(9, 9, 4, 4),
        ] {
            let (a, ra) = k.canonical();
            let (b, rb) = k.reversed().canonical();
            assert_eq!(a, b, "{k:?}");
            assert_eq!(a, if ra { k.reversed() } else { k });
            // A flow whose sides are equal is its own reverse: not reversed.
            assert!(ra != rb || k == k.reversed(), "{k:?}");
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
