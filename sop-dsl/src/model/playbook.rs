//! The playbook and its enrolment settings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Duration, Expression, Flow, Policy, QualifiedName, Step, Trigger, Zone};

/// One playbook (SOP): when runs start, who they are for, and the steps each run takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// Stable id, unique per tenant: lowercase letters, digits, `_` and `-`.
    pub id: String,
    /// Increase on every change; runs remember the version they started on.
    pub version: u32,
    /// Human-readable title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The brand or customer this playbook belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Who to ask about it (a person or team).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Zone for cron triggers, `wait_until` and quiet hours. Default `Asia/Shanghai`.
    #[serde(default)]
    pub timezone: Zone,
    /// What starts a run. At least one.
    pub triggers: Vec<Trigger>,
    /// Who may enter. Absent: every contact the trigger names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Audience>,
    /// How often one contact (or group) may enter.
    #[serde(default)]
    pub entry: Entry,
    /// Per-key concurrency, throttle, rate limit and debounce of starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
    /// Events that end a run as converted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub goals: Vec<Goal>,
    /// Defaults for quiet hours, message category and frequency caps.
    #[serde(default)]
    pub policy: Policy,
    /// The steps, run from the first. A run ends after the last top-level step.
    pub steps: Vec<Step>,
}

/// Which contacts or groups a run may start for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    /// Whether runs are per contact or per customer group.
    #[serde(default)]
    pub target: AudienceTarget,
    /// Must carry at least one of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags_any: Vec<String>,
    /// Must carry all of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags_all: Vec<String>,
    /// Must carry none of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags_none: Vec<String>,
    /// Any further condition over `contact` (or `group`) attributes.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub condition: Option<Expression>,
}

/// What a run is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AudienceTarget {
    /// One run per external contact (customer or fan).
    #[default]
    Contacts,
    /// One run per customer group.
    Groups,
}

/// Entry rules: how often the same contact may start this playbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    #[serde(default)]
    pub repeat: Repeat,
    /// The window for `repeat: once_per_window`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Duration>,
    /// Ignore a trigger while the contact already has a run of this playbook in progress.
    #[serde(default = "yes")]
    pub one_active_run: bool,
}

fn yes() -> bool {
    true
}

impl Default for Entry {
    fn default() -> Self {
        Entry {
            repeat: Repeat::default(),
            window: None,
            one_active_run: true,
        }
    }
}

/// How often one contact may enter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Repeat {
    /// Every time a trigger fires (subject to `one_active_run`).
    #[default]
    Always,
    /// Once per contact, ever.
    Once,
    /// At most once per `window`, counted from the previous entry.
    OncePerWindow,
}

/// An event that ends the run as converted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Goal {
    /// Name shown in reports, e.g. `purchased`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Event type, `plugin.kind`.
    pub event: QualifiedName,
    /// Only events for which this is true count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Expression>,
}
