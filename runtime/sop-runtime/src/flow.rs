//! Per-key flow control of starts (`flow:` in a playbook): debounce, rate limit (drop),
//! throttle (queue) and concurrency (queue), decided before the entry rules.
//!
//! State lives in the store (`FlowRecord`, one per playbook and key), so held starts survive
//! a restart. A start that can go at once is started in the trigger's own commit; held ones
//! are released by the flow loop, which sleeps until the earliest record is due (the store
//! indexes records by due time, like timers) or until a run counted by a concurrency limit
//! ends. See docs/engine.md, "Flow control".

use std::sync::Arc;

use sop_clock::Timestamp;
use sop_dsl::model::Flow;
use sop_engine::StartCause;
use sop_store::{
    Batch, Check, EventRecord, FlowKey, FlowRecord, HeldStart, Op, RunId, StoreError, Subject,
};

use crate::error::RuntimeError;
use crate::registry::Deployment;
use crate::runtime::{Inner, subject_label};
use crate::tx::Tx;

/// Commit attempts per release when a trigger raced us on the same key.
const ATTEMPTS: usize = 3;

/// What the flow loop should do next for a key.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// The debounced start's quiet period (or maximum delay) is over.
    Debounced,
    /// The queue's first start may go.
    Start,
    Idle,
}

fn ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

fn per_ms(d: sop_dsl::model::Duration) -> i64 {
    i64::try_from(d.as_seconds()).unwrap_or(i64::MAX / 2_000) * 1000
}

impl Inner {
    /// The flow control of a deployment, if it holds or drops anything.
    pub(crate) fn flow_of(deployment: &Deployment) -> Option<&Flow> {
        deployment.playbook.flow.as_ref().filter(|f| f.is_active())
    }

    /// A trigger asks to start `deployment` for `subject`: debounced, dropped, queued or
    /// started in `tx`. `Err(reason)` (inside `Ok`) when no run started now.
    pub(crate) fn flow_offer(
        &self,
        tx: &mut Tx,
        deployment: &Deployment,
        subject: &Subject,
        cause: &StartCause,
        now: Timestamp,
    ) -> Result<Result<RunId, String>, RuntimeError> {
        let flow = Self::flow_of(deployment).cloned().unwrap_or_default();
        let view = tx.view(&*self.store, subject, &deployment.account, now)?;
        let key = match sop_engine::flow_key(&deployment.playbook, cause, &view, now) {
            Ok(Some(key)) => key,
            Ok(None) => subject_label(subject),
            Err(error) => {
                tracing::warn!(playbook = %deployment.id, %error, "flow key failed; counting per subject");
                subject_label(subject)
            }
        };
        let key = FlowKey {
            playbook: deployment.id.clone(),
            key,
        };
        let mut record = self.flow_read(tx, &key)?;
        self.flow_prune(&mut record, &flow, now)?;
        let held = HeldStart {
            subject: subject.clone(),
            cause: serde_json::to_vec(cause).unwrap_or_default(),
            at: now,
        };
        let outcome = if flow.debounce.is_some() {
            let outcome = if record.debounced.is_some() {
                "superseded"
            } else {
                "debounced"
            };
            tx.count_flow(&deployment.id, outcome);
            record.debounced = Some(held);
            record.burst_since_ms.get_or_insert(ms(now));
            Ok(Err(
                "flow: debounced (a later trigger for the key replaces it)".into(),
            ))
        } else {
            self.flow_admit(tx, deployment, &mut record, &flow, held, now)
        };
        self.flow_write(tx, record, &flow, now);
        outcome
    }

    /// After debounce: the rate limit drops, throttle and concurrency queue, else it starts.
    fn flow_admit(
        &self,
        tx: &mut Tx,
        deployment: &Deployment,
        record: &mut FlowRecord,
        flow: &Flow,
        held: HeldStart,
        now: Timestamp,
    ) -> Result<Result<RunId, String>, RuntimeError> {
        if let Some(limit) = flow.rate_limit {
            if record.accepted_ms.len() >= limit.limit as usize {
                let reason = format!(
                    "flow: dropped by rate_limit ({} per {} for key `{}`)",
                    limit.limit, limit.per, record.key.key
                );
                self.flow_dropped(tx, &record.key, &held.subject, &reason, now);
                tx.count_flow(&deployment.id, "dropped");
                return Ok(Err(reason));
            }
            record.accepted_ms.push(ms(now));
        }
        if !record.queue.is_empty() || !can_start(record, flow) {
            record.queue.push(held);
            tx.count_flow(&deployment.id, "queued");
            return Ok(Err(format!(
                "flow: queued ({} waiting for key `{}`)",
                record.queue.len(),
                record.key.key
            )));
        }
        self.flow_start(tx, deployment, record, flow, &held, now)
    }

    /// Starts a held start through the entry rules; counts it if it started.
    fn flow_start(
        &self,
        tx: &mut Tx,
        deployment: &Deployment,
        record: &mut FlowRecord,
        flow: &Flow,
        held: &HeldStart,
        now: Timestamp,
    ) -> Result<Result<RunId, String>, RuntimeError> {
        let cause: StartCause = match serde_json::from_slice(&held.cause) {
            Ok(cause) => cause,
            Err(e) => {
                let reason = format!("flow: held start unreadable ({e})");
                self.flow_dropped(tx, &record.key, &held.subject, &reason, now);
                return Ok(Err(reason));
            }
        };
        let outcome = self.start_into(tx, deployment, &held.subject, &cause, now)?;
        match &outcome {
            Ok(run) => {
                if flow.throttle.is_some() {
                    record.started_ms.push(ms(now));
                }
                if flow.concurrency.is_some() {
                    record.live.push(*run);
                }
                tx.count_flow(&deployment.id, "started");
            }
            Err(reason) => {
                tracing::info!(playbook = %deployment.id, key = %record.key.key, %reason, "flow: start refused by the entry rules");
                tx.count_flow(&deployment.id, "refused");
            }
        }
        Ok(outcome)
    }

    /// A dropped start: logged, and kept in the event log with its reason for operators.
    fn flow_dropped(
        &self,
        tx: &mut Tx,
        key: &FlowKey,
        subject: &Subject,
        reason: &str,
        now: Timestamp,
    ) {
        tracing::info!(playbook = %key.playbook, key = %key.key, subject = %subject_label(subject), %reason, "flow: start dropped");
        tx.batch.push(Op::AppendEvent(EventRecord {
            received_at: now,
            source: "sop:flow".into(),
            kind: "sop.flow_dropped".into(),
            subject: Some(subject.clone()),
            dedupe_id: None,
            payload: serde_json::json!({
                "playbook": key.playbook,
                "key": key.key,
                "reason": reason,
            }),
        }));
    }

    /// The stored record (or a fresh one), with a revision check on it in `tx`.
    fn flow_read(&self, tx: &mut Tx, key: &FlowKey) -> Result<FlowRecord, RuntimeError> {
        let stored = self.store.flow(key)?;
        tx.batch.checks.push(Check::FlowRevision {
            key: key.clone(),
            expected: stored.as_ref().map(|r| r.revision),
        });
        Ok(stored.unwrap_or_else(|| FlowRecord::new(key.clone())))
    }

    /// Forgets starts outside their windows and runs that ended.
    fn flow_prune(
        &self,
        record: &mut FlowRecord,
        flow: &Flow,
        now: Timestamp,
    ) -> Result<(), RuntimeError> {
        let now = ms(now);
        match flow.rate_limit {
            Some(l) => record.accepted_ms.retain(|t| *t > now - per_ms(l.per)),
            None => record.accepted_ms.clear(),
        }
        match flow.throttle {
            Some(l) => record.started_ms.retain(|t| *t > now - per_ms(l.per)),
            None => record.started_ms.clear(),
        }
        let mut live = Vec::new();
        if flow.concurrency.is_some() {
            for run in std::mem::take(&mut record.live) {
                if self.store.run(run)?.is_some_and(|r| r.state.is_live()) {
                    live.push(run);
                }
            }
        }
        record.live = live;
        Ok(())
    }

    /// Writes the record back with its next due time, or deletes it when it holds nothing.
    fn flow_write(&self, tx: &mut Tx, mut record: FlowRecord, flow: &Flow, now: Timestamp) {
        record.due_ms = due(&record, flow, now);
        let empty = record.queue.is_empty()
            && record.debounced.is_none()
            && record.live.is_empty()
            && record.accepted_ms.is_empty()
            && record.started_ms.is_empty();
        if empty {
            tx.batch.push(Op::DeleteFlow(record.key));
        } else {
            record.revision += 1;
            tx.batch.push(Op::PutFlow(record));
        }
    }

    /// Releases what a key allows now, one start per commit (each on its subject's lane).
    pub(crate) async fn flow_visit(self: &Arc<Self>, key: &FlowKey) -> Result<(), RuntimeError> {
        let mut conflicts = 0;
        loop {
            let Some(record) = self.store.flow(key)? else {
                return Ok(());
            };
            let deployment = self.registry.deployment(&key.playbook);
            let flow = deployment
                .as_deref()
                .and_then(Self::flow_of)
                .cloned()
                .unwrap_or_default();
            let now = self.clock.now();
            let mut pruned = record.clone();
            self.flow_prune(&mut pruned, &flow, now)?;
            let planned = next(&pruned, &flow, now);
            let subject = match planned {
                Next::Debounced => pruned.debounced.as_ref().map(|h| h.subject.clone()),
                Next::Start => pruned.queue.first().map(|h| h.subject.clone()),
                Next::Idle => None,
            };
            // A playbook no longer deployed keeps its held starts until it is again.
            let (Some(deployment), Some(subject)) = (deployment, subject) else {
                // Written back only if pruning changed it (ended runs, windows over: maybe
                // nothing is left and it is deleted) or its due time moved.
                let mut tx = Tx::new();
                let stored = self.flow_read(&mut tx, key)?;
                let mut record = stored.clone();
                self.flow_prune(&mut record, &flow, now)?;
                if record == stored && stored.due_ms == due(&record, &flow, now) {
                    return Ok(());
                }
                self.flow_write(&mut tx, record, &flow, now);
                return self.flow_commit(tx, &mut conflicts).map(|_| ());
            };
            let _lane = self.lane(&subject).await;
            let now = self.clock.now();
            let mut tx = Tx::new();
            let mut record = self.flow_read(&mut tx, key)?;
            self.flow_prune(&mut record, &flow, now)?;
            match next(&record, &flow, now) {
                Next::Debounced => {
                    if let Some(held) = record.debounced.take() {
                        record.burst_since_ms = None;
                        let outcome =
                            self.flow_admit(&mut tx, &deployment, &mut record, &flow, held, now)?;
                        tracing::debug!(playbook = %key.playbook, key = %key.key, ?outcome, "flow: debounced start let through");
                    }
                }
                Next::Start => {
                    let held = record.queue.remove(0);
                    tx.count_flow(&deployment.id, "released");
                    let _started =
                        self.flow_start(&mut tx, &deployment, &mut record, &flow, &held, now)?;
                }
                Next::Idle => {}
            }
            self.flow_write(&mut tx, record, &flow, now);
            if !self.flow_commit(tx, &mut conflicts)? {
                continue;
            }
        }
    }

    /// A visit whose failure (a store error, conflicts past the retries) is logged: like a
    /// timer's, it must not stop the runtime; the key is looked at again on the next wake.
    async fn flow_visit_logged(self: &Arc<Self>, key: &FlowKey) {
        if let Err(error) = self.flow_visit(key).await {
            tracing::error!(playbook = %key.playbook, key = %key.key, %error, "flow: visit failed");
        }
    }

    /// Commits a flow step; `Ok(false)` on a conflict worth retrying.
    fn flow_commit(self: &Arc<Self>, tx: Tx, conflicts: &mut usize) -> Result<bool, RuntimeError> {
        match self.commit(tx) {
            Ok(()) => Ok(true),
            Err(RuntimeError::Store(StoreError::Conflict(_))) if *conflicts + 1 < ATTEMPTS => {
                *conflicts += 1;
                metrics::counter!("sop_runtime_commit_conflicts_total").increment(1);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Releases held starts when they are due or when a counted run ends. At start it looks
    /// at every key once: runs may have ended while sop was down.
    pub(crate) async fn flow_loop(self: Arc<Self>) -> Result<(), RuntimeError> {
        let page = self.config.timer_page;
        let mut after: Option<FlowKey> = None;
        loop {
            let records = self.store.flows(after.as_ref(), page)?;
            let Some(last) = records.last() else { break };
            after = Some(last.key.clone());
            for record in records {
                self.flow_visit_logged(&record.key).await;
            }
        }
        loop {
            let ended: Vec<RunId> = std::mem::take(&mut *lock(&self.flow_ended));
            for run in ended {
                for key in self.store.flows_of_run(run)? {
                    self.flow_visit_logged(&key).await;
                }
            }
            let now = ms(self.clock.now());
            let mut cursor: Option<(i64, FlowKey)> = None;
            loop {
                let records = self.store.due_flows(now, cursor.as_ref(), page)?;
                let Some(last) = records.last() else { break };
                cursor = Some((last.due_ms.unwrap_or(now), last.key.clone()));
                for record in records {
                    self.flow_visit_logged(&record.key).await;
                }
            }
            // After the records just visited: one that stays due (its playbook is no longer
            // deployed) must not make the loop spin; it is looked at again on the next wake.
            let next = self
                .store
                .due_flows(i64::MAX, cursor.as_ref(), 1)?
                .first()
                .and_then(|r| r.due_ms)
                .and_then(Timestamp::from_timestamp_millis);
            match next {
                Some(at) if ms(at) <= ms(self.clock.now()) => {}
                Some(at) => {
                    tokio::select! {
                        () = self.clock.sleep_until(at) => {}
                        () = self.flow_wake.notified() => {}
                    }
                }
                None => self.flow_wake.notified().await,
            }
        }
    }

    /// Looks at a batch about to be committed: runs counted by a concurrency limit that end,
    /// and flow records armed. Hand the result to [`flow_notify`](Inner::flow_notify) after
    /// the commit (a wake before it could be slept through).
    pub(crate) fn flow_note(&self, batch: &Batch) -> (Vec<RunId>, bool) {
        let mut ended = Vec::new();
        let mut wake = false;
        for op in &batch.ops {
            match op {
                Op::PutFlow(record) if record.due_ms.is_some() => wake = true,
                Op::PutRun(run) if !run.state.is_live() => {
                    let counted = self.registry.deployment(&run.playbook).is_some_and(|d| {
                        d.playbook
                            .flow
                            .as_ref()
                            .is_some_and(|f| f.concurrency.is_some())
                    });
                    if counted {
                        ended.push(run.id);
                    }
                }
                _ => {}
            }
        }
        (ended, wake)
    }

    /// Wakes the flow loop for what [`flow_note`](Inner::flow_note) found.
    pub(crate) fn flow_notify(&self, (ended, wake): (Vec<RunId>, bool)) {
        if ended.is_empty() && !wake {
            return;
        }
        lock(&self.flow_ended).extend(ended);
        self.flow_wake.notify_one();
    }
}

/// Whether throttle and concurrency leave room for one more start.
fn can_start(record: &FlowRecord, flow: &Flow) -> bool {
    flow.concurrency
        .is_none_or(|c| record.live.len() < c as usize)
        && flow
            .throttle
            .is_none_or(|t| record.started_ms.len() < t.limit as usize)
}

/// When the debounced start goes: after `period` of quiet, at most `max_delay` after the
/// burst began.
fn debounce_due(record: &FlowRecord, flow: &Flow) -> Option<i64> {
    let held = record.debounced.as_ref()?;
    let Some(d) = flow.debounce else {
        // Debounce was removed by a redeploy: let it through now.
        return Some(ms(held.at));
    };
    let quiet = ms(held.at) + per_ms(d.period);
    Some(match (d.max_delay, record.burst_since_ms) {
        (Some(max), Some(since)) => quiet.min(since + per_ms(max)),
        _ => quiet,
    })
}

fn next(record: &FlowRecord, flow: &Flow, now: Timestamp) -> Next {
    if debounce_due(record, flow).is_some_and(|d| d <= ms(now)) {
        Next::Debounced
    } else if !record.queue.is_empty() && can_start(record, flow) {
        Next::Start
    } else {
        Next::Idle
    }
}

/// When the loop should look at the record again: the debounce, the throttle window's first
/// expiry while starts wait, or (nothing held) the last window's end, to forget the record.
/// A queue blocked by concurrency only is woken by its runs' ends.
fn due(record: &FlowRecord, flow: &Flow, now: Timestamp) -> Option<i64> {
    let mut due = debounce_due(record, flow);
    let mut earliest = |t: i64| due = Some(due.map_or(t, |d: i64| d.min(t)));
    if !record.queue.is_empty() {
        if can_start(record, flow) {
            earliest(ms(now));
        } else if let Some(t) = flow.throttle
            && record.started_ms.len() >= t.limit as usize
            && let Some(first) = record.started_ms.first()
        {
            earliest(first + per_ms(t.per));
        }
    } else if record.debounced.is_none() {
        let windows = [
            flow.rate_limit
                .and_then(|l| record.accepted_ms.last().map(|t| t + per_ms(l.per))),
            flow.throttle
                .and_then(|l| record.started_ms.last().map(|t| t + per_ms(l.per))),
        ];
        if let Some(end) = windows.into_iter().flatten().max() {
            earliest(end);
        }
    }
    due
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sop_dsl::model::{Debounce, Duration, Limit};
    use sop_store::ContactKey;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_timestamp_millis(s * 1000).unwrap()
    }

    fn held(s: i64) -> HeldStart {
        HeldStart {
            subject: Subject::Contact(ContactKey::new("t", "c")),
            cause: Vec::new(),
            at: at(s),
        }
    }

    #[test]
    fn debounce_waits_for_quiet_but_not_past_max_delay() {
        let flow = Flow {
            debounce: Some(Debounce {
                period: Duration::from_seconds(60),
                max_delay: Some(Duration::from_seconds(150)),
            }),
            ..Flow::default()
        };
        let mut record = FlowRecord::new(FlowKey {
            playbook: "p".into(),
            key: "k".into(),
        });
        record.debounced = Some(held(100));
        record.burst_since_ms = Some(0);
        assert_eq!(debounce_due(&record, &flow), Some(150_000));
        record.debounced = Some(held(10));
        assert_eq!(debounce_due(&record, &flow), Some(70_000));
        assert_eq!(next(&record, &flow, at(69)), Next::Idle);
        assert_eq!(next(&record, &flow, at(70)), Next::Debounced);
    }

    #[test]
    fn a_full_throttle_is_due_when_its_first_start_leaves_the_window() {
        let flow = Flow {
            throttle: Some(Limit {
                limit: 2,
                per: Duration::from_seconds(60),
            }),
            ..Flow::default()
        };
        let mut record = FlowRecord::new(FlowKey {
            playbook: "p".into(),
            key: "k".into(),
        });
        record.started_ms = vec![5_000, 20_000];
        record.queue.push(held(30));
        assert!(!can_start(&record, &flow));
        assert_eq!(due(&record, &flow, at(30)), Some(65_000));
        record.queue.clear();
        // Nothing held: due when the last start leaves the window, to forget the record.
        assert_eq!(due(&record, &flow, at(30)), Some(80_000));
    }
}
