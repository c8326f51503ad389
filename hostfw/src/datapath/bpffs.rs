//! The bpf filesystem: mounted where missing, and hostfw's pin layout.

use std::path::{Path, PathBuf};

use nix::{
    mount::{MsFlags, mount},
    sys::statfs::{BPF_FS_MAGIC, statfs},
};

use super::DatapathError;

/// Makes sure `pin_root`'s parent is a bpffs (mounting one at
/// `/sys/fs/bpf` when that is where it should be) and creates the pin
/// directories.
pub fn prepare(pin_root: &Path) -> Result<(), DatapathError> {
    let fs_root = pin_root.parent().unwrap_or(Path::new("/sys/fs/bpf"));
    let is_bpffs = statfs(fs_root).is_ok_and(|s| s.filesystem_type() == BPF_FS_MAGIC);
    if !is_bpffs {
        mount(
            Some("bpf"),
            fs_root,
            Some("bpf"),
            MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|source| DatapathError::Bpffs {
            path: fs_root.to_path_buf(),
            source,
        })?;
    }
    for dir in [
        pin_root.to_path_buf(),
        links_dir(pin_root),
        xdp_owner_dir(pin_root),
    ] {
        std::fs::create_dir_all(&dir)
            .map_err(|source| DatapathError::PinDir { path: dir, source })?;
    }
    Ok(())
}

/// Directory of the pinned links.
#[must_use]
pub fn links_dir(pin_root: &Path) -> PathBuf {
    pin_root.join("links")
}

/// Directory of the records of hostfw's XDP programs, one per interface.
#[must_use]
pub fn xdp_owner_dir(pin_root: &Path) -> PathBuf {
    pin_root.join("xdp-owner")
}

/// The record of the XDP program hostfw attached to `ifname`: a symbolic
/// link whose target is the program's id (bpffs holds no regular files).
/// Dots become colons as in [`link_pin`].
#[must_use]
pub fn xdp_owner_record(pin_root: &Path, ifname: &str) -> PathBuf {
    xdp_owner_dir(pin_root).join(ifname.replace('.', ":"))
}

/// Pin path of one interface's link for one program: `IFNAME:PROGRAM`.
/// bpffs refuses names with a dot (EPERM, `bpf_lookup`), so the dots of an
/// interface name (`eth0.100`) become colons, which interface names cannot
/// hold: the name stays unique and [`link_pin_ifname`] reverses it.
#[must_use]
pub fn link_pin(pin_root: &Path, ifname: &str, program: &str) -> PathBuf {
    links_dir(pin_root).join(format!("{}:{program}", ifname.replace('.', ":")))
}

/// The interface a link pin's file name belongs to.
#[must_use]
pub fn link_pin_ifname(file_name: &str) -> Option<String> {
    let (ifname, _program) = file_name.rsplit_once(':')?;
    Some(ifname.replace(':', "."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_pin_names_have_no_dot_and_name_their_interface() {
        for ifname in ["eth0", "eth0.100", "bond0.10.20"] {
            let path = link_pin(Path::new("/sys/fs/bpf/hostfw"), ifname, "tc-ingress");
            let name = path.file_name().and_then(|n| n.to_str()).expect("name");
            assert!(!name.contains('.'), "{name}");
            assert_eq!(link_pin_ifname(name).as_deref(), Some(ifname));
        }
    }
}
