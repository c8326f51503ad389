//! Who may use the control socket, and creating it so that nobody else
//! can: a private directory, the umask around `bind`, peer credentials.

use std::{
    io,
    os::{
        fd::AsRawFd as _,
        unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    },
    path::{Path, PathBuf},
};

use nix::{
    sys::stat::{Mode, umask},
    unistd::Uid,
};
use tokio::net::{UnixListener, UnixStream};

use crate::config::ControlGroup;

/// Why the control socket cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The socket's directory could be used by others to replace or reach
    /// the socket.
    #[error(
        "control socket directory {}: {why}; use a directory owned by root (or the daemon's \
         user) that only its owner can write to, such as /run/hostfw",
        dir.display()
    )]
    UnsafeDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A daemon answers on the socket already.
    #[error("another hostfw daemon answers on {}", path.display())]
    InUse {
        /// The socket.
        path: PathBuf,
    },
    /// A system call failed.
    #[error("control socket {}: {what}: {source}", path.display())]
    Io {
        /// The socket or its directory.
        path: PathBuf,
        /// What was done.
        what: &'static str,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// Who may use the socket: root, the daemon's user, and the members of
/// `[control] group`.
#[derive(Clone, Debug)]
pub(super) struct Access {
    pub(super) euid: Uid,
    pub(super) group: Option<ControlGroup>,
}

impl Access {
    /// `Err` with the line to tell the peer if it may not.
    pub(super) fn check(&self, stream: &UnixStream) -> Result<(), String> {
        let cred = stream
            .peer_cred()
            .map_err(|e| format!("permission denied: the peer's credentials are unknown: {e}"))?;
        let groups = match &self.group {
            Some(_) => peer_groups(stream),
            None => Vec::new(),
        };
        self.decide(cred.uid(), cred.gid(), &groups)
    }

    pub(super) fn decide(&self, uid: u32, gid: u32, groups: &[u32]) -> Result<(), String> {
        if uid == 0 || uid == self.euid.as_raw() {
            return Ok(());
        }
        match &self.group {
            None => Err(format!("permission denied: uid {uid} is not root")),
            Some(g) if gid == g.gid.as_raw() || groups.contains(&g.gid.as_raw()) => Ok(()),
            Some(g) => Err(format!(
                "permission denied: uid {uid} is not root nor in group {}",
                g.name
            )),
        }
    }
}

/// The supplementary groups of the peer when it connected
/// (`SO_PEERGROUPS`, Linux 4.13); empty if the kernel cannot say.
pub(super) fn peer_groups(stream: &UnixStream) -> Vec<u32> {
    const GID: usize = size_of::<libc::gid_t>();
    let mut groups: Vec<libc::gid_t> = vec![0; 32];
    loop {
        let Ok(mut len) = libc::socklen_t::try_from(groups.len() * GID) else {
            return Vec::new();
        };
        // SAFETY: `groups` is valid for writes of `len` bytes, and `len`
        // is a valid socklen_t the kernel updates.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &raw mut len,
            )
        };
        let needed = usize::try_from(len).unwrap_or(0) / GID;
        if rc == 0 {
            groups.truncate(needed.min(groups.len()));
            return groups;
        }
        // ERANGE: `len` holds the size needed.
        let range = io::Error::last_os_error().raw_os_error() == Some(libc::ERANGE);
        if !range || needed <= groups.len() || needed > 65_536 {
            return Vec::new();
        }
        groups.resize(needed, 0);
    }
}

/// Creates the socket's directory if it is missing (0700, or 0750 of the
/// control group) and refuses one that others could write to.
pub(super) fn prepare_dir(
    dir: &Path,
    group: Option<&ControlGroup>,
    euid: Uid,
) -> Result<(), SocketError> {
    use std::os::unix::fs::MetadataExt as _;
    let io = |what| {
        move |source| SocketError::Io {
            path: dir.to_path_buf(),
            what,
            source,
        }
    };
    let mode = if group.is_some() { 0o750 } else { 0o700 };
    let created = match std::fs::metadata(dir) {
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(dir)
                .map_err(io("creating the directory"))?;
            true
        }
        Err(e) => return Err(io("reading the directory")(e)),
    };
    let meta = std::fs::metadata(dir).map_err(io("reading the directory"))?;
    let unsafe_dir = |why: String| SocketError::UnsafeDir {
        dir: dir.to_path_buf(),
        why,
    };
    if !meta.is_dir() {
        return Err(unsafe_dir("not a directory".into()));
    }
    if meta.uid() != 0 && meta.uid() != euid.as_raw() {
        return Err(unsafe_dir(format!(
            "owned by uid {}, not root nor uid {euid}",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_dir(format!(
            "group- or world-writable (mode {:04o})",
            meta.mode() & 0o7777
        )));
    }
    if let Some(g) = group {
        nix::unistd::chown(dir, None, Some(g.gid))
            .map_err(|e| io("giving the directory to the control group")(e.into()))?;
    }
    if created || group.is_some() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .map_err(io("setting the directory's mode"))?;
    }
    Ok(())
}

/// Binds `path` under umask 0177 (restored after), so that the socket is
/// never more than 0600 from its creation.
pub(super) fn bind_private(path: &Path) -> io::Result<UnixListener> {
    let before = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(before);
    bound
}
