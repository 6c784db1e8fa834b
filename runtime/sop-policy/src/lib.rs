//! The policy gate every outgoing action passes, in this order: consent/opt-out → quiet hours
//! → frequency cap → rate limit. See `docs/policy.md`.
