//! Whether the store can be written: the daemon stops accepting work while it cannot (a full
//! or read-only disk) and takes it up again once it can.
//!
//! [`WatchedStore`] wraps the daemon's store and notes every write's outcome in
//! [`StorageHealth`]: an I/O failure (disk full, read-only, any other I/O error) marks the
//! store unwritable, the next successful write marks it writable again. While unwritable,
//! `/readyz` says why, the ingress answers 503 (the platform retries later) and
//! [`watch`] probes with a small write until one succeeds. Reads never change the health:
//! they keep working on a full disk.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sop_clock::{Clock, Timestamp};
use sop_store::{
    Batch, Contact, ContactKey, EventRecord, FlowKey, FlowRecord, Group, GroupKey, HistoryEntry,
    IdempotencyKey, Op, OutboxEntry, OutboxStateKind, PlaybookVersion, Receipt, Result, Run, RunId,
    RunState, RunSummary, Store, StoreError, Subject, Subscription, Timer, TimerKey, TouchKey,
};
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
    /// `true` while writable: the probe and the runtime's restart wait on it.
    changed: watch::Sender<bool>,
}

impl Default for StorageHealth {
    fn default() -> Self {
        StorageHealth {
            inner: Arc::new(HealthInner {
                writable: AtomicBool::new(true),
                reason: Mutex::new(None),
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

    /// Notes a write's outcome: I/O failures change the health, refusals (conflicts, bad
    /// input) and corrupt records do not, as they say nothing about the disk.
    pub fn observe<T>(&self, result: Result<T>) -> Result<T> {
        match &result {
            Ok(_) => self.succeeded(),
            Err(e) if is_write_fault(e) => self.failed(e),
            Err(_) => {}
        }
        result
    }
}

/// Whether a store error means the disk cannot take writes (full, read-only, I/O).
pub fn is_write_fault(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::DiskFull(_) | StoreError::ReadOnly(_) | StoreError::Io(_)
    )
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

/// The daemon's store, noting every write's outcome in a [`StorageHealth`].
#[derive(Debug)]
pub struct WatchedStore {
    inner: Arc<dyn Store>,
    health: StorageHealth,
}

impl WatchedStore {
    /// Wraps `inner`, reporting to `health`.
    pub fn new(inner: Arc<dyn Store>, health: StorageHealth) -> Self {
        WatchedStore { inner, health }
    }
}

impl Store for WatchedStore {
    fn commit(&self, batch: Batch) -> Result<Receipt> {
        self.health.observe(self.inner.commit(batch))
    }
    fn flush(&self) -> Result<()> {
        self.health.observe(self.inner.flush())
    }
    fn commit_durable(&self, batch: Batch) -> Result<Receipt> {
        self.health.observe(self.inner.commit_durable(batch))
    }
    fn next_run_id(&self) -> Result<RunId> {
        self.health.observe(self.inner.next_run_id())
    }
    fn contact(&self, key: &ContactKey) -> Result<Option<Contact>> {
        self.inner.contact(key)
    }
    fn contacts(&self, tenant: &str, after: Option<&str>, limit: usize) -> Result<Vec<Contact>> {
        self.inner.contacts(tenant, after, limit)
    }
    fn inactive_contacts(
        &self,
        tenant: &str,
        before: Timestamp,
        after: Option<&(Option<Timestamp>, ContactKey)>,
        limit: usize,
    ) -> Result<Vec<(Option<Timestamp>, ContactKey)>> {
        self.inner.inactive_contacts(tenant, before, after, limit)
    }
    fn group(&self, key: &GroupKey) -> Result<Option<Group>> {
        self.inner.group(key)
    }
    fn groups(&self, tenant: &str, after: Option<&str>, limit: usize) -> Result<Vec<Group>> {
        self.inner.groups(tenant, after, limit)
    }
    fn run(&self, id: RunId) -> Result<Option<Run>> {
        self.inner.run(id)
    }
    fn run_detail(&self, id: RunId) -> Result<Option<Vec<u8>>> {
        self.inner.run_detail(id)
    }
    fn runs_by_state(
        &self,
        playbook: &str,
        state: RunState,
        after: Option<RunId>,
        limit: usize,
    ) -> Result<Vec<RunId>> {
        self.inner.runs_by_state(playbook, state, after, limit)
    }
    fn runs_of_subject(&self, subject: &Subject) -> Result<Vec<RunSummary>> {
        self.inner.runs_of_subject(subject)
    }
    fn history(
        &self,
        run: RunId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, HistoryEntry)>> {
        self.inner.history(run, after, limit)
    }
    fn timer(&self, key: &TimerKey) -> Result<Option<Timer>> {
        self.inner.timer(key)
    }
    fn due_timers(
        &self,
        until: Timestamp,
        after: Option<&Timer>,
        limit: usize,
    ) -> Result<Vec<Timer>> {
        self.inner.due_timers(until, after, limit)
    }
    fn subscribers(&self, subject: &Subject, event: &str) -> Result<Vec<Subscription>> {
        self.inner.subscribers(subject, event)
    }
    fn waits_of_run(&self, run: RunId) -> Result<(Vec<Timer>, Vec<Subscription>)> {
        self.inner.waits_of_run(run)
    }
    fn event_seen(&self, source: &str, dedupe_id: &str) -> Result<Option<Timestamp>> {
        self.inner.event_seen(source, dedupe_id)
    }
    fn events(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, EventRecord)>> {
        self.inner.events(after, limit)
    }
    fn outbox(&self, key: &IdempotencyKey) -> Result<Option<OutboxEntry>> {
        self.inner.outbox(key)
    }
    fn outbox_in_state(
        &self,
        state: OutboxStateKind,
        after: Option<&IdempotencyKey>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>> {
        self.inner.outbox_in_state(state, after, limit)
    }
    fn touches(&self, key: &TouchKey, from: Timestamp, to: Timestamp) -> Result<Vec<Timestamp>> {
        self.inner.touches(key, from, to)
    }
    fn cron_last_fire(&self, playbook: &str, trigger: &str) -> Result<Option<Timestamp>> {
        self.inner.cron_last_fire(playbook, trigger)
    }
    fn kv_get(&self, plugin: &str, key: &str, now: Timestamp) -> Result<Option<Vec<u8>>> {
        self.inner.kv_get(plugin, key, now)
    }
    fn playbook(&self, id: &str, version: u32) -> Result<Option<PlaybookVersion>> {
        self.inner.playbook(id, version)
    }
    fn playbook_versions(&self, id: &str) -> Result<Vec<PlaybookVersion>> {
        self.inner.playbook_versions(id)
    }
    fn playbook_ids(&self) -> Result<Vec<String>> {
        self.inner.playbook_ids()
    }
    fn flow(&self, key: &FlowKey) -> Result<Option<FlowRecord>> {
        self.inner.flow(key)
    }
    fn due_flows(
        &self,
        until_ms: i64,
        after: Option<&(i64, FlowKey)>,
        limit: usize,
    ) -> Result<Vec<FlowRecord>> {
        self.inner.due_flows(until_ms, after, limit)
    }
    fn flows(&self, after: Option<&FlowKey>, limit: usize) -> Result<Vec<FlowRecord>> {
        self.inner.flows(after, limit)
    }
    fn flows_of_run(&self, run: RunId) -> Result<Vec<FlowKey>> {
        self.inner.flows_of_run(run)
    }
}
