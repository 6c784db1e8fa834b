//! Events as the engine sees them (the plugins' normalized events), and what starts a run.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A normalized platform event (the WIT `normalized-event`), with its kind qualified by plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `plugin.kind`, e.g. `wecom.message_received`.
    pub kind: String,
    /// The platform's id for the event, for de-duplication upstream.
    #[serde(default)]
    pub dedupe_id: String,
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default)]
    pub attributes: Value,
}

/// Why a run started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StartCause {
    /// A platform event matched an event trigger; templates see it as `event`.
    Event { event: Event },
    /// A cron trigger fired at this (scheduled) instant.
    Schedule { fired_at: DateTime<Utc> },
    /// An inactivity scan found the subject silent since `last_interaction`.
    Inactivity {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_interaction: Option<DateTime<Utc>>,
    },
    /// An operator or the API started it.
    Manual { by: String },
}

impl StartCause {
    pub fn event(&self) -> Option<&Event> {
        match self {
            StartCause::Event { event } => Some(event),
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            StartCause::Event { event } => format!("event {}", event.kind),
            StartCause::Schedule { fired_at } => format!("schedule fired at {fired_at}"),
            StartCause::Inactivity { .. } => "inactivity".into(),
            StartCause::Manual { by } => format!("manual start by {by}"),
        }
    }
}
