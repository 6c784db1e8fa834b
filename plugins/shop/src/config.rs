//! The per-account configuration: one shop of the demo shop platform.

use serde::Deserialize;
use sop_plugin_sdk::schemars::{self, JsonSchema};

/// How far a webhook's signed timestamp may be from the runtime's clock, by default.
pub const DEFAULT_TOLERANCE_S: u64 = 300;

/// What the operator supplies for a shop. Never logged.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The shop's id; webhooks for another shop are refused.
    pub shop_id: String,
    /// The API key of the shop's open API (sent as `Authorization: Bearer`).
    pub api_key: String,
    /// The shared secret that signs webhooks (HMAC-SHA256).
    pub webhook_secret: String,
    /// How far a webhook's `X-Shop-Timestamp` may be from now, in seconds (default 300).
    #[serde(default)]
    pub webhook_tolerance_s: Option<u64>,
}

impl Config {
    /// The freshness window of webhooks, in seconds.
    pub fn tolerance_s(&self) -> u64 {
        self.webhook_tolerance_s.unwrap_or(DEFAULT_TOLERANCE_S)
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("shop_id", &self.shop_id)
            .field("webhook_tolerance_s", &self.webhook_tolerance_s)
            .finish_non_exhaustive()
    }
}
