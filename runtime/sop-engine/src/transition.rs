//! `advance`: one input applied to one run, giving the next state and the effects to perform.

use chrono::{DateTime, TimeDelta, Utc};
use minijinja::Environment;
use sop_dsl::Playbook;
use sop_dsl::model::{Outcome, StepId, StepIndex, StepKind};

use crate::contact::ContactView;
use crate::context::Context;
use crate::effect::{Effect, HistoryEntry};
use crate::event::{Event, StartCause};
use crate::ids::SubscriptionId;
use crate::input::Input;
use crate::routing::{KEPT_EVENTS, Route, classify, waited_event_kinds};
use crate::run_state::{Finish, RunState, RunStatus, Waiting};
use crate::template::{Scope, environment};

/// The result of `advance`: commit `state` and `effects` together, then perform the effects.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub state: RunState,
    pub effects: Vec<Effect>,
    /// Why the input changed nothing (a stale timer, a result for another key, a finished run).
    /// `state` is then the input state and `effects` is empty.
    pub ignored: Option<String>,
}

/// Applies one input to a run. Deterministic: the same playbook, state, input and context
/// always give the same transition. Never panics; bad inputs are ignored with a reason and
/// problems inside the playbook (a template that cannot render) fail the run with a reason.
pub fn advance(
    playbook: &Playbook,
    state: &RunState,
    input: &Input,
    ctx: &Context<'_>,
) -> Transition {
    let mut machine = Machine {
        playbook,
        index: playbook.index(),
        ctx: *ctx,
        state: state.clone(),
        contact: ctx.contact.clone(),
        effects: Vec::new(),
        env: environment(),
    };
    match machine.apply(input) {
        Ok(()) => {
            machine.state.updated_at = ctx.now;
            Transition {
                state: machine.state,
                effects: machine.effects,
                ignored: None,
            }
        }
        Err(reason) => Transition {
            state: state.clone(),
            effects: Vec::new(),
            ignored: Some(reason),
        },
    }
}

/// What executing one step did.
pub(crate) enum Flow<'a> {
    /// Go on with this step; `None` ends the run as completed.
    Next(Option<&'a StepId>),
    /// The run waits for an input.
    Suspended,
    /// The run finished.
    Finished,
}

/// The working copy of a run during one `advance`.
pub(crate) struct Machine<'a> {
    pub playbook: &'a Playbook,
    pub index: StepIndex<'a>,
    pub ctx: Context<'a>,
    pub state: RunState,
    /// The contact as updated by `set` and tag steps earlier in this transition.
    pub contact: ContactView,
    pub effects: Vec<Effect>,
    pub env: Environment<'static>,
}

impl<'a> Machine<'a> {
    /// Err means "ignored": nothing may have been changed before returning it.
    fn apply(&mut self, input: &Input) -> Result<(), String> {
        if self.state.playbook != self.playbook.id || self.state.version != self.playbook.version {
            return Err(format!(
                "the run belongs to playbook {} v{}, not {} v{}",
                self.state.playbook, self.state.version, self.playbook.id, self.playbook.version
            ));
        }
        if self.state.status.is_terminal() {
            return Err(format!("the run has finished ({:?})", self.state.status));
        }
        if self.state.status == RunStatus::Created && !matches!(input, Input::Start { .. }) {
            return Err("the run has not started".into());
        }
        match input {
            Input::Start { cause } => self.start(cause),
            Input::TimerFired { timer } => {
                if self.state.waiting.as_ref().and_then(Waiting::timer) != Some(timer) {
                    return Err(format!("timer {timer} is not armed (stale or unknown)"));
                }
                self.timer_fired();
                Ok(())
            }
            Input::Event { event } => self.event(event),
            Input::ActionResult { key, result } => self.action_result(key, result),
            Input::Outcome { key, status } => self.outcome(key, status),
            Input::HandoffAnswered { by } => {
                let Some(Waiting::Handoff { timer }) = &self.state.waiting else {
                    return Err("no hand-off is waiting for an answer".into());
                };
                self.effects.push(Effect::CancelTimer {
                    timer: timer.clone(),
                });
                self.state.waiting = None;
                let step = self.current_step();
                self.history(
                    step.as_ref(),
                    format!("answered by {by}"),
                    "hand-off answered",
                );
                self.continue_after(step);
                Ok(())
            }
            Input::Cancel { reason } => {
                self.finish(RunStatus::Cancelled, format!("cancelled: {reason}"));
                Ok(())
            }
        }
    }

    fn start(&mut self, cause: &StartCause) -> Result<(), String> {
        if self.state.status != RunStatus::Created {
            return Err("the run has already started".into());
        }
        self.state.started_at = Some(self.ctx.now);
        self.state.cause = Some(cause.clone());
        self.state.event = cause.event().cloned();
        self.state.status = RunStatus::Running;
        self.history(None, cause.describe(), "started");
        for (position, goal) in self.playbook.goals.iter().enumerate() {
            self.effects
                .push(Effect::Subscribe(crate::effect::Subscription {
                    id: SubscriptionId::goal(&self.state.id, position),
                    event: goal.event.0.clone(),
                    subject: self.state.subject.id.clone(),
                    filter: goal.filter.as_ref().map(|f| f.0.clone()),
                    purpose: crate::effect::SubscriptionPurpose::Goal,
                }));
        }
        for kind in waited_event_kinds(self.playbook) {
            self.effects
                .push(Effect::Subscribe(crate::effect::Subscription {
                    id: SubscriptionId::keep(&self.state.id, &kind),
                    event: kind,
                    subject: self.state.subject.id.clone(),
                    filter: None,
                    purpose: crate::effect::SubscriptionPurpose::Keep,
                }));
        }
        self.run_from(self.index.first());
        Ok(())
    }

    fn event(&mut self, event: &Event) -> Result<(), String> {
        match classify(
            self.playbook,
            &self.state,
            event,
            &self.contact,
            self.ctx.now,
        ) {
            Some(Route::Convert { goal }) => {
                self.state.event = Some(event.clone());
                self.finish(
                    RunStatus::Converted,
                    format!("goal `{goal}` reached: {}", event.kind),
                );
                Ok(())
            }
            Some(Route::Resume { .. }) => {
                if let Some(Waiting::Event {
                    subscription,
                    timer,
                }) = self.state.waiting.take()
                {
                    self.effects.push(Effect::Unsubscribe { subscription });
                    self.effects.push(Effect::CancelTimer { timer });
                }
                self.state.event = Some(event.clone());
                let step = self.current_step();
                self.history(step.as_ref(), format!("event {}", event.kind), "received");
                self.continue_after(step);
                Ok(())
            }
            Some(Route::Keep) => {
                if self.state.kept_events.len() >= KEPT_EVENTS {
                    self.state.kept_events.remove(0);
                }
                self.state.kept_events.push(event.clone());
                let step = self.current_step();
                let what = format!("event {}", event.kind);
                self.history(step.as_ref(), what, "kept for the next wait_for");
                Ok(())
            }
            None => Err(format!(
                "event {} matches no goal and no wait of this run",
                event.kind
            )),
        }
    }

    fn timer_fired(&mut self) {
        let step = self.current_step();
        match self.state.waiting.take() {
            Some(Waiting::Timer { .. }) => {
                self.history(step.as_ref(), "timer".into(), "wait over");
                self.continue_after(step);
            }
            Some(Waiting::Retry { invocation, .. }) => {
                let outcome = format!("attempt {}", invocation.attempt);
                self.history(step.as_ref(), "back-off over".into(), &outcome);
                self.invoke(invocation);
            }
            Some(Waiting::Event { subscription, .. }) => {
                self.effects.push(Effect::Unsubscribe { subscription });
                self.history(step.as_ref(), "timeout".into(), "no matching event");
                let branch = self.step_kind(step.as_ref()).and_then(|k| match k {
                    StepKind::WaitFor(w) => w.wait_for.on_timeout.as_ref(),
                    _ => None,
                });
                self.take_branch(step, branch);
            }
            Some(Waiting::Handoff { .. }) => {
                self.history(step.as_ref(), "deadline".into(), "hand-off missed");
                let branch = self.step_kind(step.as_ref()).and_then(|k| match k {
                    StepKind::Handoff(h) => h.handoff.on_missed.as_ref(),
                    _ => None,
                });
                self.take_branch(step, branch);
            }
            Some(Waiting::Outcome { invocation, .. }) => {
                let timeout = self.ctx.config.retry.outcome_timeout_ms;
                let message = format!("no outcome within {} s", timeout / 1000);
                let reason = format!(
                    "step `{}`: no outcome for {} within {} s",
                    invocation.step,
                    invocation.key,
                    timeout / 1000
                );
                self.action_failed(&invocation, "outcome-timeout", &message, reason);
            }
            Some(Waiting::Result { .. }) | None => {}
        }
    }

    /// Follows a branch of the current step, or falls through when it has none.
    fn take_branch(&mut self, step: Option<StepId>, branch: Option<&'a sop_dsl::model::Branch>) {
        match (step, branch) {
            (Some(step), Some(branch)) => {
                let next = self.index.enter(branch, step.as_str());
                self.run_from(next);
            }
            (step, _) => self.continue_after(step),
        }
    }

    /// Runs steps from `next` until the run suspends, finishes or exhausts its budget.
    pub fn run_from(&mut self, mut next: Option<&'a StepId>) {
        let mut budget = self.ctx.config.step_budget;
        loop {
            let Some(id) = next else {
                self.finish(
                    RunStatus::Completed,
                    "reached the end of the playbook".into(),
                );
                return;
            };
            let Some(step) = self.index.get(id.as_str()) else {
                self.state.step = Some(id.clone());
                self.fail(format!(
                    "step `{id}` does not exist in playbook {} v{}",
                    self.playbook.id, self.playbook.version
                ));
                return;
            };
            self.state.step = Some(id.clone());
            if budget == 0 {
                self.fail(format!(
                    "ran {} steps without waiting (a loop without a wait?); stopped at `{id}`",
                    self.ctx.config.step_budget
                ));
                return;
            }
            budget -= 1;
            match self.execute(step) {
                Flow::Next(following) => next = following,
                Flow::Suspended | Flow::Finished => return,
            }
        }
    }

    /// Continues with the step after `step` (fall-through), or from the first if unknown.
    pub fn continue_after(&mut self, step: Option<StepId>) {
        match step {
            Some(step) if self.index.get(step.as_str()).is_some() => {
                let next = self.index.after(step.as_str());
                self.run_from(next);
            }
            Some(step) => self.fail(format!(
                "step `{step}` does not exist in playbook {} v{}",
                self.playbook.id, self.playbook.version
            )),
            None => self.fail("the run has no current step".into()),
        }
    }

    pub fn current_step(&self) -> Option<StepId> {
        self.state.step.clone()
    }

    fn step_kind(&self, step: Option<&StepId>) -> Option<&'a StepKind> {
        step.and_then(|s| self.index.get(s.as_str()))
            .map(|s| &s.kind)
    }

    pub fn scope(&self) -> Scope {
        Scope::new(
            self.playbook,
            &self.state,
            self.state.event.as_ref(),
            &self.contact,
            self.ctx.now,
        )
    }

    /// `now` plus a delay; saturates instead of overflowing on absurd delays.
    pub fn after_ms(&self, ms: u64) -> DateTime<Utc> {
        let delta = i64::try_from(ms)
            .ok()
            .and_then(TimeDelta::try_milliseconds)
            .unwrap_or(TimeDelta::MAX);
        self.ctx
            .now
            .checked_add_signed(delta)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    pub fn after_s(&self, seconds: u64) -> DateTime<Utc> {
        self.after_ms(seconds.saturating_mul(1000))
    }

    pub fn history(&mut self, step: Option<&StepId>, input: String, outcome: &str) {
        self.effects.push(Effect::History(HistoryEntry {
            step: step.cloned(),
            at: self.ctx.now,
            input,
            outcome: outcome.to_string(),
        }));
    }

    pub fn fail(&mut self, reason: String) {
        self.finish(RunStatus::Failed, reason);
    }

    pub fn end(&mut self, outcome: Outcome, reason: String) {
        let status = match outcome {
            Outcome::Completed => RunStatus::Completed,
            Outcome::Converted => RunStatus::Converted,
            Outcome::Cancelled => RunStatus::Cancelled,
        };
        self.finish(status, reason);
    }

    /// Ends the run: disarms whatever it waited for, drops its goal subscriptions.
    pub fn finish(&mut self, status: RunStatus, reason: String) {
        match self.state.waiting.take() {
            Some(Waiting::Event {
                subscription,
                timer,
            }) => {
                self.effects.push(Effect::Unsubscribe { subscription });
                self.effects.push(Effect::CancelTimer { timer });
            }
            Some(waiting) => {
                if let Some(timer) = waiting.timer() {
                    self.effects.push(Effect::CancelTimer {
                        timer: timer.clone(),
                    });
                }
            }
            None => {}
        }
        for position in 0..self.playbook.goals.len() {
            self.effects.push(Effect::Unsubscribe {
                subscription: SubscriptionId::goal(&self.state.id, position),
            });
        }
        for kind in waited_event_kinds(self.playbook) {
            self.effects.push(Effect::Unsubscribe {
                subscription: SubscriptionId::keep(&self.state.id, &kind),
            });
        }
        self.state.kept_events.clear();
        let step = self.current_step();
        self.history(step.as_ref(), "finish".into(), &reason);
        self.effects.push(Effect::FinishRun {
            status,
            reason: reason.clone(),
        });
        self.state.status = status;
        self.state.finish = Some(Finish {
            status,
            reason,
            at: self.ctx.now,
        });
    }
}
