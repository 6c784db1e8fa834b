//! Which runs an event concerns: a goal event ends a run as converted wherever it is; an event
//! a `wait_for` waits for resumes it; an event a later `wait_for` may wait for, arriving while
//! the run is busy elsewhere, is kept for it. The store finds candidates by (event kind,
//! subject) from the subscriptions; this decides with the filters.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sop_dsl::Playbook;
use sop_dsl::model::{Expression, Step, StepId, StepKind};

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
    /// The run is not waiting in a `wait_for` (it is busy with an action, its asynchronous
    /// outcome, a timer or a hand-off) and one of its `wait_for` steps waits for this kind:
    /// the event is kept for the run's next `wait_for` (docs/playbooks.md, `wait_for`).
    Keep,
}

/// How many events a run keeps for its next `wait_for`; the oldest go first.
pub const KEPT_EVENTS: usize = 16;

/// The event kinds the playbook's `wait_for` steps wait for, nested steps included: a run
/// is subscribed to them for its whole life so that none is lost while it is busy.
pub fn waited_event_kinds(playbook: &Playbook) -> BTreeSet<String> {
    fn walk(steps: &[Step], kinds: &mut BTreeSet<String>) {
        for step in steps {
            if let StepKind::WaitFor(wait) = &step.kind {
                kinds.insert(wait.wait_for.event.0.clone());
            }
            for nested in step.nested() {
                walk(nested, kinds);
            }
        }
    }
    let mut kinds = BTreeSet::new();
    walk(&playbook.steps, &mut kinds);
    kinds
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
        // Busy elsewhere: keep what a later `wait_for` may want.
        return waited_event_kinds(playbook)
            .contains(&event.kind)
            .then_some(Route::Keep);
    };
    let step = run.step.as_ref()?;
    let index = playbook.index();
    let StepKind::WaitFor(wait) = &index.get(step.as_str())?.kind else {
        return None;
    };
    (wait.wait_for.event.0 == event.kind && passes(wait.wait_for.filter.as_ref()))
        .then(|| Route::Resume { step: step.clone() })
}
