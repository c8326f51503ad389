//! Attaching the programs to an interface: XDP (native, else generic) and
//! TC on both directions (TCX, else clsact). Link pins make the attachment
//! outlive the process; a later process adopts them by swapping its own
//! programs into the same links, so enforcement has no gap.

use std::{fmt, io, path::Path};

use aya::{
    Ebpf,
    programs::{
        LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode,
        links::{FdLink, LinkError, PinnedLink},
        tc::{self, TcAttachOptions},
        xdp::XdpLink,
    },
    sys::SyscallError,
    util::KernelVersion,
};
use hostfw_common::names::{PROG_TC_EGRESS, PROG_TC_INGRESS, PROG_XDP};

use super::{DatapathError, bpffs::link_pin};

/// How XDP runs on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpAttach {
    /// In the driver, before an skb exists.
    Native,
    /// In the generic (skb) path; the driver has no XDP support.
    Generic,
}

/// How the TC programs are attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TcAttach {
    /// TCX links (kernel 6.6 and later).
    Tcx,
    /// Filters on a clsact qdisc (older kernels).
    Clsact,
}

/// What is attached to one interface.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Attachment {
    /// Interface name.
    pub ifname: String,
    /// XDP mode.
    pub xdp: XdpAttach,
    /// TC attachment kind.
    pub tc: TcAttach,
    /// True when existing pinned links were taken over.
    pub adopted: bool,
    /// True when the links are pinned (they outlive this process).
    pub pinned: bool,
}

impl fmt::Display for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let xdp = match self.xdp {
            XdpAttach::Native => "xdp native",
            XdpAttach::Generic => "xdp generic",
        };
        let tc = match self.tc {
            TcAttach::Tcx => "tc ingress+egress (tcx)",
            TcAttach::Clsact => "tc ingress+egress (clsact)",
        };
        let how = match (self.adopted, self.pinned) {
            (true, _) => " (adopted)",
            (false, true) => "",
            (false, false) => " (not pinned: detached when hostfw exits)",
        };
        write!(f, "{}: {xdp}, {tc}{how}", self.ifname)
    }
}

fn xdp_pin_name(mode: XdpAttach) -> &'static str {
    match mode {
        XdpAttach::Native => "xdp-native",
        XdpAttach::Generic => "xdp-generic",
    }
}

fn not_found(e: &LinkError) -> bool {
    matches!(e, LinkError::SyscallError(SyscallError { io_error, .. })
        if io_error.kind() == io::ErrorKind::NotFound)
}

fn open_pin(path: &Path) -> Result<Option<FdLink>, DatapathError> {
    if !path.exists() {
        return Ok(None);
    }
    match PinnedLink::from_pin(path) {
        Ok(pinned) => Ok(Some(FdLink::from(pinned))),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(DatapathError::LinkPin {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
    }
}

/// Pins a link. `Ok(false)`: this kernel or sandbox refuses to pin links
/// (EPERM); the link is then gone and the caller attaches again, held by
/// this process only.
fn try_pin(link: FdLink, path: &Path) -> Result<bool, DatapathError> {
    match link.pin(path) {
        Ok(_) => Ok(true),
        Err(aya::pin::PinError::SyscallError(SyscallError { io_error, .. }))
            if io_error.raw_os_error() == Some(libc::EPERM) =>
        {
            log::warn!(
                "cannot pin links under {} (EPERM): the attachment lasts only while this process runs",
                path.parent().unwrap_or(path).display()
            );
            Ok(false)
        }
        Err(e) => Err(DatapathError::LinkPin {
            path: path.to_path_buf(),
            message: chain(&e),
        }),
    }
}

/// An error with its causes, for messages.
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

/// Attaches (or adopts) all three programs on `ifname`.
///
/// `pin_links` remembers whether link pins work here (`None`: not tried).
pub fn attach(
    ebpf: &mut Ebpf,
    pin_root: &Path,
    ifname: &str,
    pin_links: &mut Option<bool>,
) -> Result<Attachment, DatapathError> {
    if nix::net::if_::if_nametoindex(ifname).is_err() {
        return Err(DatapathError::NoInterface(ifname.to_owned()));
    }
    let (xdp, xdp_adopted) = attach_xdp(ebpf, pin_root, ifname, pin_links)?;
    let (tc, tc_adopted) = attach_tc(ebpf, pin_root, ifname, pin_links)?;
    Ok(Attachment {
        ifname: ifname.to_owned(),
        xdp,
        tc,
        adopted: xdp_adopted && tc_adopted,
        pinned: *pin_links == Some(true),
    })
}

fn attach_xdp(
    ebpf: &mut Ebpf,
    pin_root: &Path,
    ifname: &str,
    pin_links: &mut Option<bool>,
) -> Result<(XdpAttach, bool), DatapathError> {
    let prog: &mut Xdp = super::program_mut(ebpf, PROG_XDP)?;
    for mode in [XdpAttach::Native, XdpAttach::Generic] {
        let path = link_pin(pin_root, ifname, xdp_pin_name(mode));
        if let Some(fd_link) = open_pin(&path)? {
            let link = XdpLink::try_from(fd_link).map_err(|e| DatapathError::LinkPin {
                path: path.clone(),
                message: e.to_string(),
            })?;
            prog.attach_to_link(link)
                .map_err(|e| DatapathError::program(PROG_XDP, format!("replace on {ifname}"), e))?;
            return Ok((mode, true));
        }
    }
    let (id, mode) = match prog.attach(ifname, XdpMode::Driver) {
        Ok(id) => (id, XdpAttach::Native),
        Err(native) => match prog.attach(ifname, XdpMode::Skb) {
            Ok(id) => (id, XdpAttach::Generic),
            Err(generic) => {
                return Err(DatapathError::program(
                    PROG_XDP,
                    format!("attach to {ifname} (native: {native})"),
                    generic,
                ));
            }
        },
    };
    if *pin_links == Some(false) {
        return Ok((mode, false));
    }
    let link = prog
        .take_link(id)
        .map_err(|e| DatapathError::program(PROG_XDP, "take link", e))?;
    let path = link_pin(pin_root, ifname, xdp_pin_name(mode));
    let fd_link = FdLink::try_from(link).map_err(|e| DatapathError::LinkPin {
        path: path.clone(),
        message: format!("XDP attached through netlink, not a link: {e}"),
    })?;
    let pinned = try_pin(fd_link, &path)?;
    *pin_links = Some(pinned);
    if !pinned {
        let flags = match mode {
            XdpAttach::Native => XdpMode::Driver,
            XdpAttach::Generic => XdpMode::Skb,
        };
        prog.attach(ifname, flags)
            .map_err(|e| DatapathError::program(PROG_XDP, format!("attach to {ifname}"), e))?;
    }
    Ok((mode, false))
}

fn attach_tc(
    ebpf: &mut Ebpf,
    pin_root: &Path,
    ifname: &str,
    pin_links: &mut Option<bool>,
) -> Result<(TcAttach, bool), DatapathError> {
    let tcx = KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0));
    let mut adopted = true;
    for (name, kind) in [
        (PROG_TC_INGRESS, TcAttachType::Ingress),
        (PROG_TC_EGRESS, TcAttachType::Egress),
    ] {
        let prog: &mut SchedClassifier = super::program_mut(ebpf, name)?;
        let path = link_pin(pin_root, ifname, name);
        if tcx && let Some(fd_link) = open_pin(&path)? {
            let link = fd_link
                .try_into()
                .map_err(|e: LinkError| DatapathError::LinkPin {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            prog.attach_to_link(link)
                .map_err(|e| DatapathError::program(name, format!("replace on {ifname}"), e))?;
            continue;
        }
        adopted = false;
        if tcx {
            let id = prog
                .attach_with_options(ifname, kind, TcAttachOptions::TcxOrder(LinkOrder::first()))
                .map_err(|e| {
                    DatapathError::program(name, format!("attach (tcx) to {ifname}"), e)
                })?;
            if *pin_links == Some(false) {
                continue;
            }
            let link = prog
                .take_link(id)
                .map_err(|e| DatapathError::program(name, "take link", e))?;
            let fd_link = FdLink::try_from(link).map_err(|e| DatapathError::LinkPin {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let pinned = try_pin(fd_link, &path)?;
            *pin_links = Some(pinned);
            if !pinned {
                prog.attach_with_options(
                    ifname,
                    kind,
                    TcAttachOptions::TcxOrder(LinkOrder::first()),
                )
                .map_err(|e| {
                    DatapathError::program(name, format!("attach (tcx) to {ifname}"), e)
                })?;
            }
        } else {
            // clsact: the filter lives on the qdisc; it stays while this
            // process holds the program and is removed on detach.
            if let Err(e) = tc::qdisc_add_clsact(ifname) {
                let exists = match &e {
                    tc::TcError::AlreadyAttached => true,
                    tc::TcError::NetlinkError(n) => n.raw_os_error() == Some(libc::EEXIST),
                    _ => false,
                };
                if !exists {
                    return Err(DatapathError::LinkPin {
                        path: path.clone(),
                        message: format!("adding clsact qdisc to {ifname}: {e}"),
                    });
                }
            }
            prog.attach(ifname, kind).map_err(|e| {
                DatapathError::program(name, format!("attach (clsact) to {ifname}"), e)
            })?;
        }
    }
    let kind = if tcx { TcAttach::Tcx } else { TcAttach::Clsact };
    Ok((kind, adopted))
}

/// Removes every pinned link of `ifname`, detaching the programs.
pub fn detach(pin_root: &Path, ifname: &str) -> Result<(), Vec<DatapathError>> {
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
                    errors.push(DatapathError::LinkPin {
                        path,
                        message: e.to_string(),
                    });
                }
            }
            Err(e) if not_found(&e) => {}
            Err(e) => errors.push(DatapathError::LinkPin {
                path,
                message: e.to_string(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
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
            Some(name.split_once('.')?.0.to_owned())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}
