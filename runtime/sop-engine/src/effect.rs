//! What a transition asks the outside world to do: data, not I/O. The caller commits the new
//! run state together with these effects in one atomic write, then performs them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sop_dsl::catalog::{ActionAudience, Delivery};
use sop_dsl::model::{Policy, StepId};

use crate::ids::{IdempotencyKey, SubscriptionId, TimerId};
use crate::run_state::RunStatus;

/// One plugin call, fully rendered. Retries hand out an identical copy (same key, same input).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    pub step: StepId,
    pub iteration: u32,
    pub plugin: String,
    pub action: String,
    pub account: String,
    pub input: Value,
    pub key: IdempotencyKey,
    pub delivery: Delivery,
    pub audience: ActionAudience,
    pub asynchronous: bool,
    pub time_critical: bool,
    /// The policy in force for the step, for the gate (quiet hours, category, on_cap).
    pub policy: Policy,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// Why a subscription exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionPurpose {
    WaitFor,
    Goal,
    /// For the run's whole life, the kinds its `wait_for` steps wait for: what arrives while
    /// the run is busy elsewhere is kept for its next `wait_for`.
    Keep,
}

/// Interest in events of one kind about one subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    /// `plugin.kind`.
    pub event: String,
    /// The contact or group id the event must be about.
    pub subject: String,
    /// The minijinja filter, evaluated by `route_event` (the store only indexes kind + subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    pub purpose: SubscriptionPurpose,
}

/// One line of the run's history, for operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepId>,
    pub at: DateTime<Utc>,
    /// What came in or what the step did, short.
    pub input: String,
    /// What came of it.
    pub outcome: String,
}

/// A side effect of a transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "effect")]
pub enum Effect {
    /// Pass the invocation through the policy gate and the outbox, then to the plugin;
    /// answer with `Input::ActionResult` for its key.
    InvokeAction(Invocation),
    /// Ask the plugin about an accepted action at `at`; answer with `Input::Outcome`.
    CheckOutcome {
        invocation: Invocation,
        handle: String,
        at: DateTime<Utc>,
    },
    ScheduleTimer {
        timer: TimerId,
        due: DateTime<Utc>,
    },
    CancelTimer {
        timer: TimerId,
    },
    Subscribe(Subscription),
    Unsubscribe {
        subscription: SubscriptionId,
    },
    SetAttribute {
        name: String,
        value: Value,
    },
    AddTags {
        tags: Vec<String>,
    },
    RemoveTags {
        tags: Vec<String>,
    },
    /// Notify the staff member; the deadline timer is a separate `ScheduleTimer`.
    Handoff {
        step: StepId,
        to: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        deadline: DateTime<Utc>,
        /// Whether a missed deadline takes the `on_missed` branch (else the run continues).
        has_on_missed: bool,
    },
    History(HistoryEntry),
    FinishRun {
        status: RunStatus,
        reason: String,
    },
}
