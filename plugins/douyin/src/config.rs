//! The per-account configuration: one Douyin enterprise account authorised to one app.

use serde::Deserialize;
use sop_plugin_sdk::schemars::{self, JsonSchema};

/// What the operator supplies for a Douyin account. Never logged.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The app's `client_key`.
    pub client_key: String,
    /// The app's `client_secret`; also signs webhooks.
    pub client_secret: String,
    /// The enterprise account's `open_id` (the sender of every message).
    pub open_id: String,
    /// The account's OAuth `refresh_token`, from authorising the app once with the scopes
    /// `im.direct_message`, `im.group_message`. Renewed tokens are kept in the plugin store.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Alternatively, a one-time authorisation `code` to exchange on first use.
    #[serde(default)]
    pub auth_code: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("client_key", &self.client_key)
            .field("open_id", &self.open_id)
            .finish_non_exhaustive()
    }
}
