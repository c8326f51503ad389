//! The kernel's TCP sockets, read with `NETLINK_SOCK_DIAG` (inet_diag) for
//! IPv4 and IPv6, in the calling thread's network namespace.
//!
//! Two users: the lockout preflight of `hostfw apply` checks every
//! established inbound connection to a local sshd ([`established`],
//! [`sshd_ports`], [`inbound`]), and the first attach seeds the connection
//! tracker from [`established`] so that replies of connections opened
//! before hostfw started still pass.
//!
//! Addresses are as on the wire: an IPv4 peer of a dual-stack IPv6 socket
//! (`::ffff:a.b.c.d`) is reported as IPv4.

mod netlink;
mod parse;
mod procfs;

use std::{collections::HashSet, fmt, net::SocketAddr, path::Path};

pub use parse::ParseError;

/// `TCP_ESTABLISHED` (linux/tcp_states.h).
const TCP_ESTABLISHED: u8 = 1;
/// `TCP_LISTEN`.
const TCP_LISTEN: u8 = 10;
/// The port assumed for sshd when no sshd listener is found.
pub const SSH_DEFAULT_PORT: u16 = 22;

/// An established TCP connection seen from this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpConn {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The socket's inode (`socket:[INODE]` in `/proc/PID/fd`).
    pub inode: u32,
    /// The socket owner's uid.
    pub uid: u32,
}

/// A listening TCP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Listener {
    pub local: SocketAddr,
    pub inode: u32,
}

/// An address family of a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn af(self) -> u8 {
        let af = match self {
            Self::V4 => libc::AF_INET,
            Self::V6 => libc::AF_INET6,
        };
        u8::try_from(af).unwrap_or(u8::MAX)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        })
    }
}

/// Why the kernel's socket table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SockDiagError {
    #[error("cannot open a NETLINK_SOCK_DIAG socket: {0}")]
    Socket(#[source] nix::Error),
    #[error("cannot send the {family} TCP sock_diag dump request: {source}")]
    Send {
        family: Family,
        #[source]
        source: nix::Error,
    },
    #[error("cannot receive the {family} TCP sock_diag dump: {source}")]
    Receive {
        family: Family,
        #[source]
        source: nix::Error,
    },
    #[error("bad reply to the {family} TCP sock_diag dump: {source}")]
    Reply {
        family: Family,
        #[source]
        source: ParseError,
    },
}

/// All TCP connections in state ESTABLISHED, IPv4 and IPv6.
pub fn established() -> Result<Vec<TcpConn>, SockDiagError> {
    Ok(dump(TCP_ESTABLISHED)?
        .into_iter()
        .map(|m| TcpConn {
            local: m.local,
            remote: m.remote,
            inode: m.inode,
            uid: m.uid,
        })
        .collect())
}

/// All TCP sockets in state LISTEN, IPv4 and IPv6.
pub fn listeners() -> Result<Vec<Listener>, SockDiagError> {
    Ok(dump(TCP_LISTEN)?
        .into_iter()
        .map(|m| Listener {
            local: m.local,
            inode: m.inode,
        })
        .collect())
}

/// The connections whose local port is one of `listen_ports`: an
/// established socket on a listening port was accepted, so it is inbound.
pub fn inbound<'a>(conns: &'a [TcpConn], listen_ports: &[u16]) -> Vec<&'a TcpConn> {
    conns
        .iter()
        .filter(|c| listen_ports.contains(&c.local.port()))
        .collect()
}

/// The local ports sshd listens on: LISTEN sockets (in the calling
/// thread's network namespace) held by a process named `sshd`, sorted and
/// without duplicates.
///
/// Falls back to `[22]` ([`SSH_DEFAULT_PORT`]) when none is found — no
/// sshd running, sshd in another network namespace, `/proc` unreadable
/// (not root) or the socket table unreadable — so that the lockout
/// preflight still protects the usual ssh port.
pub fn sshd_ports() -> Vec<u16> {
    match ports_of("sshd", Path::new("/proc")) {
        Ok(ports) if !ports.is_empty() => ports,
        Ok(_) => vec![SSH_DEFAULT_PORT],
        Err(e) => {
            log::warn!("cannot find sshd's ports ({e}); assuming port {SSH_DEFAULT_PORT}");
            vec![SSH_DEFAULT_PORT]
        }
    }
}

/// The listening ports of processes named `name`.
fn ports_of(name: &str, proc_root: &Path) -> Result<Vec<u16>, SockDiagError> {
    let listening = listeners()?;
    let inodes: HashSet<u32> = procfs::socket_inodes_of(proc_root, name);
    let mut ports: Vec<u16> = listening
        .iter()
        .filter(|l| inodes.contains(&l.inode))
        .map(|l| l.local.port())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    Ok(ports)
}

/// Both families' TCP sockets in `state`.
fn dump(state: u8) -> Result<Vec<parse::DiagMsg>, SockDiagError> {
    let states = 1u32 << state;
    let mut all = netlink::dump_tcp(Family::V4, states)?;
    all.extend(netlink::dump_tcp(Family::V6, states)?);
    // The kernel filters by state; keep only those in case it did not.
    all.retain(|m| m.state == state);
    Ok(all)
}
