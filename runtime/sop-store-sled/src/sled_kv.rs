//! sled as an [`OrderedKv`]: one tree for the store's keys, multi-key commits made atomic by
//! a redo record (`redo.rs`) instead of sled's `apply_batch`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use sop_store::{OrderedKv, Pair, Result, StoreError, Visit, Write};

use crate::redo;

/// Tuning of the sled backend.
#[derive(Debug, Clone)]
pub struct SledOptions {
    /// Background fsync interval; `None` leaves durability to explicit flushes only.
    pub flush_every_ms: Option<u64>,
    /// sled's page cache, in bytes. It bounds the resident memory of a large store.
    pub cache_capacity_bytes: u64,
}

impl Default for SledOptions {
    fn default() -> Self {
        Self {
            flush_every_ms: Some(200),
            cache_capacity_bytes: 64 * 1024 * 1024,
        }
    }
}

/// An open sled database that reopens itself after a write failure once the disk takes
/// writes again.
///
/// sled 0.34 latches its first I/O error (a full or read-only disk): every later write, and
/// reads of pages it has to load, fail until the database is reopened, even after space is
/// freed. So a failed write marks the database failed, and every later operation first
/// checks that the directory takes writes (a scratch file of [`REOPEN_PROBE_BYTES`],
/// written, synced and removed; on a full disk that fails at once) and if it does, reopens
/// sled from its log. Until then the old database stays open: reads of what it holds in
/// memory keep working. What was durable before the failure is kept; commits applied but not
/// yet flushed when sled failed are lost, exactly as in a crash, so the daemon restarts its
/// runtime from the store after such an outage.
#[derive(Debug, Clone)]
pub struct SledKv {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    options: SledOptions,
    /// `None` only when a reopen dropped the failed database and could not open it again.
    db: RwLock<Option<Open>>,
    /// A write failed: sled refuses every write until it is reopened.
    failed: AtomicBool,
    /// Commits hold it for writing and each read (each item of a scan) for reading, so a
    /// commit's writes, applied one by one, become visible together: a reader that saw one
    /// of them sees all of them from then on (sled's `apply_batch` did that with a lock of
    /// its own, taken the same way). Flushes do not take it: a commit never waits for an
    /// fsync.
    visible: RwLock<()>,
    /// The redo tree may hold a record; a commit that does not write one clears it first.
    redo_set: AtomicBool,
}

/// An open database and its redo tree.
#[derive(Debug, Clone)]
struct Open {
    db: sled::Db,
    redo: sled::Tree,
}

impl SledKv {
    pub fn open(path: &Path, options: &SledOptions) -> Result<Self> {
        let db = open_db(path, options)?;
        Ok(Self {
            shared: Arc::new(Shared {
                path: path.to_path_buf(),
                options: options.clone(),
                db: RwLock::new(Some(db)),
                failed: AtomicBool::new(false),
                visible: RwLock::new(()),
                redo_set: AtomicBool::new(false),
            }),
        })
    }

    /// Bytes sled reports on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.db()?.db.size_on_disk().map_err(|e| self.check(e))
    }

    /// The database, reopened first if it failed and the disk takes writes again (if it
    /// does not, the failed one: it still serves what it holds in memory).
    fn db(&self) -> Result<Open> {
        if self.shared.failed.load(Ordering::Acquire) {
            let _ = self.reopen();
        }
        read(&self.shared.db).clone().ok_or_else(|| {
            StoreError::Io(
                "the store is closed: reopening it after a write failure failed; retried at the next operation"
                    .into(),
            )
        })
    }

    /// A sled error as a store error; an I/O error marks the database failed (sled has
    /// latched it, whichever operation saw it first: sled's own background flush often does).
    fn check(&self, error: sled::Error) -> StoreError {
        let error = map_err(error);
        if error.is_write_fault() {
            self.shared.failed.store(true, Ordering::Release);
        }
        error
    }

    /// Reopens a failed database once its directory takes writes again.
    fn reopen(&self) -> Result<()> {
        probe_directory(&self.shared.path)?;
        let mut slot = self.shared.db.write().unwrap_or_else(|e| e.into_inner());
        if !self.shared.failed.load(Ordering::Acquire) {
            return Ok(()); // another writer reopened it meanwhile
        }
        // sled's file lock goes with the last handle; `open_db` waits for it briefly.
        drop(slot.take());
        *slot = Some(open_db(&self.shared.path, &self.shared.options)?);
        // The open replayed and cleared the record (callers hold `visible`: no commit runs).
        self.shared.redo_set.store(false, Ordering::Release);
        self.shared.failed.store(false, Ordering::Release);
        Ok(())
    }
}

impl SledKv {
    /// Applies a commit's writes; the caller holds `visible` for writing.
    fn apply_to(&self, open: &Open, writes: Vec<Write>) -> sled::Result<()> {
        let redo_set = &self.shared.redo_set;
        if writes.len() > 1 && redo::encoded_len(&writes) <= redo::MAX_BYTES {
            open.redo.insert(redo::KEY, redo::encode(&writes))?;
            redo_set.store(true, Ordering::Release);
            for (k, v) in writes {
                match v {
                    Some(v) => open.db.insert(k, v)?,
                    None => open.db.remove(k)?,
                };
            }
            return Ok(());
        }
        // Without a record of its own this commit must not be followed by an older one.
        if redo_set.load(Ordering::Acquire) {
            open.redo.remove(redo::KEY)?;
            redo_set.store(false, Ordering::Release);
        }
        match <[Write; 1]>::try_from(writes) {
            // One key: atomic by itself.
            Ok([(k, Some(v))]) => open.db.insert(k, v).map(drop),
            Ok([(k, None)]) => open.db.remove(k).map(drop),
            Err(writes) => {
                let mut batch = sled::Batch::default();
                for (k, v) in writes {
                    match v {
                        Some(v) => batch.insert(k, v),
                        None => batch.remove(k),
                    }
                }
                open.db.apply_batch(batch)
            }
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// Free space a reopen needs at least: sled writes a snapshot of its page table and a fresh
/// log segment (512 KiB) when it opens.
pub const REOPEN_PROBE_BYTES: usize = 1024 * 1024;

/// Whether `dir` takes writes: writes, syncs and removes a scratch file.
fn probe_directory(dir: &Path) -> Result<()> {
    use std::io::Write as _;
    let file = dir.join("reopen-probe.tmp");
    let result = std::fs::File::create(&file).and_then(|mut f| {
        f.write_all(&vec![0u8; REOPEN_PROBE_BYTES])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(&file);
    result.map_err(|e| StoreError::from_io(&e))
}

/// Opens the database and completes the last commit if a crash cut it short.
fn open_db(path: &Path, options: &SledOptions) -> Result<Open> {
    let db = open_sled(path, options)?;
    let redo = db.open_tree(redo::TREE).map_err(map_err)?;
    replay(&db, &redo)?;
    Ok(Open { db, redo })
}

/// Applies the redo record, if any, atomically, then removes it. Replaying a record whose
/// writes all survived is harmless: it holds the newest value of every key it names.
fn replay(db: &sled::Db, redo: &sled::Tree) -> Result<()> {
    let Some(record) = redo.get(redo::KEY).map_err(map_err)? else {
        return Ok(());
    };
    let mut batch = sled::Batch::default();
    for (k, v) in redo::decode(&record)? {
        match v {
            Some(v) => batch.insert(k, v),
            None => batch.remove(k),
        }
    }
    db.apply_batch(batch).map_err(map_err)?;
    // After the writes in the log: if the removal survives a crash, so do they.
    redo.remove(redo::KEY).map_err(map_err)?;
    db.flush().map_err(map_err)?;
    Ok(())
}

fn open_sled(path: &Path, options: &SledOptions) -> Result<sled::Db> {
    remove_interrupted_snapshots(path)?;
    let config = sled::Config::new()
        .path(path)
        .flush_every_ms(options.flush_every_ms)
        .cache_capacity(options.cache_capacity_bytes);
    // sled releases its file lock when its background flusher lets go of the last
    // handle, a moment after the `Db` is dropped; a reopen by the same process right after
    // a drop can find the lock still held. Wait briefly for that; a lock held by another
    // process is still refused, after the same short wait.
    let mut waited = std::time::Duration::ZERO;
    loop {
        match config.open() {
            // sled reports it as a plain I/O error with this text.
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock") && waited < LOCK_WAIT =>
            {
                std::thread::sleep(LOCK_RETRY);
                waited += LOCK_RETRY;
            }
            other => return other.map_err(map_err),
        }
    }
}

/// How long `open` waits for a lock its own process is still releasing.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(20);

/// sled 0.34 writes a snapshot of its page table at every open, to `snap.<lsn>.generating`,
/// then renames it to `snap.<lsn>`. An open interrupted in between (a crash, a full disk)
/// leaves the `.generating` file, and the next open takes it for the newest snapshot and fails
/// with "corruption" (seen with a full disk at a million runs). A snapshot is derived from the
/// log, so an unfinished one is removed and the log replayed instead.
fn remove_interrupted_snapshots(path: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // Not a directory and the like: sled's own open reports it.
        Err(_) => return Ok(()),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(entry.path()).map_err(|e| StoreError::from_io(&e))?;
        }
    }
    Ok(())
}

/// sled's errors as typed store errors.
pub(crate) fn map_err(err: sled::Error) -> StoreError {
    match err {
        sled::Error::Io(io) => StoreError::from_io(&io),
        sled::Error::Corruption { at, .. } => StoreError::Corrupt {
            table: "sled",
            reason: format!("corruption at {at:?}"),
        },
        other => StoreError::Io(other.to_string()),
    }
}

impl OrderedKv for SledKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let _visible = read(&self.shared.visible);
        let value = self.db()?.db.get(key).map_err(|e| self.check(e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Pair>> {
        let mut pairs = Vec::new();
        self.scan_each(start, end, limit, &mut |k, v| {
            pairs.push((k.to_vec(), v.to_vec()));
            Ok(())
        })?;
        Ok(pairs)
    }

    fn scan_each(&self, start: &[u8], end: &[u8], limit: usize, visit: Visit<'_>) -> Result<()> {
        if start >= end {
            return Ok(());
        }
        let mut range = {
            let _visible = read(&self.shared.visible);
            self.db()?.db.range(start..end)
        };
        for _ in 0..limit {
            // Item by item, as sled's own iterator takes its lock: a scan of thousands of
            // keys (and the visitor's decoding) must not hold every commit back.
            let next = {
                let _visible = read(&self.shared.visible);
                range.next()
            };
            let Some(kv) = next else { break };
            let (k, v) = kv.map_err(|e| self.check(e))?;
            visit(&k, &v)?;
        }
        Ok(())
    }

    fn last(&self, start: &[u8], end: &[u8]) -> Result<Option<Pair>> {
        if start >= end {
            return Ok(None);
        }
        let _visible = read(&self.shared.visible);
        self.db()?
            .db
            .range(start..end)
            .next_back()
            .transpose()
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .map_err(|e| self.check(e))
    }

    fn apply(&self, writes: Vec<Write>) -> Result<()> {
        let _visible = write(&self.shared.visible);
        let open = self.db()?;
        self.apply_to(&open, writes).map_err(|e| self.check(e))
    }

    fn flush(&self) -> Result<()> {
        self.db()?.db.flush().map(|_| ()).map_err(|e| self.check(e))
    }

    fn next_id(&self) -> Result<u64> {
        // sled persists id ranges ahead of use, so ids never repeat after a restart.
        let id = self.db()?.db.generate_id().map_err(|e| self.check(e))?;
        Ok(id + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_their_kind() {
        let err = map_err(sled::Error::Io(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "full",
        )));
        assert!(matches!(err, StoreError::DiskFull(_)));
        let err = map_err(sled::Error::Unsupported("x".into()));
        assert!(matches!(err, StoreError::Io(_)));
    }

    fn put(k: &str, v: &str) -> Write {
        (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
    }

    fn value(kv: &SledKv, k: &str) -> Option<String> {
        kv.get(k.as_bytes())
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn a_commit_cut_short_by_a_crash_is_completed_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            // What a crash can leave: the record and the first of the commit's writes.
            let db = open_sled(dir.path(), &SledOptions::default()).unwrap();
            db.insert("old", "gone").unwrap();
            let writes = vec![put("a", "1"), put("b", "2"), (b"old".to_vec(), None)];
            let redo = db.open_tree(redo::TREE).unwrap();
            redo.insert(redo::KEY, redo::encode(&writes)).unwrap();
            db.insert("a", "1").unwrap();
            db.flush().unwrap();
        }
        let kv = SledKv::open(dir.path(), &SledOptions::default()).unwrap();
        assert_eq!(value(&kv, "a").as_deref(), Some("1"));
        assert_eq!(value(&kv, "b").as_deref(), Some("2"));
        assert_eq!(value(&kv, "old"), None);
        assert_eq!(kv.db().unwrap().redo.get(redo::KEY).unwrap(), None);
    }

    #[test]
    fn an_older_record_is_never_replayed_over_newer_writes() {
        let dir = tempfile::tempdir().unwrap();
        {
            let kv = SledKv::open(dir.path(), &SledOptions::default()).unwrap();
            kv.apply(vec![put("a", "1"), put("b", "1")]).unwrap();
            assert!(kv.db().unwrap().redo.get(redo::KEY).unwrap().is_some());
            // Commits that write no record of their own: one key, and one over MAX_BYTES.
            kv.apply(vec![put("a", "2")]).unwrap();
            let big = "x".repeat(redo::MAX_BYTES);
            kv.apply(vec![put("b", &big), put("c", "3")]).unwrap();
            kv.flush().unwrap();
        }
        let kv = SledKv::open(dir.path(), &SledOptions::default()).unwrap();
        assert_eq!(value(&kv, "a").as_deref(), Some("2"));
        assert_eq!(value(&kv, "b").map(|v| v.len()), Some(redo::MAX_BYTES));
        assert_eq!(value(&kv, "c").as_deref(), Some("3"));
    }

    #[test]
    fn a_damaged_record_refuses_the_open_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = open_sled(dir.path(), &SledOptions::default()).unwrap();
            let redo = db.open_tree(redo::TREE).unwrap();
            redo.insert(redo::KEY, &[1, 0, 0]).unwrap();
            db.flush().unwrap();
        }
        let err = SledKv::open(dir.path(), &SledOptions::default()).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { table: "redo", .. }),
            "{err}"
        );
    }

    /// Commits write `a` then `b`; readers read `a` then `b`. Having seen commit n's `a`, a
    /// reader must see at least commit n's `b`: without the lock it could read between the
    /// two writes.
    #[test]
    fn a_reader_that_saw_part_of_a_commit_sees_all_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let kv = SledKv::open(dir.path(), &SledOptions::default()).unwrap();
        kv.apply(vec![put("a", "0"), put("b", "0")]).unwrap();
        let writer = {
            let kv = kv.clone();
            std::thread::spawn(move || {
                for i in 1..=2000 {
                    let n = i.to_string();
                    kv.apply(vec![put("a", &n), put("b", &n)]).unwrap();
                }
            })
        };
        let number = |v: &[u8]| std::str::from_utf8(v).unwrap().parse::<u64>().unwrap();
        let mut seen = 0;
        while !writer.is_finished() {
            let a = number(&kv.get(b"a").unwrap().unwrap());
            let b = number(&kv.get(b"b").unwrap().unwrap());
            assert!(b >= a, "read a = {a}, then b = {b}: half a commit");
            let pairs = kv.scan(b"a", b"c", 10).unwrap();
            assert_eq!(pairs.len(), 2);
            let (a, b) = (number(&pairs[0].1), number(&pairs[1].1));
            assert!(b >= a, "a scan read a = {a}, then b = {b}: half a commit");
            seen += 1;
        }
        writer.join().unwrap();
        assert!(seen > 0);
    }

    #[test]
    fn an_interrupted_snapshot_does_not_block_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let kv = SledKv::open(dir.path(), &SledOptions::default()).unwrap();
        kv.apply(vec![(b"k".to_vec(), Some(b"v".to_vec()))])
            .unwrap();
        kv.flush().unwrap();
        drop(kv);
        // What an open cut short by a full disk leaves: a partial snapshot that sorts last.
        let partial = dir.path().join("snap.FFFFFFFFFFFFFFFF.generating");
        std::fs::write(&partial, vec![0u8; 4096]).unwrap();
        let kv = SledKv::open(dir.path(), &SledOptions::default()).unwrap();
        assert_eq!(kv.get(b"k").unwrap(), Some(b"v".to_vec()));
        assert!(!partial.exists());
    }

    #[test]
    fn a_store_held_open_is_refused_and_a_dropped_one_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let first = SledKv::open(dir.path(), &SledOptions::default()).unwrap();
        let err = SledKv::open(dir.path(), &SledOptions::default()).unwrap_err();
        assert!(err.to_string().contains("lock"), "{err}");
        drop(first);
        SledKv::open(dir.path(), &SledOptions::default()).expect("reopens once released");
    }

    #[test]
    fn opening_under_a_regular_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, b"not a directory").unwrap();
        let err = SledKv::open(&file.join("db"), &SledOptions::default()).unwrap_err();
        assert!(
            matches!(err, StoreError::Io(_) | StoreError::ReadOnly(_)),
            "{err}"
        );
    }
}
