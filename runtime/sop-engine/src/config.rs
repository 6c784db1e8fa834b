//! Engine settings that are not part of any playbook: retry policy, limits, defaults.

use serde::{Deserialize, Serialize};

/// What happens after an at-most-once action's outcome is unknown (a timeout after sending).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnknown {
    /// Record it as unknown (shown to operators) and go on: the message most likely went out,
    /// and stopping would hide the rest of the playbook from a customer who got it.
    #[default]
    Continue,
    /// Record it and fail the run.
    Fail,
}

/// How invocations are retried. Every delay is deterministic (see `retry.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in total for transient errors (the first call included).
    pub transient_attempts: u32,
    /// The first back-off; doubled per attempt, then jittered down by up to half.
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// Rate-limited answers are not failures, but a platform that never lets up must not keep
    /// a run forever: after this many in a row the step fails.
    pub rate_limited_attempts: u32,
    /// Auth-expired answers: retried after `auth_delay_ms` (an operator may renew the
    /// credentials meanwhile), this many times in total.
    pub auth_attempts: u32,
    pub auth_delay_ms: u64,
    pub on_unknown: OnUnknown,
    /// How long an accepted asynchronous action may take before its step fails.
    pub outcome_timeout_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            transient_attempts: 5,
            base_delay_ms: 30_000,
            max_delay_ms: 3_600_000,
            rate_limited_attempts: 100,
            auth_attempts: 3,
            auth_delay_ms: 15 * 60_000,
            on_unknown: OnUnknown::Continue,
            outcome_timeout_ms: 24 * 3_600_000,
        }
    }
}

/// Everything `advance` reads besides the playbook, the run and the input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    pub retry: RetryPolicy,
    /// Steps one `advance` may execute back to back before the run fails. The checker forbids
    /// loops without a wait; this guards against what it cannot see.
    pub step_budget: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            retry: RetryPolicy::default(),
            step_budget: 1_000,
        }
    }
}
