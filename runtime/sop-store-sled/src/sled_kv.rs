//! sled as an [`OrderedKv`]: one tree, batches via `apply_batch`.

use std::path::Path;

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

/// An open sled database.
#[derive(Debug, Clone)]
pub struct SledKv {
    db: sled::Db,
}

impl SledKv {
    pub fn open(path: &Path, options: &SledOptions) -> Result<Self> {
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
        let db = loop {
            match config.open() {
                // sled reports it as a plain I/O error with this text.
                Err(sled::Error::Io(e))
                    if e.to_string().starts_with("could not acquire lock")
                        && waited < LOCK_WAIT =>
                {
                    std::thread::sleep(LOCK_RETRY);
                    waited += LOCK_RETRY;
                }
                other => break other.map_err(map_err)?,
            }
        };
        Ok(Self { db })
    }

    /// Bytes sled reports on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.db.size_on_disk().map_err(map_err)
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
        Ok(self.db.get(key).map_err(map_err)?.map(|v| v.to_vec()))
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Pair>> {
        if start >= end {
            return Ok(Vec::new());
        }
        self.db
            .range(start..end)
            .take(limit)
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(map_err))
            .collect()
    }

    fn scan_each(&self, start: &[u8], end: &[u8], limit: usize, visit: Visit<'_>) -> Result<()> {
        if start >= end {
            return Ok(());
        }
        for kv in self.db.range(start..end).take(limit) {
            let (k, v) = kv.map_err(map_err)?;
            visit(&k, &v)?;
        }
        Ok(())
    }

    fn last(&self, start: &[u8], end: &[u8]) -> Result<Option<Pair>> {
        if start >= end {
            return Ok(None);
        }
        self.db
            .range(start..end)
            .next_back()
            .transpose()
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .map_err(map_err)
    }

    fn apply(&self, writes: Vec<Write>) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.db.apply_batch(batch).map_err(map_err)
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map(|_| ()).map_err(map_err)
    }

    fn next_id(&self) -> Result<u64> {
        // sled persists id ranges ahead of use, so ids never repeat after a restart.
        self.db.generate_id().map(|id| id + 1).map_err(map_err)
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
