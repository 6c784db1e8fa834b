//! Durable timers and wait-for-event subscriptions: how a waiting run costs disk, not memory.

use serde::{Deserialize, Serialize};
use sop_clock::Timestamp;

use crate::run::{RunId, Subject};
use crate::serde_time::ms;

/// A timer belongs to a run and has a name unique within it (e.g. `wait`, `timeout`,
/// `outcome:<key>`); setting it again moves it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TimerKey {
    pub run: RunId,
    pub name: String,
}

impl TimerKey {
    pub fn new(run: RunId, name: impl Into<String>) -> Self {
        Self {
            run,
            name: name.into(),
        }
    }
}

/// A timer: wake `key.run` at `due`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    pub key: TimerKey,
    #[serde(with = "ms")]
    pub due: Timestamp,
    /// The step that set it, so a stale timer (the run moved on) can be recognised.
    pub step: Option<String>,
}

/// A run waiting for an event of `event` kind about `subject`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Subscription {
    pub subject: Subject,
    /// Qualified event name, e.g. `wecom.message_received`.
    pub event: String,
    pub run: RunId,
    /// The `wait_for` step; the engine evaluates its filter.
    pub step: String,
}
