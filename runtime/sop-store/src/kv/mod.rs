//! [`KvStore`]: the [`Store`] over any ordered, atomically batched key-value engine.
//!
//! Embedded backends (the in-memory one here, sled) only implement [`OrderedKv`]; the table
//! layout, indexes, encodings and batch semantics live here once, so every such backend
//! behaves the same. A SQL backend would implement [`Store`] directly instead.

mod key;
mod layout;
mod tx;

use std::sync::Mutex;

use serde::de::DeserializeOwned;
use sop_clock::Timestamp;

use crate::batch::{Batch, Receipt};
use crate::codec::{FORMAT, decode, decode_detail};
use crate::contact::{Contact, ContactKey};
use crate::error::{Result, StoreError};
use crate::event::EventRecord;
use crate::flow::{FlowKey, FlowRecord};
use crate::group::{Group, GroupKey};
use crate::outbox::{IdempotencyKey, OutboxEntry, OutboxStateKind};
use crate::playbook::PlaybookVersion;
use crate::plugin_kv::KvEntry;
use crate::run::{HistoryEntry, Run, RunId, RunState, RunSummary, Subject};
use crate::store::Store;
use crate::timer::{Subscription, Timer, TimerKey};
use crate::touch::TouchKey;
use key::{Key, successor};

/// A key and its value.
pub type Pair = (Vec<u8>, Vec<u8>);

/// One write of an atomic batch: a value to put, or `None` to delete.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

/// What [`OrderedKv::scan_each`] calls with each key and value.
pub type Visit<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<()>;

/// An ordered byte-key store with atomic multi-key batches.
pub trait OrderedKv: Send + Sync + std::fmt::Debug {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Pairs with `start <= key < end`, ascending, at most `limit`.
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Pair>>;
    /// Calls `visit` on the pairs [`scan`](Self::scan) would return, in order, borrowing them
    /// instead of copying each key and value (reads that decode every value, such as the
    /// timer scan at start-up, spend most of their time allocating otherwise). Stops at the
    /// first error `visit` returns.
    fn scan_each(&self, start: &[u8], end: &[u8], limit: usize, visit: Visit<'_>) -> Result<()> {
        for (k, v) in self.scan(start, end, limit)? {
            visit(&k, &v)?;
        }
        Ok(())
    }
    /// The greatest pair with `start <= key < end`.
    fn last(&self, start: &[u8], end: &[u8]) -> Result<Option<Pair>>;
    /// Applies all writes or none, also across a crash.
    fn apply(&self, writes: Vec<Write>) -> Result<()>;
    /// Returns once every applied batch is durable.
    fn flush(&self) -> Result<()>;
    /// A number never returned before, also across restarts.
    fn next_id(&self) -> Result<u64>;
}

/// The store over an [`OrderedKv`].
#[derive(Debug)]
pub struct KvStore<B> {
    backend: B,
    /// Commits read old records to fix up indexes; one commit at a time keeps that
    /// read-modify-write consistent. Reads do not take it. It guards the sequences too.
    commit_lock: Mutex<Sequences>,
}

/// The next number of each sequence (a run's history, the event log) once a commit has used
/// it: finding it in the backend is a reverse scan for the last key, made under the commit
/// lock, and most transitions append to a history. Cleared when full, and after a failed
/// write (which the backend may or may not have applied).
#[derive(Debug, Default)]
struct Sequences(tx::NextSeqs);

impl Sequences {
    /// Beyond this many sequences the map starts again empty (about 100 bytes each).
    const MAX: usize = 65_536;

    fn learn(&mut self, next: tx::NextSeqs) {
        if self.0.len() + next.len() > Self::MAX {
            self.0.clear();
        }
        self.0.extend(next);
    }
}

impl<B: OrderedKv> KvStore<B> {
    /// Opens a store over `backend`, stamping an empty or older one with the current format
    /// and refusing one written by a newer binary.
    pub fn open(backend: B) -> Result<Self> {
        match backend.get(&layout::meta_format())? {
            None => backend.apply(vec![(layout::meta_format(), Some(vec![FORMAT]))])?,
            Some(v) => match v.as_slice() {
                [found] if *found == FORMAT => {}
                // An older store: it is read as it is, and stamped with the format this
                // binary writes so an older binary refuses it instead of meeting values it
                // cannot read (e.g. compressed run details).
                [found] if *found < FORMAT => {
                    backend.apply(vec![(layout::meta_format(), Some(vec![FORMAT]))])?
                }
                [found] => {
                    return Err(StoreError::UnsupportedVersion {
                        table: "store",
                        found: *found,
                        supported: FORMAT,
                    });
                }
                _ => {
                    return Err(StoreError::Corrupt {
                        table: "meta",
                        reason: "bad format marker".into(),
                    });
                }
            },
        }
        Ok(Self {
            backend,
            commit_lock: Mutex::new(Sequences::default()),
        })
    }

    /// The engine underneath (for backend-specific statistics).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    fn get<T: DeserializeOwned>(&self, table: &'static str, key: &[u8]) -> Result<Option<T>> {
        self.backend
            .get(key)?
            .map(|v| decode(table, &v))
            .transpose()
    }

    /// Values of a key range, decoded.
    fn values<T: DeserializeOwned>(
        &self,
        table: &'static str,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.backend.scan_each(start, end, limit, &mut |_, v| {
            out.push(decode(table, v)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Pages within `prefix`: from just after `after` (a full key) or from the start.
    fn page_start(prefix: &Key, after: Option<Vec<u8>>) -> Vec<u8> {
        after.map_or_else(|| prefix.clone().into_bytes(), |k| successor(&k))
    }
}

impl<B: OrderedKv> Store for KvStore<B> {
    fn commit(&self, batch: Batch) -> Result<Receipt> {
        // Compressed before the lock: commits are serialized, so work that needs no reads
        // of the store is done outside.
        let details = tx::encode_details(&batch)?;
        let mut sequences = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        let (writes, receipt, next) =
            tx::Tx::new(&self.backend, &sequences.0, details).run(batch)?;
        if !writes.is_empty()
            && let Err(error) = self.backend.apply(writes)
        {
            sequences.0.clear();
            return Err(error);
        }
        sequences.learn(next);
        Ok(receipt)
    }

    fn flush(&self) -> Result<()> {
        self.backend.flush()
    }

    fn next_run_id(&self) -> Result<RunId> {
        self.backend.next_id().map(RunId)
    }

    fn contact(&self, key: &ContactKey) -> Result<Option<Contact>> {
        self.get("contact", &layout::contact(key))
    }

    fn contacts(&self, tenant: &str, after: Option<&str>, limit: usize) -> Result<Vec<Contact>> {
        let prefix = layout::contacts_of(tenant);
        let after = after.map(|id| layout::contact(&ContactKey::new(tenant, id)));
        let start = Self::page_start(&prefix, after);
        self.values("contact", &start, &prefix.prefix_end(), limit)
    }

    fn inactive_contacts(
        &self,
        tenant: &str,
        before: Timestamp,
        after: Option<&(Option<Timestamp>, ContactKey)>,
        limit: usize,
    ) -> Result<Vec<(Option<Timestamp>, ContactKey)>> {
        let prefix = layout::idle_of(tenant);
        let after = after.map(|(t, c)| layout::contact_idle(c, *t));
        let start = Self::page_start(&prefix, after);
        let end = layout::idle_of(tenant).at(before).into_bytes();
        let rows: Vec<(Option<i64>, ContactKey)> =
            self.values("contact index", &start, &end, limit)?;
        rows.into_iter()
            .map(|(ms, key)| Ok((ms.map(instant("contact index")).transpose()?, key)))
            .collect()
    }

    fn group(&self, key: &GroupKey) -> Result<Option<Group>> {
        self.get("group", &layout::group(key))
    }

    fn groups(&self, tenant: &str, after: Option<&str>, limit: usize) -> Result<Vec<Group>> {
        let prefix = layout::groups_of(tenant);
        let after = after.map(|id| layout::group(&GroupKey::new(tenant, id)));
        let start = Self::page_start(&prefix, after);
        self.values("group", &start, &prefix.prefix_end(), limit)
    }

    fn run(&self, id: RunId) -> Result<Option<Run>> {
        self.get("run", &layout::run(id))
    }

    fn run_detail(&self, id: RunId) -> Result<Option<Vec<u8>>> {
        self.backend
            .get(&layout::run_detail(id))?
            .map(|v| decode_detail(&v))
            .transpose()
    }

    fn runs_by_state(
        &self,
        playbook: &str,
        state: RunState,
        after: Option<RunId>,
        limit: usize,
    ) -> Result<Vec<RunId>> {
        let prefix = layout::run_state_prefix(playbook, state);
        let after = after.map(|id| layout::run_state(playbook, state, id));
        let start = Self::page_start(&prefix, after);
        self.values("run index", &start, &prefix.prefix_end(), limit)
    }

    fn runs_of_subject(&self, subject: &Subject) -> Result<Vec<RunSummary>> {
        let prefix = layout::subject_prefix(subject);
        self.values(
            "run index",
            &prefix.clone().into_bytes(),
            &prefix.prefix_end(),
            usize::MAX,
        )
    }

    fn history(
        &self,
        run: RunId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, HistoryEntry)>> {
        let prefix = layout::history_prefix(run);
        let start = Self::page_start(&prefix, after.map(|s| layout::history(run, s)));
        self.values("history", &start, &prefix.prefix_end(), limit)
    }

    fn timer(&self, key: &TimerKey) -> Result<Option<Timer>> {
        self.get("timer", &layout::timer_run(key))
    }

    fn due_timers(
        &self,
        until: Timestamp,
        after: Option<&Timer>,
        limit: usize,
    ) -> Result<Vec<Timer>> {
        let prefix = Key::table(layout::TIMER);
        let start = Self::page_start(&prefix, after.map(|t| layout::timer(t.due, &t.key)));
        // Inclusive of `until`: end just after every key at that millisecond.
        let end = Key::table(layout::TIMER).at(until).prefix_end();
        self.values("timer", &start, &end, limit)
    }

    fn subscribers(&self, subject: &Subject, event: &str) -> Result<Vec<Subscription>> {
        let prefix = layout::subscription_prefix(subject, event);
        self.values(
            "subscription",
            &prefix.clone().into_bytes(),
            &prefix.prefix_end(),
            usize::MAX,
        )
    }

    fn waits_of_run(&self, run: RunId) -> Result<(Vec<Timer>, Vec<Subscription>)> {
        let timers = layout::timers_of_run(run);
        let timers = self.values(
            "timer",
            &timers.clone().into_bytes(),
            &timers.prefix_end(),
            usize::MAX,
        )?;
        let subs = layout::subscriptions_of_run(run);
        let subs = self.values(
            "subscription",
            &subs.clone().into_bytes(),
            &subs.prefix_end(),
            usize::MAX,
        )?;
        Ok((timers, subs))
    }

    fn event_seen(&self, source: &str, dedupe_id: &str) -> Result<Option<Timestamp>> {
        let ms: Option<i64> = self.get("dedupe", &layout::seen(source, dedupe_id))?;
        ms.map(instant("dedupe")).transpose()
    }

    fn events(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, EventRecord)>> {
        let prefix = Key::table(layout::EVENT);
        let start = Self::page_start(&prefix, after.map(layout::event));
        self.values("event", &start, &prefix.prefix_end(), limit)
    }

    fn outbox(&self, key: &IdempotencyKey) -> Result<Option<OutboxEntry>> {
        self.get("outbox", &layout::outbox(key))
    }

    fn outbox_in_state(
        &self,
        state: OutboxStateKind,
        after: Option<&IdempotencyKey>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>> {
        let prefix = layout::outbox_state_prefix(state);
        let start = Self::page_start(&prefix, after.map(|k| layout::outbox_state(state, k)));
        let keys: Vec<IdempotencyKey> =
            self.values("outbox index", &start, &prefix.prefix_end(), limit)?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let entry = self.outbox(&key)?.ok_or_else(|| StoreError::Corrupt {
                table: "outbox index",
                reason: format!("index names missing entry {key}"),
            })?;
            out.push(entry);
        }
        Ok(out)
    }

    fn touches(&self, key: &TouchKey, from: Timestamp, to: Timestamp) -> Result<Vec<Timestamp>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let start = layout::touch(key, from);
        let end = layout::touch(key, to);
        let counts: Vec<(i64, u32)> = self.values("touch", &start, &end, usize::MAX)?;
        let mut out = Vec::new();
        for (ms, n) in counts {
            let at = instant("touch")(ms)?;
            out.extend(std::iter::repeat_n(at, n as usize));
        }
        Ok(out)
    }

    fn cron_last_fire(&self, playbook: &str, trigger: &str) -> Result<Option<Timestamp>> {
        let ms: Option<i64> = self.get("cron", &layout::cron(playbook, trigger))?;
        ms.map(instant("cron")).transpose()
    }

    fn kv_get(&self, plugin: &str, key: &str, now: Timestamp) -> Result<Option<Vec<u8>>> {
        let entry: Option<KvEntry> = self.get("plugin kv", &layout::kv(plugin, key))?;
        Ok(entry.filter(|e| e.is_live(now)).map(|e| e.value))
    }

    fn playbook(&self, id: &str, version: u32) -> Result<Option<PlaybookVersion>> {
        self.get("playbook", &layout::playbook(id, version))
    }

    fn playbook_versions(&self, id: &str) -> Result<Vec<PlaybookVersion>> {
        let prefix = layout::playbook_versions(id);
        self.values(
            "playbook",
            &prefix.clone().into_bytes(),
            &prefix.prefix_end(),
            usize::MAX,
        )
    }

    fn playbook_ids(&self) -> Result<Vec<String>> {
        let prefix = layout::playbooks();
        let all: Vec<PlaybookVersion> = self.values(
            "playbook",
            &prefix.clone().into_bytes(),
            &prefix.prefix_end(),
            usize::MAX,
        )?;
        let mut ids: Vec<String> = all.into_iter().map(|p| p.id).collect();
        ids.dedup();
        Ok(ids)
    }

    fn flow(&self, key: &FlowKey) -> Result<Option<FlowRecord>> {
        self.get("flow", &layout::flow(key))
    }

    fn due_flows(
        &self,
        until_ms: i64,
        after: Option<&(i64, FlowKey)>,
        limit: usize,
    ) -> Result<Vec<FlowRecord>> {
        let prefix = Key::table(layout::FLOW_DUE);
        let start = Self::page_start(&prefix, after.map(|(due, k)| layout::flow_due(*due, k)));
        let end = Key::table(layout::FLOW_DUE).i64(until_ms).prefix_end();
        let keys: Vec<FlowKey> = self.values("flow index", &start, &end, limit)?;
        self.flow_records(keys)
    }

    fn flows(&self, after: Option<&FlowKey>, limit: usize) -> Result<Vec<FlowRecord>> {
        let prefix = Key::table(layout::FLOW);
        let start = Self::page_start(&prefix, after.map(layout::flow));
        self.values("flow", &start, &prefix.prefix_end(), limit)
    }

    fn flows_of_run(&self, run: RunId) -> Result<Vec<FlowKey>> {
        let prefix = layout::flows_of_run(run);
        self.values(
            "flow index",
            &prefix.clone().into_bytes(),
            &prefix.prefix_end(),
            usize::MAX,
        )
    }
}

impl<B: OrderedKv> KvStore<B> {
    fn flow_records(&self, keys: Vec<FlowKey>) -> Result<Vec<FlowRecord>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let record = self.flow(&key)?.ok_or_else(|| StoreError::Corrupt {
                table: "flow index",
                reason: format!("index names missing flow {}/{}", key.playbook, key.key),
            })?;
            out.push(record);
        }
        Ok(out)
    }
}

/// Converts stored milliseconds back to an instant.
fn instant(table: &'static str) -> impl Fn(i64) -> Result<Timestamp> {
    move |ms| {
        Timestamp::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt {
            table,
            reason: format!("instant {ms} ms out of range"),
        })
    }
}
