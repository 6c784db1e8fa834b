//! The enterprise account's OAuth access token: cached in the plugin store, renewed with the
//! refresh token (kept in the store as Douyin rotates it), or obtained once from an
//! authorisation code. The IM APIs take this user token in the `access-token` header; the
//! app-level `client_token` opens none of them, so the plugin never fetches one.

use serde::{Deserialize, Serialize};
use sop_plugin_sdk::http::Fetch;
use sop_plugin_sdk::{Delivery, Host, HostLog, PluginError, kv, webhook};

use crate::client::{API, data_of};
use crate::config::Config;

/// Renew this long before the stated expiry.
pub const SAFETY_MARGIN_MS: i64 = 300_000;

#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    access_token: String,
    expires_at_ms: i64,
}

#[derive(Deserialize)]
struct Granted {
    access_token: String,
    expires_in: i64,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    refresh_expires_in: Option<i64>,
}

fn key(config: &Config, what: &str) -> String {
    // Keyed by app and account; the secret's digest makes a rotated secret start afresh.
    let secret = webhook::dedupe_id(&[&config.client_secret]);
    format!(
        "{what}/{}/{}/{}",
        config.client_key,
        config.open_id,
        &secret[..16]
    )
}

/// A valid access token.
pub fn get(host: &dyn Host, config: &Config) -> Result<String, PluginError> {
    if let Some(cached) = kv::get_json::<Cached>(host, &key(config, "access"))
        && cached.expires_at_ms > host.now_ms()
    {
        return Ok(cached.access_token);
    }
    obtain(host, config)
}

/// Drops the cached access token and obtains a new one.
pub fn refresh(host: &dyn Host, config: &Config) -> Result<String, PluginError> {
    host.kv_delete(&key(config, "access"));
    obtain(host, config)
}

fn obtain(host: &dyn Host, config: &Config) -> Result<String, PluginError> {
    let stored_refresh = kv::get_json::<String>(host, &key(config, "refresh"));
    let refresh_token = stored_refresh.or_else(|| config.refresh_token.clone());
    let (api, fetch) = match (&refresh_token, &config.auth_code) {
        (Some(refresh), _) => (
            "/oauth/refresh_token/",
            Fetch::post_form(
                &format!("{API}/oauth/refresh_token/"),
                &[
                    ("client_key", &config.client_key),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                ],
            ),
        ),
        (None, Some(code)) => (
            "/oauth/access_token/",
            Fetch::post_form(
                &format!("{API}/oauth/access_token/"),
                &[
                    ("client_key", &config.client_key),
                    ("client_secret", &config.client_secret),
                    ("code", code),
                    ("grant_type", "authorization_code"),
                ],
            ),
        ),
        (None, None) => {
            return Err(PluginError::auth_expired(
                "the account has neither `refresh_token` nor `auth_code`",
            ));
        }
    };
    let answer = fetch.send_json(host, Delivery::Idempotent)?;
    // Any refusal here means the authorisation itself is gone: operators must re-authorise.
    let data = data_of(api, answer, Delivery::Idempotent).map_err(|e| match e {
        PluginError::RateLimited(_) | PluginError::Transient(_) => e,
        other => PluginError::auth_expired(format!("{other:?}")),
    })?;
    let granted: Granted = serde_json::from_value(data)
        .map_err(|e| PluginError::transient(format!("{api}: unexpected answer: {e}")))?;
    if let Some(refresh) = granted.refresh_token.filter(|r| !r.is_empty()) {
        let ttl = granted
            .refresh_expires_in
            .and_then(|s| u64::try_from(s.saturating_mul(1000)).ok());
        kv::set_json(host, &key(config, "refresh"), &refresh, ttl);
    }
    let lifetime_ms = granted.expires_in.saturating_mul(1000);
    let usable_ms = lifetime_ms - SAFETY_MARGIN_MS.min(lifetime_ms / 2);
    let cached = Cached {
        access_token: granted.access_token,
        expires_at_ms: host.now_ms().saturating_add(usable_ms),
    };
    kv::set_json(
        host,
        &key(config, "access"),
        &cached,
        u64::try_from(usable_ms).ok(),
    );
    host.debug(&format!("obtained a Douyin access token via {api}"));
    Ok(cached.access_token)
}
