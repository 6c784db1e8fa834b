//! A store that fails its writes on demand, for tests of how callers react to a full or
//! read-only disk: sled reports such failures on a write (or flush) while reads keep
//! working, and so does this wrapper.

use std::sync::Mutex;

use sop_clock::Timestamp;

use crate::batch::{Batch, Receipt};
use crate::contact::{Contact, ContactKey};
use crate::error::{Result, StoreError};
use crate::event::EventRecord;
use crate::flow::{FlowKey, FlowRecord};
use crate::group::{Group, GroupKey};
use crate::outbox::{IdempotencyKey, OutboxEntry, OutboxStateKind};
use crate::playbook::PlaybookVersion;
use crate::run::{HistoryEntry, Run, RunId, RunState, RunSummary, Subject};
use crate::store::Store;
use crate::timer::{Subscription, Timer, TimerKey};
use crate::touch::TouchKey;

/// Which write failure [`FaultyStore`] injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// `ENOSPC`: [`StoreError::DiskFull`].
    DiskFull,
    /// `EROFS`/`EACCES`: [`StoreError::ReadOnly`].
    ReadOnly,
}

impl WriteFault {
    fn error(self) -> StoreError {
        match self {
            WriteFault::DiskFull => {
                StoreError::DiskFull("No space left on device (os error 28) [injected]".into())
            }
            WriteFault::ReadOnly => {
                StoreError::ReadOnly("Read-only file system (os error 30) [injected]".into())
            }
        }
    }
}

/// Wraps a store; while a fault is set, `commit`, `flush`, `commit_durable` and
/// `next_run_id` fail with it and change nothing. Reads always pass through.
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: S,
    fault: Mutex<Option<WriteFault>>,
    refused: std::sync::atomic::AtomicU64,
}

impl<S: Store> FaultyStore<S> {
    /// A wrapper that injects nothing until [`set_fault`](Self::set_fault).
    pub fn new(inner: S) -> Self {
        FaultyStore {
            inner,
            fault: Mutex::new(None),
            refused: Default::default(),
        }
    }

    /// Starts (`Some`) or stops (`None`) failing writes.
    pub fn set_fault(&self, fault: Option<WriteFault>) {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }

    /// How many writes were refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn check(&self) -> Result<()> {
        match *self.fault.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(fault) => {
                self.refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(fault.error())
            }
            None => Ok(()),
        }
    }
}

impl<S: Store> Store for FaultyStore<S> {
    fn commit(&self, batch: Batch) -> Result<Receipt> {
        self.check()?;
        self.inner.commit(batch)
    }
    fn flush(&self) -> Result<()> {
        self.check()?;
        self.inner.flush()
    }
    fn commit_durable(&self, batch: Batch) -> Result<Receipt> {
        self.check()?;
        self.inner.commit_durable(batch)
    }
    fn next_run_id(&self) -> Result<RunId> {
        self.check()?;
        self.inner.next_run_id()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Contact, ContactKey, MemoryStore, Op};

    #[test]
    fn writes_fail_while_the_fault_is_set_and_nothing_changes() {
        let store = FaultyStore::new(MemoryStore::new());
        let key = ContactKey::new("t", "c1");
        let now = "2026-03-02T02:00:00Z".parse().unwrap();
        let put =
            |id: &str| Batch::new().op(Op::PutContact(Contact::new(ContactKey::new("t", id), now)));
        store.commit(put("c1")).unwrap();
        store.set_fault(Some(WriteFault::DiskFull));
        assert!(matches!(
            store.commit(put("c2")),
            Err(StoreError::DiskFull(_))
        ));
        assert!(matches!(store.flush(), Err(StoreError::DiskFull(_))));
        store.set_fault(Some(WriteFault::ReadOnly));
        assert!(matches!(store.next_run_id(), Err(StoreError::ReadOnly(_))));
        // Reads keep working; the refused write left nothing behind.
        assert!(store.contact(&key).unwrap().is_some());
        assert!(
            store
                .contact(&ContactKey::new("t", "c2"))
                .unwrap()
                .is_none()
        );
        assert_eq!(store.refused(), 3);
        store.set_fault(None);
        store.commit(put("c2")).unwrap();
        assert!(
            store
                .contact(&ContactKey::new("t", "c2"))
                .unwrap()
                .is_some()
        );
    }
}
