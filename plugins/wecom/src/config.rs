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
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of every debug print.
        f.debug_struct("Config")
            .field("corp_id", &self.corp_id)
            .field("agent_id", &self.agent_id)
            .finish_non_exhaustive()
    }
}
