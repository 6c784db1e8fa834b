//! Batched sends: bulk invocations of an action that declares `batch` (docs/plugins.md,
//! "Batched actions"; docs/engine.md, "Batched sends"), with inputs equal but for the
//! recipient list, ride in one plugin call.
//!
//! Why: a broadcast enrols one run per contact, and WeCom's `add_msg_template` creates one
//! task per call that a staff member confirms in their client. One call per contact made a
//! million-contact broadcast a million tasks, a million paced calls (40.8 an account a
//! second) and four commits each; one call carries up to 10,000 recipients.
//!
//! Each member is still its own run: the gate admits it alone (consent, caps, quiet hours),
//! its intent and result are its own outbox entry and transition. What members share is the
//! rate slot, the intent commit and its flush, the call, the result commit and its flush,
//! and the outcome checks (one platform query per task, not per member).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sop_dsl::Catalog;
use sop_engine::{ActionResult, Input, Invocation, OutcomeStatus, PluginError};
use sop_store::{Batch, Check, Op, OutboxState, RunId, StoreError, Subject, TimerKey};

use crate::dispatch::{
    Admitted, gate_history, gate_label, intent_entry, lock, outbox_state, result_label,
};
use crate::error::RuntimeError;
use crate::gate::{Admission, Priority, Slot};
use crate::mapping::{defer_timer, outbox_key};
use crate::plugins::PluginCall;
use crate::runtime::Inner;
use crate::tx::Tx;

/// The plugin namespace of the store's key-value table under which binaries before store
/// format 3 recorded a member's call key (now in its outbox entry,
/// `OutboxState::PendingMember`). Read at recovery only, for entries such a binary left
/// pending; the records expire by themselves (8 days). Plugin names cannot hold a `:`, so
/// no plugin can read or write it.
pub(crate) const CALL_KEYS: &str = "sop:batch";

/// Members whose results go in one commit. A member's result is 13 key writes and about
/// 1.2 KB; 32 of them stay under the sled backend's redo record limit (64 KiB), above which a
/// commit takes sled's `apply_batch`, which locks all of sled while it writes and waits for a
/// flush in progress. The members' results need not be atomic together: each is its own run.
const RESULTS_PER_COMMIT: usize = 32;

/// How long an outcome asked for one member is kept for the other members of its call.
/// Their checks fall due together and are one question (same handle, `dispatch.rs`), but
/// under load their timers may fire minutes apart.
const SHARED_OUTCOME_SECONDS: i64 = 600;

/// How an invocation may be merged with others.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    /// The input field listing recipients.
    pub field: String,
    /// Most recipients one call may carry (the plugin's `max`, within the runtime's limit).
    pub max: usize,
    /// This invocation's one recipient.
    pub recipient: String,
    /// The input without `field`: what merged invocations must share.
    pub rest: Value,
    /// A hash of the action, the account and `rest`, for the bulk queue.
    pub hint: u64,
}

/// The merge shape of `invocation`, if it can ride in a batch at all: its action declares
/// `batch`, `limit` allows at least two members, it is a first attempt (a retry goes alone:
/// its outbox entry exists), and its recipient list holds exactly one id.
pub(crate) fn shape(catalog: &Catalog, invocation: &Invocation, limit: usize) -> Option<Shape> {
    let spec = batch_spec(catalog, invocation)?;
    let max = (spec.max as usize).min(limit);
    if max < 2 || invocation.attempt != 1 {
        return None;
    }
    let recipient = single_recipient(&invocation.input, &spec.field)?;
    let mut rest = invocation.input.as_object()?.clone();
    rest.remove(&spec.field);
    let rest = Value::Object(rest);
    let hint = sop_engine::stable_hash(&[
        &invocation.plugin,
        &invocation.account,
        &invocation.action,
        &rest.to_string(),
    ]);
    Some(Shape {
        field: spec.field.clone(),
        max,
        recipient,
        rest,
        hint,
    })
}

/// The recipient an invocation of a batched action is for, when it lists exactly one: the
/// id its share of a merged call's output is found under.
pub(crate) fn recipient_of(catalog: &Catalog, invocation: &Invocation) -> Option<String> {
    let spec = batch_spec(catalog, invocation)?;
    single_recipient(&invocation.input, &spec.field)
}

fn batch_spec<'a>(
    catalog: &'a Catalog,
    invocation: &Invocation,
) -> Option<&'a sop_dsl::catalog::BatchSpec> {
    catalog
        .plugins
        .get(&invocation.plugin)?
        .actions
        .iter()
        .find(|a| a.name == invocation.action)?
        .batch
        .as_ref()
}

fn single_recipient(input: &Value, field: &str) -> Option<String> {
    match input.get(field)?.as_array()?.as_slice() {
        [Value::String(id)] => Some(id.clone()),
        _ => None,
    }
}

/// A send that rides in a merged call.
struct Member {
    run: RunId,
    subject: Subject,
    invocation: Invocation,
    recipient: String,
}

/// A member the gate let through: what its intent commit needs.
struct Passed {
    member: Member,
    touches: Vec<Op>,
    decision: String,
    revision: u64,
}

impl Inner {
    /// Dispatches a bulk send with the waiting sends `more` taken for its batch: those of
    /// the same shape ride in its call, the others go alone after it.
    pub(crate) async fn dispatch_batch(
        self: Arc<Self>,
        run: RunId,
        subject: Subject,
        invocation: Invocation,
        more: Vec<(RunId, Subject)>,
    ) {
        let Some(shape) = self.batch_shape(&invocation) else {
            // The run moved on to another attempt since it was queued: all go alone.
            self.clone().dispatch(run, subject, invocation).await;
            for (run, subject) in more {
                if let Some(invocation) = self.awaited_invocation(run) {
                    self.clone().dispatch(run, subject, invocation).await;
                }
            }
            return;
        };
        let mut members = Vec::with_capacity(more.len() + 1);
        let mut alone = Vec::new();
        for (other_run, other_subject) in more {
            let Some(other) = self.awaited_invocation(other_run) else {
                continue;
            };
            let fits = self
                .batch_shape(&other)
                .filter(|other_shape| same_call(&invocation, &shape, &other, other_shape));
            match fits {
                Some(other_shape) => members.push(Member {
                    run: other_run,
                    subject: other_subject,
                    invocation: other,
                    recipient: other_shape.recipient,
                }),
                None => alone.push((other_run, other_subject, other)),
            }
        }
        members.insert(
            0,
            Member {
                run,
                subject,
                invocation,
                recipient: shape.recipient.clone(),
            },
        );
        if members.len() == 1 {
            let Member {
                run,
                subject,
                invocation,
                ..
            } = members.remove(0);
            self.clone().dispatch(run, subject, invocation).await;
        } else if let Err(error) = self.try_batch(&shape, members).await {
            // The members' runs stay waiting for their results; recovery at the next start
            // picks them up, as for a single send.
            tracing::error!(%error, "batched call not dispatched");
            metrics::counter!("sop_runtime_dispatch_errors_total").increment(1);
        }
        for (run, subject, invocation) in alone {
            self.clone().dispatch(run, subject, invocation).await;
        }
    }

    fn batch_shape(&self, invocation: &Invocation) -> Option<Shape> {
        shape(&self.registry.catalog, invocation, self.config.batch_max)
    }

    /// Admission one by one, then one slot, one intent commit, one call, one result commit.
    async fn try_batch(
        self: &Arc<Self>,
        shape: &Shape,
        members: Vec<Member>,
    ) -> Result<(), RuntimeError> {
        let mut passed = Vec::with_capacity(members.len());
        for member in members {
            let admitted = match self
                .admit(member.run, &member.subject, &member.invocation)
                .await
            {
                Ok(Some(admitted)) => admitted,
                Ok(None) => continue,
                Err(error) => {
                    tracing::error!(run = %member.run, %error, "batched send not admitted");
                    metrics::counter!("sop_runtime_dispatch_errors_total").increment(1);
                    continue;
                }
            };
            match admitted.admission {
                Admission::Pass { touches, decision } => passed.push(Passed {
                    member,
                    touches,
                    decision,
                    revision: admitted.revision,
                }),
                admission => {
                    let admitted = Admitted {
                        admission,
                        ..admitted
                    };
                    let Member {
                        run,
                        subject,
                        invocation,
                        ..
                    } = &member;
                    if let Err(error) = self.settle(*run, subject, invocation, admitted).await {
                        tracing::error!(%run, %error, "batched send not settled");
                        metrics::counter!("sop_runtime_dispatch_errors_total").increment(1);
                    }
                }
            }
        }
        let Some(head) = passed.first() else {
            return Ok(());
        };
        let head = head.member.invocation.clone();
        let slot = self
            .gate
            .acquire(
                &head.plugin,
                &head.account,
                &head.action,
                None,
                Priority::Bulk,
            )
            .await;
        let n = passed.len() as u64;
        let waited = match slot {
            Slot::Granted(waited) => {
                gate_label("pass", &head, n);
                waited
            }
            Slot::Park(until) => {
                gate_label("park", &head, n);
                let reason = "the account's queue of paced sends is long";
                for p in &passed {
                    let m = &p.member;
                    self.defer(m.run, &m.subject, &m.invocation, until, reason)
                        .await?;
                }
                return Ok(());
            }
        };
        metrics::histogram!("sop_runtime_rate_wait_seconds", "plugin" => head.plugin.clone())
            .record(waited.as_secs_f64());
        let call_key = format!("{}/batch", outbox_key(passed[0].member.run, &head));
        if !self.record_intents(&passed, &call_key).await? {
            // A member's run changed since it was admitted: each goes alone, admitted again.
            for p in passed {
                let m = p.member;
                self.clone().dispatch(m.run, m.subject, m.invocation).await;
            }
            return Ok(());
        }
        let call = PluginCall {
            plugin: head.plugin.clone(),
            action: head.action.clone(),
            account: head.account.clone(),
            input: merged_input(shape, passed.iter().map(|p| p.member.recipient.clone())),
            key: call_key,
        };
        metrics::histogram!("sop_runtime_batch_members", "plugin" => head.plugin.clone())
            .record(passed.len() as f64);
        let result = self.plugins.invoke(&call).await;
        let recorded = self.record_results(&passed, &result).await;
        let mut calls = lock(&self.calls);
        for p in &passed {
            calls.remove(&(outbox_key(p.member.run, &p.member.invocation), 1));
        }
        recorded
    }

    /// Commits every member's intent at once (durably for an at-most-once action), each
    /// with its own checks; `false` when one of the checks failed (nothing was committed).
    async fn record_intents(
        self: &Arc<Self>,
        passed: &[Passed],
        call_key: &str,
    ) -> Result<bool, RuntimeError> {
        let now = self.clock.now();
        let mut batch = Batch::new();
        for p in passed {
            let (run, invocation) = (p.member.run, &p.member.invocation);
            let key = outbox_key(run, invocation);
            batch = batch
                .check(Check::RunRevision {
                    run,
                    expected: Some(p.revision),
                })
                .check(Check::OutboxAbsent(key.clone()));
            // The entry names the call: recovery asks the plugin under the call's key.
            let mut entry = intent_entry(key.clone(), invocation, now, now);
            entry.state = OutboxState::PendingMember {
                call: call_key.to_string(),
            };
            batch.push(Op::PutOutbox(entry));
            batch.ops.extend(p.touches.iter().cloned());
            batch.push(Op::CancelTimer(TimerKey::new(run, defer_timer(invocation))));
            let decision = format!("{} (one call with {} others)", p.decision, passed.len() - 1);
            batch.push(gate_history(run, invocation, now, "passed", &decision));
        }
        // Live from here until their results are recorded: recovery must not take these
        // entries for ones a crash left behind.
        {
            let mut calls = lock(&self.calls);
            for p in passed {
                calls.insert((outbox_key(p.member.run, &p.member.invocation), 1));
            }
        }
        let forget = || {
            let mut calls = lock(&self.calls);
            for p in passed {
                calls.remove(&(outbox_key(p.member.run, &p.member.invocation), 1));
            }
        };
        match self.store.commit(batch) {
            Ok(_) => {}
            Err(StoreError::Conflict(reason)) => {
                forget();
                tracing::debug!(%reason, "batch intents conflicted; members go alone");
                metrics::counter!("sop_runtime_commit_conflicts_total").increment(1);
                return Ok(false);
            }
            Err(error) => {
                forget();
                return Err(error.into());
            }
        }
        if passed[0].member.invocation.delivery == sop_dsl::catalog::Delivery::AtMostOnce {
            // Durable before the call: after a crash the intents are found and never re-sent
            // blindly.
            if let Err(error) = self.durable().await {
                forget();
                return Err(error);
            }
        }
        Ok(true)
    }

    /// Feeds every member its share of the call's answer, [`RESULTS_PER_COMMIT`] a commit.
    async fn record_results(
        self: &Arc<Self>,
        passed: &[Passed],
        result: &ActionResult,
    ) -> Result<(), RuntimeError> {
        let head = &passed[0].member.invocation;
        if let ActionResult::Error {
            error: PluginError::RateLimited { retry_after_ms, .. },
        } = result
        {
            self.gate.slow_down(
                &head.plugin,
                &head.account,
                std::time::Duration::from_millis(*retry_after_ms),
            );
        }
        let now = self.clock.now();
        for chunk in passed.chunks(RESULTS_PER_COMMIT) {
            self.record_chunk(chunk, result, now).await?;
            // A commit does not yield: let plugin calls and requests run between chunks.
            tokio::task::yield_now().await;
        }
        if head.delivery == sop_dsl::catalog::Delivery::AtMostOnce {
            // A result lost to a crash makes the sends `unknown` for good.
            self.durable().await?;
        }
        Ok(())
    }

    /// Feeds some members their shares of the call's answer in one commit, each with its
    /// outbox outcome; if their runs changed meanwhile, one by one.
    async fn record_chunk(
        self: &Arc<Self>,
        passed: &[Passed],
        result: &ActionResult,
        now: sop_clock::Timestamp,
    ) -> Result<(), RuntimeError> {
        let mut tx = Tx::new();
        let mut shares = Vec::with_capacity(passed.len());
        for p in passed {
            let m = &p.member;
            let share = member_result(result, &m.recipient);
            metrics::counter!("sop_runtime_actions_total", "plugin" => m.invocation.plugin.clone(), "action" => m.invocation.action.clone(), "outcome" => result_label(&share)).increment(1);
            let key = outbox_key(m.run, &m.invocation);
            if let Some(mut entry) = self.store.outbox(&key)?
                && entry.state.is_pending()
                && entry.attempts == m.invocation.attempt
            {
                entry.state = outbox_state(&share, now);
                entry.updated_at = now;
                tx.batch.push(Op::PutOutbox(entry));
            }
            if let Some(loaded) = self.load(m.run)? {
                let input = Input::ActionResult {
                    key: m.invocation.key.clone(),
                    result: share.clone(),
                };
                self.advance_into(&mut tx, &loaded, &input, now)?;
            }
            shares.push(share);
        }
        match self.commit(tx) {
            Ok(()) => {}
            Err(RuntimeError::Store(StoreError::Conflict(reason))) => {
                tracing::debug!(%reason, "batch results conflicted; fed one by one");
                metrics::counter!("sop_runtime_commit_conflicts_total").increment(1);
                for (p, share) in passed.iter().zip(shares) {
                    let m = &p.member;
                    self.record_result(m.run, &m.invocation, share, None)
                        .await?;
                }
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }

    /// Where an asynchronous action stands, asked once for every member of its call.
    pub(crate) async fn shared_outcome<F>(
        &self,
        invocation: &Invocation,
        asked_by: &str,
        due: Option<sop_clock::Timestamp>,
        ask: F,
    ) -> Option<OutcomeStatus>
    where
        F: std::future::Future<Output = Option<OutcomeStatus>>,
    {
        let Some(recipient) = recipient_of(&self.registry.catalog, invocation) else {
            return ask.await;
        };
        let key = format!(
            "{}\n{}\n{}",
            invocation.plugin, invocation.account, asked_by
        );
        let now = self.clock.now().timestamp_millis();
        let due = due.map(|d| d.timestamp_millis());
        let (asked_at, status) = self.shared_outcomes.get(key, due, now, ask).await?;
        Some(match member_outcome(&status, &recipient) {
            // Every member checks again at the same moment, however late it got the
            // answer, so that the next check is one question again.
            OutcomeStatus::Pending { check_after_ms } => OutcomeStatus::Pending {
                check_after_ms: aligned(asked_at, check_after_ms, now),
            },
            other => other,
        })
    }
}

/// Milliseconds from `now` to `check_after_ms` after `asked_at` (0 when that has passed).
fn aligned(asked_at: i64, check_after_ms: u64, now: i64) -> u64 {
    let at = asked_at.saturating_add(i64::try_from(check_after_ms).unwrap_or(i64::MAX));
    u64::try_from(at.saturating_sub(now)).unwrap_or(0)
}

/// Whether `other` may ride in the same call as `head`.
pub(crate) fn same_call(
    head: &Invocation,
    head_shape: &Shape,
    other: &Invocation,
    other_shape: &Shape,
) -> bool {
    head.plugin == other.plugin
        && head.account == other.account
        && head.action == other.action
        && head.delivery == other.delivery
        && head_shape.field == other_shape.field
        && head_shape.rest == other_shape.rest
}

/// The merged call's input: the shared fields, and every member's recipient in order.
pub(crate) fn merged_input(shape: &Shape, recipients: impl IntoIterator<Item = String>) -> Value {
    let mut input = shape.rest.clone();
    if let Value::Object(map) = &mut input {
        map.insert(
            shape.field.clone(),
            Value::Array(recipients.into_iter().map(Value::String).collect()),
        );
    }
    input
}

/// A member's share of a call's answer: a recipient the platform rejected fails for good;
/// the others get the shared answer with their own `recipient_status`.
pub(crate) fn member_result(result: &ActionResult, recipient: &str) -> ActionResult {
    match result {
        ActionResult::Done { output } => {
            if let Some(rejected) = rejection(output, recipient) {
                return rejected;
            }
            ActionResult::Done {
                output: member_output(output, recipient),
            }
        }
        ActionResult::Accepted {
            handle,
            check_after_ms,
            output,
        } => {
            if let Some(rejected) = rejection(output, recipient) {
                return rejected;
            }
            ActionResult::Accepted {
                handle: handle.clone(),
                check_after_ms: *check_after_ms,
                output: member_output(output, recipient),
            }
        }
        other => other.clone(),
    }
}

/// A member's share of an outcome.
pub(crate) fn member_outcome(status: &OutcomeStatus, recipient: &str) -> OutcomeStatus {
    match status {
        OutcomeStatus::Done { output } => OutcomeStatus::Done {
            output: member_output(output, recipient),
        },
        other => other.clone(),
    }
}

fn rejection(output: &Value, recipient: &str) -> Option<ActionResult> {
    (status_of(output, recipient)? == "rejected").then(|| ActionResult::Error {
        error: PluginError::Permanent {
            message: format!("the platform rejected recipient {recipient} of the merged call"),
        },
    })
}

/// The status listing `recipient` in the output's `recipients` (status → ids).
fn status_of<'a>(output: &'a Value, recipient: &str) -> Option<&'a str> {
    output
        .get("recipients")?
        .as_object()?
        .iter()
        .find(|(_, ids)| {
            ids.as_array()
                .is_some_and(|ids| ids.iter().any(|id| id.as_str() == Some(recipient)))
        })
        .map(|(status, _)| status.as_str())
}

/// The output without `recipients`, plus this recipient's `recipient_status` if listed.
fn member_output(output: &Value, recipient: &str) -> Value {
    let Some(map) = output.as_object() else {
        return output.clone();
    };
    if !map.contains_key("recipients") {
        return output.clone();
    }
    let status = status_of(output, recipient).map(str::to_owned);
    let mut map = map.clone();
    map.remove("recipients");
    if let Some(status) = status {
        map.insert("recipient_status".into(), Value::String(status));
    }
    Value::Object(map)
}

/// The outcomes asked for calls shared by several members: the first member whose check
/// falls due asks the plugin, the others of the same call get its answer.
#[derive(Default)]
pub(crate) struct SharedOutcomes {
    asked: Mutex<Asked>,
}

#[derive(Default)]
struct Asked {
    /// By question: when it was last asked (ms), and its answer once there is one.
    by_question: HashMap<String, (i64, Answer)>,
    /// When stale questions were last dropped (ms): once a minute, not on every check (a
    /// personalised broadcast asks one question per send).
    pruned_at: i64,
}

type Answer = Arc<tokio::sync::OnceCell<Option<OutcomeStatus>>>;

impl SharedOutcomes {
    /// The answer for `key` (the plugin, account and handle or call key) and when it was
    /// asked, asking with `ask` unless it was asked within the last
    /// [`SHARED_OUTCOME_SECONDS`] and, for a check that fell due at `due_ms`, at or after
    /// that: an answer from before a re-check was due does not answer it. The members of a
    /// call fall due at the same moment (one `now` arms all their first checks; a pending
    /// answer aligns their re-checks), so the first to ask answers the others; one that got
    /// the last answer too late to re-check at that moment asks again.
    pub async fn get<F>(
        &self,
        key: String,
        due_ms: Option<i64>,
        now_ms: i64,
        ask: F,
    ) -> Option<(i64, OutcomeStatus)>
    where
        F: std::future::Future<Output = Option<OutcomeStatus>>,
    {
        let (asked_at, cell) = {
            let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
            let fresh = now_ms - SHARED_OUTCOME_SECONDS * 1000;
            if now_ms - asked.pruned_at >= 60_000 {
                asked.by_question.retain(|_, (at, _)| *at >= fresh);
                asked.pruned_at = now_ms;
            }
            let entry = asked
                .by_question
                .entry(key)
                .or_insert_with(|| (now_ms, Answer::default()));
            let stale = due_ms.is_some_and(|due| entry.0 < due);
            if entry.0 < fresh || stale {
                *entry = (now_ms, Answer::default());
            }
            (entry.0, entry.1.clone())
        };
        let status = cell.get_or_init(|| ask).await.clone()?;
        Some((asked_at, status))
    }
}

impl std::fmt::Debug for SharedOutcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.asked.lock().map_or(0, |a| a.by_question.len());
        f.debug_struct("SharedOutcomes").field("asked", &n).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_rejected_recipient_fails_and_the_others_get_their_status() {
        let answer = ActionResult::Accepted {
            handle: "msg1".into(),
            check_after_ms: 1000,
            output: json!({"msgid": "msg1", "recipients": {"rejected": ["c2"]}}),
        };
        match member_result(&answer, "c2") {
            ActionResult::Error {
                error: PluginError::Permanent { message },
            } => assert!(message.contains("rejected recipient c2"), "{message}"),
            other => panic!("{other:?}"),
        }
        match member_result(&answer, "c1") {
            ActionResult::Accepted { handle, output, .. } => {
                assert_eq!(handle, "msg1");
                assert_eq!(output, json!({"msgid": "msg1"}));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_outcome_is_split_by_recipient_status() {
        let done = OutcomeStatus::Done {
            output: json!({"msgid": "m", "sent": 2, "recipients": {"sent": ["a", "b"], "not_friend": ["c"]}}),
        };
        assert_eq!(
            member_outcome(&done, "c"),
            OutcomeStatus::Done {
                output: json!({"msgid": "m", "sent": 2, "recipient_status": "not_friend"})
            }
        );
        assert_eq!(
            member_outcome(&done, "z"),
            OutcomeStatus::Done {
                output: json!({"msgid": "m", "sent": 2})
            }
        );
        let failed = OutcomeStatus::Failed { reason: "x".into() };
        assert_eq!(member_outcome(&failed, "a"), failed);
    }

    #[test]
    fn the_merged_input_lists_every_recipient_in_order() {
        let shape = Shape {
            field: "contacts".into(),
            max: 10,
            recipient: "a".into(),
            rest: json!({"text": "hi"}),
            hint: 0,
        };
        assert_eq!(
            merged_input(&shape, ["a".to_string(), "b".to_string()]),
            json!({"text": "hi", "contacts": ["a", "b"]})
        );
    }

    #[tokio::test]
    async fn members_of_one_call_share_one_question_while_it_is_fresh() {
        let shared = SharedOutcomes::default();
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let ask = || async {
            asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Some(OutcomeStatus::Failed { reason: "r".into() })
        };
        for now in [1_000, 1_500, 3_000] {
            let (asked_at, _) = shared.get("k".into(), None, now, ask()).await.unwrap();
            assert_eq!(asked_at, 1_000);
        }
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Later than the sharing window: asked again.
        shared.get("k".into(), None, 1_000 + 601_000, ask()).await;
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_recheck_due_after_the_last_question_asks_again_and_its_members_share_it() {
        let shared = SharedOutcomes::default();
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let ask = || async {
            asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Some(OutcomeStatus::Pending {
                check_after_ms: 1_000,
            })
        };
        let n = || asked.load(std::sync::atomic::Ordering::SeqCst);
        shared.get("k".into(), Some(10_000), 10_000, ask()).await;
        // The other members due then, however late they run: the same answer.
        shared.get("k".into(), Some(10_000), 10_700, ask()).await;
        assert_eq!(n(), 1);
        // The re-check the answer asked for (1 s after it was asked): a new question, shared
        // by its members, not the answer it replaces.
        let (asked_at, _) = shared
            .get("k".into(), Some(11_000), 11_000, ask())
            .await
            .unwrap();
        assert_eq!((n(), asked_at), (2, 11_000));
        shared.get("k".into(), Some(11_000), 11_400, ask()).await;
        assert_eq!(n(), 2);
    }

    #[test]
    fn members_recheck_at_the_same_moment_however_late_they_got_the_answer() {
        assert_eq!(aligned(10_000, 1_000, 10_200), 800);
        assert_eq!(aligned(10_000, 1_000, 10_900), 100);
        assert_eq!(aligned(10_000, 1_000, 12_000), 0);
        assert_eq!(
            aligned(10_000, u64::MAX, 10_000),
            (i64::MAX - 10_000) as u64
        );
    }
}
