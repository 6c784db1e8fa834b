//! One atomic commit in the making: a transition's new run state, timers, subscriptions,
//! contact changes and history become ops of one [`Batch`]; what must happen after the commit
//! (plugin calls, hand-off notices) is collected as [`Work`].

use std::collections::BTreeMap;

use sop_clock::Timestamp;
use sop_dsl::Playbook;
use sop_dsl::model::StepKind;
use sop_engine::{ContactView, Effect, Invocation, RunState as EngineState, Transition, Waiting};
use sop_store::{
    Batch, Check, Contact, ContactKey, Group, GroupKey, HistoryEntry, Op, Run, RunId, Store,
    Subject, Subscription, Timer, TimerKey,
};

use crate::error::RuntimeError;
use crate::mapping::{
    cause_is_bulk, check_timer, contact_view, defer_timer, encode_state, group_view, run_record,
    store_run_id,
};

/// What to do once the batch is committed.
#[derive(Debug, Clone)]
pub(crate) enum Work {
    /// Pass the invocation through the gate and the outbox to the plugin.
    /// `subject` picks the lane (the caller has it: no store read to find it).
    Invoke {
        run: RunId,
        subject: Subject,
        invocation: Invocation,
        /// Started by an operator, a schedule or a scan: waits its turn (`bulk.rs`).
        bulk: bool,
    },
    /// Tell the staff member a contact waits for them.
    Handoff {
        run: RunId,
        playbook: String,
        to: String,
        deadline: Timestamp,
    },
}

/// A batch under construction, with the subject records it reads and changes.
#[derive(Debug, Default)]
pub(crate) struct Tx {
    pub batch: Batch,
    pub work: Vec<Work>,
    contacts: BTreeMap<ContactKey, (Contact, bool)>,
    groups: BTreeMap<GroupKey, (Group, bool)>,
    /// The earliest timer armed, to wake the timer loop if it sleeps past it.
    pub earliest_timer: Option<Timestamp>,
    /// Runs already guarded by a revision check in this batch.
    checked: Vec<RunId>,
    /// Finished runs: (playbook, status) for metrics after the commit.
    pub finished: Vec<(String, &'static str)>,
    /// Flow-control outcomes: (playbook, outcome) for `sop_flow_starts_total`, counted only
    /// once the commit succeeded (a commit retried after a conflict decides them again).
    pub flow_counts: Vec<(String, &'static str)>,
}

impl Tx {
    pub fn new() -> Self {
        Tx::default()
    }

    /// Counts a flow-control outcome when this batch commits.
    pub fn count_flow(&mut self, playbook: &str, outcome: &'static str) {
        self.flow_counts.push((playbook.to_string(), outcome));
    }

    /// The contact, loaded once per batch; a new one if the store has none.
    pub fn contact(
        &mut self,
        store: &dyn Store,
        key: &ContactKey,
        now: Timestamp,
    ) -> Result<&mut Contact, RuntimeError> {
        if !self.contacts.contains_key(key) {
            let found = store.contact(key)?;
            let fresh = found.is_none();
            let contact = found.unwrap_or_else(|| Contact::new(key.clone(), now));
            // A contact first seen here is written even if nothing else changes it.
            self.contacts.insert(key.clone(), (contact, fresh));
        }
        let (contact, _) = self
            .contacts
            .get_mut(key)
            .ok_or_else(|| missing("contact"))?;
        Ok(contact)
    }

    /// Marks the contact as changed (written at commit).
    pub fn contact_mut(
        &mut self,
        store: &dyn Store,
        key: &ContactKey,
        now: Timestamp,
    ) -> Result<&mut Contact, RuntimeError> {
        self.contact(store, key, now)?;
        let (contact, dirty) = self
            .contacts
            .get_mut(key)
            .ok_or_else(|| missing("contact"))?;
        *dirty = true;
        contact.updated_at = now;
        Ok(contact)
    }

    /// The group, loaded once per batch.
    pub fn group(
        &mut self,
        store: &dyn Store,
        key: &GroupKey,
        account: &str,
        now: Timestamp,
    ) -> Result<&mut Group, RuntimeError> {
        if !self.groups.contains_key(key) {
            let found = store.group(key)?;
            let fresh = found.is_none();
            let group = found.unwrap_or_else(|| Group::new(key.clone(), account, now));
            self.groups.insert(key.clone(), (group, fresh));
        }
        let (group, _) = self.groups.get_mut(key).ok_or_else(|| missing("group"))?;
        Ok(group)
    }

    /// Marks the group as changed.
    pub fn group_mut(
        &mut self,
        store: &dyn Store,
        key: &GroupKey,
        account: &str,
        now: Timestamp,
    ) -> Result<&mut Group, RuntimeError> {
        self.group(store, key, account, now)?;
        let (group, dirty) = self.groups.get_mut(key).ok_or_else(|| missing("group"))?;
        *dirty = true;
        group.updated_at = now;
        Ok(group)
    }

    /// What templates see of the subject, as changed so far in this batch.
    pub fn view(
        &mut self,
        store: &dyn Store,
        subject: &Subject,
        account: &str,
        now: Timestamp,
    ) -> Result<ContactView, RuntimeError> {
        Ok(match subject {
            Subject::Contact(key) => contact_view(self.contact(store, key, now)?),
            Subject::Group { tenant, id } => {
                group_view(self.group(store, &GroupKey::new(tenant, id), account, now)?)
            }
        })
    }

    /// Adds a run transition: the revision check, the new run record and detail, its timers,
    /// subscriptions, subject changes and history; plugin calls go to `work`.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        store: &dyn Store,
        playbook: &Playbook,
        prev: Option<&Run>,
        before: &EngineState,
        subject: &Subject,
        transition: &Transition,
        now: Timestamp,
    ) -> Result<(), RuntimeError> {
        let state = &transition.state;
        let run = store_run_id(&state.id).ok_or_else(|| RuntimeError::Corrupt {
            run: state.id.0.clone(),
            reason: "run id is not a store id".into(),
        })?;
        if !self.checked.contains(&run) {
            self.checked.push(run);
            self.batch.checks.push(Check::RunRevision {
                run,
                expected: prev.map(|r| r.revision),
            });
        }
        let account = state.subject.account.clone();
        let mut subscriptions_changed = false;
        for effect in &transition.effects {
            match effect {
                Effect::InvokeAction(invocation) => self.work.push(Work::Invoke {
                    run,
                    subject: subject.clone(),
                    invocation: invocation.clone(),
                    bulk: cause_is_bulk(state),
                }),
                Effect::CheckOutcome { invocation, at, .. } => {
                    self.timer(run, check_timer(invocation), *at, Some(&invocation.step.0))
                }
                Effect::ScheduleTimer { timer, due } => {
                    let step = state.step.as_ref().map(|s| s.0.as_str());
                    self.timer(run, timer.0.clone(), *due, step)
                }
                Effect::CancelTimer { timer } => self
                    .batch
                    .push(Op::CancelTimer(TimerKey::new(run, timer.0.clone()))),
                Effect::Subscribe(_) | Effect::Unsubscribe { .. } => subscriptions_changed = true,
                Effect::SetAttribute { name, value } => {
                    self.change_subject(store, subject, &account, now, |attributes, _| {
                        attributes.insert(name.clone(), value.clone());
                    })?
                }
                Effect::AddTags { tags } => {
                    self.change_subject(store, subject, &account, now, |_, set| {
                        set.extend(tags.iter().cloned());
                    })?
                }
                Effect::RemoveTags { tags } => {
                    self.change_subject(store, subject, &account, now, |_, set| {
                        for tag in tags {
                            set.remove(tag);
                        }
                    })?
                }
                Effect::Handoff { to, deadline, .. } => self.work.push(Work::Handoff {
                    run,
                    playbook: state.playbook.clone(),
                    to: to.clone(),
                    deadline: *deadline,
                }),
                Effect::History(entry) => self.batch.push(Op::AppendHistory {
                    run,
                    entry: HistoryEntry {
                        at: entry.at,
                        step: entry.step.as_ref().map(|s| s.0.clone()),
                        input: entry.input.clone(),
                        outcome: entry.outcome.clone(),
                        gate: None,
                    },
                }),
                Effect::FinishRun { status, .. } => {
                    // The runtime's own timers for the awaited invocation go with the run.
                    if let Some(invocation) = awaited(before) {
                        for name in [defer_timer(invocation), check_timer(invocation)] {
                            self.batch.push(Op::CancelTimer(TimerKey::new(run, name)));
                        }
                    }
                    self.finished
                        .push((state.playbook.clone(), status_label(*status)));
                }
            }
        }
        if subscriptions_changed {
            // The store keeps one row per (subject, event kind, run), so a goal and a wait
            // for the same kind share a row: rewrite the run's set from its state instead of
            // replaying subscribe/unsubscribe one by one.
            self.batch.push(Op::UnsubscribeRun(run));
            for (event, step) in wanted_subscriptions(playbook, state) {
                self.batch.push(Op::Subscribe(Subscription {
                    subject: subject.clone(),
                    event,
                    run,
                    step,
                }));
            }
        }
        let revision = prev.map_or(1, |r| r.revision + 1);
        let mut record = run_record(state, subject.clone(), revision);
        record.id = run;
        if let Some(prev) = prev {
            record.created_at = prev.created_at;
        }
        self.batch.push(Op::PutRun(record));
        self.batch.push(Op::PutRunDetail {
            run,
            detail: encode_state(state)?,
        });
        Ok(())
    }

    fn timer(&mut self, run: RunId, name: String, due: Timestamp, step: Option<&str>) {
        self.earliest_timer = Some(self.earliest_timer.map_or(due, |t| t.min(due)));
        self.batch.push(Op::PutTimer(Timer {
            key: TimerKey::new(run, name),
            due,
            step: step.map(str::to_string),
        }));
    }

    fn change_subject(
        &mut self,
        store: &dyn Store,
        subject: &Subject,
        account: &str,
        now: Timestamp,
        change: impl FnOnce(
            &mut serde_json::Map<String, serde_json::Value>,
            &mut std::collections::BTreeSet<String>,
        ),
    ) -> Result<(), RuntimeError> {
        match subject {
            Subject::Contact(key) => {
                let contact = self.contact_mut(store, key, now)?;
                change(&mut contact.attributes, &mut contact.tags);
            }
            Subject::Group { tenant, id } => {
                let group = self.group_mut(store, &GroupKey::new(tenant, id), account, now)?;
                change(&mut group.attributes, &mut group.tags);
            }
        }
        Ok(())
    }

    /// The batch with every changed contact and group written.
    pub fn into_batch(mut self) -> Prepared {
        for (_, (contact, dirty)) in self.contacts {
            if dirty {
                self.batch.push(Op::PutContact(contact));
            }
        }
        for (_, (group, dirty)) in self.groups {
            if dirty {
                self.batch.push(Op::PutGroup(group));
            }
        }
        Prepared {
            batch: self.batch,
            work: self.work,
            earliest_timer: self.earliest_timer,
            finished: self.finished,
            flow_counts: self.flow_counts,
        }
    }
}

/// A finished transaction: the batch to commit and what follows the commit.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub batch: Batch,
    pub work: Vec<Work>,
    pub earliest_timer: Option<Timestamp>,
    pub finished: Vec<(String, &'static str)>,
    pub flow_counts: Vec<(String, &'static str)>,
}

/// The invocation a run state waits on (a result, a back-off or an outcome).
pub(crate) fn awaited(state: &EngineState) -> Option<&Invocation> {
    match &state.waiting {
        Some(Waiting::Result { invocation })
        | Some(Waiting::Retry { invocation, .. })
        | Some(Waiting::Outcome { invocation, .. }) => Some(invocation),
        _ => None,
    }
}

/// (event kind, step) rows a run should be subscribed with: its goals while it lives, and
/// the event its `wait_for` waits for.
fn wanted_subscriptions(playbook: &Playbook, state: &EngineState) -> Vec<(String, String)> {
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    if state.status.is_terminal() {
        return Vec::new();
    }
    if let (Some(Waiting::Event { .. }), Some(step)) = (&state.waiting, &state.step)
        && let Some(found) = playbook.index().get(step.as_str())
        && let StepKind::WaitFor(wait) = &found.kind
    {
        wanted.insert(wait.wait_for.event.0.clone(), step.0.clone());
    }
    for (position, goal) in playbook.goals.iter().enumerate() {
        wanted
            .entry(goal.event.0.clone())
            .or_insert_with(|| format!("goal/{position}"));
    }
    // What a later `wait_for` waits for reaches the run while it is busy elsewhere, to be
    // kept (docs/engine.md, "Kept events").
    for kind in sop_engine::waited_event_kinds(playbook) {
        wanted.entry(kind).or_insert_with(|| "keep".to_string());
    }
    wanted.into_iter().collect()
}

fn status_label(status: sop_engine::RunStatus) -> &'static str {
    use sop_engine::RunStatus as S;
    match status {
        S::Completed => "completed",
        S::Converted => "converted",
        S::Failed => "failed",
        S::Cancelled => "cancelled",
        _ => "other",
    }
}

fn missing(what: &str) -> RuntimeError {
    RuntimeError::BadRequest(format!("{what} vanished from the batch cache"))
}
