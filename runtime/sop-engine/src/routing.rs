//! Which runs an event concerns: a goal event ends a run as converted wherever it is; an event
//! a `wait_for` waits for resumes it. The store finds candidates by (event kind, subject) from
//! the subscriptions; this decides with the filters.

use chrono::{DateTime, Utc};
use sop_dsl::Playbook;
use sop_dsl::model::{Expression, StepId, StepKind};

use crate::contact::ContactView;
use crate::event::Event;
use crate::run_state::{RunState, RunStatus, SubjectKind, Waiting};
use crate::template::{Scope, environment};

/// What an event does to a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A goal matched: the run ends as converted.
    Convert { goal: String },
    /// The run's `wait_for` at `step` matched: the run continues after it.
    Resume { step: StepId },
}

/// What `Input::Event` will do to this run, without doing it. Goals win over waits. A filter
/// that cannot be evaluated counts as "no match": the event is not the run's fault.
pub fn route_event(
    playbook: &Playbook,
    run: &RunState,
    event: &Event,
    contact: &ContactView,
    now: DateTime<Utc>,
) -> Option<Route> {
    classify(playbook, run, event, contact, now)
}

/// The runs among `runs` that the event resumes or converts, with how.
pub fn route_event_to_runs<'r>(
    playbook: &Playbook,
    runs: impl IntoIterator<Item = (&'r RunState, &'r ContactView)>,
    event: &Event,
    now: DateTime<Utc>,
) -> Vec<(&'r RunState, Route)> {
    runs.into_iter()
        .filter_map(|(run, contact)| {
            classify(playbook, run, event, contact, now).map(|route| (run, route))
        })
        .collect()
}

pub(crate) fn classify(
    playbook: &Playbook,
    run: &RunState,
    event: &Event,
    contact: &ContactView,
    now: DateTime<Utc>,
) -> Option<Route> {
    if run.status.is_terminal() || run.status == RunStatus::Created {
        return None;
    }
    let about = match run.subject.kind {
        SubjectKind::Contact => event.contact.as_deref(),
        SubjectKind::Group => event.group.as_deref(),
    };
    if about != Some(run.subject.id.as_str()) {
        return None;
    }
    let passes = |filter: Option<&Expression>| match filter {
        None => true,
        Some(expression) => Scope::new(playbook, run, Some(event), contact, now)
            .condition(&environment(), expression.as_str())
            .unwrap_or(false),
    };
    for goal in &playbook.goals {
        if goal.event.0 == event.kind && passes(goal.filter.as_ref()) {
            let name = goal.name.clone().unwrap_or_else(|| goal.event.0.clone());
            return Some(Route::Convert { goal: name });
        }
    }
    let Some(Waiting::Event { .. }) = &run.waiting else {
        return None;
    };
    let step = run.step.as_ref()?;
    let index = playbook.index();
    let StepKind::WaitFor(wait) = &index.get(step.as_str())?.kind else {
        return None;
    };
    (wait.wait_for.event.0 == event.kind && passes(wait.wait_for.filter.as_ref()))
        .then(|| Route::Resume { step: step.clone() })
}
