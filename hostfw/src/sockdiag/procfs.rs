//! Which sockets a process holds: `/proc/PID/comm` names the process and
//! its `/proc/PID/fd/*` links read `socket:[INODE]` for sockets.

use std::{collections::HashSet, fs, path::Path};

/// The inodes of the sockets held by processes whose name (`comm`) is
/// `name`. Processes that exit during the scan or whose descriptors cannot
/// be read (not root) are skipped.
pub(super) fn socket_inodes_of(proc_root: &Path, name: &str) -> HashSet<u32> {
    let mut inodes = HashSet::new();
    let Ok(entries) = fs::read_dir(proc_root) else {
        return inodes;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str() else {
            continue;
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let dir = entry.path();
        let Ok(comm) = fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if comm.trim_end_matches('\n') != name {
            continue;
        }
        let Ok(fds) = fs::read_dir(dir.join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Some(inode) = fs::read_link(fd.path())
                .ok()
                .and_then(|t| t.to_str().and_then(socket_inode))
            {
                inodes.insert(inode);
            }
        }
    }
    inodes
}

/// The inode of a `socket:[INODE]` link target.
pub(super) fn socket_inode(target: &str) -> Option<u32> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_link_targets() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("socket:[]"), None);
        assert_eq!(socket_inode("pipe:[12345]"), None);
        assert_eq!(socket_inode("socket:[99999999999]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn finds_our_own_sockets() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let comm = fs::read_to_string("/proc/self/comm").expect("comm");
        let inodes = socket_inodes_of(Path::new("/proc"), comm.trim_end());
        assert!(!inodes.is_empty(), "no socket found for {comm:?}");
        drop(listener);
        assert!(socket_inodes_of(Path::new("/proc"), "no-such-process-name").is_empty());
    }
}
