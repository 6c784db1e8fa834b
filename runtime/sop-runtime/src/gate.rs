//! The policy gate as the runtime calls it: admission (consent → quiet hours → caps), the
//! rate-limit slot, a platform's "slow down", and consent keywords.
//!
//! The runtime depends on this trait, not on a concrete gate, so that tests can script
//! decisions and a deployment without policies can pass everything ([`PassThrough`]).
//! `sop_policy::Gate` implements it; the decision types are `sop_policy`'s.

use std::sync::OnceLock;
use std::time::Duration;

use sop_policy::{ConsentConfig, ConsentKeywords};
use sop_store::{Store, StoreError};

use crate::plugins::BoxFuture;

pub use sop_policy::{Admission, ConsentChange, GateRequest, Priority, Slot};

/// The policy gate.
pub trait PolicyGate: Send + Sync + std::fmt::Debug {
    /// Decides whether the invocation may go out now. Reads the store, writes nothing.
    fn admit(&self, store: &dyn Store, req: &GateRequest<'_>) -> Result<Admission, StoreError>;
    /// Waits for the account's rate-limit slot (and the recipient's, for recipient-scoped
    /// limits); returns how long it waited, or, for a send the gate would rather not hold in
    /// memory behind a long queue, when to come back ([`Slot::Park`]).
    fn acquire<'a>(
        &'a self,
        plugin: &'a str,
        account: &'a str,
        action: &'a str,
        recipient: Option<&'a str>,
        priority: Priority,
    ) -> BoxFuture<'a, Slot>;
    /// Waits for the account's slot for an outcome check of `action` (the platform queries
    /// an asynchronous send's result needs), behind time-critical sends and replies, ahead
    /// of bulk sends; returns how long it waited.
    fn acquire_check<'a>(
        &'a self,
        plugin: &'a str,
        account: &'a str,
        action: &'a str,
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
        _recipient: Option<&'a str>,
        _priority: Priority,
    ) -> BoxFuture<'a, Slot> {
        Box::pin(async { Slot::Granted(Duration::ZERO) })
    }

    fn acquire_check<'a>(
        &'a self,
        _plugin: &'a str,
        _account: &'a str,
        _action: &'a str,
    ) -> BoxFuture<'a, Duration> {
        Box::pin(async { Duration::ZERO })
    }

    fn slow_down(&self, _plugin: &str, _account: &str, _retry_after: Duration) {}

    /// The default keywords of `sop_policy` (the same matching as the real gate).
    fn consent_keyword(&self, text: &str) -> Option<ConsentChange> {
        static DEFAULT: OnceLock<Option<ConsentKeywords>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| ConsentKeywords::new(&ConsentConfig::default()).ok())
            .as_ref()?
            .match_text(text)
    }
}

impl PolicyGate for sop_policy::Gate {
    fn admit(&self, store: &dyn Store, req: &GateRequest<'_>) -> Result<Admission, StoreError> {
        sop_policy::Gate::admit(self, store, req)
    }

    fn acquire<'a>(
        &'a self,
        plugin: &'a str,
        account: &'a str,
        action: &'a str,
        recipient: Option<&'a str>,
        priority: Priority,
    ) -> BoxFuture<'a, Slot> {
        Box::pin(self.acquire_or_park(plugin, account, action, recipient, priority))
    }

    fn acquire_check<'a>(
        &'a self,
        plugin: &'a str,
        account: &'a str,
        action: &'a str,
    ) -> BoxFuture<'a, Duration> {
        Box::pin(self.acquire_outcome_check(plugin, account, action))
    }

    fn slow_down(&self, plugin: &str, account: &str, retry_after: Duration) {
        sop_policy::Gate::slow_down(self, plugin, account, retry_after)
    }

    fn consent_keyword(&self, text: &str) -> Option<ConsentChange> {
        sop_policy::Gate::consent_keyword(self, text)
    }
}
