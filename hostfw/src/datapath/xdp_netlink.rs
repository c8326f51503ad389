//! XDP attached through rtnetlink (`IFLA_XDP`) rather than a bpf link.
//!
//! An attachment made this way belongs to the interface, not to a file
//! descriptor: it stays when hostfw exits or crashes (fail static), and a
//! new program replaces the old one in a single step (no gap). hostfw uses
//! it where bpf links cannot be pinned.

use std::{io, os::fd::RawFd};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkMessage, LinkXdp, XdpAttached},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// Generic (skb) mode.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// Native (driver) mode.
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// What is attached to an interface's XDP hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attached {
    /// The program's id.
    pub prog_id: u32,
    /// True for native (driver) mode, false for generic.
    pub native: bool,
}

fn request(msg: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    nl.finalize();
    let mut buf = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut buf);
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    sock.send(&buf, 0)?;
    let mut out = Vec::new();
    loop {
        let (data, _) = sock.recv_from_full()?;
        let mut off = 0;
        while off < data.len() {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = usize::try_from(msg.header.length).unwrap_or(0);
            if len == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "netlink message of length 0",
                ));
            }
            off += len;
            match msg.payload {
                NetlinkPayload::Error(e) => {
                    return match e.code {
                        Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                        None => Ok(out),
                    };
                }
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::InnerMessage(m) => out.push(m),
                _ => {}
            }
        }
    }
}

/// Attaches `prog_fd` to interface `ifindex` (replacing whatever program
/// is there in the same mode), or detaches with `prog_fd == -1`.
pub fn set(ifindex: u32, prog_fd: RawFd, flags: u32) -> io::Result<()> {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    msg.attributes.push(LinkAttribute::Xdp(vec![
        LinkXdp::Fd(prog_fd),
        LinkXdp::Flags(flags),
    ]));
    request(RouteNetlinkMessage::SetLink(msg)).map(drop)
}

/// The XDP program attached to `ifindex`, if any.
pub fn query(ifindex: u32) -> io::Result<Option<Attached>> {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    for reply in request(RouteNetlinkMessage::GetLink(msg))? {
        let RouteNetlinkMessage::NewLink(link) = reply else {
            continue;
        };
        for attr in link.attributes {
            let LinkAttribute::Xdp(xdp) = attr else {
                continue;
            };
            let mut mode = None;
            let mut id = None;
            for x in xdp {
                match x {
                    LinkXdp::Attached(a) => mode = Some(a),
                    LinkXdp::ProgId(p) => id = Some(p),
                    _ => {}
                }
            }
            return Ok(match (mode, id) {
                (Some(XdpAttached::None) | None, _) | (_, None) => None,
                (Some(a), Some(prog_id)) => Some(Attached {
                    prog_id,
                    native: a == XdpAttached::Driver,
                }),
            });
        }
    }
    Ok(None)
}
