//! The outbox: every outgoing action is recorded under its idempotency key before the
//! plugin is called, and its outcome after.

use serde::{Deserialize, Serialize};
use sop_clock::Timestamp;

use crate::run::RunId;
use crate::serde_time::ms;

/// Deterministic per (run, step, iteration): the same step of the same run visited the same
/// time always yields the same key, so a restart finds the earlier attempt.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IdempotencyKey {
    pub run: RunId,
    pub step: String,
    pub iteration: u32,
}

impl IdempotencyKey {
    pub fn new(run: RunId, step: impl Into<String>, iteration: u32) -> Self {
        Self {
            run,
            step: step.into(),
            iteration,
        }
    }
}

impl std::fmt::Display for IdempotencyKey {
    /// The string handed to plugins as `idempotency-key`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.run, self.step, self.iteration)
    }
}

/// The manifest's delivery class of the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// Messages: an unknown outcome is never retried blindly.
    AtMostOnce,
    /// Tags, remarks: safe to retry.
    Idempotent,
}

/// Where an outbox entry stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxState {
    /// Recorded, plugin call not known to have finished. Left like this by a crash.
    Pending,
    /// Done; the output JSON as text.
    Sent {
        output: String,
    },
    Failed {
        reason: String,
    },
    /// The call may or may not have taken effect; shown to operators.
    Unknown {
        reason: String,
    },
    /// The platform accepted it; the outcome comes later (ask with `handle`).
    Accepted {
        handle: String,
        #[serde(with = "ms")]
        check_after: Timestamp,
    },
    /// Like [`Pending`](Self::Pending), for one member of a merged call (several runs' sends
    /// in one plugin call): after a crash the plugin is asked under the call's idempotency
    /// key, `call`, not the member's. Added in format 3, after the others so that older
    /// records keep their encoding.
    PendingMember {
        call: String,
    },
}

/// Scannable groups of [`OutboxState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OutboxStateKind {
    Pending,
    Sent,
    Failed,
    Unknown,
    Accepted,
}

impl OutboxState {
    /// Recorded, its call not known to have finished (alone or in a merged call).
    pub fn is_pending(&self) -> bool {
        self.kind() == OutboxStateKind::Pending
    }

    pub fn kind(&self) -> OutboxStateKind {
        match self {
            OutboxState::Pending | OutboxState::PendingMember { .. } => OutboxStateKind::Pending,
            OutboxState::Sent { .. } => OutboxStateKind::Sent,
            OutboxState::Failed { .. } => OutboxStateKind::Failed,
            OutboxState::Unknown { .. } => OutboxStateKind::Unknown,
            OutboxState::Accepted { .. } => OutboxStateKind::Accepted,
        }
    }
}

impl OutboxStateKind {
    pub(crate) fn code(self) -> u8 {
        self as u8
    }
}

/// One outbox entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub key: IdempotencyKey,
    /// Qualified action, e.g. `wecom.send_text`.
    pub action: String,
    /// The platform account id.
    pub account: String,
    /// Digest of the rendered input, to notice a changed input on retry.
    pub input_digest: String,
    pub delivery: Delivery,
    pub state: OutboxState,
    pub attempts: u32,
    #[serde(with = "ms")]
    pub created_at: Timestamp,
    #[serde(with = "ms")]
    pub updated_at: Timestamp,
}
