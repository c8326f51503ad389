//! Attaching the programs to an interface so that they outlive hostfw.
//!
//! Two ways, chosen once per loader:
//! - **Pinned links** (XDP link, TCX links pinned under the pin root): a
//!   restarted daemon swaps its programs into the same links.
//! - **Netlink** (XDP through `IFLA_XDP`, TC filters on a clsact qdisc)
//!   where bpf links cannot be pinned (`BPF_OBJ_PIN` of a link fails with
//!   EPERM on some kernels and sandboxes). These attachments belong to the
//!   interface and stay when hostfw exits; a restarted daemon replaces the
//!   programs in place.
//!
//! Either way enforcement has no gap across a restart and a crash leaves
//! the last policy enforcing (fail static).
//!
//! **Ownership of XDP.** An interface has one XDP program. hostfw records
//! the id of the program it attached (`<pin_root>/xdp-owner/<ifname>`, see
//! [`super::bpffs::xdp_owner_record`]; a pinned XDP link of hostfw's is a
//! record too) and treats an attached program as its own only when its id
//! is recorded, whatever its name. Another program is left in place:
//! hostfw attaches its TC programs only and enforces there
//! ([`XdpState::Foreign`]); TC ingress then decides every packet itself
//! (it trusts XDP's hand-off mark only where XDP is hostfw's own).

use std::{
    fmt,
    os::fd::{AsFd as _, AsRawFd as _},
    path::Path,
};

use aya::{
    Ebpf,
    maps::{Array, MapData},
    programs::{
        LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        tc::{self, NlOptions, SchedClassifierLink, TcAttachOptions, TcHandle},
        xdp::XdpLink,
    },
    sys::SyscallError,
    util::KernelVersion,
};
use hostfw_common::{
    names::{MAP_CONFIG, MAP_XDP_OWNED, PROG_TC_EGRESS, PROG_TC_INGRESS, PROG_XDP},
    stats::MAX_IFINDEX,
};

use super::{
    DatapathError,
    bpffs::{link_pin, xdp_owner_record},
    xdp_netlink,
};

/// How XDP runs on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpAttach {
    /// In the driver, before an skb exists.
    Native,
    /// In the generic (skb) path; the driver has no XDP support.
    Generic,
}

/// What runs at XDP on a managed interface.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpState {
    /// hostfw's XDP program, in this mode.
    Hostfw(XdpAttach),
    /// A program hostfw does not own: left in place; hostfw enforces at
    /// TC only.
    Foreign {
        /// The program's id.
        prog_id: u32,
        /// The program's name as the kernel holds it (may be empty).
        name: String,
    },
}

impl fmt::Display for XdpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hostfw(XdpAttach::Native) => f.write_str("xdp native"),
            Self::Hostfw(XdpAttach::Generic) => f.write_str("xdp generic"),
            Self::Foreign { prog_id, name } => write!(
                f,
                "xdp: another program (id {prog_id}, name {name}) is attached; \
                 hostfw enforces at TC only"
            ),
        }
    }
}

/// How the TC programs are attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TcAttach {
    /// TCX links (kernel 6.6 and later, pinnable links).
    Tcx,
    /// Filters on a clsact qdisc.
    Clsact,
}

/// What is attached to one interface.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Attachment {
    /// Interface name.
    pub ifname: String,
    /// hostfw's XDP and its mode, or another program.
    pub xdp: XdpState,
    /// TC attachment kind.
    pub tc: TcAttach,
    /// True when an existing attachment was taken over (a restart).
    pub adopted: bool,
    /// True when the links are pinned; false for netlink attachments
    /// (which also stay when hostfw exits).
    pub pinned: bool,
}

impl fmt::Display for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let xdp = &self.xdp;
        let tc = match self.tc {
            TcAttach::Tcx => "tc ingress+egress (tcx)",
            TcAttach::Clsact => "tc ingress+egress (clsact)",
        };
        let how = match (self.adopted, self.pinned) {
            (true, _) => ", taken over from the previous run",
            (false, true) => ", links pinned",
            (false, false) => ", netlink",
        };
        write!(f, "{}: {xdp}, {tc}{how}", self.ifname)
    }
}

/// Priority of hostfw's clsact filters: first.
const TC_PRIORITY: u16 = 1;
/// Handle of hostfw's clsact filters.
const TC_HANDLE: TcHandle = TcHandle::new(0, 1);

fn xdp_pin_name(mode: XdpAttach) -> &'static str {
    match mode {
        XdpAttach::Native => "xdp-native",
        XdpAttach::Generic => "xdp-generic",
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn pin_error(path: &Path, e: &dyn std::error::Error) -> DatapathError {
    DatapathError::LinkPin {
        path: path.to_path_buf(),
        message: chain(e),
    }
}

fn open_pin(path: &Path) -> Result<Option<FdLink>, DatapathError> {
    if !path.exists() {
        return Ok(None);
    }
    PinnedLink::from_pin(path)
        .map(|p| Some(FdLink::from(p)))
        .map_err(|e| pin_error(path, &e))
}

/// Pins a link. `Ok(false)`: links cannot be pinned here (EPERM); the link
/// is then gone and the caller uses netlink instead.
fn try_pin(link: FdLink, path: &Path) -> Result<bool, DatapathError> {
    match link.pin(path) {
        Ok(_) => Ok(true),
        Err(aya::pin::PinError::SyscallError(SyscallError { io_error, .. }))
            if io_error.raw_os_error() == Some(libc::EPERM) =>
        {
            log::info!(
                "bpf links cannot be pinned here (EPERM): attaching through netlink, which also outlives hostfw"
            );
            Ok(false)
        }
        Err(e) => Err(pin_error(path, &e)),
    }
}

/// Attaches (or takes over) all three programs on `ifname`; where another
/// program runs at XDP, only the TC programs.
///
/// `pin_links` remembers whether link pins work here (`None`: not tried).
pub fn attach(
    ebpf: &mut Ebpf,
    pin_root: &Path,
    ifname: &str,
    pin_links: &mut Option<bool>,
) -> Result<Attachment, DatapathError> {
    let ifindex = nix::net::if_::if_nametoindex(ifname)
        .map_err(|_| DatapathError::NoInterface(ifname.to_owned()))?;
    let tcx = KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0));
    let existing = xdp_netlink::query(ifindex).map_err(|e| netlink_error(ifname, &e))?;
    if let Some(a) = existing
        && !owns(pin_root, ifname, a.prog_id)
    {
        let xdp = XdpState::Foreign {
            prog_id: a.prog_id,
            name: program_name(a.prog_id),
        };
        // Before TC runs here: TC ingress must not trust a mark from it.
        set_owned(ebpf, ifname, ifindex, false)?;
        remove_record(pin_root, ifname)?;
        return attach_tc_only(ebpf, pin_root, ifname, xdp, tcx, pin_links);
    }
    // A program attached through netlink (a previous run) is replaced the
    // same way: a link cannot be created over it.
    // (netlink also reports a program attached through a link: pinned
    // links of ours are taken over as links, below.)
    let has_link_pins = [XdpAttach::Native, XdpAttach::Generic]
        .into_iter()
        .any(|m| link_pin(pin_root, ifname, xdp_pin_name(m)).exists());
    let by_netlink = !has_link_pins && existing.is_some();
    if tcx
        && !by_netlink
        && *pin_links != Some(false)
        && let Some(a) = attach_links(ebpf, pin_root, ifname, pin_links)?
    {
        record_ours(ebpf, pin_root, ifname, ifindex)?;
        return Ok(a);
    }
    let (xdp, xdp_adopted) = xdp_by_netlink(ebpf, ifname, ifindex, existing)?;
    record_ours(ebpf, pin_root, ifname, ifindex)?;
    let tc_adopted = tc_pair_by_netlink(ebpf, ifname)?;
    Ok(Attachment {
        ifname: ifname.to_owned(),
        xdp: XdpState::Hostfw(xdp),
        tc: TcAttach::Clsact,
        adopted: xdp_adopted && tc_adopted,
        pinned: false,
    })
}

/// TC ingress and egress only, next to another program's XDP: TCX links
/// where they can be pinned, clsact filters otherwise.
fn attach_tc_only(
    ebpf: &mut Ebpf,
    pin_root: &Path,
    ifname: &str,
    xdp: XdpState,
    tcx: bool,
    pin_links: &mut Option<bool>,
) -> Result<Attachment, DatapathError> {
    if tcx && *pin_links != Some(false) {
        let first = pin_links.is_none();
        match tcx_links(ebpf, pin_root, ifname, first)? {
            Some(adopted) => {
                *pin_links = Some(true);
                return Ok(Attachment {
                    ifname: ifname.to_owned(),
                    xdp,
                    tc: TcAttach::Tcx,
                    adopted,
                    pinned: true,
                });
            }
            None => *pin_links = Some(false),
        }
    }
    let adopted = tc_pair_by_netlink(ebpf, ifname)?;
    Ok(Attachment {
        ifname: ifname.to_owned(),
        xdp,
        tc: TcAttach::Clsact,
        adopted,
        pinned: false,
    })
}

/// Pinned XDP and TCX links; `None` when links cannot be pinned here.
fn attach_links(
    ebpf: &mut Ebpf,
    pin_root: &Path,
    ifname: &str,
    pin_links: &mut Option<bool>,
) -> Result<Option<Attachment>, DatapathError> {
    // XDP.
    let prog: &mut Xdp = super::program_mut(ebpf, PROG_XDP)?;
    let mut adopted = None;
    for mode in [XdpAttach::Native, XdpAttach::Generic] {
        let path = link_pin(pin_root, ifname, xdp_pin_name(mode));
        if let Some(fd_link) = open_pin(&path)? {
            let link = XdpLink::try_from(fd_link).map_err(|e| pin_error(&path, &e))?;
            prog.attach_to_link(link)
                .map_err(|e| DatapathError::program(PROG_XDP, format!("replace on {ifname}"), e))?;
            adopted = Some(mode);
            break;
        }
    }
    let xdp = match adopted {
        Some(mode) => mode,
        None => {
            let (id, mode) = match prog.attach(ifname, XdpMode::Driver) {
                Ok(id) => (id, XdpAttach::Native),
                Err(_) => (
                    prog.attach(ifname, XdpMode::Skb).map_err(|e| {
                        DatapathError::program(PROG_XDP, format!("attach to {ifname}"), e)
                    })?,
                    XdpAttach::Generic,
                ),
            };
            let link = prog
                .take_link(id)
                .map_err(|e| DatapathError::program(PROG_XDP, "take link", e))?;
            let path = link_pin(pin_root, ifname, xdp_pin_name(mode));
            let fd_link = FdLink::try_from(link).map_err(|e| pin_error(&path, &e))?;
            let pinned = try_pin(fd_link, &path)?;
            *pin_links = Some(pinned);
            if !pinned {
                return Ok(None);
            }
            mode
        }
    };
    // The XDP link could be pinned: the TCX links must be too.
    tcx_links(ebpf, pin_root, ifname, false)?;
    Ok(Some(Attachment {
        ifname: ifname.to_owned(),
        xdp: XdpState::Hostfw(xdp),
        tc: TcAttach::Tcx,
        adopted: adopted.is_some(),
        pinned: true,
    }))
}

/// Pinned TCX links for ingress and egress, existing ones taken over.
/// `may_fall_back`: when the first pin fails with EPERM, `Ok(None)` (links
/// cannot be pinned here); otherwise that is an error. `Some(adopted)`:
/// both links were already pinned.
fn tcx_links(
    ebpf: &mut Ebpf,
    pin_root: &Path,
    ifname: &str,
    may_fall_back: bool,
) -> Result<Option<bool>, DatapathError> {
    let mut adopted = true;
    for (name, kind) in [
        (PROG_TC_INGRESS, TcAttachType::Ingress),
        (PROG_TC_EGRESS, TcAttachType::Egress),
    ] {
        let prog: &mut SchedClassifier = super::program_mut(ebpf, name)?;
        let path = link_pin(pin_root, ifname, name);
        if let Some(fd_link) = open_pin(&path)? {
            let link = SchedClassifierLink::try_from(fd_link).map_err(|e| pin_error(&path, &e))?;
            prog.attach_to_link(link)
                .map_err(|e| DatapathError::program(name, format!("replace on {ifname}"), e))?;
            continue;
        }
        adopted = false;
        let id = prog
            .attach_with_options(ifname, kind, TcAttachOptions::TcxOrder(LinkOrder::first()))
            .map_err(|e| DatapathError::program(name, format!("attach (tcx) to {ifname}"), e))?;
        let link = prog
            .take_link(id)
            .map_err(|e| DatapathError::program(name, "take link", e))?;
        let fd_link = FdLink::try_from(link).map_err(|e| pin_error(&path, &e))?;
        let pinned = try_pin(fd_link, &path)?;
        if !pinned && may_fall_back && kind == TcAttachType::Ingress {
            return Ok(None);
        }
        link_pinned(pinned, &path)?;
    }
    Ok(Some(adopted))
}

fn link_pinned(pinned: bool, path: &Path) -> Result<(), DatapathError> {
    if pinned {
        Ok(())
    } else {
        Err(DatapathError::LinkPin {
            path: path.to_path_buf(),
            message: "an earlier link could be pinned but this TCX link could not".into(),
        })
    }
}

/// XDP through `IFLA_XDP`: native where the driver supports it; hostfw's
/// existing attachment (the caller checked it is hostfw's) is replaced in
/// its own mode.
fn xdp_by_netlink(
    ebpf: &mut Ebpf,
    ifname: &str,
    ifindex: u32,
    existing: Option<xdp_netlink::Attached>,
) -> Result<(XdpAttach, bool), DatapathError> {
    let prog: &mut Xdp = super::program_mut(ebpf, PROG_XDP)?;
    let fd = prog
        .fd()
        .map_err(|e| DatapathError::program(PROG_XDP, "fd", e))?
        .as_fd()
        .as_raw_fd();
    let modes: &[XdpAttach] = match existing {
        Some(a) if a.native => &[XdpAttach::Native],
        Some(_) => &[XdpAttach::Generic],
        None => &[XdpAttach::Native, XdpAttach::Generic],
    };
    let mut last = None;
    for &mode in modes {
        let flags = match mode {
            XdpAttach::Native => xdp_netlink::XDP_FLAGS_DRV_MODE,
            XdpAttach::Generic => xdp_netlink::XDP_FLAGS_SKB_MODE,
        };
        match xdp_netlink::set(ifindex, fd, flags) {
            Ok(()) => return Ok((mode, existing.is_some())),
            Err(e) => last = Some(e),
        }
    }
    Err(netlink_error(
        ifname,
        &last.unwrap_or_else(|| std::io::Error::other("no XDP mode to try")),
    ))
}

fn netlink_error(ifname: &str, e: &std::io::Error) -> DatapathError {
    DatapathError::Netlink {
        ifname: ifname.to_owned(),
        message: e.to_string(),
    }
}

/// hostfw's clsact filters on ingress and egress; whether both existed.
fn tc_pair_by_netlink(ebpf: &mut Ebpf, ifname: &str) -> Result<bool, DatapathError> {
    let mut adopted = true;
    for (name, kind) in [
        (PROG_TC_INGRESS, TcAttachType::Ingress),
        (PROG_TC_EGRESS, TcAttachType::Egress),
    ] {
        adopted &= tc_by_netlink(ebpf, ifname, name, kind)?;
    }
    Ok(adopted)
}

/// A clsact filter of hostfw's priority and handle; an existing one is
/// replaced in place. Returns whether one existed.
fn tc_by_netlink(
    ebpf: &mut Ebpf,
    ifname: &str,
    name: &'static str,
    kind: TcAttachType,
) -> Result<bool, DatapathError> {
    if let Err(e) = tc::qdisc_add_clsact(ifname) {
        let exists = match &e {
            tc::TcError::AlreadyAttached => true,
            tc::TcError::NetlinkError(n) => n.raw_os_error() == Some(libc::EEXIST),
            _ => false,
        };
        if !exists {
            return Err(DatapathError::Netlink {
                ifname: ifname.to_owned(),
                message: format!("adding the clsact qdisc: {e}"),
            });
        }
    }
    let prog: &mut SchedClassifier = super::program_mut(ebpf, name)?;
    let options = TcAttachOptions::Netlink(NlOptions {
        priority: TC_PRIORITY,
        handle: TC_HANDLE,
        classid: None,
    });
    let (id, existed) = match prog.attach_with_options(ifname, kind, options) {
        Ok(id) => (id, false),
        Err(first) => {
            let link = SchedClassifierLink::attached(ifname, kind, TC_PRIORITY, TC_HANDLE, None)
                .map_err(|e| netlink_error(ifname, &e))?;
            let id = prog.attach_to_link(link).map_err(|e| {
                DatapathError::program(name, format!("attach to {ifname} ({first}; replace)"), e)
            })?;
            (id, true)
        }
    };
    let link = prog
        .take_link(id)
        .map_err(|e| DatapathError::program(name, "take link", e))?;
    // The filter must outlive this process: dropping the link would remove
    // it. It holds no file descriptor, only where the filter is.
    std::mem::forget(link);
    Ok(existed)
}

/// Removes every pinned link of `ifname`, detaching those programs.
pub fn detach_links(pin_root: &Path, ifname: &str) -> Result<(), Vec<DatapathError>> {
    let mut errors = Vec::new();
    let names = [
        xdp_pin_name(XdpAttach::Native),
        xdp_pin_name(XdpAttach::Generic),
        PROG_TC_INGRESS,
        PROG_TC_EGRESS,
    ];
    for name in names {
        let path = link_pin(pin_root, ifname, name);
        if !path.exists() {
            continue;
        }
        match PinnedLink::from_pin(&path) {
            Ok(pinned) => {
                if let Err(e) = pinned.unpin() {
                    errors.push(pin_error(&path, &e));
                }
            }
            Err(e) => errors.push(pin_error(&path, &e)),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Removes hostfw's netlink attachments from `ifname`: its XDP program
/// (only if the record under `pin_root` says it is hostfw's: another
/// program stays) and its clsact filters (found by program name).
pub fn detach_netlink(pin_root: &Path, ifname: &str) -> Result<bool, DatapathError> {
    let ifindex = nix::net::if_::if_nametoindex(ifname)
        .map_err(|_| DatapathError::NoInterface(ifname.to_owned()))?;
    let mut found = false;
    let attached = xdp_netlink::query(ifindex).map_err(|e| netlink_error(ifname, &e))?;
    if let Some(a) = attached
        && owns(pin_root, ifname, a.prog_id)
    {
        let flags = if a.native {
            xdp_netlink::XDP_FLAGS_DRV_MODE
        } else {
            xdp_netlink::XDP_FLAGS_SKB_MODE
        };
        xdp_netlink::set(ifindex, -1, flags).map_err(|e| netlink_error(ifname, &e))?;
        found = true;
    }
    remove_record(pin_root, ifname)?;
    for (name, kind) in [
        (PROG_TC_INGRESS, TcAttachType::Ingress),
        (PROG_TC_EGRESS, TcAttachType::Egress),
    ] {
        if tc::qdisc_detach_program(ifname, kind, name).is_ok() {
            found = true;
        }
    }
    Ok(found)
}

/// Whether the XDP program `prog_id` attached to `ifname` is hostfw's: its
/// id is the one recorded when hostfw attached it, or the program of one
/// of hostfw's pinned XDP links there. Never by name.
///
/// Releases before the record attached through netlink without one: where
/// no record exists, a program that uses hostfw's pinned config map (one
/// of this pin root's maps) is hostfw's too.
fn owns(pin_root: &Path, ifname: &str, prog_id: u32) -> bool {
    let record = xdp_owner_record(pin_root, ifname);
    if std::fs::symlink_metadata(&record).is_err() && uses_pinned_config(pin_root, prog_id) {
        return true;
    }
    if read_record(pin_root, ifname) == Some(prog_id) {
        return true;
    }
    [XdpAttach::Native, XdpAttach::Generic]
        .into_iter()
        .filter_map(|m| {
            let path = link_pin(pin_root, ifname, xdp_pin_name(m));
            let pinned = PinnedLink::from_pin(&path).ok()?;
            FdLink::from(pinned).info().ok()
        })
        .any(|info| info.program_id() == prog_id)
}

/// Whether program `prog_id` uses the config map pinned under `pin_root`.
fn uses_pinned_config(pin_root: &Path, prog_id: u32) -> bool {
    let Some(config) = MapData::from_pin(pin_root.join(MAP_CONFIG))
        .ok()
        .and_then(|m| m.info().ok())
        .map(|i| i.id())
    else {
        return false;
    };
    aya::programs::loaded_programs()
        .flatten()
        .find(|p| p.id() == prog_id)
        .and_then(|p| p.map_ids().ok().flatten())
        .is_some_and(|ids| ids.contains(&config))
}

/// The recorded id of hostfw's XDP program on `ifname`: the target of a
/// symbolic link (bpffs holds no regular files).
fn read_record(pin_root: &Path, ifname: &str) -> Option<u32> {
    std::fs::read_link(xdp_owner_record(pin_root, ifname))
        .ok()?
        .to_str()?
        .parse()
        .ok()
}

/// Records that hostfw's XDP program (as loaded here) is attached to
/// `ifname`, and lets TC ingress trust its mark there.
fn record_ours(
    ebpf: &mut Ebpf,
    pin_root: &Path,
    ifname: &str,
    ifindex: u32,
) -> Result<(), DatapathError> {
    let prog: &mut Xdp = super::program_mut(ebpf, PROG_XDP)?;
    let id = prog
        .info()
        .map_err(|e| DatapathError::program(PROG_XDP, "info", e))?
        .id();
    let path = xdp_owner_record(pin_root, ifname);
    remove_record(pin_root, ifname)?;
    std::os::unix::fs::symlink(id.to_string(), &path)
        .map_err(|source| DatapathError::PinDir { path, source })?;
    set_owned(ebpf, ifname, ifindex, true)
}

fn remove_record(pin_root: &Path, ifname: &str) -> Result<(), DatapathError> {
    let path = xdp_owner_record(pin_root, ifname);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(DatapathError::PinDir { path, source: e })
        }
        _ => Ok(()),
    }
}

/// Sets whether XDP on `ifindex` is hostfw's own, for TC ingress. An index
/// past the map has no slot: TC there never trusts the mark.
fn set_owned(
    ebpf: &mut Ebpf,
    ifname: &str,
    ifindex: u32,
    owned: bool,
) -> Result<(), DatapathError> {
    if ifindex >= MAX_IFINDEX {
        return Ok(());
    }
    let map = ebpf.map_mut(MAP_XDP_OWNED).ok_or(DatapathError::Missing {
        kind: "map",
        name: MAP_XDP_OWNED,
    })?;
    let fail = |e: aya::maps::MapError| DatapathError::XdpOwner {
        ifname: ifname.to_owned(),
        message: format!("map {MAP_XDP_OWNED}, slot {ifindex}: {e}"),
    };
    let mut array: Array<_, u32> = Array::try_from(map).map_err(fail)?;
    array.set(ifindex, u32::from(owned), 0).map_err(fail)
}

/// The name the kernel holds for program `id` (empty when unknown).
fn program_name(id: u32) -> String {
    aya::programs::loaded_programs()
        .flatten()
        .find(|p| p.id() == id)
        .and_then(|p| p.name_as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Interfaces that have pinned links under `pin_root`.
#[must_use]
pub fn pinned_interfaces(pin_root: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(super::bpffs::links_dir(pin_root))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            super::bpffs::link_pin_ifname(&name)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}
