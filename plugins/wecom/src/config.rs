//! The per-account configuration: one WeCom app of one corp.

use serde::Deserialize;
use sop_plugin_sdk::schemars::{self, JsonSchema};

/// What the operator supplies for a WeCom account. Never logged.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The corp id (`corpid`), also the callbacks' receive id.
    pub corp_id: String,
    /// The app's secret (`corpsecret`); tokens are per app.
    pub secret: String,
    /// The app's `agentid`, for app messages to staff.
    pub agent_id: i64,
    /// The callback `Token` set in the admin console; needed for webhooks only.
    #[serde(default)]
    pub token: Option<String>,
    /// The callback `EncodingAESKey` (43 characters); needed for webhooks only.
    #[serde(default)]
    pub encoding_aes_key: Option<String>,
    /// How long after creating a mass-send task its outcome is first checked, and how long
    /// between later checks while a sender has not confirmed, in milliseconds (default: 5
    /// minutes, then 30). For corps whose staff confirm at once (and for tests against the
    /// emulator): the run waits for the outcome, so a long interval delays the rest of it.
    #[serde(default)]
    #[schemars(range(min = 1000))]
    pub mass_send_check_ms: Option<u64>,
    /// How far a callback's signed `timestamp` may be from the runtime's clock, in seconds,
    /// before it is refused as a replay (default 3600; 0 turns the check off). WeCom signs
    /// each callback with the time it sent it and retries within seconds; within the window
    /// a replay is caught by the runtime's dedupe ids, which live longer (7 days).
    #[serde(default)]
    pub callback_max_age_seconds: Option<u64>,
    /// The customer tag group (标签组) where `mark_tag` looks up tags given by name and
    /// creates the missing ones (default `sop`; at most 30 characters).
    #[serde(default)]
    #[schemars(length(min = 1, max = 30))]
    pub tag_group: Option<String>,
}

impl Config {
    /// The tag group for tags given by name.
    pub fn tag_group(&self) -> &str {
        self.tag_group
            .as_deref()
            .unwrap_or(crate::tags::DEFAULT_GROUP)
    }
}

/// The default of [`Config::callback_max_age_seconds`].
pub const CALLBACK_MAX_AGE_SECONDS: u64 = 3600;

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of every debug print.
        f.debug_struct("Config")
            .field("corp_id", &self.corp_id)
            .field("agent_id", &self.agent_id)
            .field("mass_send_check_ms", &self.mass_send_check_ms)
            .field("callback_max_age_seconds", &self.callback_max_age_seconds)
            .field("tag_group", &self.tag_group)
            .finish_non_exhaustive()
    }
}
