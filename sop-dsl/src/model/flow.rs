//! Per-key flow control: how fast, how many at once and how often runs of a playbook start.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Duration, Template};

/// Flow control of a playbook's starts, per key. Every control is optional; they apply in the
/// order debounce → rate limit → throttle and concurrency, before the entry rules (which are
/// decided when a start is let through). See docs/playbooks.md, "Flow control".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// What starts are counted by: a template over the trigger (`contact`, `group`, `event`).
    /// Absent (or rendering empty): the run's subject (the contact, or the group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Template>,
    /// At most this many live runs per key; further starts wait their turn (first in, first
    /// out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub concurrency: Option<u32>,
    /// At most `limit` starts per key per `per`; further starts wait and start later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Limit>,
    /// At most `limit` starts per key per `per`; further starts are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<Limit>,
    /// Start only after `period` without a new trigger for the key; a newer trigger replaces
    /// the waiting one (the last event wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debounce: Option<Debounce>,
}

/// `limit` starts per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    #[schemars(range(min = 1))]
    pub limit: u32,
    /// The period, counted back from each start (a rolling window).
    pub per: Duration,
}

/// Wait for quiet, then start with the last trigger.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Debounce {
    /// How long the key must stay quiet before the start goes through.
    pub period: Duration,
    /// The start goes through at the latest this long after the first trigger of the burst,
    /// even if triggers keep coming. Absent: no maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay: Option<Duration>,
}

impl Flow {
    /// Whether a control holds or drops starts at all.
    pub fn is_active(&self) -> bool {
        self.concurrency.is_some()
            || self.throttle.is_some()
            || self.rate_limit.is_some()
            || self.debounce.is_some()
    }
}
