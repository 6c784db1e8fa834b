//! The timer loop: durable timers in the store, one loop sleeping on the clock until the
//! earliest is due (or until a commit arms an earlier one), and recovery at start.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use sop_engine::{ActionResult, Input, OutcomeStatus, PluginError, TimerId, Waiting};
use sop_store::{Batch, Op, OutboxState, OutboxStateKind, RunId, RunState, Timer, TimerKey};
use tokio::task::JoinSet;

use crate::dispatch::plugin_call;
use crate::error::RuntimeError;
use crate::mapping::{RUNTIME_TIMER, cause_is_bulk, defer_timer, outbox_key, shard_of};
use crate::runtime::{Inner, Loaded};

const DEFER_PREFIX: &str = "rt:defer:";
const CHECK_PREFIX: &str = "rt:check:";
/// Timer tasks (deferrals, outcome checks and deadlines) running at once, at most.
pub(crate) const TIMER_TASKS: usize = 4096;

impl Inner {
    /// Fires due timers page by page, then sleeps until the next one or a wake-up. Returns
    /// only on a store error (the caller's `select!` ends it on shutdown).
    ///
    /// A pass goes on from where the last one stopped: the timers behind it were fired or
    /// are being handled (an outcome check waiting for its rate slot, say), and reading
    /// thousands of those again on every wake-up would cost more than the work itself. Only
    /// a timer that may lie behind the cursor (armed at or before the time scanned to, or
    /// left due by its handler) makes the next pass start from the first.
    pub async fn timer_loop(self: Arc<Self>) -> Result<(), RuntimeError> {
        let far = sop_clock::DateTime::<sop_clock::Utc>::MAX_UTC;
        let mut resume: Option<Timer> = None;
        loop {
            // While scanning, every armed timer wakes us (it may be earlier than what the
            // scan will find).
            self.next_due_ms.store(i64::MAX, Ordering::Release);
            let now = self.clock.now();
            // Before the first read: a timer armed during the pass at or before `now` may
            // be missed by it, and must make the next pass start over.
            self.scanned_to_ms
                .fetch_max(now.timestamp_millis(), Ordering::AcqRel);
            if self.rescan.swap(false, Ordering::AcqRel) {
                resume = None;
            }
            let mut cursor = resume.take();
            loop {
                let page = self
                    .store
                    .due_timers(now, cursor.as_ref(), self.config.timer_page)?;
                let Some(last) = page.last().cloned() else {
                    break;
                };
                cursor = Some(last);
                self.fire_page(page).await?;
            }
            let next = self.store.due_timers(far, cursor.as_ref(), 1)?.pop();
            resume = cursor;
            let next_due = next.map(|t| t.due);
            self.next_due_ms.store(
                next_due.map_or(i64::MAX, |d| d.timestamp_millis()),
                Ordering::Release,
            );
            match next_due {
                Some(due) => {
                    tokio::select! {
                        () = self.clock.sleep_until(due) => {}
                        () = self.wake.notified() => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }

    /// Fires one page of due timers, each lane's timers in order, lanes in parallel.
    async fn fire_page(self: &Arc<Self>, page: Vec<Timer>) -> Result<(), RuntimeError> {
        let mut lanes: BTreeMap<usize, Vec<Timer>> = BTreeMap::new();
        for timer in page {
            // A deferral or check still running (an outcome check waiting for its rate
            // slot, say) is not looked at again on every wake-up.
            if lock(&self.inflight).contains(&timer.key) {
                continue;
            }
            let lane = match self.store.run(timer.key.run)? {
                Some(run) => shard_of(&run.subject, self.config.shards),
                None => 0,
            };
            lanes.entry(lane).or_default().push(timer);
        }
        let mut tasks = JoinSet::new();
        for (_, timers) in lanes {
            let inner = self.clone();
            tasks.spawn(async move {
                for timer in timers {
                    inner.fire(timer).await?;
                }
                Ok::<(), RuntimeError>(())
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(result) => result?,
                Err(e) => tracing::error!(error = %e, "timer task failed"),
            }
        }
        Ok(())
    }

    /// A place for one more timer task off the loop (a deferral, an outcome check or
    /// deadline). The loop waits for one when [`TIMER_TASKS`] are running: a broadcast's
    /// checks fall due by the hundred thousand, and a task for each at once held gigabytes.
    async fn timer_task_permit(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.timer_tasks
            .clone()
            .acquire_owned()
            .await
            .expect("the timer task semaphore is never closed")
    }

    async fn fire(self: &Arc<Self>, timer: Timer) -> Result<(), RuntimeError> {
        let key = timer.key;
        let due = timer.due;
        metrics::counter!("sop_runtime_timers_fired_total").increment(1);
        if key.name.starts_with(RUNTIME_TIMER) {
            // Deferrals and outcome checks call the gate or a plugin: off the loop, once.
            if !lock(&self.inflight).insert(key.clone()) {
                return Ok(());
            }
            let permit = self.timer_task_permit().await;
            let inner = self.clone();
            tokio::spawn(async move {
                let _permit = permit;
                // `true`: a deferred send went to the bulk queue; its timer stays in flight
                // until the send is dispatched (`queued_deferral_done`).
                let result = if key.name.starts_with(DEFER_PREFIX) {
                    inner.deferred_due(key.clone()).await
                } else if key.name.starts_with(CHECK_PREFIX) {
                    inner.check_due(key.clone(), due).await.map(|()| false)
                } else {
                    inner
                        .store
                        .commit(Batch::new().op(Op::CancelTimer(key.clone())))
                        .map(|_| false)
                        .map_err(Into::into)
                };
                let queued = result.unwrap_or_else(|error| {
                    tracing::error!(run = %key.run, timer = %key.name, %error, "runtime timer failed");
                    false
                });
                if !queued {
                    lock(&inner.inflight).remove(&key);
                    // Whatever it left armed (a new deferral, the same check) is looked at
                    // again.
                    inner.handled(&key);
                }
            });
            return Ok(());
        }
        if sop_engine::TimerId::is_outcome_deadline(&key.name) {
            // Checks the outcome once more before giving up on it: a plugin call, off the
            // loop like an outcome check.
            if !lock(&self.inflight).insert(key.clone()) {
                return Ok(());
            }
            let permit = self.timer_task_permit().await;
            let inner = self.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if let Err(error) = inner.outcome_deadline(key.clone(), due).await {
                    tracing::warn!(run = %key.run, timer = %key.name, %error, "outcome deadline not applied; tried again at the next pass");
                }
                lock(&inner.inflight).remove(&key);
                inner.handled(&key);
            });
            return Ok(());
        }
        if self.store.run(key.run)?.is_none() {
            self.store.commit(Batch::new().op(Op::CancelTimer(key)))?;
            return Ok(());
        }
        let input = Input::TimerFired {
            timer: TimerId(key.name.clone()),
        };
        // The timer's deletion is the acknowledgement: committed with the transition.
        let ack = key.clone();
        let pre = move |_: &Inner, _: &Loaded| Ok(vec![Op::CancelTimer(ack.clone())]);
        match self.feed(key.run, &input, &pre).await {
            Ok(_) => Ok(()),
            Err(RuntimeError::Store(sop_store::StoreError::Conflict(reason))) => {
                // The timer stays; the next pass of the loop fires it again.
                tracing::warn!(run = %key.run, timer = %key.name, %reason, "timer conflicted");
                self.rescan.store(true, Ordering::Release);
                Ok(())
            }
            Err(RuntimeError::Store(e)) => Err(RuntimeError::Store(e)),
            Err(error) => {
                // A run that cannot be loaded (its playbook version vanished, corrupt state)
                // must not stop every other timer: drop this one, loudly.
                tracing::error!(run = %key.run, timer = %key.name, %error, "timer dropped");
                metrics::counter!("sop_runtime_timer_errors_total").increment(1);
                self.store.commit(Batch::new().op(Op::CancelTimer(key)))?;
                Ok(())
            }
        }
    }

    /// A timer handled off the loop is done: if its handler left it due, the loop's cursor
    /// may be past it.
    pub(crate) fn handled(&self, key: &TimerKey) {
        let left_due = match self.store.timer(key) {
            Ok(timer) => timer.is_some_and(|t| {
                t.due.timestamp_millis() <= self.scanned_to_ms.load(Ordering::Acquire)
            }),
            // Unknown: look at everything again rather than miss it.
            Err(_) => true,
        };
        if left_due {
            self.rescan.store(true, Ordering::Release);
        }
        self.wake.notify_one();
    }

    /// Forgets dedupe ids older than the retention and plugin values past their expiry,
    /// every `housekeeping_seconds`.
    pub async fn housekeeping_loop(self: Arc<Self>) -> Result<(), RuntimeError> {
        let every = chrono::TimeDelta::seconds(
            i64::try_from(self.config.housekeeping_seconds).unwrap_or(i64::MAX / 1000),
        );
        let retention = chrono::TimeDelta::seconds(
            i64::try_from(self.config.dedupe_retention_seconds).unwrap_or(i64::MAX / 1000),
        );
        loop {
            let now = self.clock.now();
            let forget_before = now
                .checked_sub_signed(retention)
                .unwrap_or(sop_clock::DateTime::<sop_clock::Utc>::MIN_UTC);
            self.store.commit(
                Batch::new()
                    .op(Op::ForgetEventsSeenBefore(forget_before))
                    .op(Op::KvPurgeExpired { now }),
            )?;
            let next = now.checked_add_signed(every).unwrap_or(now);
            self.clock.sleep_until(next).await;
        }
    }

    /// At start: reconcile sends left pending by a crash, and send intents never recorded.
    /// Due timers are the timer loop's first page.
    pub async fn recover(self: &Arc<Self>) -> Result<(), RuntimeError> {
        let mut reconciled = 0usize;
        let mut after = None;
        loop {
            // Page on by key: calls this process makes meanwhile (reconciling one entry can
            // dispatch the run's next action, events are taken while recovering) are
            // `Pending` too, and stay that way until they are answered.
            let page = self
                .store
                .outbox_in_state(OutboxStateKind::Pending, after.as_ref(), 64)?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.key.clone());
            for entry in page {
                if lock(&self.calls).contains(&(entry.key.clone(), entry.attempts)) {
                    continue;
                }
                self.reconcile(entry).await?;
                reconciled += 1;
            }
        }
        let mut resent = 0usize;
        for playbook in self.store.playbook_ids()? {
            let mut after = None;
            loop {
                let page = self
                    .store
                    .runs_by_state(&playbook, RunState::Active, after, 256)?;
                let Some(last) = page.last().copied() else {
                    break;
                };
                after = Some(last);
                for run in page {
                    if self.resend_unrecorded(run)? {
                        resent += 1;
                    }
                }
            }
        }
        if reconciled + resent > 0 {
            tracing::info!(reconciled, resent, "recovered in-flight invocations");
        }
        metrics::counter!("sop_runtime_recovered_total", "what" => "pending_outbox")
            .increment(reconciled as u64);
        metrics::counter!("sop_runtime_recovered_total", "what" => "unrecorded_intent")
            .increment(resent as u64);
        Ok(())
    }

    /// A send recorded but never answered: ask the plugin with the key only; if it cannot
    /// tell, the outcome is unknown (never re-sent blindly; the engine retries only
    /// idempotent actions).
    async fn reconcile(
        self: &Arc<Self>,
        entry: sop_store::OutboxEntry,
    ) -> Result<(), RuntimeError> {
        let run = entry.key.run;
        let awaited = self
            .load(run)
            .ok()
            .flatten()
            .and_then(|loaded| match loaded.state.waiting {
                Some(Waiting::Result { invocation })
                    if outbox_key(run, &invocation) == entry.key =>
                {
                    Some(invocation)
                }
                _ => None,
            });
        let Some(invocation) = awaited else {
            // The run moved on (cancelled, converted): keep the record, marked unknown, unless
            // an answer was recorded since the page was read.
            let Some(mut entry) = self
                .store
                .outbox(&entry.key)?
                .filter(|e| e.state.is_pending() && e.attempts == entry.attempts)
            else {
                return Ok(());
            };
            entry.state = OutboxState::Unknown {
                reason: "sop stopped before the result was recorded".into(),
            };
            entry.updated_at = self.clock.now();
            self.store.commit(Batch::new().op(Op::PutOutbox(entry)))?;
            return Ok(());
        };
        // A member of a batched call is asked about under its call's key (`batch.rs`),
        // which its entry names; a binary before store format 3 kept it in the key-value
        // table instead.
        let call_key = match (
            &entry.state,
            crate::batch::recipient_of(&self.registry.catalog, &invocation),
        ) {
            (OutboxState::PendingMember { call }, _) => Some(call.clone()),
            (_, Some(_)) => self
                .store
                .kv_get(
                    crate::batch::CALL_KEYS,
                    &entry.key.to_string(),
                    self.clock.now(),
                )?
                .and_then(|key| String::from_utf8(key).ok()),
            (_, None) => None,
        };
        let mut call = plugin_call(&entry.key, &invocation);
        if let Some(key) = &call_key {
            call.key = key.clone();
        }
        let ask = async {
            if invocation.asynchronous {
                // Only asynchronous actions have a platform query behind their outcome; it
                // counts against the account's limits like any call.
                self.gate
                    .acquire_check(&invocation.plugin, &invocation.account, &invocation.action)
                    .await;
            }
            self.plugins.check_outcome(&call, None).await
        };
        let status = match &call_key {
            Some(key) => {
                self.shared_outcome(&invocation, &format!("call {key}"), None, ask)
                    .await
            }
            None => ask.await,
        };
        let result = match status {
            Some(OutcomeStatus::Done { output }) => ActionResult::Done { output },
            // It did not take effect: a retry with the same key is safe.
            Some(OutcomeStatus::Failed { reason }) => ActionResult::Error {
                error: PluginError::Transient {
                    message: format!("reconciled after restart: {reason}"),
                },
            },
            Some(OutcomeStatus::Pending { .. }) | None => ActionResult::Error {
                error: PluginError::OutcomeUnknown {
                    message: "sop stopped between recording the call and its result".into(),
                },
            },
        };
        self.record_result(run, &invocation, result, None).await
    }

    /// A run waiting for a result whose attempt was never recorded in the outbox (a crash
    /// between the transition and the intent): nothing went out, so dispatch it now, unless a
    /// deferral timer holds it.
    fn resend_unrecorded(self: &Arc<Self>, run: RunId) -> Result<bool, RuntimeError> {
        let Some(loaded) = self.load(run)? else {
            return Ok(false);
        };
        let bulk = cause_is_bulk(&loaded.state);
        let Some(Waiting::Result { invocation }) = loaded.state.waiting else {
            return Ok(false);
        };
        let recorded = self
            .store
            .outbox(&outbox_key(run, &invocation))?
            .is_some_and(|e| e.attempts >= invocation.attempt);
        let deferred = self
            .store
            .timer(&TimerKey::new(run, defer_timer(&invocation)))?
            .is_some();
        if recorded || deferred {
            return Ok(false);
        }
        self.start_dispatch(run, loaded.run.subject, invocation, bulk);
        Ok(true)
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
