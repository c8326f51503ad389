//! The batched map operations (`datapath::batch`) and their per-entry
//! fallbacks, on maps created in the running kernel: a hash map and an LPM
//! trie like the policy maps. Needs root.

mod common;

use std::{
    collections::BTreeMap,
    os::fd::{AsFd, FromRawFd, OwnedFd},
};

use aya::maps::lpm_trie::Key;
use hostfw::datapath::batch;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_MAP_TYPE_LPM_TRIE: u32 = 11;
const BPF_F_NO_PREALLOC: u32 = 1;

#[repr(C)]
#[derive(Default)]
struct CreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

fn create(map_type: u32, key_size: usize, value_size: usize, max_entries: u32) -> OwnedFd {
    common::require_root();
    let mut attr = CreateAttr {
        map_type,
        key_size: u32::try_from(key_size).expect("key size"),
        value_size: u32::try_from(value_size).expect("value size"),
        max_entries,
        map_flags: if map_type == BPF_MAP_TYPE_LPM_TRIE {
            BPF_F_NO_PREALLOC
        } else {
            0
        },
    };
    // SAFETY: a BPF_MAP_CREATE attr; the kernel reads size_of bytes.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_CREATE,
            std::ptr::from_mut(&mut attr),
            std::mem::size_of::<CreateAttr>(),
        )
    };
    assert!(
        fd >= 0,
        "BPF_MAP_CREATE type {map_type}: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(i32::try_from(fd).expect("fd")) }
}

/// Both paths, batched and per entry, must give the same results.
#[derive(Clone, Copy, Debug)]
enum Path {
    Batch,
    Each,
}

fn update<K: aya::Pod, V: aya::Pod>(p: Path, fd: &OwnedFd, k: &[K], v: &[V]) {
    match p {
        Path::Batch => batch::update(fd.as_fd(), k, v),
        Path::Each => batch::update_each(fd.as_fd(), k, v),
    }
    .unwrap_or_else(|e| panic!("{p:?} update: {e}"));
}

fn delete<K: aya::Pod>(p: Path, fd: &OwnedFd, k: &[K]) -> usize {
    match p {
        Path::Batch => batch::delete(fd.as_fd(), k),
        Path::Each => batch::delete_each(fd.as_fd(), k),
    }
    .unwrap_or_else(|e| panic!("{p:?} delete: {e}"))
}

fn lookup<K: aya::Pod, V: aya::Pod>(p: Path, fd: &OwnedFd) -> Vec<(K, V)> {
    match p {
        Path::Batch => batch::lookup_all(fd.as_fd()),
        Path::Each => batch::lookup_each(fd.as_fd()),
    }
    .unwrap_or_else(|e| panic!("{p:?} lookup: {e}"))
}

#[test]
fn hash_map_round_trip_on_both_paths() {
    for p in [Path::Batch, Path::Each] {
        // More entries than one lookup chunk, so the position token is used.
        let fd = create(BPF_MAP_TYPE_HASH, 8, 4, 20_000);
        let keys: Vec<u64> = (0..10_000u64).map(|i| i * 7919).collect();
        let values: Vec<u32> = (0..10_000u32).collect();
        update(p, &fd, &keys, &values);
        let got: BTreeMap<u64, u32> = lookup(p, &fd).into_iter().collect();
        let want: BTreeMap<u64, u32> = keys.iter().copied().zip(values.iter().copied()).collect();
        assert_eq!(got, want, "{p:?}: every entry read back");
        // Overwrite half, delete a quarter plus keys that are not there.
        let half: Vec<u32> = values[..5000].iter().map(|v| v + 1_000_000).collect();
        update(p, &fd, &keys[..5000], &half);
        let mut gone: Vec<u64> = keys[5000..7500].to_vec();
        gone.insert(100, 3);
        gone.push(5);
        assert_eq!(delete(p, &fd, &gone), 2, "{p:?}: two keys were missing");
        let got: BTreeMap<u64, u32> = lookup(p, &fd).into_iter().collect();
        assert_eq!(got.len(), 7500, "{p:?}");
        assert_eq!(batch::count::<u64, u32>(fd.as_fd()).expect("count"), 7500);
        assert_eq!(got.get(&keys[10]), Some(&(10 + 1_000_000)), "{p:?}");
        assert_eq!(got.get(&keys[6000]), None, "{p:?}");
        assert_eq!(got.get(&keys[9000]), Some(&9000), "{p:?}");
    }
}

#[test]
fn lpm_trie_round_trip_on_both_paths() {
    for p in [Path::Batch, Path::Each] {
        let fd = create(
            BPF_MAP_TYPE_LPM_TRIE,
            std::mem::size_of::<Key<[u8; 4]>>(),
            4,
            10_000,
        );
        let keys: Vec<Key<[u8; 4]>> = (0..6000u32)
            .map(|i| Key::new(16 + i % 17, (i << 12).to_be_bytes()))
            .collect();
        let values: Vec<u32> = (0..6000u32).collect();
        update(p, &fd, &keys, &values);
        let plain = |k: &Key<[u8; 4]>| (k.prefix_len(), k.data());
        let got: BTreeMap<_, u32> = lookup::<Key<[u8; 4]>, u32>(p, &fd)
            .iter()
            .map(|(k, v)| (plain(k), *v))
            .collect();
        let want: BTreeMap<_, u32> = keys.iter().map(plain).zip(values.iter().copied()).collect();
        assert_eq!(got, want, "{p:?}: every prefix read back");
        let mut gone = keys[..3000].to_vec();
        gone.push(Key::new(32, [1, 2, 3, 4]));
        assert_eq!(delete(p, &fd, &gone), 1, "{p:?}: one prefix was missing");
        assert_eq!(lookup::<Key<[u8; 4]>, u32>(p, &fd).len(), 3000, "{p:?}");
    }
}

#[test]
fn a_full_map_is_an_error_naming_how_far_it_got() {
    let fd = create(BPF_MAP_TYPE_HASH, 8, 4, 100);
    let keys: Vec<u64> = (0..150).collect();
    let values = vec![1u32; 150];
    let err = batch::update(fd.as_fd(), &keys, &values).expect_err("the map holds 100");
    assert_eq!(err.done, 100, "{err}");
    assert_eq!(err.source.raw_os_error(), Some(libc::E2BIG), "{err}");
    assert_eq!(lookup::<u64, u32>(Path::Batch, &fd).len(), 100);
}

#[test]
fn empty_batches_and_empty_maps() {
    let fd = create(BPF_MAP_TYPE_HASH, 8, 4, 100);
    batch::update::<u64, u32>(fd.as_fd(), &[], &[]).expect("nothing to write");
    assert_eq!(batch::delete::<u64>(fd.as_fd(), &[]).expect("nothing"), 0);
    assert!(lookup::<u64, u32>(Path::Batch, &fd).is_empty());
    assert!(lookup::<u64, u32>(Path::Each, &fd).is_empty());
}

const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;

#[repr(C)]
struct ElemAttr {
    map_fd: u32,
    pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[test]
fn per_cpu_sums_of_a_range_on_both_paths() {
    let cpus = aya::util::nr_cpus().expect("possible CPUs");
    let fd = create(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 10_000);
    // Entry k holds k + c on CPU c: its sum is cpus * k + cpus * (cpus - 1) / 2.
    for key in 0..10_000u32 {
        let values: Vec<u64> = (0..cpus as u64).map(|c| u64::from(key) + c).collect();
        let mut attr = ElemAttr {
            map_fd: u32::try_from(std::os::fd::AsRawFd::as_raw_fd(&fd)).expect("fd"),
            pad: 0,
            key: std::ptr::from_ref(&key) as u64,
            value: values.as_ptr() as u64,
            flags: 0,
        };
        // SAFETY: a BPF_MAP_UPDATE_ELEM attr with live key and value buffers
        // of the map's sizes (one u64 per possible CPU).
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                2,
                std::ptr::from_mut(&mut attr),
                std::mem::size_of::<ElemAttr>(),
            )
        };
        assert_eq!(r, 0, "update {key}: {}", std::io::Error::last_os_error());
    }
    let n = cpus as u64;
    let want = |k: u64| n * k + n * (n - 1) / 2;
    for (first, count) in [
        (0u32, 10u32),
        (1, 9000),
        (4095, 4098),
        (9990, 10),
        (5000, 0),
    ] {
        let batched = batch::percpu_u64_sums(fd.as_fd(), first, count, cpus).expect("batch");
        let each = batch::percpu_u64_sums_each(fd.as_fd(), first, count, cpus).expect("each");
        assert_eq!(batched, each, "{first}+{count}");
        let expected: Vec<u64> = (first..first + count).map(|k| want(u64::from(k))).collect();
        assert_eq!(batched, expected, "{first}+{count}");
    }
}
