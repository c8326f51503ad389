//! Interface index → name, cached.

use std::collections::HashMap;

/// How names are looked up.
type Lookup = Box<dyn FnMut(u32) -> Option<String> + Send>;

/// A cache of interface names by index. Unknown indexes are cached too
/// (as unknown); call [`IfNames::forget`] or [`IfNames::clear`] when links
/// come and go.
pub struct IfNames {
    cache: HashMap<u32, Option<String>>,
    lookup: Lookup,
}

/// More entries than this and the cache starts over (veth churn).
const MAX_ENTRIES: usize = 4096;

fn system_lookup(ifindex: u32) -> Option<String> {
    let name = nix::net::if_::if_indextoname(ifindex).ok()?;
    // nix 0.30 returns an empty name, not an error, for an unknown index.
    Some(name.to_string_lossy().into_owned()).filter(|n| !n.is_empty())
}

impl Default for IfNames {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for IfNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IfNames")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl IfNames {
    /// Names from the kernel (`if_indextoname`).
    #[must_use]
    pub fn new() -> Self {
        Self::with_lookup(system_lookup)
    }

    /// Names from `lookup` (tests, or a table kept from netlink).
    #[must_use]
    pub fn with_lookup(lookup: impl FnMut(u32) -> Option<String> + Send + 'static) -> Self {
        Self {
            cache: HashMap::new(),
            lookup: Box::new(lookup),
        }
    }

    /// The name of `ifindex`; `None` when there is no such interface.
    pub fn name(&mut self, ifindex: u32) -> Option<String> {
        if let Some(known) = self.cache.get(&ifindex) {
            return known.clone();
        }
        if self.cache.len() >= MAX_ENTRIES {
            self.cache.clear();
        }
        let name = (self.lookup)(ifindex);
        self.cache.insert(ifindex, name.clone());
        name
    }

    /// Forgets `ifindex` (the link was removed or renamed).
    pub fn forget(&mut self, ifindex: u32) {
        self.cache.remove(&ifindex);
    }

    /// Forgets every name.
    pub fn clear(&mut self) {
        self.cache.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    #[test]
    fn caches_names_and_misses() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let mut names = IfNames::with_lookup(move |i| {
            c.fetch_add(1, Ordering::Relaxed);
            (i == 2).then(|| "eth0".to_string())
        });
        assert_eq!(names.name(2).as_deref(), Some("eth0"));
        assert_eq!(names.name(2).as_deref(), Some("eth0"));
        assert_eq!(names.name(9), None);
        assert_eq!(names.name(9), None);
        assert_eq!(calls.load(Ordering::Relaxed), 2);
        names.forget(2);
        assert_eq!(names.name(2).as_deref(), Some("eth0"));
        assert_eq!(calls.load(Ordering::Relaxed), 3);
        names.clear();
        assert_eq!(names.name(9), None);
        assert_eq!(calls.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn the_kernel_knows_loopback() {
        let mut names = IfNames::new();
        assert_eq!(names.name(1).as_deref(), Some("lo"));
        assert_eq!(names.name(u32::MAX), None);
    }
}
