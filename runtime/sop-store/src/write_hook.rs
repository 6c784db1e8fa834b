//! A store wrapper that runs a hook around every write and passes reads through: the one
//! place that forwards the whole [`Store`] trait, for the test fault injector
//! ([`FaultyStore`](crate::FaultyStore)) and the daemon's write-health watch alike.

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

/// What a [`HookedStore`] does around each write (`commit`, `flush`, `commit_durable`,
/// `next_run_id`).
pub trait WriteHook: Send + Sync + std::fmt::Debug {
    /// Before the write: an error refuses it, and nothing is written.
    fn before_write(&self) -> Result<()> {
        Ok(())
    }
    /// After the write (also after a refusal by `before_write`), with its outcome.
    fn after_write(&self, _outcome: std::result::Result<(), &StoreError>) {}
}

/// `inner`, with `hook` around every write; reads pass through untouched.
#[derive(Debug)]
pub struct HookedStore<S, H> {
    inner: S,
    hook: H,
}

impl<S: Store, H: WriteHook> HookedStore<S, H> {
    /// Wraps `inner`.
    pub fn with_hook(inner: S, hook: H) -> Self {
        HookedStore { inner, hook }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The hook.
    pub fn hook(&self) -> &H {
        &self.hook
    }

    fn write<T>(&self, write: impl FnOnce(&S) -> Result<T>) -> Result<T> {
        let result = self.hook.before_write().and_then(|()| write(&self.inner));
        self.hook.after_write(result.as_ref().map(|_| ()));
        result
    }
}

impl<S: Store, H: WriteHook> Store for HookedStore<S, H> {
    fn commit(&self, batch: Batch) -> Result<Receipt> {
        self.write(|s| s.commit(batch))
    }
    fn flush(&self) -> Result<()> {
        self.write(|s| s.flush())
    }
    fn commit_durable(&self, batch: Batch) -> Result<Receipt> {
        self.write(|s| s.commit_durable(batch))
    }
    fn next_run_id(&self) -> Result<RunId> {
        self.write(|s| s.next_run_id())
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
