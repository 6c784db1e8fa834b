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
///
/// `endpoints` counts API calls. The `mass_*` counters count WeCom mass sends
/// (`externalcontact/add_msg_template`) by what they carry: one call creates one task for up
/// to 10,000 customers (or 2,000 groups), so "messages to customers" are `mass_recipients`
/// (accepted) and `mass_sent` (delivered), never the calls.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    /// By API name (`externalcontact/get`, `im/send/msg`, ...): requests, including the ones
    /// answered with an error or 45009 (one mass-send task is one call, whatever its size).
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
    /// Mass-send tasks created: `add_msg_template` calls answered with errcode 0 (customers
    /// and groups alike).
    pub mass_tasks: u64,
    /// Recipients of the created tasks (customers, or groups for `chat_type: group`): the
    /// messages the tasks will send once confirmed. Ids answered in `fail_list` are not
    /// recipients.
    pub mass_recipients: u64,
    /// Ids answered in `fail_list` by the created tasks (unknown, not a friend, not the
    /// sender's, dismissed group).
    pub mass_fail_list: u64,
    /// Mass messages delivered when their sender confirmed: one per recipient with status
    /// "sent", each also a delivery (`mass_send` / `group_mass_send`) in the delivery log.
    pub mass_sent: u64,
    /// Recipients that got nothing when their sender confirmed: no longer a friend (or
    /// group gone), or over their receive limit (statuses 2 and 3).
    pub mass_not_sent: u64,
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
