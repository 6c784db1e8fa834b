//! Runs (one state machine per playbook version and subject) and their history.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sop_clock::Timestamp;

use crate::contact::ContactKey;
use crate::serde_time::{json_map, ms};

/// A run id, allocated by [`Store::next_run_id`](crate::Store::next_run_id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RunId(pub u64);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// Who a run is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Subject {
    Contact(ContactKey),
    /// A customer group, by tenant and sop group id.
    Group {
        tenant: String,
        id: String,
    },
}

/// Where a run stands. `Active` and `Waiting` are live; the others are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RunState {
    /// Ready to execute its current step.
    Active,
    /// Parked on a timer, a subscription or an action outcome.
    Waiting,
    Completed,
    Failed,
    /// Ended by reaching a goal.
    Converted,
    Cancelled,
}

impl RunState {
    pub const ALL: [RunState; 6] = [
        RunState::Active,
        RunState::Waiting,
        RunState::Completed,
        RunState::Failed,
        RunState::Converted,
        RunState::Cancelled,
    ];

    /// Still going (counts for "one active run per contact").
    pub fn is_live(self) -> bool {
        matches!(self, RunState::Active | RunState::Waiting)
    }

    pub(crate) fn code(self) -> u8 {
        self as u8
    }
}

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: RunId,
    pub playbook: String,
    pub version: u32,
    pub subject: Subject,
    pub state: RunState,
    /// The step the run is at; none before the first step and after the end.
    pub step: Option<String>,
    /// How many times the current step has been entered (loops via `goto`); part of the
    /// outbox idempotency key.
    pub iteration: u32,
    /// Per-step visit counters, retry counters and the like, named by the engine.
    pub counters: BTreeMap<String, u64>,
    #[serde(with = "json_map")]
    pub variables: Map<String, Value>,
    /// Why the run failed or was cancelled.
    pub reason: Option<String>,
    /// Bumped by the engine on every change; `Check::RunRevision` guards against lost updates.
    pub revision: u64,
    #[serde(with = "ms")]
    pub created_at: Timestamp,
    #[serde(with = "ms")]
    pub updated_at: Timestamp,
}

/// The part of a run the subject index carries, enough for entry rules and goals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: RunId,
    pub playbook: String,
    pub version: u32,
    pub state: RunState,
}

impl From<&Run> for RunSummary {
    fn from(run: &Run) -> Self {
        Self {
            id: run.id,
            playbook: run.playbook.clone(),
            version: run.version,
            state: run.state,
        }
    }
}

/// One line of a run's history, for operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    #[serde(with = "ms")]
    pub at: Timestamp,
    pub step: Option<String>,
    /// What went in (rendered input, summarised).
    pub input: String,
    /// What came out (`sent`, `deferred`, `failed: ...`).
    pub outcome: String,
    /// The policy gate's decision, when the step passed the gate.
    pub gate: Option<String>,
}
