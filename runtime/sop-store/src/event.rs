//! The event log: every normalized event accepted from a plugin or the API.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sop_clock::Timestamp;

use crate::run::Subject;
use crate::serde_time::{json_value, ms};

/// An event as received. Its sequence number is assigned at commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    #[serde(with = "ms")]
    pub received_at: Timestamp,
    /// Where it came from: `plugin:account`, `api`, `cron`.
    pub source: String,
    /// Qualified kind, e.g. `wecom.contact_added`.
    pub kind: String,
    pub subject: Option<Subject>,
    /// The platform's id for de-duplication (message id), if any.
    pub dedupe_id: Option<String>,
    #[serde(with = "json_value")]
    pub payload: Value,
}
