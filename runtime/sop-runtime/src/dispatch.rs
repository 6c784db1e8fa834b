//! The life of one invocation after its transition committed: gate admission, rate-limit
//! slot, the outbox intent committed durably, the plugin call, and the result fed back.
//! Asynchronous outcomes are asked for when their runtime timer fires.

use std::sync::Arc;
use std::time::Duration;

use sop_engine::{ActionResult, Input, Invocation, OutcomeStatus, PluginError, Waiting};
use sop_store::{
    Batch, Check, Delivery, HistoryEntry, Op, OutboxEntry, OutboxState, RunId, Subject, Timer,
    TimerKey,
};

use crate::bulk::Taken;
use crate::error::RuntimeError;
use crate::gate::{Admission, GateRequest, Priority, Slot};
use crate::mapping::{cause_is_bulk, check_timer, defer_timer, outbox_key};
use crate::plugins::PluginCall;
use crate::runtime::{Inner, Loaded, group_key};

impl Inner {
    /// Dispatches an invocation a transition (or recovery) asked for: at once, or for a bulk
    /// send when its turn comes (`bulk.rs`).
    pub fn start_dispatch(
        self: &Arc<Self>,
        run: RunId,
        subject: Subject,
        invocation: Invocation,
        bulk: bool,
    ) {
        let inner = self.clone();
        if !bulk {
            tokio::spawn(async move { inner.dispatch(run, subject, invocation).await });
            return;
        }
        let account = (invocation.plugin.clone(), invocation.account.clone());
        let shape = crate::batch::shape(&self.registry.catalog, &invocation, self.config.batch_max);
        if let Some(shape) = shape {
            // It reached the queue alone (a deferral timer fired, recovery): the others of
            // its batch come the same way within moments.
            self.bulk
                .enqueue([(account, run, subject, Some((shape.hint, shape.max)))]);
            self.start_gathered();
            return;
        }
        let Some(first) = self.bulk.offer(account, run, subject) else {
            return;
        };
        // The place may have gone to an older send of another account: its invocation is
        // read back from its run.
        let known = (first.run == run).then_some(invocation);
        tokio::spawn(async move { inner.dispatch_in_turn(first, known).await });
    }

    /// Starts queued bulk sends after [`GATHER_MS`], once for every send queued meanwhile.
    fn start_gathered(self: &Arc<Self>) {
        if self
            .bulk_gathering
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            let at = inner.clock.now() + chrono::TimeDelta::milliseconds(GATHER_MS);
            inner.clock.sleep_until(at).await;
            inner
                .bulk_gathering
                .store(false, std::sync::atomic::Ordering::Release);
            inner.start_queued();
        });
    }

    /// Starts queued bulk sends in the places that are free.
    pub fn start_queued(self: &Arc<Self>) {
        while let Some(taken) = self.bulk.start() {
            let inner = self.clone();
            tokio::spawn(async move { inner.dispatch_in_turn(taken, None).await });
        }
    }

    /// Dispatches bulk sends one after another in one place of the queue, until none waits.
    /// A send of a batched action comes with the account's other waiting sends of its
    /// shape (`bulk.rs`), for one call.
    async fn dispatch_in_turn(self: Arc<Self>, mut taken: Taken, mut known: Option<Invocation>) {
        let place = Place(&self.bulk);
        loop {
            let Taken { run, subject, with } = taken;
            let runs: Vec<RunId> = std::iter::once(run)
                .chain(with.iter().map(|(run, _)| *run))
                .collect();
            let invocation = match known.take() {
                Some(invocation) => Some(invocation),
                None => self.awaited_invocation(run),
            };
            match invocation {
                Some(invocation) if !with.is_empty() => {
                    self.clone()
                        .dispatch_batch(run, subject, invocation, with)
                        .await;
                }
                Some(invocation) => self.clone().dispatch(run, subject, invocation).await,
                None => {
                    for (run, subject) in with {
                        if let Some(invocation) = self.awaited_invocation(run) {
                            self.clone().dispatch(run, subject, invocation).await;
                        }
                    }
                }
            }
            for run in runs {
                self.queued_deferral_done(run);
            }
            match self.bulk.finished() {
                Some(next) => taken = next,
                None => break,
            }
        }
        // Given back by `finished`, not by the guard.
        std::mem::forget(place);
    }

    /// The invocation a run waits for the result of, if it still does.
    pub(crate) fn awaited_invocation(&self, run: RunId) -> Option<Invocation> {
        match self.load(run) {
            Ok(Some(loaded)) => match loaded.state.waiting {
                Some(Waiting::Result { invocation }) => Some(invocation),
                _ => None,
            },
            Ok(None) => None,
            Err(error) => {
                // Recovery at the next start dispatches it, as after a crash.
                tracing::error!(%run, %error, "queued send not dispatched: its run could not be read");
                metrics::counter!("sop_runtime_dispatch_errors_total").increment(1);
                None
            }
        }
    }

    /// Runs the pipeline for one invocation; failures are logged and counted (the run stays
    /// waiting for its result, and recovery at the next start picks it up).
    pub async fn dispatch(self: Arc<Self>, run: RunId, subject: Subject, invocation: Invocation) {
        use tracing::Instrument as _;
        let span = tracing::info_span!("invocation", %run, key = %invocation.key,
            plugin = %invocation.plugin, action = %invocation.action, attempt = invocation.attempt);
        let result = self
            .try_dispatch(run, &subject, &invocation)
            .instrument(span)
            .await;
        if let Err(error) = result {
            tracing::error!(%run, key = %invocation.key, %error, "invocation not dispatched");
            metrics::counter!("sop_runtime_dispatch_errors_total").increment(1);
        }
    }

    async fn try_dispatch(
        self: &Arc<Self>,
        run: RunId,
        subject: &Subject,
        invocation: &Invocation,
    ) -> Result<(), RuntimeError> {
        let Some(admitted) = self.admit(run, subject, invocation).await? else {
            return Ok(());
        };
        self.settle(run, subject, invocation, admitted).await
    }

    /// The gate's decision on an invocation, on the run's lane; `None` when the run no
    /// longer waits for this attempt or it is recorded already.
    pub(crate) async fn admit(
        self: &Arc<Self>,
        run: RunId,
        subject: &Subject,
        invocation: &Invocation,
    ) -> Result<Option<Admitted>, RuntimeError> {
        let _lane = self.lane(subject).await;
        let Some(loaded) = self.still_to_send(run, invocation)? else {
            return Ok(None);
        };
        let now = self.clock.now();
        let contact = match &loaded.run.subject {
            sop_store::Subject::Contact(key) => self.store.contact(key)?,
            sop_store::Subject::Group { .. } => None,
        };
        let group = match group_key(&loaded.run.subject) {
            Some(key) => self.store.group(&key)?,
            None => None,
        };
        let request = GateRequest {
            invocation,
            tenant: crate::mapping::tenant_of(&loaded.run.subject),
            contact: contact.as_ref(),
            group: group.as_ref(),
            now,
        };
        Ok(Some(Admitted {
            admission: self.gate.admit(&*self.store, &request)?,
            bulk: cause_is_bulk(&loaded.state),
            revision: loaded.run.revision,
        }))
    }

    /// An admitted invocation: its rate slot, its intent, the call and its result.
    async fn pass(
        self: &Arc<Self>,
        run: RunId,
        subject: &Subject,
        invocation: &Invocation,
        touches: Vec<Op>,
        decision: &str,
        admitted: (bool, u64),
    ) -> Result<(), RuntimeError> {
        let (bulk, revision) = admitted;
        let key = outbox_key(run, invocation);
        let priority = if invocation.time_critical {
            Priority::TimeCritical
        } else if bulk {
            Priority::Bulk
        } else {
            Priority::Normal
        };
        let recipient = match invocation.audience {
            sop_dsl::catalog::ActionAudience::Contact | sop_dsl::catalog::ActionAudience::Group => {
                Some(subject_id(subject))
            }
            _ => None,
        };
        let slot = self
            .gate
            .acquire(
                &invocation.plugin,
                &invocation.account,
                &invocation.action,
                recipient,
                priority,
            )
            .await;
        let waited = match slot {
            // Counted here, not at admission: a parked send is admitted again when it comes
            // back, and counts once, as `park` then `pass`.
            Slot::Granted(waited) => {
                gate_label("pass", invocation, 1);
                waited
            }
            Slot::Park(until) => {
                gate_label("park", invocation, 1);
                let reason = "the account's queue of paced sends is long";
                // It comes back alone, when its own turn nears: straight to the gate then,
                // not through the bulk queue's gathering.
                lock(&self.parked).insert(run);
                return self.defer(run, subject, invocation, until, reason).await;
            }
        };
        metrics::histogram!("sop_runtime_rate_wait_seconds", "plugin" => invocation.plugin.clone())
            .record(waited.as_secs_f64());
        let held = match self
            .record_intent(run, subject, revision, invocation, touches, decision)
            .await?
        {
            Intent::Taken => return Ok(()),
            Intent::Committed => None,
            Intent::Held(held) => Some(held),
        };
        let call = plugin_call(&key, invocation);
        let result = self.plugins.invoke(&call).await;
        let recorded = self.record_result(run, invocation, result, held).await;
        // By attempt: a retry with the same key may already be on its way.
        lock(&self.calls).remove(&(key, invocation.attempt));
        recorded
    }

    /// Acts on the gate's decision: the call, a deferral, or an answer without a call.
    pub(crate) async fn settle(
        self: &Arc<Self>,
        run: RunId,
        subject: &Subject,
        invocation: &Invocation,
        admitted: Admitted,
    ) -> Result<(), RuntimeError> {
        match admitted.admission {
            Admission::Pass { touches, decision } => {
                let taken_on = (admitted.bulk, admitted.revision);
                self.pass(run, subject, invocation, touches, &decision, taken_on)
                    .await
            }
            Admission::Defer { until, reason } => {
                gate_label("defer", invocation, 1);
                self.defer(run, subject, invocation, until, &reason).await
            }
            Admission::Skip { reason } => {
                gate_label("skip", invocation, 1);
                let result = ActionResult::Skipped {
                    reason: reason.clone(),
                };
                self.answer_from_gate(run, invocation, result, "skipped", &reason)
                    .await
            }
            Admission::EndRun { reason } => {
                gate_label("end", invocation, 1);
                let result = ActionResult::EndRun {
                    reason: reason.clone(),
                };
                self.answer_from_gate(run, invocation, result, "run ended", &reason)
                    .await
            }
        }
    }

    /// Keeps the invocation on a deferral timer until `until`, when the gate is asked again,
    /// if the run still waits for this attempt.
    pub(crate) async fn defer(
        self: &Arc<Self>,
        run: RunId,
        subject: &Subject,
        invocation: &Invocation,
        until: sop_clock::Timestamp,
        reason: &str,
    ) -> Result<(), RuntimeError> {
        let _lane = self.lane(subject).await;
        let Some(loaded) = self.still_to_send(run, invocation)? else {
            return Ok(());
        };
        let now = self.clock.now();
        let batch = Batch::new()
            .check(Check::RunRevision {
                run,
                expected: Some(loaded.run.revision),
            })
            .op(Op::PutTimer(Timer {
                key: TimerKey::new(run, defer_timer(invocation)),
                due: until,
                step: Some(invocation.step.0.clone()),
            }))
            .op(gate_history(
                run,
                invocation,
                now,
                &format!("deferred until {until}"),
                reason,
            ));
        self.store.commit(batch)?;
        self.armed(until);
        Ok(())
    }

    /// The run, if it still waits for this exact attempt and nobody recorded it yet.
    fn still_to_send(
        &self,
        run: RunId,
        invocation: &Invocation,
    ) -> Result<Option<Loaded>, RuntimeError> {
        let Some(loaded) = self.load(run)? else {
            return Ok(None);
        };
        let awaits = matches!(&loaded.state.waiting,
            Some(Waiting::Result { invocation: awaited }) if awaited.key == invocation.key && awaited.attempt == invocation.attempt);
        if !awaits {
            return Ok(None);
        }
        let recorded = self
            .store
            .outbox(&outbox_key(run, invocation))?
            .is_some_and(|entry| entry.attempts >= invocation.attempt);
        Ok((!recorded).then_some(loaded))
    }

    /// Commits the outbox intent (with the gate's touches) on the run's lane, durably for an
    /// at-most-once call, if the run still waits for this attempt; or holds it for the
    /// result's commit (`Intent::Held`).
    ///
    /// `admitted` is the run's revision when the gate admitted the call: unchanged, the run
    /// still awaits this attempt and only the outbox needs a look (no state to decode).
    async fn record_intent(
        self: &Arc<Self>,
        run: RunId,
        subject: &Subject,
        admitted: u64,
        invocation: &Invocation,
        touches: Vec<Op>,
        decision: &str,
    ) -> Result<Intent, RuntimeError> {
        let lane = self.lane(subject).await;
        let Some(current) = self.store.run(run)? else {
            return Ok(Intent::Taken);
        };
        if current.revision != admitted && self.still_to_send(run, invocation)?.is_none() {
            return Ok(Intent::Taken);
        }
        let now = self.clock.now();
        let key = outbox_key(run, invocation);
        let existing = self.store.outbox(&key)?;
        if existing
            .as_ref()
            .is_some_and(|entry| entry.attempts >= invocation.attempt)
        {
            return Ok(Intent::Taken);
        }
        let created_at = existing.as_ref().map_or(now, |e| e.created_at);
        let entry = intent_entry(key.clone(), invocation, created_at, now);
        let ops = vec![
            Op::CancelTimer(TimerKey::new(run, defer_timer(invocation))),
            gate_history(run, invocation, now, "passed", decision),
        ];
        if invocation.delivery == sop_dsl::catalog::Delivery::Idempotent && touches.is_empty() {
            // An idempotent call that counts against no cap may be made again, so nothing
            // needs recording before it: a crash before its result makes recovery find the
            // run awaiting an unrecorded attempt and call once more, as for a lost intent.
            // The live-call set keeps a second dispatch in this process from making it too.
            if !lock(&self.calls).insert((key.clone(), invocation.attempt)) {
                return Ok(Intent::Taken);
            }
            return Ok(Intent::Held(Box::new(HeldIntent { entry, ops })));
        }
        let mut batch = Batch::new().check(Check::RunRevision {
            run,
            expected: Some(current.revision),
        });
        if existing.is_none() {
            batch = batch.check(Check::OutboxAbsent(key.clone()));
        }
        batch.push(Op::PutOutbox(entry));
        batch.ops.extend(touches);
        batch.ops.extend(ops);
        // Live from here until its result is recorded: recovery must not take this entry
        // for one a crash left behind.
        lock(&self.calls).insert((key.clone(), invocation.attempt));
        let recorded = match self.store.commit(batch) {
            Ok(_) if invocation.delivery == sop_dsl::catalog::Delivery::AtMostOnce => {
                // The run's next transition needs this call's result, so the lane is not
                // needed while the intent becomes durable: other subjects of the lane go on.
                drop(lane);
                // Durable before the call: after a crash the intent is found and never
                // re-sent blindly.
                self.durable().await
            }
            // An idempotent call may be made again: if a crash loses this intent, recovery
            // finds the run awaiting an attempt with no record and dispatches it once more.
            // Not waiting spares a flush per call (a capped idempotent send).
            Ok(_) => Ok(()),
            Err(error) => Err(error.into()),
        };
        if let Err(error) = recorded {
            lock(&self.calls).remove(&(key, invocation.attempt));
            return Err(error);
        }
        Ok(Intent::Committed)
    }

    /// Feeds the plugin's answer to the run, with the outbox outcome in the same commit; a
    /// held intent (`Intent::Held`) is committed with it.
    pub async fn record_result(
        self: &Arc<Self>,
        run: RunId,
        invocation: &Invocation,
        result: ActionResult,
        held: Option<Box<HeldIntent>>,
    ) -> Result<(), RuntimeError> {
        if let ActionResult::Error {
            error: PluginError::RateLimited { retry_after_ms, .. },
        } = &result
        {
            self.gate.slow_down(
                &invocation.plugin,
                &invocation.account,
                Duration::from_millis(*retry_after_ms),
            );
        }
        metrics::counter!("sop_runtime_actions_total", "plugin" => invocation.plugin.clone(), "action" => invocation.action.clone(), "outcome" => result_label(&result)).increment(1);
        let key = outbox_key(run, invocation);
        let input = Input::ActionResult {
            key: invocation.key.clone(),
            result: result.clone(),
        };
        let attempt = invocation.attempt;
        let pre = move |inner: &Inner, _: &Loaded| -> Result<Vec<Op>, RuntimeError> {
            if let Some(held) = &held {
                let mut entry = held.entry.clone();
                entry.state = outbox_state(&result, inner.clock.now());
                entry.updated_at = inner.clock.now();
                let mut ops = vec![Op::PutOutbox(entry)];
                ops.extend(held.ops.iter().cloned());
                return Ok(ops);
            }
            let Some(mut entry) = inner.store.outbox(&key)? else {
                return Ok(Vec::new());
            };
            // Only this attempt's first answer is recorded: a second one (a reconciliation
            // racing the call's own answer) must not overwrite it. An answer after the run
            // moved on (cancelled meanwhile) is still recorded: the entry would stay pending.
            if !entry.state.is_pending() || entry.attempts != attempt {
                return Ok(Vec::new());
            }
            entry.state = outbox_state(&result, inner.clock.now());
            entry.updated_at = inner.clock.now();
            Ok(vec![Op::PutOutbox(entry)])
        };
        self.feed(run, &input, &pre).await?;
        if invocation.delivery == sop_dsl::catalog::Delivery::AtMostOnce {
            // A result lost to a crash makes the send `unknown` for good (it is never
            // re-sent): keep that window to the call itself, not the store's flush interval.
            self.durable().await?;
        }
        Ok(())
    }

    /// A gate decision that answers the invocation without a call (skip, end run).
    async fn answer_from_gate(
        self: &Arc<Self>,
        run: RunId,
        invocation: &Invocation,
        result: ActionResult,
        outcome: &str,
        reason: &str,
    ) -> Result<(), RuntimeError> {
        let input = Input::ActionResult {
            key: invocation.key.clone(),
            result,
        };
        let pre = |inner: &Inner, _: &Loaded| -> Result<Vec<Op>, RuntimeError> {
            Ok(vec![
                Op::CancelTimer(TimerKey::new(run, defer_timer(invocation))),
                gate_history(run, invocation, inner.clock.now(), outcome, reason),
            ])
        };
        self.feed(run, &input, &pre).await?;
        Ok(())
    }

    /// A deferral timer fired: ask the gate again for the invocation the run still awaits.
    /// `true` when the send went to the bulk queue: the timer stays in flight (the timer
    /// loop leaves it alone) until the send is dispatched ([`queued_deferral_done`]).
    ///
    /// [`queued_deferral_done`]: Inner::queued_deferral_done
    pub async fn deferred_due(self: &Arc<Self>, timer: TimerKey) -> Result<bool, RuntimeError> {
        let Some(loaded) = self.load(timer.run)? else {
            self.store.commit(Batch::new().op(Op::CancelTimer(timer)))?;
            return Ok(false);
        };
        let parked = lock(&self.parked).remove(&timer.run);
        match &loaded.state.waiting {
            Some(Waiting::Result { invocation }) if defer_timer(invocation) == timer.name => {
                if !parked
                    && cause_is_bulk(&loaded.state)
                    && crate::batch::shape(
                        &self.registry.catalog,
                        invocation,
                        self.config.batch_max,
                    )
                    .is_some()
                {
                    // Through the bulk queue, to ride with the sends deferred alike (a
                    // broadcast held by quiet hours comes back all at once). The timer stays
                    // in the store until the intent's commit removes it, and in flight until
                    // the send is dispatched, so the timer loop does not fire it again.
                    lock(&self.queued_deferrals).insert(timer.run, timer.clone());
                    self.start_dispatch(
                        timer.run,
                        loaded.run.subject.clone(),
                        invocation.clone(),
                        true,
                    );
                    return Ok(true);
                }
                self.try_dispatch(timer.run, &loaded.run.subject, &invocation.clone())
                    .await
                    .map(|()| false)
            }
            _ => {
                self.store.commit(Batch::new().op(Op::CancelTimer(timer)))?;
                Ok(false)
            }
        }
    }

    /// A queued send is dispatched (or found no longer awaited): the deferral timer that
    /// queued it, if one did, is the timer loop's again.
    fn queued_deferral_done(&self, run: RunId) {
        let Some(key) = lock(&self.queued_deferrals).remove(&run) else {
            return;
        };
        lock(&self.inflight).remove(&key);
        self.handled(&key);
    }

    /// An outcome-check timer fired: ask the plugin and feed the answer.
    pub async fn check_due(
        self: &Arc<Self>,
        timer: TimerKey,
        due: sop_clock::Timestamp,
    ) -> Result<(), RuntimeError> {
        let run = timer.run;
        let Some(loaded) = self.load(run)? else {
            self.store.commit(Batch::new().op(Op::CancelTimer(timer)))?;
            return Ok(());
        };
        let Some(Waiting::Outcome {
            invocation, handle, ..
        }) = &loaded.state.waiting
        else {
            self.store.commit(Batch::new().op(Op::CancelTimer(timer)))?;
            return Ok(());
        };
        if check_timer(invocation) != timer.name {
            self.store.commit(Batch::new().op(Op::CancelTimer(timer)))?;
            return Ok(());
        }
        let status = self
            .ask_outcome(run, invocation, handle, due)
            .await
            // Cannot tell yet: ask again later; the engine's outcome timeout bounds the wait.
            .unwrap_or(OutcomeStatus::Pending {
                check_after_ms: self.config.outcome_recheck_seconds.saturating_mul(1000),
            });
        self.feed_outcome(run, invocation, status, timer).await
    }

    /// An asynchronous action's outcome deadline fired. One last check first: after downtime
    /// or a jump of the clock the check and the deadline fall due together, and a send the
    /// platform has delivered must not be recorded as lost (nor its step's `on_error` run).
    pub async fn outcome_deadline(
        self: &Arc<Self>,
        timer: TimerKey,
        due: sop_clock::Timestamp,
    ) -> Result<(), RuntimeError> {
        let run = timer.run;
        let Some(loaded) = self.load(run)? else {
            self.store.commit(Batch::new().op(Op::CancelTimer(timer)))?;
            return Ok(());
        };
        if let Some(Waiting::Outcome {
            invocation,
            handle,
            timer: deadline,
        }) = &loaded.state.waiting
            && deadline.0 == timer.name
            && let Some(status) = self.ask_outcome(run, invocation, handle, due).await
            && !matches!(status, OutcomeStatus::Pending { .. })
        {
            // The engine cancels the deadline with the outcome; the check timer goes here.
            let check = TimerKey {
                run,
                name: check_timer(invocation),
            };
            return self.feed_outcome(run, invocation, status, check).await;
        }
        let input = Input::TimerFired {
            timer: sop_engine::TimerId(timer.name.clone()),
        };
        let pre = move |_: &Inner, _: &Loaded| Ok(vec![Op::CancelTimer(timer.clone())]);
        self.feed(run, &input, &pre).await?;
        Ok(())
    }

    /// Asks the plugin where an asynchronous action stands, in the account's check slot;
    /// `None` when the plugin cannot tell. `due`: when the timer asking fell due.
    async fn ask_outcome(
        self: &Arc<Self>,
        run: RunId,
        invocation: &Invocation,
        handle: &str,
        due: sop_clock::Timestamp,
    ) -> Option<OutcomeStatus> {
        let key = outbox_key(run, invocation);
        let call = plugin_call(&key, invocation);
        let ask = async {
            // The check's queries count against the account's platform limits too.
            let waited = self
                .gate
                .acquire_check(&invocation.plugin, &invocation.account, &invocation.action)
                .await;
            metrics::histogram!("sop_runtime_check_wait_seconds", "plugin" => invocation.plugin.clone())
                .record(waited.as_secs_f64());
            self.plugins.check_outcome(&call, Some(handle)).await
        };
        // The members of a batched call share its handle, and their timers fall due
        // together (one commit armed them, or a shared answer aligned them): one question
        // for all of them. A re-check that falls due after it asks again.
        let question = format!("handle {handle}");
        self.shared_outcome(invocation, &question, Some(due), ask)
            .await
    }

    /// Feeds an outcome to the run, cancelling `timer` and recording a final status in the
    /// outbox with the transition.
    async fn feed_outcome(
        self: &Arc<Self>,
        run: RunId,
        invocation: &Invocation,
        status: OutcomeStatus,
        timer: TimerKey,
    ) -> Result<(), RuntimeError> {
        let key = outbox_key(run, invocation);
        let input = Input::Outcome {
            key: invocation.key.clone(),
            status: status.clone(),
        };
        // The members of a merged call get their outcomes together: one commit for those
        // waiting at the time (`feeds.rs`).
        let pre = Box::new(
            move |inner: &Inner, _: &Loaded| -> Result<Vec<Op>, RuntimeError> {
                let mut ops = vec![Op::CancelTimer(timer.clone())];
                let now = inner.clock.now();
                let state = match &status {
                    OutcomeStatus::Done { output } => Some(OutboxState::Sent {
                        output: output.to_string(),
                    }),
                    OutcomeStatus::Failed { reason } => Some(OutboxState::Failed {
                        reason: reason.clone(),
                    }),
                    OutcomeStatus::Pending { .. } => None,
                };
                if let (Some(state), Some(mut entry)) = (state, inner.store.outbox(&key)?) {
                    entry.state = state;
                    entry.updated_at = now;
                    ops.push(Op::PutOutbox(entry));
                }
                Ok(ops)
            },
        );
        self.feed_grouped(run, input, pre).await?;
        Ok(())
    }
}

/// How long bulk sends of a batched action that reach the queue one by one wait for the
/// others of their batch before places are started for them.
const GATHER_MS: i64 = 500;

/// A place of the bulk queue held by a dispatch; given back if the dispatch is dropped midway
/// (the runtime stopping), so that the queue never loses capacity.
struct Place<'a>(&'a crate::bulk::BulkQueue);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// The gate's decision on an invocation and what it was taken on.
pub(crate) struct Admitted {
    pub admission: Admission,
    /// A bulk send (paced behind event-driven ones).
    pub bulk: bool,
    /// The run's revision when admitted.
    pub revision: u64,
}

/// Counts gate decisions.
pub(crate) fn gate_label(decision: &'static str, invocation: &Invocation, n: u64) {
    metrics::counter!("sop_runtime_gate_total", "decision" => decision, "plugin" => invocation.plugin.clone()).increment(n);
}

/// What `record_intent` did with an invocation's intent.
enum Intent {
    /// Nothing: the run moved on, or this attempt is recorded or in flight already.
    Taken,
    /// Committed (and durable, for an at-most-once call).
    Committed,
    /// Not committed: it goes into the result's commit.
    Held(Box<HeldIntent>),
}

/// An intent kept for the result's commit: its outbox entry and ops.
pub(crate) struct HeldIntent {
    entry: OutboxEntry,
    ops: Vec<Op>,
}

/// The `Pending` outbox entry of an invocation's intent.
pub(crate) fn intent_entry(
    key: sop_store::IdempotencyKey,
    invocation: &Invocation,
    created_at: sop_clock::Timestamp,
    now: sop_clock::Timestamp,
) -> OutboxEntry {
    OutboxEntry {
        key,
        action: format!("{}.{}", invocation.plugin, invocation.action),
        account: invocation.account.clone(),
        input_digest: format!(
            "{:016x}",
            sop_engine::stable_hash(&[&invocation.input.to_string()])
        ),
        delivery: match invocation.delivery {
            sop_dsl::catalog::Delivery::AtMostOnce => Delivery::AtMostOnce,
            sop_dsl::catalog::Delivery::Idempotent => Delivery::Idempotent,
        },
        state: OutboxState::Pending,
        attempts: invocation.attempt,
        created_at,
        updated_at: now,
    }
}

/// The platform id of a run's subject (recipient-scoped rate limits).
pub(crate) fn subject_id(subject: &sop_store::Subject) -> &str {
    match subject {
        sop_store::Subject::Contact(key) => &key.id,
        sop_store::Subject::Group { id, .. } => id,
    }
}

/// The call handed to the plugin host for an invocation.
pub(crate) fn plugin_call(key: &sop_store::IdempotencyKey, invocation: &Invocation) -> PluginCall {
    PluginCall {
        plugin: invocation.plugin.clone(),
        action: invocation.action.clone(),
        account: invocation.account.clone(),
        input: invocation.input.clone(),
        key: key.to_string(),
    }
}

/// The outbox state an answer leaves.
pub(crate) fn outbox_state(result: &ActionResult, now: sop_clock::Timestamp) -> OutboxState {
    match result {
        ActionResult::Done { output } => OutboxState::Sent {
            output: output.to_string(),
        },
        ActionResult::Accepted {
            handle,
            check_after_ms,
            ..
        } => OutboxState::Accepted {
            handle: handle.clone(),
            check_after: now
                + chrono::TimeDelta::milliseconds(
                    i64::try_from(*check_after_ms).unwrap_or(i64::MAX / 2),
                ),
        },
        ActionResult::Error {
            error: PluginError::OutcomeUnknown { message },
        } => OutboxState::Unknown {
            reason: message.clone(),
        },
        ActionResult::Error { error } => OutboxState::Failed {
            reason: format!("{}: {}", error.kind(), error.message()),
        },
        ActionResult::Skipped { reason } | ActionResult::EndRun { reason } => OutboxState::Failed {
            reason: format!("not sent: {reason}"),
        },
    }
}

pub(crate) fn result_label(result: &ActionResult) -> &'static str {
    match result {
        ActionResult::Done { .. } => "done",
        ActionResult::Accepted { .. } => "accepted",
        ActionResult::Error { error } => match error {
            PluginError::RateLimited { .. } => "rate_limited",
            PluginError::AuthExpired { .. } => "auth_expired",
            PluginError::InvalidInput { .. } => "invalid_input",
            PluginError::Transient { .. } => "transient",
            PluginError::Permanent { .. } => "permanent",
            PluginError::OutcomeUnknown { .. } => "unknown",
        },
        ActionResult::Skipped { .. } => "skipped",
        ActionResult::EndRun { .. } => "end_run",
    }
}

/// A history line carrying the gate's decision.
pub(crate) fn gate_history(
    run: RunId,
    invocation: &Invocation,
    now: sop_clock::Timestamp,
    outcome: &str,
    decision: &str,
) -> Op {
    Op::AppendHistory {
        run,
        entry: HistoryEntry {
            at: now,
            step: Some(invocation.step.0.clone()),
            input: format!(
                "policy gate: {}.{} attempt {}",
                invocation.plugin, invocation.action, invocation.attempt
            ),
            outcome: outcome.into(),
            gate: Some(decision.into()),
        },
    }
}

pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
