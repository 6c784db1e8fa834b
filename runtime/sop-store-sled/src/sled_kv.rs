//! sled as an [`OrderedKv`]: one tree, batches via `apply_batch`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use sop_store::{OrderedKv, Pair, Result, StoreError, Visit, Write};

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
    db: RwLock<Option<sled::Db>>,
    /// A write failed: sled refuses every write until it is reopened.
    failed: AtomicBool,
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
            }),
        })
    }

    /// Bytes sled reports on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.db()?.size_on_disk().map_err(|e| self.check(e))
    }

    /// The database, reopened first if it failed and the disk takes writes again (if it
    /// does not, the failed one: it still serves what it holds in memory).
    fn db(&self) -> Result<sled::Db> {
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
        self.shared.failed.store(false, Ordering::Release);
        Ok(())
    }
}

fn read(lock: &RwLock<Option<sled::Db>>) -> std::sync::RwLockReadGuard<'_, Option<sled::Db>> {
    lock.read().unwrap_or_else(|e| e.into_inner())
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

fn open_db(path: &Path, options: &SledOptions) -> Result<sled::Db> {
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
        let value = self.db()?.get(key).map_err(|e| self.check(e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Pair>> {
        if start >= end {
            return Ok(Vec::new());
        }
        self.db()?
            .range(start..end)
            .take(limit)
            .map(|kv| {
                kv.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(|e| self.check(e))
            })
            .collect()
    }

    fn scan_each(&self, start: &[u8], end: &[u8], limit: usize, visit: Visit<'_>) -> Result<()> {
        if start >= end {
            return Ok(());
        }
        for kv in self.db()?.range(start..end).take(limit) {
            let (k, v) = kv.map_err(|e| self.check(e))?;
            visit(&k, &v)?;
        }
        Ok(())
    }

    fn last(&self, start: &[u8], end: &[u8]) -> Result<Option<Pair>> {
        if start >= end {
            return Ok(None);
        }
        self.db()?
            .range(start..end)
            .next_back()
            .transpose()
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .map_err(|e| self.check(e))
    }

    fn apply(&self, writes: Vec<Write>) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.db()?.apply_batch(batch).map_err(|e| self.check(e))
    }

    fn flush(&self) -> Result<()> {
        self.db()?.flush().map(|_| ()).map_err(|e| self.check(e))
    }

    fn next_id(&self) -> Result<u64> {
        // sled persists id ranges ahead of use, so ids never repeat after a restart.
        let id = self.db()?.generate_id().map_err(|e| self.check(e))?;
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
