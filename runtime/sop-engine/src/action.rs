//! The life of an action step: render and hand out an invocation, then act on its result —
//! done, accepted (asynchronous), or a typed error with its retry rule.

use serde_json::Value;
use sop_dsl::catalog::{ActionAudience, Delivery};
use sop_dsl::model::{ActionStep, Step, StepKind};

use crate::config::OnUnknown;
use crate::effect::{Effect, Invocation};
use crate::ids::{IdempotencyKey, TimerId};
use crate::input::{ActionResult, OutcomeStatus, PluginError};
use crate::retry::transient_delay_ms;
use crate::run_state::{Attempts, RunStatus, StepFailure, Waiting};
use crate::transition::{Flow, Machine};

impl<'a> Machine<'a> {
    pub(crate) fn start_action(
        &mut self,
        step: &'a Step,
        action: &ActionStep,
        iteration: u32,
    ) -> Flow<'a> {
        let params = Value::Object(action.params.clone().into_iter().collect());
        let input = match self.scope().render_value(&self.env, &params) {
            Ok(input) => input,
            Err(e) => return self.failed(step, e),
        };
        let spec = self
            .ctx
            .catalog
            .and_then(|c| c.plugin(action.action.plugin()))
            .and_then(|p| p.action(action.action.name()));
        let invocation = Invocation {
            step: step.id.clone(),
            iteration,
            plugin: action.action.plugin().to_string(),
            action: action.action.name().to_string(),
            // A step may act through another account of the tenant (a WeCom alert from a
            // Douyin conversation); the checker made sure the tenant has it.
            account: action
                .account
                .clone()
                .unwrap_or_else(|| self.state.subject.account.clone()),
            input,
            key: IdempotencyKey::new(&self.state.id, step.id.as_str(), iteration),
            delivery: spec.map_or(Delivery::AtMostOnce, |s| s.delivery),
            audience: spec.map_or(ActionAudience::Contact, |s| s.audience),
            asynchronous: spec.is_some_and(|s| s.asynchronous),
            time_critical: spec.is_some_and(|s| s.time_critical),
            policy: self.playbook.policy.for_step(step.policy.as_ref()),
            attempt: 1,
        };
        self.state.attempts = Attempts::default();
        self.invoke(invocation);
        Flow::Suspended
    }

    /// Hands the invocation out and waits for its result.
    pub(crate) fn invoke(&mut self, invocation: Invocation) {
        let what = format!(
            "{}.{} attempt {}",
            invocation.plugin, invocation.action, invocation.attempt
        );
        self.history(Some(&invocation.step), what, "invoked");
        self.effects.push(Effect::InvokeAction(invocation.clone()));
        self.state.status = RunStatus::Running;
        self.state.waiting = Some(Waiting::Result { invocation });
    }

    pub(crate) fn action_result(
        &mut self,
        key: &IdempotencyKey,
        result: &ActionResult,
    ) -> Result<(), String> {
        let Some(Waiting::Result { invocation }) = &self.state.waiting else {
            return Err(format!("no action result is awaited (got one for {key})"));
        };
        if &invocation.key != key {
            return Err(format!(
                "result for {key}, but the run awaits {}",
                invocation.key
            ));
        }
        let Some(Waiting::Result { invocation }) = self.state.waiting.take() else {
            return Ok(());
        };
        let step = invocation.step.clone();
        match result {
            ActionResult::Done { output } => {
                self.state.outputs.insert(step.0.clone(), output.clone());
                self.history(Some(&step), "result".into(), "done");
                self.continue_after(Some(step));
            }
            ActionResult::Accepted {
                handle,
                check_after_ms,
                output,
            } => {
                self.state.outputs.insert(step.0.clone(), output.clone());
                let timer =
                    TimerId::outcome_deadline(&self.state.id, step.as_str(), invocation.iteration);
                let due = self.after_ms(self.ctx.config.retry.outcome_timeout_ms);
                self.effects.push(Effect::ScheduleTimer {
                    timer: timer.clone(),
                    due,
                });
                self.effects.push(Effect::CheckOutcome {
                    invocation: invocation.clone(),
                    handle: handle.clone(),
                    at: self.after_ms(*check_after_ms),
                });
                self.history(
                    Some(&step),
                    format!("accepted as {handle}"),
                    "outcome later",
                );
                self.state.status = RunStatus::WaitingOutcome;
                self.state.waiting = Some(Waiting::Outcome {
                    invocation,
                    handle: handle.clone(),
                    timer,
                });
            }
            ActionResult::Skipped { reason } => {
                self.history(
                    Some(&step),
                    "policy gate".into(),
                    &format!("skipped: {reason}"),
                );
                self.continue_after(Some(step));
            }
            ActionResult::EndRun { reason } => {
                self.finish(
                    RunStatus::Completed,
                    format!("ended by the policy gate: {reason}"),
                );
            }
            ActionResult::Error { error } => self.plugin_error(invocation, error),
        }
        Ok(())
    }

    fn plugin_error(&mut self, invocation: Invocation, error: &PluginError) {
        let policy = &self.ctx.config.retry;
        let step = invocation.step.clone();
        let attempts = &mut self.state.attempts;
        let retry_in = match error {
            PluginError::Transient { .. } => {
                attempts.transient += 1;
                (attempts.transient < policy.transient_attempts)
                    .then(|| transient_delay_ms(policy, &invocation.key, attempts.transient))
            }
            PluginError::OutcomeUnknown { .. } if invocation.delivery == Delivery::Idempotent => {
                attempts.transient += 1;
                (attempts.transient < policy.transient_attempts)
                    .then(|| transient_delay_ms(policy, &invocation.key, attempts.transient))
            }
            PluginError::RateLimited { retry_after_ms, .. } => {
                attempts.rate_limited += 1;
                (attempts.rate_limited < policy.rate_limited_attempts)
                    .then_some((*retry_after_ms).max(1))
            }
            PluginError::AuthExpired { .. } => {
                attempts.auth_expired += 1;
                (attempts.auth_expired < policy.auth_attempts).then_some(policy.auth_delay_ms)
            }
            PluginError::OutcomeUnknown { message } => {
                // At-most-once: the message may have gone out. Never send it again.
                let unknown = serde_json::json!({ "outcome": "unknown", "message": message });
                self.state.outputs.insert(step.0.clone(), unknown);
                let outcome = "outcome unknown; not retried (at-most-once)";
                self.history(Some(&step), message.clone(), outcome);
                match policy.on_unknown {
                    OnUnknown::Continue => self.continue_after(Some(step)),
                    OnUnknown::Fail => {
                        let reason = format!(
                            "step `{step}`: outcome of {} unknown: {message}",
                            invocation.key
                        );
                        self.action_failed(&invocation, error.kind(), message, reason);
                    }
                }
                return;
            }
            PluginError::InvalidInput { .. } | PluginError::Permanent { .. } => None,
        };
        match retry_in {
            Some(delay) => self.retry(invocation, delay, error),
            None => {
                let attempts = self.state.attempts.total().max(1);
                let reason = format!(
                    "step `{step}`: {} after {attempts} failed attempt(s): {}",
                    error.kind(),
                    error.message()
                );
                self.action_failed(&invocation, error.kind(), error.message(), reason);
            }
        }
    }

    /// The action of `invocation` failed for good: its step's `on_error` branch takes over
    /// with the failure as `error`, or, without one, the run fails with `reason`.
    pub(crate) fn action_failed(
        &mut self,
        invocation: &Invocation,
        kind: &str,
        message: &str,
        reason: String,
    ) {
        let step = invocation.step.clone();
        let branch = match self.index.get(step.as_str()).map(|s| &s.kind) {
            Some(StepKind::Action(action)) => action.on_error.as_ref(),
            _ => None,
        };
        let Some(branch) = branch else {
            self.fail(reason);
            return;
        };
        // Whatever the step still waited for (an outcome timeout) is over.
        if let Some(timer) = self.state.waiting.take().as_ref().and_then(Waiting::timer) {
            self.effects.push(Effect::CancelTimer {
                timer: timer.clone(),
            });
        }
        self.state.error = Some(StepFailure {
            step: step.clone(),
            kind: kind.to_string(),
            message: message.to_string(),
            attempts: invocation.attempt,
        });
        self.state.status = RunStatus::Running;
        self.history(Some(&step), reason, "on_error");
        let next = self.index.enter(branch, step.as_str());
        self.run_from(next);
    }

    /// Arms a back-off timer; when it fires the same invocation goes out again.
    fn retry(&mut self, mut invocation: Invocation, delay_ms: u64, error: &PluginError) {
        invocation.attempt += 1;
        let purpose = format!("retry-{}", invocation.attempt);
        let timer = TimerId::new(
            &self.state.id,
            invocation.step.as_str(),
            invocation.iteration,
            &purpose,
        );
        let due = self.after_ms(delay_ms);
        self.effects.push(Effect::ScheduleTimer {
            timer: timer.clone(),
            due,
        });
        let what = format!("{}: {}", error.kind(), error.message());
        self.history(Some(&invocation.step), what, &format!("retry at {due}"));
        self.state.status = RunStatus::WaitingTimer;
        self.state.waiting = Some(Waiting::Retry { invocation, timer });
    }

    pub(crate) fn outcome(
        &mut self,
        key: &IdempotencyKey,
        status: &OutcomeStatus,
    ) -> Result<(), String> {
        let Some(Waiting::Outcome {
            invocation,
            handle,
            timer,
        }) = &self.state.waiting
        else {
            return Err(format!(
                "no asynchronous outcome is awaited (got one for {key})"
            ));
        };
        if &invocation.key != key {
            return Err(format!(
                "outcome for {key}, but the run awaits {}",
                invocation.key
            ));
        }
        let step = invocation.step.clone();
        match status {
            OutcomeStatus::Pending { check_after_ms } => {
                let check = Effect::CheckOutcome {
                    invocation: invocation.clone(),
                    handle: handle.clone(),
                    at: self.after_ms(*check_after_ms),
                };
                self.effects.push(check);
            }
            OutcomeStatus::Done { output } => {
                self.effects.push(Effect::CancelTimer {
                    timer: timer.clone(),
                });
                self.state.waiting = None;
                self.state.outputs.insert(step.0.clone(), output.clone());
                self.history(Some(&step), "outcome".into(), "done");
                self.continue_after(Some(step));
            }
            OutcomeStatus::Failed { reason } => {
                let invocation = invocation.clone();
                let why = format!(
                    "step `{step}`: asynchronous action {} failed: {reason}",
                    invocation.key
                );
                self.action_failed(&invocation, "outcome-failed", reason, why);
            }
        }
        Ok(())
    }
}
