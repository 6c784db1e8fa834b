//! The policy gate as the runtime calls it: admission (consent → quiet hours → caps), the
//! rate-limit slot, a platform's "slow down", and consent keywords.
//!
//! The runtime depends on this trait, not on a concrete gate, so that tests can script
//! decisions and a deployment without policies can pass everything ([`PassThrough`]).
//! `sop_policy::Gate` implements it (see `policy_gate.rs` once that crate lands).

use std::time::Duration;

use sop_clock::Timestamp;
use sop_store::{Contact, Group, Op, Store, StoreError};

use crate::plugins::BoxFuture;

/// What the gate is asked about one invocation.
#[derive(Debug, Clone, Copy)]
pub struct GateRequest<'a> {
    pub invocation: &'a sop_engine::Invocation,
    pub tenant: &'a str,
    pub contact: Option<&'a Contact>,
    pub group: Option<&'a Group>,
    pub now: Timestamp,
}

/// The gate's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Send. `touches` (`Op::RecordTouch` ...) are committed with the outbox intent.
    Pass { touches: Vec<Op>, decision: String },
    /// Not now (quiet hours, a cap with `on_cap: defer`): the runtime parks the invocation on
    /// a durable timer and asks again at `until`.
    Defer { until: Timestamp, reason: String },
    /// Do not send; the step is skipped (opt-out, a cap with `on_cap: skip`).
    Skip { reason: String },
    /// Do not send; the run ends (a cap with `on_cap: end`).
    EndRun { reason: String },
}

/// Rate-limit priority: time-critical before normal before bulk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    TimeCritical,
    Normal,
    Bulk,
}

/// A consent keyword found in a contact's own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentChange {
    OptOut { keyword: String },
    OptIn { keyword: String },
}

/// The policy gate.
pub trait PolicyGate: Send + Sync + std::fmt::Debug {
    /// Decides whether the invocation may go out now. Reads the store, writes nothing.
    fn admit(&self, store: &dyn Store, req: &GateRequest<'_>) -> Result<Admission, StoreError>;
    /// Waits for the account's rate-limit slot; returns how long it waited.
    fn acquire<'a>(
        &'a self,
        plugin: &'a str,
        account: &'a str,
        action: &'a str,
        priority: Priority,
    ) -> BoxFuture<'a, Duration>;
    /// A platform answered "rate limited, retry after": back the account off.
    fn slow_down(&self, plugin: &str, account: &str, retry_after: Duration);
    /// An opt-out or opt-in keyword in a contact's own message text.
    fn consent_keyword(&self, text: &str) -> Option<ConsentChange>;
}

/// A gate that admits everything except contacts who opted out or deleted the staff member,
/// records no touches and never waits. For deployments without policies and for tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThrough;

impl PolicyGate for PassThrough {
    fn admit(&self, _store: &dyn Store, req: &GateRequest<'_>) -> Result<Admission, StoreError> {
        // Only messages to the contact need their consent; staff notices and tags do not.
        let to_contact = req.invocation.audience == sop_dsl::catalog::ActionAudience::Contact;
        if let Some(contact) = req.contact.filter(|_| to_contact) {
            if contact.consent.opted_out.is_some() {
                return Ok(Admission::Skip {
                    reason: "contact opted out".into(),
                });
            }
            if contact.friend == sop_store::FriendStatus::DeletedByContact {
                return Ok(Admission::Skip {
                    reason: "contact deleted the staff member".into(),
                });
            }
        }
        Ok(Admission::Pass {
            touches: Vec::new(),
            decision: "pass (no policy)".into(),
        })
    }

    fn acquire<'a>(
        &'a self,
        _plugin: &'a str,
        _account: &'a str,
        _action: &'a str,
        _priority: Priority,
    ) -> BoxFuture<'a, Duration> {
        Box::pin(async { Duration::ZERO })
    }

    fn slow_down(&self, _plugin: &str, _account: &str, _retry_after: Duration) {}

    fn consent_keyword(&self, text: &str) -> Option<ConsentChange> {
        let word = text.trim();
        match word {
            "TD" | "td" | "退订" => Some(ConsentChange::OptOut {
                keyword: word.into(),
            }),
            _ => None,
        }
    }
}
