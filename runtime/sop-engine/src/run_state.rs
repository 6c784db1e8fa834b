//! The durable state of one run: everything `advance` needs besides the playbook, the input
//! and the context. Stored as it is; `format` lets a newer binary read an older record.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sop_dsl::model::StepId;

use crate::effect::Invocation;
use crate::event::{Event, StartCause};
use crate::ids::{IdempotencyKey, RunId, SubscriptionId, TimerId};

/// The current record format. Bump it with a migration when a field changes meaning.
pub const STATE_FORMAT: u32 = 1;

/// What a run is for: a contact or a customer group, on one platform account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub kind: SubjectKind,
    pub id: String,
    /// The platform account the run acts through.
    pub account: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Contact,
    Group,
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Enrolled, waiting for its `Start` input.
    Created,
    /// An action was handed out; its result is awaited.
    Running,
    WaitingTimer,
    WaitingEvent,
    WaitingOutcome,
    Completed,
    Converted,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Converted | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

/// What a suspended run waits for. Exactly one thing at a time; a run without `waiting` is
/// either created or finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "for")]
pub enum Waiting {
    /// The result of an invocation handed to the caller.
    Result { invocation: Invocation },
    /// A `wait` or `wait_until` timer.
    Timer { timer: TimerId },
    /// A back-off before the same invocation (same key, same input) is handed out again.
    Retry {
        invocation: Invocation,
        timer: TimerId,
    },
    /// A `wait_for` event, or its timeout.
    Event {
        subscription: SubscriptionId,
        timer: TimerId,
    },
    /// A staff member's answer after a hand-off, or the deadline.
    Handoff { timer: TimerId },
    /// The outcome of an accepted asynchronous action, or the timeout.
    Outcome {
        invocation: Invocation,
        handle: String,
        timer: TimerId,
    },
}

impl Waiting {
    /// The timer armed while waiting, if any.
    pub fn timer(&self) -> Option<&TimerId> {
        match self {
            Waiting::Result { .. } => None,
            Waiting::Timer { timer }
            | Waiting::Retry { timer, .. }
            | Waiting::Event { timer, .. }
            | Waiting::Handoff { timer }
            | Waiting::Outcome { timer, .. } => Some(timer),
        }
    }

    /// The key of the invocation this wait belongs to, if any.
    pub fn key(&self) -> Option<&IdempotencyKey> {
        match self {
            Waiting::Result { invocation }
            | Waiting::Retry { invocation, .. }
            | Waiting::Outcome { invocation, .. } => Some(&invocation.key),
            _ => None,
        }
    }
}

/// Failed attempts of the current invocation, by kind; reset when a new action starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempts {
    pub transient: u32,
    pub rate_limited: u32,
    pub auth_expired: u32,
}

impl Attempts {
    pub fn total(&self) -> u32 {
        self.transient + self.rate_limited + self.auth_expired
    }
}

/// An action step's failure that its `on_error` branch handles; templates see it as `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepFailure {
    /// The action step that failed.
    pub step: StepId,
    /// What went wrong: a plugin error kind (`permanent`, `invalid-input`, `transient`,
    /// `rate-limited`, `auth-expired`, `outcome-unknown`), or `outcome-failed` /
    /// `outcome-timeout` for an accepted asynchronous action.
    pub kind: String,
    pub message: String,
    /// Invocations of the step that failed (1 for errors that are not retried).
    pub attempts: u32,
}

/// How a finished run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finish {
    pub status: RunStatus,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// One run of one playbook version for one subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub format: u32,
    pub id: RunId,
    pub playbook: String,
    pub version: u32,
    pub subject: Subject,
    pub status: RunStatus,
    /// The step the run is at (the one waiting, or the one that finished it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    /// How many times each step was entered: loops get fresh keys and timer ids.
    #[serde(default)]
    pub iterations: BTreeMap<String, u32>,
    #[serde(default)]
    pub attempts: Attempts,
    /// Outputs of finished actions, seen by templates as `steps.<id>.output`.
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
    /// Run variables, seen by templates as `run.variables` (e.g. the chosen split arm).
    #[serde(default)]
    pub variables: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<StartCause>,
    /// Events that arrived while the run was not waiting in a `wait_for`, of kinds one of its
    /// `wait_for` steps waits for, oldest first (at most `KEPT_EVENTS`). The next `wait_for`
    /// takes the first that matches it, and forgets them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept_events: Vec<Event>,
    /// The triggering event, or the last one a `wait_for` received: templates' `event`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<Finish>,
    /// The last failure an `on_error` branch took over; templates' `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepFailure>,
}

impl RunState {
    /// A freshly enrolled run; feed it `Input::Start`.
    pub fn new(
        id: RunId,
        playbook: &sop_dsl::Playbook,
        subject: Subject,
        now: DateTime<Utc>,
    ) -> Self {
        RunState {
            format: STATE_FORMAT,
            id,
            playbook: playbook.id.clone(),
            version: playbook.version,
            subject,
            status: RunStatus::Created,
            step: None,
            waiting: None,
            iterations: BTreeMap::new(),
            attempts: Attempts::default(),
            outputs: BTreeMap::new(),
            variables: BTreeMap::new(),
            cause: None,
            kept_events: Vec::new(),
            event: None,
            created_at: now,
            started_at: None,
            updated_at: now,
            finish: None,
            error: None,
        }
    }

    /// How many times the step has been entered so far.
    pub fn iteration(&self, step: &str) -> u32 {
        self.iterations.get(step).copied().unwrap_or(0)
    }
}
