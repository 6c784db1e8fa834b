//! Flow-control state of a playbook per key: waiting and debounced starts, recent starts and
//! the runs that count toward concurrency. The runtime owns the meaning; the store keeps the
//! record and two indexes (by due time, by run).

use serde::{Deserialize, Serialize};
use sop_clock::Timestamp;

use crate::run::{RunId, Subject};
use crate::serde_time::ms;

/// One flow key of one playbook.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FlowKey {
    pub playbook: String,
    /// The rendered `flow.key` (or the subject's label).
    pub key: String,
}

/// A start held by flow control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldStart {
    pub subject: Subject,
    /// The start cause, encoded by the runtime (opaque here).
    pub cause: Vec<u8>,
    /// When the trigger arrived.
    #[serde(with = "ms")]
    pub at: Timestamp,
}

/// Flow-control state of one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    pub key: FlowKey,
    /// Bumped by the writer on every change; `Check::FlowRevision` guards against lost updates.
    pub revision: u64,
    /// Starts waiting for throttle or concurrency, first in first out.
    pub queue: Vec<HeldStart>,
    /// The debounced start (the last trigger of the burst).
    pub debounced: Option<HeldStart>,
    /// When the debounced burst's first trigger arrived (ms).
    pub burst_since_ms: Option<i64>,
    /// Runs started under this key that may still be live (concurrency); indexed by run.
    pub live: Vec<RunId>,
    /// Starts accepted by the rate limit within its window (ms).
    pub accepted_ms: Vec<i64>,
    /// Runs started within the throttle window (ms).
    pub started_ms: Vec<i64>,
    /// When the runtime should look at this key again (ms); indexed by time.
    pub due_ms: Option<i64>,
}

impl FlowRecord {
    /// An empty record (nothing held, nothing counted).
    pub fn new(key: FlowKey) -> Self {
        FlowRecord {
            key,
            revision: 0,
            queue: Vec::new(),
            debounced: None,
            burst_since_ms: None,
            live: Vec::new(),
            accepted_ms: Vec::new(),
            started_ms: Vec::new(),
            due_ms: None,
        }
    }
}
