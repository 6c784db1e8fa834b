//! Why a trigger could not produce its candidates.

use sop_store::StoreError;

/// Errors of the trigger producers. Store failures are passed through unchanged.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audience `where` condition does not compile (the checker normally refuses this).
    #[error("playbook `{playbook}`: audience condition `{condition}` does not compile: {message}")]
    BadCondition {
        playbook: String,
        condition: String,
        message: String,
    },
    /// A cron or check expression does not parse (the checker normally refuses this).
    #[error("playbook `{playbook}`: cron expression `{expression}` is invalid: {message}")]
    BadSchedule {
        playbook: String,
        expression: String,
        message: String,
    },
    /// A manual start for a playbook that has no `manual: true` trigger.
    #[error("playbook `{playbook}` has no manual trigger")]
    NoManualTrigger { playbook: String },
    /// A manual start listed more ids than one request may.
    #[error("{given} ids given, at most {limit} per manual start")]
    TooManyIds { given: usize, limit: usize },
    /// A manual start listed an empty id.
    #[error("empty id in a manual start")]
    EmptyId,
}
