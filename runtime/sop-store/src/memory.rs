//! The in-memory backend: for tests, `sop simulate` and as the reference for conformance.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Result;
use crate::kv::{KvStore, OrderedKv, Pair, Visit, Write};

/// A [`Store`](crate::Store) held in memory; nothing survives the process.
pub type MemoryStore = KvStore<MemoryKv>;

impl MemoryStore {
    /// An empty in-memory store.
    pub fn new() -> Self {
        // Opening an in-memory map cannot fail: there is no I/O and no stored format.
        match KvStore::open(MemoryKv::default()) {
            Ok(store) => store,
            Err(e) => unreachable!("in-memory store failed to open: {e}"),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// A `BTreeMap` behind a lock; a batch is applied under one write lock, so readers never
/// see half of it.
#[derive(Debug, Default)]
pub struct MemoryKv {
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
    ids: AtomicU64,
}

impl MemoryKv {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of keys, indexes included (for tests and statistics).
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }
}

impl OrderedKv for MemoryKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.read().get(key).cloned())
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Pair>> {
        if start >= end {
            return Ok(Vec::new());
        }
        Ok(self
            .read()
            .range(start.to_vec()..end.to_vec())
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn scan_each(&self, start: &[u8], end: &[u8], limit: usize, visit: Visit<'_>) -> Result<()> {
        if start >= end {
            return Ok(());
        }
        let map = self.read();
        for (k, v) in map.range(start.to_vec()..end.to_vec()).take(limit) {
            visit(k, v)?;
        }
        Ok(())
    }

    fn last(&self, start: &[u8], end: &[u8]) -> Result<Option<Pair>> {
        if start >= end {
            return Ok(None);
        }
        Ok(self
            .read()
            .range(start.to_vec()..end.to_vec())
            .next_back()
            .map(|(k, v)| (k.clone(), v.clone())))
    }

    fn apply(&self, writes: Vec<Write>) -> Result<()> {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        for (k, v) in writes {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn next_id(&self) -> Result<u64> {
        Ok(self.ids.fetch_add(1, Ordering::Relaxed) + 1)
    }
}
