//! Parsing of `NETLINK_SOCK_DIAG` replies: netlink headers and
//! `struct inet_diag_msg` (linux/inet_diag.h). Pure and defensive: every
//! length is checked before it is read, and a malformed buffer is an error,
//! never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use nix::errno::Errno;

/// `struct nlmsghdr`.
pub(super) const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
/// `SOCK_DIAG_BY_FAMILY` (linux/sock_diag.h).
pub(super) const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLM_F_DUMP_INTR`: the dump changed while it was being read.
const NLM_F_DUMP_INTR: u16 = 0x10;
/// `struct inet_diag_msg`: 4 bytes, a 48-byte `inet_diag_sockid`, then
/// expires, rqueue, wqueue, uid and inode (u32 each).
const INET_DIAG_MSG_LEN: usize = 72;

/// Why a reply could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer bytes than the structure being read needs.
    #[error("truncated {what}: {have} bytes, need {need}")]
    Truncated {
        what: &'static str,
        have: usize,
        need: usize,
    },
    /// Well-sized but inconsistent content.
    #[error("malformed reply: {0}")]
    Malformed(String),
    /// The kernel answered with an `NLMSG_ERROR` (or a failed `NLMSG_DONE`).
    #[error("the kernel answered with an error: {0}")]
    Kernel(Errno),
    /// The kernel flagged the dump as interrupted (`NLM_F_DUMP_INTR`); it
    /// must be repeated.
    #[error("the dump was interrupted by a concurrent change (NLM_F_DUMP_INTR)")]
    Interrupted,
}

/// One socket of a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DiagMsg {
    pub state: u8,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub uid: u32,
    pub inode: u32,
}

/// Whether more datagrams of the dump follow.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Progress {
    More,
    Done,
}

/// Parses one received datagram of a dump requested with sequence number
/// `seq` for address family `family` (`AF_INET` or `AF_INET6`), appending
/// its sockets to `out`.
pub(super) fn parse_datagram(
    buf: &[u8],
    family: u8,
    seq: u32,
    out: &mut Vec<DiagMsg>,
) -> Result<Progress, ParseError> {
    if buf.is_empty() {
        return Err(ParseError::Truncated {
            what: "datagram",
            have: 0,
            need: NLMSG_HDRLEN,
        });
    }
    let mut rest = buf;
    while !rest.is_empty() {
        let header = rest.get(..NLMSG_HDRLEN).ok_or(ParseError::Truncated {
            what: "netlink header",
            have: rest.len(),
            need: NLMSG_HDRLEN,
        })?;
        let len = usize::try_from(u32_at(header, 0)?)
            .map_err(|_| ParseError::Malformed("message length overflows usize".into()))?;
        let kind = u16_at(header, 4)?;
        let flags = u16_at(header, 6)?;
        let msg_seq = u32_at(header, 8)?;
        if len < NLMSG_HDRLEN {
            return Err(ParseError::Malformed(format!(
                "netlink message length {len} is shorter than its header"
            )));
        }
        let msg = rest.get(..len).ok_or(ParseError::Truncated {
            what: "netlink message",
            have: rest.len(),
            need: len,
        })?;
        if msg_seq != seq {
            return Err(ParseError::Malformed(format!(
                "reply has sequence number {msg_seq}, expected {seq}"
            )));
        }
        if flags & NLM_F_DUMP_INTR != 0 {
            return Err(ParseError::Interrupted);
        }
        let payload = &msg[NLMSG_HDRLEN..];
        match kind {
            NLMSG_NOOP => {}
            NLMSG_ERROR => {
                let code = i32_at(payload, 0, "NLMSG_ERROR payload")?;
                if code != 0 {
                    return Err(ParseError::Kernel(errno(code)));
                }
            }
            NLMSG_DONE => {
                // The payload, when present, is the dump's final status.
                if payload.len() >= 4 {
                    let code = i32_at(payload, 0, "NLMSG_DONE payload")?;
                    if code < 0 {
                        return Err(ParseError::Kernel(errno(code)));
                    }
                }
                return Ok(Progress::Done);
            }
            NLMSG_OVERRUN => {
                return Err(ParseError::Malformed("NLMSG_OVERRUN: data lost".into()));
            }
            SOCK_DIAG_BY_FAMILY => out.push(parse_inet_diag_msg(payload, family)?),
            other => {
                return Err(ParseError::Malformed(format!(
                    "unexpected netlink message type {other}"
                )));
            }
        }
        // Messages are 4-byte aligned; the last one may end the buffer.
        let advance = len.saturating_add(3) & !3;
        rest = rest.get(advance..).unwrap_or(&[]);
    }
    Ok(Progress::More)
}

/// Parses a `struct inet_diag_msg` (attributes after it are ignored).
fn parse_inet_diag_msg(payload: &[u8], family: u8) -> Result<DiagMsg, ParseError> {
    let msg = payload
        .get(..INET_DIAG_MSG_LEN)
        .ok_or(ParseError::Truncated {
            what: "inet_diag_msg",
            have: payload.len(),
            need: INET_DIAG_MSG_LEN,
        })?;
    if msg[0] != family {
        return Err(ParseError::Malformed(format!(
            "socket of address family {} in a dump of family {family}",
            msg[0]
        )));
    }
    // inet_diag_sockid: sport, dport (big endian), src[16], dst[16], if.
    let sport = u16::from_be_bytes([msg[4], msg[5]]);
    let dport = u16::from_be_bytes([msg[6], msg[7]]);
    let ifindex = u32_at(msg, 40)?;
    let local = socket_addr(family, &msg[8..24], sport, ifindex)?;
    let remote = socket_addr(family, &msg[24..40], dport, ifindex)?;
    Ok(DiagMsg {
        state: msg[1],
        local,
        remote,
        uid: u32_at(msg, 64)?,
        inode: u32_at(msg, 68)?,
    })
}

/// An address of `inet_diag_sockid`. IPv4-mapped IPv6 addresses (an IPv4
/// peer of a dual-stack IPv6 socket) become IPv4: that is what is on the
/// wire. A link-local IPv6 address gets the socket's interface as scope.
fn socket_addr(family: u8, raw: &[u8], port: u16, ifindex: u32) -> Result<SocketAddr, ParseError> {
    let bytes: [u8; 16] = raw
        .try_into()
        .map_err(|_| ParseError::Malformed("address field is not 16 bytes".into()))?;
    match i32::from(family) {
        libc::AF_INET => {
            let v4 = Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]);
            Ok(SocketAddr::new(IpAddr::V4(v4), port))
        }
        libc::AF_INET6 => {
            let v6 = Ipv6Addr::from(bytes);
            if let Some(v4) = v6.to_ipv4_mapped() {
                return Ok(SocketAddr::new(IpAddr::V4(v4), port));
            }
            let scope = if v6.is_unicast_link_local() {
                ifindex
            } else {
                0
            };
            Ok(SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)))
        }
        other => Err(ParseError::Malformed(format!(
            "unsupported address family {other}"
        ))),
    }
}

/// A negative netlink error code as an errno.
fn errno(code: i32) -> Errno {
    Errno::from_raw(code.saturating_neg())
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ParseError> {
    field(b, at, "u16").map(u16::from_ne_bytes)
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ParseError> {
    field(b, at, "u32").map(u32::from_ne_bytes)
}

fn i32_at(b: &[u8], at: usize, what: &'static str) -> Result<i32, ParseError> {
    field(b, at, what).map(i32::from_ne_bytes)
}

fn field<const N: usize>(b: &[u8], at: usize, what: &'static str) -> Result<[u8; N], ParseError> {
    b.get(at..at.saturating_add(N))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(ParseError::Truncated {
            what,
            have: b.len().saturating_sub(at),
            need: N,
        })
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
