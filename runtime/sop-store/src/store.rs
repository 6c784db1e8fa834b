//! The store trait: what the engine and the policy gate may rely on.

use sop_clock::Timestamp;

use crate::batch::{Batch, Receipt};
use crate::contact::{Contact, ContactKey};
use crate::error::Result;
use crate::event::EventRecord;
use crate::flow::{FlowKey, FlowRecord};
use crate::group::{Group, GroupKey};
use crate::outbox::{IdempotencyKey, OutboxEntry, OutboxStateKind};
use crate::playbook::PlaybookVersion;
use crate::run::{HistoryEntry, Run, RunId, RunState, RunSummary, Subject};
use crate::timer::{Subscription, Timer, TimerKey};
use crate::touch::TouchKey;

/// Durable state of the runtime. Backends: [`MemoryStore`](crate::MemoryStore) here,
/// sled in `sop-store-sled`; each must pass [`conformance`](crate#testing).
///
/// **Writes** go through [`commit`](Store::commit) only: a [`Batch`] is applied entirely or
/// not at all, also across a crash. **Durability**: `commit` may return before the data is on
/// disk; [`flush`](Store::flush) (or [`commit_durable`](Store::commit_durable)) returns once
/// everything committed so far survives a crash. Acknowledge an event to its sender only
/// after `commit_durable`.
///
/// **Reads** see every returned commit. Scans are paged: they return at most `limit` items
/// strictly after the cursor, in key order, so huge tables are walked in bounded memory.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Applies a batch atomically. Fails with `Conflict` (nothing applied) if a check fails.
    fn commit(&self, batch: Batch) -> Result<Receipt>;

    /// Makes every returned commit durable.
    fn flush(&self) -> Result<()>;

    /// `commit` then `flush`.
    fn commit_durable(&self, batch: Batch) -> Result<Receipt> {
        let receipt = self.commit(batch)?;
        self.flush()?;
        Ok(receipt)
    }

    /// A fresh run id, never handed out before (also across restarts).
    fn next_run_id(&self) -> Result<RunId>;

    // --- contacts
    fn contact(&self, key: &ContactKey) -> Result<Option<Contact>>;
    /// Contacts of a tenant by id, after `after` (an id).
    fn contacts(&self, tenant: &str, after: Option<&str>, limit: usize) -> Result<Vec<Contact>>;
    /// Contacts of a tenant whose last interaction is before `before`, oldest first (never
    /// interacted first), as (last interaction, key). `after` is the last item of the
    /// previous page. An index range scan: cost is proportional to the result.
    fn inactive_contacts(
        &self,
        tenant: &str,
        before: Timestamp,
        after: Option<&(Option<Timestamp>, ContactKey)>,
        limit: usize,
    ) -> Result<Vec<(Option<Timestamp>, ContactKey)>>;

    // --- customer groups
    fn group(&self, key: &GroupKey) -> Result<Option<Group>>;
    /// Groups of a tenant by id, after `after` (an id).
    fn groups(&self, tenant: &str, after: Option<&str>, limit: usize) -> Result<Vec<Group>>;

    // --- runs
    fn run(&self, id: RunId) -> Result<Option<Run>>;
    /// The run's detail bytes, as last put with `Op::PutRunDetail`.
    fn run_detail(&self, id: RunId) -> Result<Option<Vec<u8>>>;
    /// Runs of a playbook (any version) in a state, by id.
    fn runs_by_state(
        &self,
        playbook: &str,
        state: RunState,
        after: Option<RunId>,
        limit: usize,
    ) -> Result<Vec<RunId>>;
    /// Every run (any state) of a subject.
    fn runs_of_subject(&self, subject: &Subject) -> Result<Vec<RunSummary>>;
    /// A run's history in order, as (seq, entry).
    fn history(
        &self,
        run: RunId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, HistoryEntry)>>;

    // --- timers and subscriptions
    fn timer(&self, key: &TimerKey) -> Result<Option<Timer>>;
    /// Timers due at or before `until`, by (due, run, name), after `after`.
    fn due_timers(
        &self,
        until: Timestamp,
        after: Option<&Timer>,
        limit: usize,
    ) -> Result<Vec<Timer>>;
    fn subscribers(&self, subject: &Subject, event: &str) -> Result<Vec<Subscription>>;
    /// What a run waits on (operators' run view, version migration): its timers by name and
    /// its subscriptions.
    fn waits_of_run(&self, run: RunId) -> Result<(Vec<Timer>, Vec<Subscription>)>;

    // --- events
    /// When the dedupe id was first seen, if it was (and not yet forgotten).
    fn event_seen(&self, source: &str, dedupe_id: &str) -> Result<Option<Timestamp>>;
    /// The event log after sequence `after`.
    fn events(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, EventRecord)>>;

    // --- outbox
    fn outbox(&self, key: &IdempotencyKey) -> Result<Option<OutboxEntry>>;
    /// Entries in a state (e.g. `Pending` after a crash, `Accepted` awaiting outcomes).
    fn outbox_in_state(
        &self,
        state: OutboxStateKind,
        after: Option<&IdempotencyKey>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>>;

    // --- frequency caps, cron, plugin kv
    /// Touches in `[from, to)`, oldest first; one item per touch.
    fn touches(&self, key: &TouchKey, from: Timestamp, to: Timestamp) -> Result<Vec<Timestamp>>;
    fn cron_last_fire(&self, playbook: &str, trigger: &str) -> Result<Option<Timestamp>>;
    /// The value if present and not expired at `now` (the injected clock's time).
    fn kv_get(&self, plugin: &str, key: &str, now: Timestamp) -> Result<Option<Vec<u8>>>;

    // --- deployed playbooks
    fn playbook(&self, id: &str, version: u32) -> Result<Option<PlaybookVersion>>;
    /// Every deployed version of a playbook, oldest first.
    fn playbook_versions(&self, id: &str) -> Result<Vec<PlaybookVersion>>;
    /// Ids of every playbook ever deployed, sorted. Reads every stored version: meant for
    /// start-up and the admin API, not hot paths.
    fn playbook_ids(&self) -> Result<Vec<String>>;

    // --- flow control
    fn flow(&self, key: &FlowKey) -> Result<Option<FlowRecord>>;
    /// Flow records due at or before `until` (ms), by (due, key), after `after` (a due and
    /// key of the previous page).
    fn due_flows(
        &self,
        until_ms: i64,
        after: Option<&(i64, FlowKey)>,
        limit: usize,
    ) -> Result<Vec<FlowRecord>>;
    /// Every flow record, by key, after `after` (start-up: runs may have ended while down).
    fn flows(&self, after: Option<&FlowKey>, limit: usize) -> Result<Vec<FlowRecord>>;
    /// The flow keys that count this run toward their concurrency.
    fn flows_of_run(&self, run: RunId) -> Result<Vec<FlowKey>>;
}

/// A shared store is a store (the engine's shards share one `Arc`).
impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn commit(&self, batch: Batch) -> Result<Receipt> {
        (**self).commit(batch)
    }
    fn flush(&self) -> Result<()> {
        (**self).flush()
    }
    fn commit_durable(&self, batch: Batch) -> Result<Receipt> {
        (**self).commit_durable(batch)
    }
    fn next_run_id(&self) -> Result<RunId> {
        (**self).next_run_id()
    }
    fn contact(&self, key: &ContactKey) -> Result<Option<Contact>> {
        (**self).contact(key)
    }
    fn contacts(&self, tenant: &str, after: Option<&str>, limit: usize) -> Result<Vec<Contact>> {
        (**self).contacts(tenant, after, limit)
    }
    fn inactive_contacts(
        &self,
        tenant: &str,
        before: Timestamp,
        after: Option<&(Option<Timestamp>, ContactKey)>,
        limit: usize,
    ) -> Result<Vec<(Option<Timestamp>, ContactKey)>> {
        (**self).inactive_contacts(tenant, before, after, limit)
    }
    fn group(&self, key: &GroupKey) -> Result<Option<Group>> {
        (**self).group(key)
    }
    fn groups(&self, tenant: &str, after: Option<&str>, limit: usize) -> Result<Vec<Group>> {
        (**self).groups(tenant, after, limit)
    }
    fn run(&self, id: RunId) -> Result<Option<Run>> {
        (**self).run(id)
    }
    fn run_detail(&self, id: RunId) -> Result<Option<Vec<u8>>> {
        (**self).run_detail(id)
    }
    fn runs_by_state(
        &self,
        playbook: &str,
        state: RunState,
        after: Option<RunId>,
        limit: usize,
    ) -> Result<Vec<RunId>> {
        (**self).runs_by_state(playbook, state, after, limit)
    }
    fn runs_of_subject(&self, subject: &Subject) -> Result<Vec<RunSummary>> {
        (**self).runs_of_subject(subject)
    }
    fn history(
        &self,
        run: RunId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, HistoryEntry)>> {
        (**self).history(run, after, limit)
    }
    fn timer(&self, key: &TimerKey) -> Result<Option<Timer>> {
        (**self).timer(key)
    }
    fn due_timers(
        &self,
        until: Timestamp,
        after: Option<&Timer>,
        limit: usize,
    ) -> Result<Vec<Timer>> {
        (**self).due_timers(until, after, limit)
    }
    fn subscribers(&self, subject: &Subject, event: &str) -> Result<Vec<Subscription>> {
        (**self).subscribers(subject, event)
    }
    fn waits_of_run(&self, run: RunId) -> Result<(Vec<Timer>, Vec<Subscription>)> {
        (**self).waits_of_run(run)
    }
    fn event_seen(&self, source: &str, dedupe_id: &str) -> Result<Option<Timestamp>> {
        (**self).event_seen(source, dedupe_id)
    }
    fn events(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, EventRecord)>> {
        (**self).events(after, limit)
    }
    fn outbox(&self, key: &IdempotencyKey) -> Result<Option<OutboxEntry>> {
        (**self).outbox(key)
    }
    fn outbox_in_state(
        &self,
        state: OutboxStateKind,
        after: Option<&IdempotencyKey>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>> {
        (**self).outbox_in_state(state, after, limit)
    }
    fn touches(&self, key: &TouchKey, from: Timestamp, to: Timestamp) -> Result<Vec<Timestamp>> {
        (**self).touches(key, from, to)
    }
    fn cron_last_fire(&self, playbook: &str, trigger: &str) -> Result<Option<Timestamp>> {
        (**self).cron_last_fire(playbook, trigger)
    }
    fn kv_get(&self, plugin: &str, key: &str, now: Timestamp) -> Result<Option<Vec<u8>>> {
        (**self).kv_get(plugin, key, now)
    }
    fn playbook(&self, id: &str, version: u32) -> Result<Option<PlaybookVersion>> {
        (**self).playbook(id, version)
    }
    fn playbook_versions(&self, id: &str) -> Result<Vec<PlaybookVersion>> {
        (**self).playbook_versions(id)
    }
    fn playbook_ids(&self) -> Result<Vec<String>> {
        (**self).playbook_ids()
    }
    fn flow(&self, key: &FlowKey) -> Result<Option<FlowRecord>> {
        (**self).flow(key)
    }
    fn due_flows(
        &self,
        until_ms: i64,
        after: Option<&(i64, FlowKey)>,
        limit: usize,
    ) -> Result<Vec<FlowRecord>> {
        (**self).due_flows(until_ms, after, limit)
    }
    fn flows(&self, after: Option<&FlowKey>, limit: usize) -> Result<Vec<FlowRecord>> {
        (**self).flows(after, limit)
    }
    fn flows_of_run(&self, run: RunId) -> Result<Vec<FlowKey>> {
        (**self).flows_of_run(run)
    }
}
