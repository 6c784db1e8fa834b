//! Constructors for the typed errors, so plugin code reads as the decision it makes.

use crate::{PluginError, RateLimitedInfo, WebhookError};

impl PluginError {
    /// The platform said "too fast"; back off for `retry_after_ms`.
    pub fn rate_limited(retry_after_ms: u64, message: impl Into<String>) -> Self {
        Self::RateLimited(RateLimitedInfo {
            retry_after_ms,
            message: message.into(),
        })
    }

    /// Credentials refused even after a refresh.
    pub fn auth_expired(message: impl Into<String>) -> Self {
        Self::AuthExpired(message.into())
    }

    /// The input can never succeed.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// Might succeed later; retried with backoff.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient(message.into())
    }

    /// Will not succeed; not retried.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent(message.into())
    }

    /// The request may or may not have taken effect.
    pub fn outcome_unknown(message: impl Into<String>) -> Self {
        Self::OutcomeUnknown(message.into())
    }

    /// The case name as written in the WIT, for logs and test tables.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RateLimited(_) => "rate-limited",
            Self::AuthExpired(_) => "auth-expired",
            Self::InvalidInput(_) => "invalid-input",
            Self::Transient(_) => "transient",
            Self::Permanent(_) => "permanent",
            Self::OutcomeUnknown(_) => "outcome-unknown",
        }
    }
}

impl WebhookError {
    /// Bad or missing signature, stale timestamp, wrong receiver.
    pub fn verification_failed(message: impl Into<String>) -> Self {
        Self::VerificationFailed(message.into())
    }

    /// Signed correctly but unreadable.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::Malformed(message.into())
    }
}
