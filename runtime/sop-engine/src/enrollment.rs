//! Whether a trigger enrols a subject: the trigger matches, the audience admits the subject,
//! and the entry rules (once, once per window, one active run) allow another run.

use chrono::{DateTime, TimeDelta, Utc};
use sop_dsl::Playbook;
use sop_dsl::model::{Expression, Repeat, Trigger};

use crate::contact::ContactView;
use crate::event::StartCause;
use crate::ids::RunId;
use crate::run_state::RunStatus;
use crate::template::{Scope, environment};

/// A run of this playbook the subject already has (any version), as the store lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorRun {
    pub id: RunId,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
}

/// The decision for one subject and one trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrollment {
    Enroll,
    Skip { reason: String },
}

/// Decides enrolment. Pure: the caller lists prior runs and supplies `now`.
pub fn decide_enrollment(
    playbook: &Playbook,
    cause: &StartCause,
    contact: &ContactView,
    prior: &[PriorRun],
    now: DateTime<Utc>,
) -> Enrollment {
    match check(playbook, cause, contact, prior, now) {
        Ok(()) => Enrollment::Enroll,
        Err(reason) => Enrollment::Skip { reason },
    }
}

fn check(
    playbook: &Playbook,
    cause: &StartCause,
    contact: &ContactView,
    prior: &[PriorRun],
    now: DateTime<Utc>,
) -> Result<(), String> {
    let env = environment();
    let scope = Scope::for_enrollment(playbook, cause.event(), contact, now);
    let holds = |expression: &Expression| -> Result<bool, String> {
        scope.condition(&env, expression.as_str())
    };

    let triggered = playbook.triggers.iter().try_fold(false, |found, trigger| {
        if found {
            return Ok(true);
        }
        match (trigger, cause) {
            (Trigger::Event(t), StartCause::Event { event }) if t.event.0 == event.kind => {
                t.filter.as_ref().map_or(Ok(true), &holds)
            }
            (Trigger::Cron(_), StartCause::Schedule { .. })
            | (Trigger::Inactivity(_), StartCause::Inactivity { .. })
            | (Trigger::Manual(_), StartCause::Manual { .. }) => Ok(true),
            _ => Ok(false),
        }
    })?;
    if !triggered {
        return Err(format!(
            "no trigger of the playbook matches {}",
            cause.describe()
        ));
    }

    if let Some(audience) = &playbook.audience {
        if !audience.tags_any.is_empty()
            && !audience.tags_any.iter().any(|t| contact.tags.contains(t))
        {
            return Err(format!(
                "carries none of the tags {}",
                audience.tags_any.join(", ")
            ));
        }
        if let Some(missing) = audience
            .tags_all
            .iter()
            .find(|t| !contact.tags.contains(*t))
        {
            return Err(format!("lacks the tag `{missing}`"));
        }
        if let Some(present) = audience
            .tags_none
            .iter()
            .find(|t| contact.tags.contains(*t))
        {
            return Err(format!("carries the excluded tag `{present}`"));
        }
        if let Some(condition) = &audience.condition
            && !holds(condition)?
        {
            return Err(format!("audience condition `{condition}` is false"));
        }
    }

    match playbook.entry.repeat {
        Repeat::Always => {}
        Repeat::Once => {
            if let Some(run) = prior.first() {
                return Err(format!("entered once already (run {})", run.id));
            }
        }
        Repeat::OncePerWindow => {
            let window = playbook.entry.window.map_or(0, |w| w.as_seconds());
            let window = i64::try_from(window)
                .ok()
                .and_then(TimeDelta::try_seconds)
                .unwrap_or(TimeDelta::MAX);
            if let Some(run) = prior.iter().find(|r| {
                r.started_at
                    .checked_add_signed(window)
                    .is_none_or(|end| end > now)
            }) {
                return Err(format!(
                    "entered within the window already (run {} at {})",
                    run.id, run.started_at
                ));
            }
        }
    }
    if playbook.entry.one_active_run
        && let Some(run) = prior.iter().find(|r| !r.status.is_terminal())
    {
        return Err(format!("run {} is still in progress", run.id));
    }
    Ok(())
}

/// The playbook's `flow.key` rendered for a trigger (the same scope as trigger filters and
/// the audience: no run yet). `Ok(None)`: no key template, or it rendered empty; the caller
/// counts per subject then.
pub fn flow_key(
    playbook: &Playbook,
    cause: &StartCause,
    contact: &ContactView,
    now: DateTime<Utc>,
) -> Result<Option<String>, String> {
    let Some(template) = playbook.flow.as_ref().and_then(|f| f.key.as_ref()) else {
        return Ok(None);
    };
    let env = environment();
    let scope = Scope::for_enrollment(playbook, cause.event(), contact, now);
    let key = scope.render(&env, template.as_str())?;
    let key = key.trim();
    Ok((!key.is_empty()).then(|| key.to_string()))
}
