//! Giving freed memory back to the system.
//!
//! A reload of a large policy allocates hundreds of megabytes for a moment
//! (the parsed files, the lowered rules, the compile), mostly in small
//! pieces. glibc keeps freed small chunks in its heaps, so without help the
//! daemon's resident size stays near its peak after every reload.

/// Returns freed memory (see [`release_freed`]) when dropped: at the end of
/// a reload, on every path out of it.
pub struct ReleaseOnDrop;

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        release_freed();
    }
}

/// Returns the free memory of every malloc arena to the system; costs a few
/// milliseconds at 100,000 rules.
fn release_freed() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks and trims glibc's own heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Bounds the number of malloc arenas: worker threads (control server,
/// metrics, the Kubernetes watch) would otherwise each get their own, which
/// keep freed memory apart from the main heap.
pub fn limit_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt before other threads exist changes a tunable only.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
