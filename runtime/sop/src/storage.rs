//! Whether the store can be written: the daemon stops accepting work while it cannot (a full
//! or read-only disk) and takes it up again once it can.
//!
//! [`WatchedStore`] wraps the daemon's store and notes every write's outcome in
//! [`StorageHealth`]: an I/O failure (disk full, read-only, any other I/O error) marks the
//! store unwritable, the next successful write marks it writable again. While unwritable,
//! `/readyz` says why, the ingress answers 503 (the platform retries later) and
//! [`watch`] probes with a small write until one succeeds. Reads never change the health:
//! they keep working on a full disk.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sop_clock::{Clock, Timestamp};
use sop_store::{Batch, HookedStore, Op, Result, Store, StoreError, WriteHook};
use tokio::sync::watch;

/// The plugin key-value namespace of the probe write: no plugin can have this name.
const PROBE_NAMESPACE: &str = "sop:storage-probe";

/// Whether the store took its last write. Cheap to clone; shared by the servers.
#[derive(Debug, Clone)]
pub struct StorageHealth {
    inner: Arc<HealthInner>,
}

#[derive(Debug)]
struct HealthInner {
    writable: AtomicBool,
    /// Why the last write failed, while unwritable.
    reason: Mutex<Option<String>>,
    /// Outages so far (changes from writable to not).
    outages: AtomicU64,
    /// `true` while writable: the probe and the runtime's restart wait on it.
    changed: watch::Sender<bool>,
}

impl Default for StorageHealth {
    fn default() -> Self {
        StorageHealth {
            inner: Arc::new(HealthInner {
                writable: AtomicBool::new(true),
                reason: Mutex::new(None),
                outages: AtomicU64::new(0),
                changed: watch::Sender::new(true),
            }),
        }
    }
}

impl StorageHealth {
    /// Whether the last write succeeded.
    pub fn is_writable(&self) -> bool {
        self.inner.writable.load(Ordering::Acquire)
    }

    /// Why the store is not writable, if it is not.
    pub fn problem(&self) -> Option<String> {
        if self.is_writable() {
            return None;
        }
        self.inner
            .reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Notes a failed write. Logged once per outage, on the change.
    pub fn failed(&self, error: &StoreError) {
        *self.inner.reason.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
        if self.inner.writable.swap(false, Ordering::AcqRel) {
            self.inner.outages.fetch_add(1, Ordering::AcqRel);
            tracing::error!(
                %error,
                "the store cannot be written: not ready, webhooks answered 503 until it can"
            );
            metrics::gauge!("sop_store_writable").set(0.0);
            self.inner.changed.send_replace(false);
        }
    }

    /// Notes a successful write.
    pub fn succeeded(&self) {
        if !self.inner.writable.swap(true, Ordering::AcqRel) {
            tracing::info!("the store can be written again: accepting work");
            metrics::gauge!("sop_store_writable").set(1.0);
            self.inner.changed.send_replace(true);
        }
    }

    /// Resolves once the store is writable (at once if it is).
    pub async fn writable(&self) {
        let mut rx = self.inner.changed.subscribe();
        let _ = rx.wait_for(|w| *w).await;
    }

    /// Resolves once the store is not writable (at once if it is not).
    pub async fn unwritable(&self) {
        let mut rx = self.inner.changed.subscribe();
        let _ = rx.wait_for(|w| !*w).await;
    }

    /// How many times the store has stopped taking writes so far.
    pub fn outages(&self) -> u64 {
        self.inner.outages.load(Ordering::Acquire)
    }

    /// Resolves once there have been more than `seen` outages, even one that is already over
    /// (a state watch could miss a short one).
    pub async fn outage_after(&self, seen: u64) {
        // Every outage sends on `changed`; the sender lives as long as `self`.
        let mut rx = self.inner.changed.subscribe();
        let _ = rx.wait_for(|_| self.outages() > seen).await;
    }
}

/// Writes a small record and flushes it: the test of whether the disk takes writes again.
pub fn probe(store: &dyn Store, now: Timestamp) -> Result<()> {
    store.commit_durable(Batch::new().op(Op::KvSet {
        plugin: PROBE_NAMESPACE.into(),
        key: "last".into(),
        value: now.timestamp_millis().to_be_bytes().to_vec(),
        expires_at: None,
    }))?;
    Ok(())
}

/// While the store is unwritable, probes it every `every` until a write succeeds (the
/// store's wrapper then marks it writable). Runs until dropped.
pub async fn watch(
    store: Arc<dyn Store>,
    health: StorageHealth,
    clock: Arc<dyn Clock>,
    every: Duration,
) {
    loop {
        health.unwritable().await;
        while !health.is_writable() {
            tokio::time::sleep(every).await;
            let store = store.clone();
            let now = clock.now();
            let result = tokio::task::spawn_blocking(move || probe(&*store, now)).await;
            match result {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, "the store still cannot be written");
                }
                Err(error) => tracing::error!(%error, "store probe task failed"),
            }
        }
    }
}

/// The daemon's store, noting every write's outcome in a [`StorageHealth`]
/// (`WatchedStore::with_hook(store, health)`).
pub type WatchedStore = HookedStore<Arc<dyn Store>, StorageHealth>;

/// I/O failures change the health, refusals (conflicts, bad input) and corrupt records do
/// not, as they say nothing about the disk.
impl WriteHook for StorageHealth {
    fn after_write(&self, outcome: std::result::Result<(), &StoreError>) {
        match outcome {
            Ok(()) => self.succeeded(),
            Err(e) if e.is_write_fault() => self.failed(e),
            Err(_) => {}
        }
    }
}
