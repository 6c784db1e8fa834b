//! What starts a run.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Duration, Expression, QualifiedName, Zone};

/// A trigger. Written as a mapping whose key names the kind: `event`, `cron`, `inactive_for`
/// or `manual`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Trigger {
    Event(EventTrigger),
    Cron(CronTrigger),
    Inactivity(InactivityTrigger),
    Manual(ManualTrigger),
}

/// Starts a run for the contact (or group) of a platform event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTrigger {
    /// Event type, `plugin.kind`, e.g. `wecom.contact_added`.
    pub event: QualifiedName,
    /// Only events for which this is true start a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Expression>,
}

/// Starts a run for every audience member when the schedule fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CronTrigger {
    /// Crontab expression (5 fields, or 6 with seconds first); see docs/cron.md.
    pub cron: String,
    /// Overrides the playbook time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<Zone>,
    /// What to do about fires missed while sop was down. Absent: the runtime's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<MissedFirePolicy>,
}

/// What a cron trigger does about fires that fell while sop was not running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissedFirePolicy {
    /// Drop them: the next fire is the next one due after now.
    Skip,
    /// Fire once for all of them (at most one catch-up run per audience member), then resume
    /// the schedule.
    CatchUpOnce,
}

impl MissedFirePolicy {
    /// The value as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            MissedFirePolicy::Skip => "skip",
            MissedFirePolicy::CatchUpOnce => "catch_up_once",
        }
    }
}

/// Starts a run for audience members with no interaction for a while.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InactivityTrigger {
    /// How long without an interaction (a message either way, a join, an order).
    pub inactive_for: Duration,
    /// When to look for inactive contacts (crontab). Default: daily at 10:00.
    #[serde(default = "default_check")]
    pub check: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<Zone>,
}

pub(crate) fn default_check() -> String {
    "0 10 * * *".into()
}

/// Started by an operator (`sop run start`) or the HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualTrigger {
    /// Always `true`.
    pub manual: bool,
}
