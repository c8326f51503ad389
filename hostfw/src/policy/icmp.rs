//! ICMP and ICMPv6 type names, as Cilium's `pkg/policy/api/icmp.go`
//! (`icmpIpv4TypeNameToCode`, `icmpIpv6TypeNameToCode`) accepts them.

use super::model::IcmpFamily;

/// IPv4 ICMP type names.
const V4: &[(&str, u8)] = &[
    ("EchoReply", 0),
    ("DestinationUnreachable", 3),
    ("Redirect", 5),
    ("Echo", 8),
    ("EchoRequest", 8),
    ("RouterAdvertisement", 9),
    ("RouterSelection", 10),
    ("TimeExceeded", 11),
    ("ParameterProblem", 12),
    ("Timestamp", 13),
    ("TimestampReply", 14),
    ("Photuris", 40),
    ("ExtendedEchoRequest", 42),
    ("ExtendedEchoReply", 43),
];

/// ICMPv6 type names.
const V6: &[(&str, u8)] = &[
    ("DestinationUnreachable", 1),
    ("PacketTooBig", 2),
    ("TimeExceeded", 3),
    ("ParameterProblem", 4),
    ("EchoRequest", 128),
    ("EchoReply", 129),
    ("MulticastListenerQuery", 130),
    ("MulticastListenerReport", 131),
    ("MulticastListenerDone", 132),
    ("RouterSolicitation", 133),
    ("RouterAdvertisement", 134),
    ("NeighborSolicitation", 135),
    ("NeighborAdvertisement", 136),
    ("RedirectMessage", 137),
    ("RouterRenumbering", 138),
    ("ICMPNodeInformationQuery", 139),
    ("ICMPNodeInformationResponse", 140),
    ("InverseNeighborDiscoverySolicitation", 141),
    ("InverseNeighborDiscoveryAdvertisement", 142),
    ("HomeAgentAddressDiscoveryRequest", 144),
    ("HomeAgentAddressDiscoveryReply", 145),
    ("MobilePrefixSolicitation", 146),
    ("MobilePrefixAdvertisement", 147),
    ("DuplicateAddressRequestCodeSuffix", 157),
    ("DuplicateAddressConfirmationCodeSuffix", 158),
    ("ExtendedEchoRequest", 160),
    ("ExtendedEchoReply", 161),
];

const fn table(family: IcmpFamily) -> &'static [(&'static str, u8)] {
    match family {
        IcmpFamily::V4 => V4,
        IcmpFamily::V6 => V6,
    }
}

/// The type named `name` in `family` (exact spelling, as Cilium).
#[must_use]
pub fn type_by_name(family: IcmpFamily, name: &str) -> Option<u8> {
    table(family)
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, t)| t)
}

/// The name of type `icmp_type` in `family`, for messages (the longer
/// name where two share a type: `EchoRequest`, not `Echo`).
#[must_use]
pub fn name_of(family: IcmpFamily, icmp_type: u8) -> Option<&'static str> {
    table(family)
        .iter()
        .filter(|&&(_, t)| t == icmp_type)
        .map(|&(n, _)| n)
        .max_by_key(|n| n.len())
}

/// The names of `family`, for messages.
#[must_use]
pub fn names(family: IcmpFamily) -> String {
    table(family)
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The family name as written in policies.
#[must_use]
pub const fn family_name(family: IcmpFamily) -> &'static str {
    match family {
        IcmpFamily::V4 => "IPv4",
        IcmpFamily::V6 => "IPv6",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_per_family() {
        assert_eq!(type_by_name(IcmpFamily::V4, "EchoRequest"), Some(8));
        assert_eq!(type_by_name(IcmpFamily::V4, "Echo"), Some(8));
        assert_eq!(type_by_name(IcmpFamily::V4, "EchoReply"), Some(0));
        assert_eq!(type_by_name(IcmpFamily::V6, "EchoRequest"), Some(128));
        assert_eq!(type_by_name(IcmpFamily::V6, "EchoReply"), Some(129));
        assert_eq!(type_by_name(IcmpFamily::V4, "NeighborSolicitation"), None);
        assert_eq!(
            type_by_name(IcmpFamily::V6, "NeighborSolicitation"),
            Some(135)
        );
        assert_eq!(type_by_name(IcmpFamily::V6, "Echo"), None);
        assert_eq!(type_by_name(IcmpFamily::V4, "echorequest"), None);
        assert_eq!(name_of(IcmpFamily::V4, 8), Some("EchoRequest"));
        assert_eq!(name_of(IcmpFamily::V6, 135), Some("NeighborSolicitation"));
        assert_eq!(name_of(IcmpFamily::V6, 250), None);
    }
}
