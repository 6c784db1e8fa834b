//! The policy gate every outgoing action passes, in this order: consent/opt-out → quiet hours
//! → frequency cap → rate limit. See `docs/policy.md`.
//!
//! [`Gate::admit`] decides whether a send may go now (consent, quiet hours in the contact's
//! zone, frequency caps counted from the store's touch log) and returns the touch ops the
//! runtime commits with the outbox intent. [`Gate::acquire`] then waits, on the injected
//! clock, for a slot under the account's platform rate limits. Both record every decision
//! with `metrics` and `tracing`.
//!
//! ```
//! use std::sync::Arc;
//! use sop_clock::VirtualClock;
//! use sop_policy::{ConsentChange, Gate, PolicyConfig};
//!
//! let clock = Arc::new(VirtualClock::new("2026-03-02T02:00:00Z".parse().unwrap()));
//! let gate = Gate::new(PolicyConfig::default(), &sop_dsl::Catalog::default(), clock).unwrap();
//! assert_eq!(gate.consent_keyword("退订"), Some(ConsentChange::OptOut { keyword: "退订".into() }));
//! ```

mod caps;
mod config;
mod consent;
mod error;
mod gate;
mod limits;
mod local;
mod rate;

pub use config::{
    CapRule, CapWindow, ConsentConfig, PolicyConfig, RateConfig, RateOverride, TenantPolicy,
    TouchOverride,
};
pub use consent::{ConsentChange, Keywords as ConsentKeywords};
pub use error::PolicyError;
pub use gate::{Admission, Gate, GateRequest, GateSnapshot, group_touch_key};
pub use limits::{LimitScope, RateLimit};
pub use rate::{AccountSnapshot, LimitSnapshot, Priority, PrioritySnapshot, Slot};

#[cfg(test)]
mod tests;
