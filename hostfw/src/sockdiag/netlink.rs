//! The `NETLINK_SOCK_DIAG` conversation: one dump request per address
//! family on a fresh socket, read until `NLMSG_DONE`.

use std::{
    os::fd::{AsRawFd, OwnedFd},
    sync::atomic::{AtomicU32, Ordering},
};

use nix::{
    errno::Errno,
    sys::{
        socket::{
            AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto,
            setsockopt, socket, sockopt::ReceiveTimeout,
        },
        time::{TimeVal, TimeValLike},
    },
};

use super::{
    Family, SockDiagError,
    parse::{DiagMsg, NLMSG_HDRLEN, ParseError, Progress, SOCK_DIAG_BY_FAMILY, parse_datagram},
};

const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ROOT | NLM_F_MATCH`.
const NLM_F_DUMP: u16 = 0x300;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, sockid.
const REQ_LEN: usize = 56;
/// Dump datagrams are at most 32 KiB; twice that leaves room.
const RECV_BUF: usize = 64 * 1024;
/// The kernel answers at once; this only bounds a wedged socket.
const RECV_TIMEOUT_SECS: i64 = 5;
/// Attempts when the kernel reports an interrupted dump.
const ATTEMPTS: usize = 3;

static SEQ: AtomicU32 = AtomicU32::new(1);

/// All TCP sockets of `family` whose state is in the `states` bit mask
/// (bit `1 << TCP_STATE`), in the calling thread's network namespace.
pub(super) fn dump_tcp(family: Family, states: u32) -> Result<Vec<DiagMsg>, SockDiagError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match dump_once(family, states) {
            Err(SockDiagError::Reply {
                source: ParseError::Interrupted,
                ..
            }) if attempt < ATTEMPTS => {}
            other => return other,
        }
    }
}

fn dump_once(family: Family, states: u32) -> Result<Vec<DiagMsg>, SockDiagError> {
    let fd = open()?;
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let req = request(family.af(), states, seq);
    let sent = sendto(
        fd.as_raw_fd(),
        &req,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .map_err(|source| SockDiagError::Send { family, source })?;
    if sent != req.len() {
        return Err(SockDiagError::Send {
            family,
            source: Errno::EMSGSIZE,
        });
    }
    let mut buf = vec![0u8; RECV_BUF];
    let mut out = Vec::new();
    loop {
        let n = receive(&fd, &mut buf, family)?;
        let datagram = buf.get(..n).ok_or(SockDiagError::Reply {
            family,
            source: ParseError::Truncated {
                what: "datagram (larger than the receive buffer)",
                have: buf.len(),
                need: n,
            },
        })?;
        let progress = parse_datagram(datagram, family.af(), seq, &mut out)
            .map_err(|source| SockDiagError::Reply { family, source })?;
        if progress == Progress::Done {
            return Ok(out);
        }
    }
}

fn open() -> Result<OwnedFd, SockDiagError> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )
    .map_err(SockDiagError::Socket)?;
    let timeout = TimeVal::seconds(RECV_TIMEOUT_SECS);
    setsockopt(&fd, ReceiveTimeout, &timeout).map_err(SockDiagError::Socket)?;
    Ok(fd)
}

/// Receives one datagram; with `MSG_TRUNC` the length returned is the
/// datagram's real length, so a datagram larger than `buf` is detected.
fn receive(fd: &OwnedFd, buf: &mut [u8], family: Family) -> Result<usize, SockDiagError> {
    loop {
        match recv(fd.as_raw_fd(), buf, MsgFlags::MSG_TRUNC) {
            Ok(0) => {
                return Err(SockDiagError::Reply {
                    family,
                    source: ParseError::Truncated {
                        what: "datagram",
                        have: 0,
                        need: NLMSG_HDRLEN,
                    },
                });
            }
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => {}
            Err(source) => return Err(SockDiagError::Receive { family, source }),
        }
    }
}

/// A `SOCK_DIAG_BY_FAMILY` dump request for TCP sockets in `states`.
fn request(af: u8, states: u32, seq: u32) -> Vec<u8> {
    let total = NLMSG_HDRLEN + REQ_LEN;
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel assigns ours
    // inet_diag_req_v2: family, protocol, idiag_ext, pad, states, then a
    // zeroed inet_diag_sockid (no filter).
    m.extend_from_slice(&[af, u8::try_from(libc::IPPROTO_TCP).unwrap_or(6), 0, 0]);
    m.extend_from_slice(&states.to_ne_bytes());
    m.resize(total, 0);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let r = request(10, 1 << 10, 5);
        assert_eq!(r.len(), 72);
        assert_eq!(&r[..4], &72u32.to_ne_bytes());
        assert_eq!(&r[4..6], &20u16.to_ne_bytes());
        assert_eq!(&r[6..8], &0x301u16.to_ne_bytes());
        assert_eq!(&r[8..12], &5u32.to_ne_bytes());
        assert_eq!(&r[16..20], &[10, 6, 0, 0]);
        assert_eq!(&r[20..24], &1024u32.to_ne_bytes());
        assert!(r[24..].iter().all(|&b| b == 0));
    }
}
