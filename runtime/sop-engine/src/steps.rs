//! Executing each step kind. Steps without I/O return `Flow::Next` so that `run_from` chains
//! them inside one transition; waits arm a timer (and a subscription) and suspend.

use serde_json::Value;
use sop_dsl::model::{Step, StepKind};

use crate::effect::{Effect, Subscription, SubscriptionPurpose};
use crate::ids::{SubscriptionId, TimerId};
use crate::local_time::next_local_time;
use crate::run_state::{RunStatus, Waiting};
use crate::split::choose_arm;
use crate::template::Scope;
use crate::transition::{Flow, Machine};

impl<'a> Machine<'a> {
    pub(crate) fn execute(&mut self, step: &'a Step) -> Flow<'a> {
        let iteration = self.state.iteration(step.id.as_str()).saturating_add(1);
        self.state
            .iterations
            .insert(step.id.as_str().to_string(), iteration);
        match &step.kind {
            StepKind::Action(action) => self.start_action(step, action, iteration),
            StepKind::Wait(wait) => {
                let due = self.after_s(wait.wait.as_seconds());
                self.sleep(step, iteration, due, format!("wait {}", wait.wait))
            }
            StepKind::WaitUntil(wait) => {
                let zone = self.contact.timezone.unwrap_or(self.playbook.timezone).0;
                let due = next_local_time(self.ctx.now, zone, wait.wait_until);
                let what = format!("wait until {} {}", wait.wait_until, zone.name());
                self.sleep(step, iteration, due, what)
            }
            StepKind::WaitFor(wait) => {
                let spec = &wait.wait_for;
                if let Some(kept) = self.take_kept_event(spec) {
                    let what = format!("event {} (kept since {})", kept.kind, kept.occurred_at);
                    self.state.event = Some(kept);
                    self.history(Some(&step.id), what, "received");
                    return Flow::Next(self.index.after(step.id.as_str()));
                }
                let subscription =
                    SubscriptionId::wait_for(&self.state.id, step.id.as_str(), iteration);
                let timer = TimerId::new(&self.state.id, step.id.as_str(), iteration, "timeout");
                self.effects.push(Effect::Subscribe(Subscription {
                    id: subscription.clone(),
                    event: spec.event.0.clone(),
                    subject: self.state.subject.id.clone(),
                    filter: spec.filter.as_ref().map(|f| f.0.clone()),
                    purpose: SubscriptionPurpose::WaitFor,
                }));
                self.effects.push(Effect::ScheduleTimer {
                    timer: timer.clone(),
                    due: self.after_s(spec.timeout.as_seconds()),
                });
                self.state.waiting = Some(Waiting::Event {
                    subscription,
                    timer,
                });
                self.state.status = RunStatus::WaitingEvent;
                let what = format!("wait for {} up to {}", spec.event, spec.timeout);
                self.history(Some(&step.id), what, "waiting");
                Flow::Suspended
            }
            StepKind::If(choice) => {
                match self.scope().condition(&self.env, choice.condition.as_str()) {
                    Ok(true) => {
                        self.history(Some(&step.id), choice.condition.0.clone(), "then");
                        Flow::Next(self.index.enter(&choice.then, step.id.as_str()))
                    }
                    Ok(false) => {
                        self.history(Some(&step.id), choice.condition.0.clone(), "else");
                        Flow::Next(match &choice.otherwise {
                            Some(branch) => self.index.enter(branch, step.id.as_str()),
                            None => self.index.after(step.id.as_str()),
                        })
                    }
                    Err(e) => self.failed(step, e),
                }
            }
            StepKind::Split(split) => {
                let Some(arm) = choose_arm(&self.state.id, step.id.as_str(), &split.split) else {
                    return self.failed(step, "the split has no arms".into());
                };
                let name = arm
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{}%", arm.percent));
                self.state
                    .variables
                    .insert(format!("split.{}", step.id), Value::String(name.clone()));
                self.history(Some(&step.id), "split".into(), &format!("arm {name}"));
                Flow::Next(self.index.enter(&arm.then, step.id.as_str()))
            }
            StepKind::Set(set) => {
                let scope = self.scope();
                let mut rendered = Vec::new();
                for (name, value) in &set.set {
                    match scope.render_value(&self.env, value) {
                        Ok(v) => rendered.push((name.clone(), v)),
                        Err(e) => return self.failed(step, e),
                    }
                }
                let names: Vec<&str> = rendered.iter().map(|(n, _)| n.as_str()).collect();
                let what = format!("set {}", names.join(", "));
                for (name, value) in rendered {
                    self.contact.attributes.insert(name.clone(), value.clone());
                    self.effects.push(Effect::SetAttribute { name, value });
                }
                self.history(Some(&step.id), what, "done");
                Flow::Next(self.index.after(step.id.as_str()))
            }
            StepKind::AddTags(tags) => {
                self.contact.tags.extend(tags.add_tags.iter().cloned());
                self.effects.push(Effect::AddTags {
                    tags: tags.add_tags.clone(),
                });
                let what = format!("add tags {}", tags.add_tags.join(", "));
                self.history(Some(&step.id), what, "done");
                Flow::Next(self.index.after(step.id.as_str()))
            }
            StepKind::RemoveTags(tags) => {
                for tag in &tags.remove_tags {
                    self.contact.tags.remove(tag);
                }
                self.effects.push(Effect::RemoveTags {
                    tags: tags.remove_tags.clone(),
                });
                let what = format!("remove tags {}", tags.remove_tags.join(", "));
                self.history(Some(&step.id), what, "done");
                Flow::Next(self.index.after(step.id.as_str()))
            }
            StepKind::Handoff(handoff) => {
                let spec = &handoff.handoff;
                let scope = self.scope();
                let to = match scope.render(&self.env, spec.to.as_str()) {
                    Ok(to) => to,
                    Err(e) => return self.failed(step, e),
                };
                let note = match spec
                    .note
                    .as_ref()
                    .map(|n| scope.render(&self.env, n.as_str()))
                {
                    Some(Err(e)) => return self.failed(step, e),
                    Some(Ok(note)) => Some(note),
                    None => None,
                };
                let deadline = self.after_s(spec.deadline.as_seconds());
                let timer = TimerId::new(&self.state.id, step.id.as_str(), iteration, "deadline");
                self.effects.push(Effect::Handoff {
                    step: step.id.clone(),
                    to: to.clone(),
                    note,
                    deadline,
                    has_on_missed: spec.on_missed.is_some(),
                });
                self.effects.push(Effect::ScheduleTimer {
                    timer: timer.clone(),
                    due: deadline,
                });
                self.state.waiting = Some(Waiting::Handoff { timer });
                self.state.status = RunStatus::WaitingEvent;
                let what = format!("hand off to {to} within {}", spec.deadline);
                self.history(Some(&step.id), what, "waiting");
                Flow::Suspended
            }
            StepKind::Goto(goto) => Flow::Next(Some(&goto.goto)),
            StepKind::End(end) => {
                self.end(end.end, format!("end step `{}`", step.id));
                Flow::Finished
            }
        }
    }

    fn sleep(
        &mut self,
        step: &Step,
        iteration: u32,
        due: chrono::DateTime<chrono::Utc>,
        what: String,
    ) -> Flow<'a> {
        let timer = TimerId::new(&self.state.id, step.id.as_str(), iteration, "wait");
        self.effects.push(Effect::ScheduleTimer {
            timer: timer.clone(),
            due,
        });
        self.state.waiting = Some(Waiting::Timer { timer });
        self.state.status = RunStatus::WaitingTimer;
        self.history(Some(&step.id), what, &format!("until {due}"));
        Flow::Suspended
    }

    /// The first kept event this `wait_for` accepts (kind and filter, judged now); the other
    /// kept events are forgotten: they arrived before this wait and it did not want them.
    fn take_kept_event(&mut self, spec: &sop_dsl::model::WaitFor) -> Option<crate::Event> {
        let kept = std::mem::take(&mut self.state.kept_events);
        kept.into_iter().find(|event| {
            event.kind == spec.event.0
                && spec.filter.as_ref().is_none_or(|filter| {
                    Scope::new(
                        self.playbook,
                        &self.state,
                        Some(event),
                        &self.contact,
                        self.ctx.now,
                    )
                    .condition(&self.env, filter.as_str())
                    .unwrap_or(false)
                })
        })
    }

    pub(crate) fn failed(&mut self, step: &Step, reason: String) -> Flow<'a> {
        self.fail(format!("step `{}`: {reason}", step.id));
        Flow::Finished
    }
}
