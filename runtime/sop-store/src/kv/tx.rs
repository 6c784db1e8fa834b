//! One commit: checks, then every op turned into key writes, including index fix-ups.
//!
//! Ops see the effects of earlier ops of the same batch (an overlay over the backend), so a
//! batch may, say, put a run twice; the backend receives the net writes in one atomic apply.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sop_clock::Timestamp;

use super::key::{Key, prefix_end};
use super::{OrderedKv, Write, layout};
use crate::batch::{Batch, Check, Op, Receipt};
use crate::codec::{decode, decode_leading_u64, encode, encode_detail};
use crate::contact::{Contact, ContactKey};
use crate::error::{Result, StoreError};
use crate::flow::{FlowKey, FlowRecord};
use crate::outbox::OutboxEntry;
use crate::plugin_kv::KvEntry;
use crate::run::{HistoryEntry, Run, RunId, RunSummary};
use crate::timer::{Subscription, Timer, TimerKey};

/// Next sequence numbers by sequence prefix.
pub(super) type NextSeqs = HashMap<Vec<u8>, u64>;

pub(super) struct Tx<'a, B> {
    backend: &'a B,
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Next sequence number per sequence prefix (history of a run, event log), as this
    /// batch leaves it.
    next_seq: NextSeqs,
    /// The same, as earlier commits left it (`Sequences`).
    known_seq: &'a NextSeqs,
    /// The batch's run details as [`encode_details`] encoded them, in op order.
    details: std::vec::IntoIter<Vec<u8>>,
    receipt: Receipt,
}

/// The stored form of every run detail in `batch`, in op order: compression needs no reads,
/// so it is done before the commit lock is taken.
pub(super) fn encode_details(batch: &Batch) -> Result<Vec<Vec<u8>>> {
    batch
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::PutRunDetail { detail, .. } => Some(encode_detail(detail)),
            _ => None,
        })
        .collect()
}

impl<'a, B: OrderedKv> Tx<'a, B> {
    /// `details`: the batch's run details as [`encode_details`] encoded them.
    pub(super) fn new(backend: &'a B, known_seq: &'a NextSeqs, details: Vec<Vec<u8>>) -> Self {
        Self {
            backend,
            overlay: BTreeMap::new(),
            next_seq: HashMap::new(),
            known_seq,
            details: details.into_iter(),
            receipt: Receipt::default(),
        }
    }

    /// Returns the writes, the receipt and the sequences' next numbers.
    pub(super) fn run(mut self, batch: Batch) -> Result<(Vec<Write>, Receipt, NextSeqs)> {
        for check in &batch.checks {
            self.check(check)?;
        }
        for op in batch.ops {
            self.op(op)?;
        }
        Ok((
            self.overlay.into_iter().collect(),
            self.receipt,
            self.next_seq,
        ))
    }

    fn raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.overlay.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.backend.get(key),
        }
    }

    fn get<T: DeserializeOwned>(&self, table: &'static str, key: &[u8]) -> Result<Option<T>> {
        self.raw(key)?.map(|v| decode(table, &v)).transpose()
    }

    fn put<T: Serialize>(&mut self, table: &'static str, key: Vec<u8>, value: &T) -> Result<()> {
        let bytes = encode(table, value)?;
        self.overlay.insert(key, Some(bytes));
        Ok(())
    }

    fn delete(&mut self, key: Vec<u8>) {
        self.overlay.insert(key, None);
    }

    /// Every pair in `[start, end)` as the batch so far sees it.
    fn scan(&self, start: &[u8], end: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = self
            .backend
            .scan(start, end, usize::MAX)?
            .into_iter()
            .collect();
        for (k, v) in self.overlay.range(start.to_vec()..end.to_vec()) {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().collect())
    }

    /// The next sequence number under `prefix`, whose values are `(seq, ...)`.
    fn next_seq(&mut self, table: &'static str, prefix: Key) -> Result<u64> {
        let start = prefix.clone().into_bytes();
        let next = match self.next_seq.get(&start).or(self.known_seq.get(&start)) {
            Some(n) => *n,
            None => match self.backend.last(&start, &prefix.prefix_end())? {
                None => 1,
                Some((_, v)) => decode_leading_u64(table, &v)? + 1,
            },
        };
        self.next_seq.insert(start, next + 1);
        Ok(next)
    }

    fn check(&self, check: &Check) -> Result<()> {
        match check {
            Check::EventUnseen { source, dedupe_id } => {
                if self.raw(&layout::seen(source, dedupe_id))?.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "event {source}/{dedupe_id} was already seen"
                    )));
                }
            }
            Check::RunRevision { run, expected } => {
                let found = self
                    .get::<Run>("run", &layout::run(*run))?
                    .map(|r| r.revision);
                if found != *expected {
                    return Err(StoreError::Conflict(format!(
                        "run {run} is at revision {found:?}, expected {expected:?}"
                    )));
                }
            }
            Check::FlowRevision { key, expected } => {
                let found = self
                    .get::<FlowRecord>("flow", &layout::flow(key))?
                    .map(|r| r.revision);
                if found != *expected {
                    return Err(StoreError::Conflict(format!(
                        "flow {}/{} is at revision {found:?}, expected {expected:?}",
                        key.playbook, key.key
                    )));
                }
            }
            Check::NoLiveRun { subject, playbook } => {
                let prefix = layout::subject_prefix(subject);
                for (_, v) in self.scan(&prefix.clone().into_bytes(), &prefix.prefix_end())? {
                    let run: RunSummary = decode("run index", &v)?;
                    if run.playbook == *playbook && run.state.is_live() {
                        return Err(StoreError::Conflict(format!(
                            "{subject:?} already has live run {} of {playbook}",
                            run.id
                        )));
                    }
                }
            }
            Check::OutboxAbsent(key) => {
                if self.raw(&layout::outbox(key))?.is_some() {
                    return Err(StoreError::Conflict(format!("outbox entry {key} exists")));
                }
            }
        }
        Ok(())
    }

    fn op(&mut self, op: Op) -> Result<()> {
        match op {
            Op::PutContact(c) => self.put_contact(c),
            Op::DeleteContact(k) => self.delete_contact(&k),
            Op::PutRun(run) => self.put_run(run),
            Op::DeleteRun(id) => self.delete_run(id),
            Op::AppendHistory { run, entry } => self.append_history(run, entry),
            Op::PutTimer(t) => self.put_timer(t),
            Op::CancelTimer(k) => self.cancel_timer(&k),
            Op::Subscribe(s) => {
                let by_run = layout::subscription_run(s.run, &s.subject, &s.event);
                self.put("subscription", by_run, &s)?;
                let key = layout::subscription(&s.subject, &s.event, s.run);
                self.put("subscription", key, &s)
            }
            Op::Unsubscribe {
                subject,
                event,
                run,
            } => {
                self.delete(layout::subscription_run(run, &subject, &event));
                self.delete(layout::subscription(&subject, &event, run));
                Ok(())
            }
            Op::UnsubscribeRun(run) => self.unsubscribe_run(run),
            Op::MarkEventSeen {
                source,
                dedupe_id,
                at,
            } => {
                let key = layout::seen(&source, &dedupe_id);
                // The first sighting counts; a repeat does not extend retention.
                if self.raw(&key)?.is_none() {
                    self.put("dedupe", key, &at.timestamp_millis())?;
                    let idx = layout::seen_at(at, &source, &dedupe_id);
                    self.put("dedupe index", idx, &(source, dedupe_id))?;
                }
                Ok(())
            }
            Op::ForgetEventsSeenBefore(before) => {
                let start = Key::table(layout::SEEN_AT).into_bytes();
                let end = Key::table(layout::SEEN_AT).at(before).into_bytes();
                for (idx, v) in self.scan(&start, &end)? {
                    let (source, id): (String, String) = decode("dedupe index", &v)?;
                    self.delete(layout::seen(&source, &id));
                    self.delete(idx);
                }
                Ok(())
            }
            Op::AppendEvent(event) => {
                let seq = self.next_seq("event", Key::table(layout::EVENT))?;
                self.put("event", layout::event(seq), &(seq, &event))?;
                self.receipt.event_seqs.push(seq);
                Ok(())
            }
            Op::PutOutbox(entry) => self.put_outbox(entry),
            Op::RecordTouch { key, at } => {
                let k = layout::touch(&key, at);
                let count = self.get::<(i64, u32)>("touch", &k)?.map_or(0, |(_, n)| n);
                self.put(
                    "touch",
                    k,
                    &(at.timestamp_millis(), count.saturating_add(1)),
                )
            }
            Op::ForgetTouchesBefore { key, before } => {
                let start = layout::touch_prefix(&key).into_bytes();
                let end = layout::touch(&key, before);
                for (k, _) in self.scan(&start, &end)? {
                    self.delete(k);
                }
                Ok(())
            }
            Op::SetCronLastFire {
                playbook,
                trigger,
                at,
            } => self.put(
                "cron",
                layout::cron(&playbook, &trigger),
                &at.timestamp_millis(),
            ),
            Op::KvSet {
                plugin,
                key,
                value,
                expires_at,
            } => {
                self.kv_delete(&plugin, &key)?;
                if let Some(t) = expires_at {
                    self.put(
                        "plugin kv index",
                        layout::kv_expiry(t, &plugin, &key),
                        &(&plugin, &key),
                    )?;
                }
                let entry = KvEntry { value, expires_at };
                self.put("plugin kv", layout::kv(&plugin, &key), &entry)
            }
            Op::KvDelete { plugin, key } => self.kv_delete(&plugin, &key),
            Op::KvPurgeExpired { now } => self.kv_purge(now),
            Op::PutRunDetail { run, .. } => {
                let bytes = self
                    .details
                    .next()
                    .ok_or_else(|| StoreError::Invalid("a run detail was not encoded".into()))?;
                self.overlay.insert(layout::run_detail(run), Some(bytes));
                Ok(())
            }
            Op::PutGroup(g) => self.put("group", layout::group(&g.key), &g),
            Op::DeleteGroup(key) => {
                self.delete(layout::group(&key));
                Ok(())
            }
            Op::PutPlaybook(p) => self.put("playbook", layout::playbook(&p.id, p.version), &p),
            Op::PutFlow(record) => {
                self.delete_flow(&record.key)?;
                if let Some(due) = record.due_ms {
                    self.put(
                        "flow index",
                        layout::flow_due(due, &record.key),
                        &record.key,
                    )?;
                }
                for run in &record.live {
                    self.put(
                        "flow index",
                        layout::flow_run(*run, &record.key),
                        &record.key,
                    )?;
                }
                self.put("flow", layout::flow(&record.key), &record)
            }
            Op::DeleteFlow(key) => self.delete_flow(&key),
        }
    }

    fn delete_flow(&mut self, key: &FlowKey) -> Result<()> {
        if let Some(old) = self.get::<FlowRecord>("flow", &layout::flow(key))? {
            if let Some(due) = old.due_ms {
                self.delete(layout::flow_due(due, key));
            }
            for run in &old.live {
                self.delete(layout::flow_run(*run, key));
            }
            self.delete(layout::flow(key));
        }
        Ok(())
    }

    fn put_contact(&mut self, c: Contact) -> Result<()> {
        self.delete_contact(&c.key)?;
        let idx = layout::contact_idle(&c.key, c.last_interaction);
        self.put(
            "contact index",
            idx,
            &(c.last_interaction.map(|t| t.timestamp_millis()), &c.key),
        )?;
        self.put("contact", layout::contact(&c.key), &c)
    }

    fn delete_contact(&mut self, key: &ContactKey) -> Result<()> {
        if let Some(old) = self.get::<Contact>("contact", &layout::contact(key))? {
            self.delete(layout::contact_idle(key, old.last_interaction));
            self.delete(layout::contact(key));
        }
        Ok(())
    }

    fn unindex_run(&mut self, id: RunId) -> Result<bool> {
        let Some(old) = self.get::<Run>("run", &layout::run(id))? else {
            return Ok(false);
        };
        self.delete(layout::run_state(&old.playbook, old.state, id));
        self.delete(layout::run_subject(&old.subject, id));
        Ok(true)
    }

    fn put_run(&mut self, run: Run) -> Result<()> {
        let summary = RunSummary::from(&run);
        // Most transitions leave both index entries as they are (a run stays active from
        // step to step): rewriting them would be two of the commit's key writes for nothing.
        let (same_state, same_subject) = match self.get::<Run>("run", &layout::run(run.id))? {
            Some(old) => {
                let same_state = old.playbook == run.playbook && old.state == run.state;
                let same_subject = old.subject == run.subject && RunSummary::from(&old) == summary;
                if !same_state {
                    self.delete(layout::run_state(&old.playbook, old.state, run.id));
                }
                if !same_subject {
                    self.delete(layout::run_subject(&old.subject, run.id));
                }
                (same_state, same_subject)
            }
            None => (false, false),
        };
        if !same_state {
            self.put(
                "run index",
                layout::run_state(&run.playbook, run.state, run.id),
                &run.id,
            )?;
        }
        if !same_subject {
            self.put(
                "run index",
                layout::run_subject(&run.subject, run.id),
                &summary,
            )?;
        }
        self.put("run", layout::run(run.id), &run)
    }

    fn delete_run(&mut self, id: RunId) -> Result<()> {
        if self.unindex_run(id)? {
            self.delete(layout::run(id));
        }
        self.delete(layout::run_detail(id));
        let history = layout::history_prefix(id);
        for (k, _) in self.scan(&history.clone().into_bytes(), &history.prefix_end())? {
            self.delete(k);
        }
        let timers = layout::timers_of_run(id);
        for (_, v) in self.scan(&timers.clone().into_bytes(), &timers.prefix_end())? {
            let timer: Timer = decode("timer", &v)?;
            self.cancel_timer(&timer.key)?;
        }
        self.unsubscribe_run(id)
    }

    fn unsubscribe_run(&mut self, run: RunId) -> Result<()> {
        let prefix = layout::subscriptions_of_run(run);
        for (k, v) in self.scan(&prefix.clone().into_bytes(), &prefix.prefix_end())? {
            let s: Subscription = decode("subscription", &v)?;
            self.delete(layout::subscription(&s.subject, &s.event, run));
            self.delete(k);
        }
        Ok(())
    }

    fn append_history(&mut self, run: RunId, entry: HistoryEntry) -> Result<()> {
        let seq = self.next_seq("history", layout::history_prefix(run))?;
        self.put("history", layout::history(run, seq), &(seq, &entry))?;
        self.receipt.history_seqs.push((run, seq));
        Ok(())
    }

    fn put_timer(&mut self, timer: Timer) -> Result<()> {
        self.cancel_timer(&timer.key)?;
        self.put("timer", layout::timer(timer.due, &timer.key), &timer)?;
        self.put("timer", layout::timer_run(&timer.key), &timer)
    }

    fn cancel_timer(&mut self, key: &TimerKey) -> Result<()> {
        if let Some(old) = self.get::<Timer>("timer", &layout::timer_run(key))? {
            self.delete(layout::timer(old.due, key));
            self.delete(layout::timer_run(key));
        }
        Ok(())
    }

    fn put_outbox(&mut self, entry: OutboxEntry) -> Result<()> {
        let key = layout::outbox(&entry.key);
        if let Some(old) = self.get::<OutboxEntry>("outbox", &key)? {
            self.delete(layout::outbox_state(old.state.kind(), &old.key));
        }
        let idx = layout::outbox_state(entry.state.kind(), &entry.key);
        self.put("outbox index", idx, &entry.key)?;
        self.put("outbox", key, &entry)
    }

    fn kv_delete(&mut self, plugin: &str, key: &str) -> Result<()> {
        let k = layout::kv(plugin, key);
        if let Some(old) = self.get::<KvEntry>("plugin kv", &k)? {
            if let Some(t) = old.expires_at {
                self.delete(layout::kv_expiry(t, plugin, key));
            }
            self.delete(k);
        }
        Ok(())
    }

    fn kv_purge(&mut self, now: Timestamp) -> Result<()> {
        let start = Key::table(layout::KV_EXPIRY).into_bytes();
        // Expired means `now >= expires_at`: every key up to and including `now`'s millisecond.
        let end = prefix_end(&Key::table(layout::KV_EXPIRY).at(now).into_bytes());
        for (idx, v) in self.scan(&start, &end)? {
            let (plugin, key): (String, String) = decode("plugin kv index", &v)?;
            self.delete(layout::kv(&plugin, &key));
            self.delete(idx);
        }
        Ok(())
    }
}
