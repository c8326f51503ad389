//! Batched map operations: `BPF_MAP_LOOKUP_BATCH`, `BPF_MAP_UPDATE_BATCH`
//! and `BPF_MAP_DELETE_BATCH`, one `bpf(2)` call for many entries. aya 0.14
//! has no API for them.
//!
//! Hash maps have them since Linux 5.6, LPM tries through the kernel's
//! generic batch code. Where a kernel lacks them the first call fails before
//! touching any entry, and these functions fall back to one call per entry
//! (`BPF_MAP_UPDATE_ELEM`, `BPF_MAP_DELETE_ELEM`, `BPF_MAP_GET_NEXT_KEY`).
//!
//! The callers check `K` and `V` against the map (aya's typed wrappers do)
//! before handing its descriptor here. Per-CPU maps have a value per
//! possible CPU: only [`percpu_u64_sums`] reads them.

use std::{io, mem::size_of, os::fd::AsRawFd, os::fd::BorrowedFd};

use aya::Pod;

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;
/// The kernel's internal "not supported", which leaks to userspace when a map
/// type has no batch operation.
const ENOTSUPP: i32 = 524;
/// Entries asked for per lookup call; the kernel needs at least the largest
/// hash bucket, and asks for more with `ENOSPC`.
const LOOKUP_CHUNK: usize = 4096;

/// `union bpf_attr`, the `batch` member.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

impl BatchAttr {
    /// A call on `count` entries at `keys` and `values` (addresses).
    fn new(fd: BorrowedFd<'_>, keys: u64, values: u64, count: usize) -> Self {
        Self {
            keys,
            values,
            count: count_of(count),
            map_fd: fd.as_raw_fd() as u32,
            ..Self::default()
        }
    }
}

/// `union bpf_attr`, the member of the one-entry commands.
#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    pad: u32,
    key: u64,
    value_or_next_key: u64,
    flags: u64,
}

/// A map operation the kernel refused.
#[derive(Debug, thiserror::Error)]
#[error("after {done} entries: {source}")]
pub struct BatchError {
    /// Entries processed before the failure.
    pub done: usize,
    /// The kernel's error.
    #[source]
    pub source: io::Error,
}

/// One `bpf(2)` call with `attr`.
fn sys_bpf<A>(cmd: libc::c_long, attr: &mut A) -> Result<(), io::Error> {
    // SAFETY: attr is a valid bpf_attr prefix for `cmd`; every pointer in it
    // refers to a live buffer of the size the kernel derives from the map's
    // key and value sizes (checked by the callers) and the count.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size_of::<A>()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// One batch call; returns the count the kernel reports processed and the
/// error, if any.
fn call(cmd: libc::c_long, attr: &mut BatchAttr) -> (usize, Option<io::Error>) {
    let err = sys_bpf(cmd, attr).err();
    (attr.count as usize, err)
}

fn elem(fd: BorrowedFd<'_>, key: u64, value: u64) -> ElemAttr {
    ElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        key,
        value_or_next_key: value,
        ..ElemAttr::default()
    }
}

fn unsupported(e: &io::Error, done: usize) -> bool {
    // EINVAL: a kernel older than the batch commands.
    done == 0
        && matches!(
            e.raw_os_error(),
            Some(ENOTSUPP | libc::EOPNOTSUPP | libc::EINVAL)
        )
}

fn count_of(n: usize) -> u32 {
    // Larger batches are split by the loops (u32::MAX entries at most).
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Writes `keys[i] -> values[i]` for every `i` (flags `BPF_ANY`).
pub fn update<K: Pod, V: Pod>(
    fd: BorrowedFd<'_>,
    keys: &[K],
    values: &[V],
) -> Result<(), BatchError> {
    assert_eq!(keys.len(), values.len(), "one value per key");
    let mut done = 0;
    while done < keys.len() {
        let mut attr = BatchAttr::new(
            fd,
            keys[done..].as_ptr() as u64,
            values[done..].as_ptr() as u64,
            keys.len() - done,
        );
        match call(BPF_MAP_UPDATE_BATCH, &mut attr) {
            (_, None) => return Ok(()),
            (n, Some(e)) if unsupported(&e, done + n) => {
                return update_each(fd, keys, values);
            }
            // Interrupted: go on from where the kernel stopped.
            (n, Some(e)) if e.kind() == io::ErrorKind::Interrupted => done += n,
            (n, Some(source)) => {
                return Err(BatchError {
                    done: done + n,
                    source,
                });
            }
        }
    }
    Ok(())
}

/// [`update`] with one call per entry: the path where the kernel has no
/// batch operation.
pub fn update_each<K: Pod, V: Pod>(
    fd: BorrowedFd<'_>,
    keys: &[K],
    values: &[V],
) -> Result<(), BatchError> {
    for (done, (k, v)) in keys.iter().zip(values).enumerate() {
        let mut attr = elem(
            fd,
            std::ptr::from_ref(k) as u64,
            std::ptr::from_ref(v) as u64,
        );
        sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map_err(|source| BatchError { done, source })?;
    }
    Ok(())
}

/// Removes every key of `keys`; keys that are not there are skipped.
/// Returns how many were not there.
pub fn delete<K: Pod>(fd: BorrowedFd<'_>, keys: &[K]) -> Result<usize, BatchError> {
    let (mut done, mut missing) = (0, 0);
    while done < keys.len() {
        let mut attr = BatchAttr::new(fd, keys[done..].as_ptr() as u64, 0, keys.len() - done);
        match call(BPF_MAP_DELETE_BATCH, &mut attr) {
            (_, None) => return Ok(missing),
            (n, Some(e)) if unsupported(&e, done + n) => {
                return delete_each(fd, keys);
            }
            // The kernel stops at a missing key: skip it and go on.
            (n, Some(e)) if e.raw_os_error() == Some(libc::ENOENT) => {
                done += n + 1;
                missing += 1;
            }
            (n, Some(e)) if e.kind() == io::ErrorKind::Interrupted => done += n,
            (n, Some(source)) => {
                return Err(BatchError {
                    done: done + n,
                    source,
                });
            }
        }
    }
    Ok(missing)
}

/// [`delete`] with one call per entry.
pub fn delete_each<K: Pod>(fd: BorrowedFd<'_>, keys: &[K]) -> Result<usize, BatchError> {
    let mut missing = 0;
    for (done, k) in keys.iter().enumerate() {
        let mut attr = elem(fd, std::ptr::from_ref(k) as u64, 0);
        match sys_bpf(BPF_MAP_DELETE_ELEM, &mut attr) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => missing += 1,
            Err(source) => return Err(BatchError { done, source }),
        }
    }
    Ok(missing)
}

/// Every entry of the map, in the kernel's order.
pub fn lookup_all<K: Pod, V: Pod>(fd: BorrowedFd<'_>) -> Result<Vec<(K, V)>, BatchError> {
    let mut out = Vec::new();
    for_each_chunk(fd, |chunk: &mut Vec<(K, V)>| out.append(chunk))?;
    Ok(out)
}

/// Reads the map in chunks of up to [`LOOKUP_CHUNK`] entries, handing each
/// to `f` (which may take them).
fn for_each_chunk<K: Pod, V: Pod>(
    fd: BorrowedFd<'_>,
    mut f: impl FnMut(&mut Vec<(K, V)>),
) -> Result<(), BatchError> {
    let mut done = 0;
    let mut chunk = LOOKUP_CHUNK;
    // The position token: a key for tries and arrays, a bucket number for
    // hashes; as large as either.
    let token_words = size_of::<K>().div_ceil(8).max(1);
    let (mut token_in, mut token_out) = (vec![0u64; token_words], vec![0u64; token_words]);
    let mut first = true;
    loop {
        let mut keys: Vec<K> = Vec::with_capacity(chunk);
        let mut values: Vec<V> = Vec::with_capacity(chunk);
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { token_in.as_ptr() as u64 },
            out_batch: token_out.as_mut_ptr() as u64,
            ..BatchAttr::new(
                fd,
                keys.as_mut_ptr() as u64,
                values.as_mut_ptr() as u64,
                chunk,
            )
        };
        let (n, err) = call(BPF_MAP_LOOKUP_BATCH, &mut attr);
        let n = n.min(chunk);
        let at_end = match &err {
            None => false,
            Some(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
            Some(e) if e.raw_os_error() == Some(libc::ENOSPC) && n == 0 => {
                // A hash bucket holds more than `chunk` entries.
                chunk *= 2;
                continue;
            }
            Some(e) if first && unsupported(e, n) => {
                f(&mut lookup_each(fd)?);
                return Ok(());
            }
            Some(e) => {
                return Err(BatchError {
                    done,
                    source: io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO)),
                });
            }
        };
        // SAFETY: the kernel wrote `n` keys and values (n <= capacity); K and
        // V are plain old data.
        unsafe {
            keys.set_len(n);
            values.set_len(n);
        }
        done += n;
        let mut entries: Vec<(K, V)> = keys.into_iter().zip(values).collect();
        f(&mut entries);
        if at_end {
            return Ok(());
        }
        std::mem::swap(&mut token_in, &mut token_out);
        first = false;
    }
}

/// [`lookup_all`] with two calls per entry.
pub fn lookup_each<K: Pod, V: Pod>(fd: BorrowedFd<'_>) -> Result<Vec<(K, V)>, BatchError> {
    let mut out: Vec<(K, V)> = Vec::new();
    let mut prev: Option<K> = None;
    loop {
        let mut next = std::mem::MaybeUninit::<K>::uninit();
        let mut attr = elem(
            fd,
            prev.as_ref().map_or(0, |k| std::ptr::from_ref(k) as u64),
            next.as_mut_ptr() as u64,
        );
        match sys_bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
            Err(source) => {
                return Err(BatchError {
                    done: out.len(),
                    source,
                });
            }
        }
        // SAFETY: the kernel wrote a whole key; K is plain old data.
        let key = unsafe { next.assume_init() };
        let mut value = std::mem::MaybeUninit::<V>::uninit();
        let mut attr = elem(
            fd,
            std::ptr::from_ref(&key) as u64,
            value.as_mut_ptr() as u64,
        );
        match sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) {
            // SAFETY: the kernel wrote a whole value; V is plain old data.
            Ok(()) => out.push((key, unsafe { value.assume_init() })),
            // Removed between the two calls.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(source) => {
                return Err(BatchError {
                    done: out.len(),
                    source,
                });
            }
        }
        prev = Some(key);
    }
}

/// Per CPU sums of the `u64` entries `first..first + count` of a per-CPU
/// array: one call per [`LOOKUP_CHUNK`] entries (an array has no holes, so
/// the kernel returns them in key order). `cpus` is the number of possible
/// CPUs (each value is one `u64` per possible CPU).
pub fn percpu_u64_sums(
    fd: BorrowedFd<'_>,
    first: u32,
    count: u32,
    cpus: usize,
) -> Result<Vec<u64>, BatchError> {
    let mut out = Vec::with_capacity(count as usize);
    let mut keys = vec![0u32; LOOKUP_CHUNK];
    let mut values = vec![0u64; LOOKUP_CHUNK * cpus.max(1)];
    while out.len() < count as usize {
        let want = (count as usize - out.len()).min(LOOKUP_CHUNK);
        let next = first + u32::try_from(out.len()).unwrap_or(u32::MAX);
        // The kernel starts after the key in `in_batch`: the one before
        // `next`, or from the start when `next` is 0.
        let token_in: u64 = u64::from(next.saturating_sub(1));
        let mut token_out: u64 = 0;
        let mut attr = BatchAttr {
            in_batch: if next == 0 {
                0
            } else {
                std::ptr::from_ref(&token_in) as u64
            },
            out_batch: std::ptr::from_mut(&mut token_out) as u64,
            ..BatchAttr::new(
                fd,
                keys.as_mut_ptr() as u64,
                values.as_mut_ptr() as u64,
                want,
            )
        };
        let (n, err) = call(BPF_MAP_LOOKUP_BATCH, &mut attr);
        let n = n.min(want);
        match err {
            None => {}
            // Past the array's end.
            Some(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Some(e) if out.is_empty() && unsupported(&e, n) => {
                return percpu_u64_sums_each(fd, first, count, cpus);
            }
            Some(source) => {
                return Err(BatchError {
                    done: out.len(),
                    source,
                });
            }
        }
        if n == 0 {
            break;
        }
        out.extend(
            values[..n * cpus]
                .chunks(cpus)
                .map(|c| c.iter().sum::<u64>()),
        );
    }
    Ok(out)
}

/// [`percpu_u64_sums`] with one call per entry.
pub fn percpu_u64_sums_each(
    fd: BorrowedFd<'_>,
    first: u32,
    count: u32,
    cpus: usize,
) -> Result<Vec<u64>, BatchError> {
    let mut values = vec![0u64; cpus.max(1)];
    (first..first.saturating_add(count))
        .enumerate()
        .map(|(done, key)| {
            let mut attr = elem(
                fd,
                std::ptr::from_ref(&key) as u64,
                values.as_mut_ptr() as u64,
            );
            sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut attr)
                .map(|()| values.iter().sum())
                .map_err(|source| BatchError { done, source })
        })
        .collect()
}

/// The number of entries of a map, with as few calls as [`lookup_all`]
/// needs and without keeping them (`K` and `V` give the sizes).
pub fn count<K: Pod, V: Pod>(fd: BorrowedFd<'_>) -> Result<usize, BatchError> {
    // Chunks as lookup_all reads them, dropped as they come.
    let mut n = 0;
    for_each_chunk::<K, V>(fd, |chunk| n += chunk.len())?;
    Ok(n)
}
