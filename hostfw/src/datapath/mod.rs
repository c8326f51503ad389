//! The kernel side: load the eBPF object, pin, attach, write policy.
//!
//! - [`Datapath::load`] loads the object with its maps pinned under the pin
//!   root (existing pins are reused, so a restart keeps the maps, the policy
//!   and the connection tracker).
//! - [`attach::attach`] attaches or adopts the programs on an interface.
//! - [`writer`] writes a compiled [`crate::mapstate::MapState`] into the
//!   inactive generation and switches to it with one map write.

pub mod attach;
pub mod batch;
pub mod bpffs;
pub mod counters;
mod error;
pub mod events;
pub mod kernel;
mod pins;
pub mod seed;
pub mod slots;
pub mod testrun;
pub mod writer;
pub mod xdp_netlink;

use std::path::{Path, PathBuf};

use aya::{
    Ebpf, EbpfLoader,
    programs::{Program, SchedClassifier, Xdp},
};
pub use error::DatapathError;
use hostfw_common::names::{
    GLOBAL_XDP_MARK, MAP_CONNTRACK, MAP_CONNTRACK_NEW, MAP_FRAGS, MAP_HOSTS_V4, MAP_HOSTS_V6,
    MAP_IDENT_V4, MAP_IDENT_V6, MAP_POLICY, MAP_POLICY_EXACT, MAP_RULE_STATS, PROG_TC_EGRESS,
    PROG_TC_INGRESS, PROG_XDP,
};

/// The compiled eBPF object, built by `build.rs`.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/hostfw"));

/// Map sizes. Changing a size takes effect when the maps are created, i.e.
/// on a load without existing pins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapSizes {
    /// Entries of the IPv4 identity trie and of the host hash, each (both
    /// generations).
    pub ident_v4: u32,
    /// Entries of the IPv6 identity trie (both generations).
    pub ident_v6: u32,
    /// Entries of the policy trie and of the exact-match hash, each (both
    /// generations).
    pub policy: u32,
    /// Tracked established connections (`[conntrack] established`).
    pub conntrack_established: u32,
    /// Tracked new connections, not answered yet (`[conntrack] new`).
    pub conntrack_new: u32,
    /// Tracked fragmented datagrams.
    pub frags: u32,
    /// Rule ids per generation (per-rule counters).
    pub rule_ids: u32,
}

impl Default for MapSizes {
    fn default() -> Self {
        Self {
            ident_v4: 262_144,
            ident_v6: 262_144,
            policy: 524_288,
            conntrack_established: hostfw_common::conntrack::DEFAULT_CT_ESTABLISHED,
            conntrack_new: hostfw_common::conntrack::DEFAULT_CT_NEW,
            frags: 8192,
            rule_ids: hostfw_common::stats::DEFAULT_MAX_RULE_IDS,
        }
    }
}

/// Where and how to load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Pin directory, normally `/sys/fs/bpf/hostfw`.
    pub pin_root: PathBuf,
    /// Map sizes.
    pub sizes: MapSizes,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            pin_root: PathBuf::from(hostfw_common::names::PIN_ROOT),
            sizes: MapSizes::default(),
        }
    }
}

/// The loaded object with its pinned maps.
pub struct Datapath {
    ebpf: Ebpf,
    pin_root: PathBuf,
    sizes: MapSizes,
    /// Whether link pins work here (`None`: not tried yet).
    pin_links: Option<bool>,
    /// The hand-off mark of this load (see [`Self::xdp_mark`]).
    xdp_mark: u32,
    /// Each generation's entries as last written here, with the revision
    /// they were written under: writes then need no read-back.
    slots: [Option<(u32, crate::mapstate::MapState)>; 2],
    /// When each generation stopped being the one the config word selects,
    /// as switched by this loader: packets that read the config word just
    /// before may still be reading it for [`writer::GRACE`].
    retired: [Option<std::time::Instant>; 2],
}

impl Datapath {
    /// Loads the object: creates (or reopens) the pinned maps and loads the
    /// programs into the kernel, where the verifier checks them.
    pub fn load(opts: &LoadOptions) -> Result<Self, DatapathError> {
        if let Some(why) = kernel::refusal(&kernel::release(), &kernel::missing()) {
            return Err(DatapathError::Kernel(why));
        }
        bpffs::prepare(&opts.pin_root)?;
        let s = opts.sizes;
        let resized = pins::set_aside_resized(&opts.pin_root, &s)?;
        let rule_stats = s
            .rule_ids
            .saturating_mul(hostfw_common::config::GENERATIONS);
        let xdp_mark = random_mark();
        let mut ebpf = EbpfLoader::new()
            .default_map_pin_directory(&opts.pin_root)
            .override_global(GLOBAL_XDP_MARK, &xdp_mark, true)
            .map_max_entries(MAP_IDENT_V4, s.ident_v4)
            .map_max_entries(MAP_HOSTS_V4, s.ident_v4)
            .map_max_entries(MAP_IDENT_V6, s.ident_v6)
            .map_max_entries(MAP_HOSTS_V6, s.ident_v6)
            .map_max_entries(MAP_POLICY, s.policy)
            .map_max_entries(MAP_POLICY_EXACT, s.policy)
            .map_max_entries(MAP_CONNTRACK, s.conntrack_established)
            .map_max_entries(MAP_CONNTRACK_NEW, s.conntrack_new)
            .map_max_entries(MAP_FRAGS, s.frags)
            .map_max_entries(MAP_RULE_STATS, rule_stats)
            .load(OBJECT)
            .map_err(|e| DatapathError::Load(Box::new(e)))?;
        pins::migrate(&mut ebpf, resized)?;
        let xdp: &mut Xdp = program_mut(&mut ebpf, PROG_XDP)?;
        xdp.load()
            .map_err(|e| DatapathError::program(PROG_XDP, "load", e))?;
        for name in [PROG_TC_INGRESS, PROG_TC_EGRESS] {
            let tc: &mut SchedClassifier = program_mut(&mut ebpf, name)?;
            tc.load()
                .map_err(|e| DatapathError::program(name, "load", e))?;
        }
        Ok(Self {
            ebpf,
            pin_root: opts.pin_root.clone(),
            sizes: s,
            pin_links: None,
            xdp_mark,
            slots: [None, None],
            retired: [None, None],
        })
    }

    /// The pin directory.
    #[must_use]
    pub fn pin_root(&self) -> &Path {
        &self.pin_root
    }

    /// The map sizes requested at load.
    #[must_use]
    pub fn sizes(&self) -> MapSizes {
        self.sizes
    }

    /// The metadata mark with which this load's XDP tells TC ingress it
    /// passed a packet: drawn at random at load, so another XDP program
    /// has no fixed value to forge (TC also trusts it only where XDP is
    /// hostfw's own).
    #[must_use]
    pub fn xdp_mark(&self) -> u32 {
        self.xdp_mark
    }

    /// Attaches (or adopts) the programs on `ifname`.
    pub fn attach(&mut self, ifname: &str) -> Result<attach::Attachment, DatapathError> {
        attach::attach(&mut self.ebpf, &self.pin_root, ifname, &mut self.pin_links)
    }

    /// The loaded object, for test runs and inspection.
    #[must_use]
    pub fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }

    /// A map of the object by name.
    pub(crate) fn map_named(&self, name: &'static str) -> Result<&aya::maps::Map, DatapathError> {
        self.ebpf
            .map(name)
            .ok_or(DatapathError::Missing { kind: "map", name })
    }

    /// A map of the object by name, mutably.
    pub(crate) fn map_mut_named(
        &mut self,
        name: &'static str,
    ) -> Result<&mut aya::maps::Map, DatapathError> {
        self.ebpf
            .map_mut(name)
            .ok_or(DatapathError::Missing { kind: "map", name })
    }

    /// The loaded object, mutably.
    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Detaches from every interface with pinned links and removes every
    /// pin, maps included: the firewall is gone afterwards.
    pub fn remove_all(pin_root: &Path) -> Result<(), Vec<DatapathError>> {
        let mut errors = Vec::new();
        for ifname in attach::pinned_interfaces(pin_root) {
            if let Err(mut e) = attach::detach_links(pin_root, &ifname) {
                errors.append(&mut e);
            }
        }
        for name in hostfw_common::names::MAPS {
            let path = pin_root.join(name);
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                errors.push(DatapathError::PinDir { path, source: e });
            }
        }
        let records = bpffs::xdp_owner_dir(pin_root);
        for entry in std::fs::read_dir(&records).into_iter().flatten().flatten() {
            let path = entry.path();
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                errors.push(DatapathError::PinDir { path, source: e });
            }
        }
        for dir in [bpffs::links_dir(pin_root), records, pin_root.to_path_buf()] {
            if let Err(e) = std::fs::remove_dir(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                errors.push(DatapathError::PinDir {
                    path: dir,
                    source: e,
                });
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// A random non-zero hand-off mark.
fn random_mark() -> u32 {
    loop {
        let m: u32 = rand::random();
        if m != 0 {
            return m;
        }
    }
}

/// A program of the object by name, as its concrete type.
pub(crate) fn program_mut<'a, T>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut T, DatapathError>
where
    &'a mut T: TryFrom<&'a mut Program, Error = aya::programs::ProgramError>,
{
    let prog = ebpf.program_mut(name).ok_or(DatapathError::Missing {
        kind: "program",
        name,
    })?;
    prog.try_into()
        .map_err(|e| DatapathError::program(name, "type check", e))
}

/// The boot clock in nanoseconds (`CLOCK_BOOTTIME`, the clock of
/// `bpf_ktime_get_boot_ns`).
pub fn boot_ns() -> Result<u64, DatapathError> {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map_err(DatapathError::Clock)?;
    let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
    Ok(secs * 1_000_000_000 + nanos)
}
