//! Reload on file change: the configuration file and the policy paths are
//! watched with inotify (their directories, since editors replace files by
//! renaming); a burst of changes gives one reload once it settles.

use std::{
    ffi::OsString,
    os::fd::{AsFd, AsRawFd, RawFd},
    path::{Path, PathBuf},
};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::io::unix::AsyncFd;

/// The inotify instance, readable from tokio.
pub struct Watch {
    fd: AsyncFd<Fd>,
    /// The file name to react to per watched directory (`None`: any).
    names: Vec<(WatchDescriptor, Option<OsString>)>,
}

struct Fd(Inotify);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

fn flags() -> AddWatchFlags {
    AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MODIFY
}

impl Watch {
    /// Watches `config` and every path of `policies` (directories
    /// themselves, files through their directory).
    pub fn new(config: &Path, policies: &[PathBuf]) -> std::io::Result<Self> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        let mut names = Vec::new();
        let mut targets: Vec<(PathBuf, Option<OsString>)> = Vec::new();
        let file_target = |p: &Path| {
            (
                p.parent().unwrap_or(Path::new(".")).to_path_buf(),
                p.file_name().map(ToOwned::to_owned),
            )
        };
        targets.push(file_target(config));
        for p in policies {
            if p.is_dir() {
                targets.push((p.clone(), None));
            } else {
                targets.push(file_target(p));
            }
        }
        for (dir, name) in targets {
            match inotify.add_watch(&dir, flags()) {
                Ok(wd) => names.push((wd, name)),
                Err(e) => log::warn!("not watching {} for changes: {e}", dir.display()),
            }
        }
        // SAFETY: the inotify fd is owned by `Fd` and stays open and the
        // same for as long as the AsyncFd owns it.
        let fd = unsafe { AsyncFd::register(Fd(inotify)) }.map_err(std::io::Error::from)?;
        Ok(Self { fd, names })
    }

    /// Waits until a watched file changes.
    pub async fn changed(&mut self) -> std::io::Result<()> {
        loop {
            let mut guard = self.fd.readable_mut().await?;
            let events = match guard.get_inner_mut().0.read_events() {
                Ok(ev) => ev,
                Err(nix::errno::Errno::EAGAIN) => {
                    guard.clear_ready();
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let relevant = events.iter().any(|e| {
                self.names
                    .iter()
                    .filter(|(wd, _)| *wd == e.wd)
                    .any(|(_, name)| match (name, &e.name) {
                        (None, _) => true,
                        (Some(want), Some(got)) => want == got,
                        (Some(_), None) => false,
                    })
            });
            if relevant {
                return Ok(());
            }
        }
    }
}
