//! A real full disk: the store on a small tmpfs, filled until sled reports ENOSPC.
//!
//! Needs permission to mount a tmpfs (root, as in CI's containers); without it the test says
//! why and passes without checking anything.

use std::path::{Path, PathBuf};
use std::process::Command;

use sop_store::{Batch, Op, Store, StoreError};
use sop_store_sled::SledOptions;

/// A tmpfs of `bytes`, unmounted on drop.
struct SmallDisk {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl SmallDisk {
    fn mount(bytes: u64) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let mount = dir.path().join("disk");
        std::fs::create_dir(&mount).ok()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(&mount)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "skipped: cannot mount a tmpfs here ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Self { _dir: dir, mount })
    }

    fn path(&self) -> &Path {
        &self.mount
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

fn record(i: u64) -> Batch {
    Batch::new().op(Op::KvSet {
        plugin: "fill".into(),
        key: format!("{i:08}"),
        value: vec![(i % 251) as u8; 8 * 1024],
        expires_at: None,
    })
}

fn key(i: u64) -> String {
    format!("{i:08}")
}

/// How many `record`s of `0..n` the store holds.
fn held(store: &dyn Store, n: u64) -> u64 {
    (0..n)
        .filter(|i| store.kv_get("fill", &key(*i), now()).unwrap().is_some())
        .count() as u64
}

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_recovers_in_process_once_space_returns() {
    let Some(disk) = SmallDisk::mount(24 * 1024 * 1024) else {
        return;
    };
    // What the operator frees once they notice: a file on the same disk.
    let ballast = disk.path().join("ballast");
    std::fs::write(&ballast, vec![1u8; 6 * 1024 * 1024]).unwrap();
    let db = disk.path().join("db");
    let store = sop_store_sled::open(&db, &SledOptions::default()).unwrap();

    let mut durable = 0;
    let error = loop {
        match store.commit_durable(record(durable)) {
            Ok(_) => durable += 1,
            Err(e) => break e,
        }
        assert!(durable < 10_000, "a 24 MiB disk never filled");
    };
    assert!(matches!(error, StoreError::DiskFull(_)), "{error:?}");
    assert!(durable > 100, "only {durable} records fitted");

    // Full: reads go on, writes keep failing with the same clear error, and a write attempt
    // does not drop the open database (the directory check fails first).
    // sled keeps serving what it holds in memory (its last pages may fail until reopened).
    let readable = (0..durable)
        .filter(|i| {
            store
                .kv_get("fill", &key(*i), now())
                .is_ok_and(|v| v.is_some())
        })
        .count() as u64;
    assert!(readable > durable / 2, "{readable} of {durable} readable");
    for _ in 0..3 {
        let again = store.commit_durable(record(durable)).unwrap_err();
        assert!(matches!(again, StoreError::DiskFull(_)), "{again:?}");
        assert_eq!(held(&store, 10), 10);
    }

    // Space returns: the next write reopens sled in this process and goes through.
    std::fs::remove_file(&ballast).unwrap();
    store
        .commit_durable(record(durable))
        .expect("writes resume once space returns, without a restart");
    store.commit_durable(record(durable + 1)).unwrap();
    assert_eq!(held(&store, durable + 2), durable + 2);

    // Nothing committed durably was lost, before or after the outage.
    drop(store);
    let store = sop_store_sled::open(&db, &SledOptions::default()).unwrap();
    assert_eq!(held(&store, durable + 2), durable + 2);
}

fn now() -> sop_clock::Timestamp {
    sop_clock::Timestamp::from_timestamp_millis(0).unwrap()
}
