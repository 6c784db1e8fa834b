//! Call and outcome counters shown by `/_emulator/counters`.

use std::collections::BTreeMap;

use serde::Serialize;

/// Per-endpoint counts.
#[derive(Debug, Default, Clone, Serialize)]
pub struct EndpointCount {
    /// Requests seen.
    pub calls: u64,
    /// Answered with a non-zero platform error code.
    pub errors: u64,
    /// Answered with the frequency-limit code.
    pub rate_limited: u64,
}

/// All counters.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    /// By API name (`externalcontact/get`, `im/send/msg`, ...).
    pub endpoints: BTreeMap<&'static str, EndpointCount>,
    /// Injected faults by request path.
    pub faults: BTreeMap<String, u64>,
    /// Callbacks and webhooks queued for delivery.
    pub events_generated: u64,
    /// Callback attempts (including retries).
    pub callback_attempts: u64,
    /// Callbacks acknowledged by the receiver.
    pub callbacks_acked: u64,
    /// Callbacks given up after all retries.
    pub callbacks_failed: u64,
    /// App messages dropped by the per-member minute limit.
    pub app_messages_dropped: u64,
}

impl Counters {
    /// Count one call to `api`.
    pub fn call(&mut self, api: &'static str) {
        self.endpoints.entry(api).or_default().calls += 1;
    }

    /// Count an error answer from `api`; `rate_limited` for frequency limits.
    pub fn error(&mut self, api: &'static str, rate_limited: bool) {
        let e = self.endpoints.entry(api).or_default();
        e.errors += 1;
        if rate_limited {
            e.rate_limited += 1;
        }
    }

    /// Count an injected fault on a request to `path`.
    pub fn fault(&mut self, path: &str) {
        *self.faults.entry(path.to_owned()).or_default() += 1;
    }
}
