//! What can happen to a run: the inputs of `advance`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{Event, StartCause};
use crate::ids::{IdempotencyKey, TimerId};

/// One thing that happened to a run. Inputs that do not fit the run's state (a stale timer,
/// a result for another key) change nothing and say why in `Transition::ignored`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "input")]
pub enum Input {
    /// Start a created run.
    Start { cause: StartCause },
    /// A timer the run scheduled came due (a wait, a timeout, a deadline, a retry back-off).
    TimerFired { timer: TimerId },
    /// An event about the run's subject: resumes a matching `wait_for`, or converts on a goal.
    Event { event: Event },
    /// The answer to an `InvokeAction` effect.
    ActionResult {
        key: IdempotencyKey,
        result: ActionResult,
    },
    /// The answer to a `CheckOutcome` effect for an accepted asynchronous action.
    Outcome {
        key: IdempotencyKey,
        status: OutcomeStatus,
    },
    /// The staff member answered the contact after a hand-off.
    HandoffAnswered { by: String },
    /// An operator or the API cancels the run.
    Cancel { reason: String },
}

/// The result of one invocation, as the plugin host and policy gate report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum ActionResult {
    /// Done; the plugin's output JSON.
    Done { output: Value },
    /// Accepted; the real outcome comes later (ask with `handle` after `check_after_ms`).
    Accepted {
        handle: String,
        check_after_ms: u64,
        #[serde(default)]
        output: Value,
    },
    /// A typed plugin error.
    Error { error: PluginError },
    /// The policy gate did not send it (frequency cap `skip`, opt-out): the step is skipped.
    Skipped { reason: String },
    /// The policy gate ends the run (frequency cap `end`).
    EndRun { reason: String },
}

/// The WIT `plugin-error` cases. The engine decides from the case, never from the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "error")]
pub enum PluginError {
    RateLimited {
        retry_after_ms: u64,
        message: String,
    },
    AuthExpired {
        message: String,
    },
    InvalidInput {
        message: String,
    },
    Transient {
        message: String,
    },
    Permanent {
        message: String,
    },
    OutcomeUnknown {
        message: String,
    },
}

impl PluginError {
    pub fn message(&self) -> &str {
        match self {
            PluginError::RateLimited { message, .. }
            | PluginError::AuthExpired { message }
            | PluginError::InvalidInput { message }
            | PluginError::Transient { message }
            | PluginError::Permanent { message }
            | PluginError::OutcomeUnknown { message } => message,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::RateLimited { .. } => "rate-limited",
            PluginError::AuthExpired { .. } => "auth-expired",
            PluginError::InvalidInput { .. } => "invalid-input",
            PluginError::Transient { .. } => "transient",
            PluginError::Permanent { .. } => "permanent",
            PluginError::OutcomeUnknown { .. } => "outcome-unknown",
        }
    }
}

/// The WIT `outcome-status` of an asynchronous action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum OutcomeStatus {
    Done {
        output: Value,
    },
    /// Not finished; ask again after this long.
    Pending {
        check_after_ms: u64,
    },
    Failed {
        reason: String,
    },
}
