//! The app's access token, cached in the plugin's store until shortly before it expires.

use serde::{Deserialize, Serialize};
use sop_plugin_sdk::http::Fetch;
use sop_plugin_sdk::{Delivery, Host, HostLog, PluginError, kv, webhook};

use crate::client::{API, check_errcode};
use crate::config::Config;

/// Refresh this long before WeCom's stated expiry, so a token never dies mid-call.
pub const SAFETY_MARGIN_MS: i64 = 300_000;

#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    access_token: String,
    expires_at_ms: i64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
}

/// Tokens are per app: key by corp and a digest of the secret, so a rotated secret
/// never reuses a token from the old one (and the secret itself never reaches the store).
fn cache_key(config: &Config) -> String {
    format!(
        "token/{}/{}",
        config.corp_id,
        &webhook::dedupe_id(&[&config.secret])[..16]
    )
}

/// A valid token: the cached one, or a fresh one from `gettoken`.
pub fn get(host: &dyn Host, config: &Config) -> Result<String, PluginError> {
    let key = cache_key(config);
    if let Some(cached) = kv::get_json::<Cached>(host, &key)
        && cached.expires_at_ms > host.now_ms()
    {
        return Ok(cached.access_token);
    }
    fetch(host, config, &key)
}

/// Drops the cached token and fetches a new one (after 40014/42001).
pub fn refresh(host: &dyn Host, config: &Config) -> Result<String, PluginError> {
    let key = cache_key(config);
    host.kv_delete(&key);
    fetch(host, config, &key)
}

fn fetch(host: &dyn Host, config: &Config, key: &str) -> Result<String, PluginError> {
    let answer: serde_json::Value = Fetch::get(&format!("{API}/gettoken"))
        .query("corpid", &config.corp_id)
        .query("corpsecret", &config.secret)
        .send_json(host, Delivery::Idempotent)?;
    // A refused secret while fetching a token is final: no token to refresh.
    check_errcode("gettoken", &answer, Delivery::Idempotent).map_err(|e| match e {
        PluginError::InvalidInput(m) => PluginError::auth_expired(m),
        other => other,
    })?;
    let answer: TokenAnswer = serde_json::from_value(answer)
        .map_err(|e| PluginError::transient(format!("gettoken: unexpected answer: {e}")))?;
    let lifetime_ms = answer.expires_in.saturating_mul(1000);
    // Short lifetimes (tests, emulators) keep half their life rather than none.
    let margin = SAFETY_MARGIN_MS.min(lifetime_ms / 2);
    let usable_ms = lifetime_ms - margin;
    let cached = Cached {
        access_token: answer.access_token,
        expires_at_ms: host.now_ms().saturating_add(usable_ms),
    };
    kv::set_json(host, key, &cached, u64::try_from(usable_ms).ok());
    host.debug("fetched a new WeCom access token");
    Ok(cached.access_token)
}
