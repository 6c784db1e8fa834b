//! Callback verification: URL verification (GET) and signed, encrypted events (POST).

use sop_plugin_sdk::webhook::timestamp_age_seconds;
use sop_plugin_sdk::{
    Account, Host, HostLog, WebhookError, WebhookOutcome, WebhookRequest, WebhookResponse,
};
use wecom_crypto::{Crypto, CryptoError};

use crate::callback::Callback;
use crate::client::Client;
use crate::config::Config;

/// Verifies and decrypts one callback for `account`; a 微信客服 callback also reads the
/// announced messages through `host`, a customer group change the group.
pub fn parse(
    host: &dyn Host,
    account: &Account,
    request: &WebhookRequest,
) -> Result<WebhookOutcome, WebhookError> {
    let config: Config = sop_plugin_sdk::json::parse_webhook_config(&account.config)?;
    let (Some(token), Some(aes_key)) =
        (config.token.as_deref(), config.encoding_aes_key.as_deref())
    else {
        return Err(WebhookError::verification_failed(
            "the account has no callback `token` and `encoding_aes_key`",
        ));
    };
    let crypto = Crypto::new(token, aes_key, &config.corp_id).map_err(crypto_error)?;
    let param = |name: &str| {
        request
            .query_param(name)
            .ok_or_else(|| WebhookError::verification_failed(format!("missing `{name}` parameter")))
    };
    let signature = param("msg_signature")?;
    let timestamp = param("timestamp")?;
    let nonce = param("nonce")?;
    if request.method.eq_ignore_ascii_case("GET") {
        let echostr = param("echostr")?;
        let plain = crypto
            .verify_url(signature, timestamp, nonce, echostr)
            .map_err(crypto_error)?;
        check_fresh(host, &config, timestamp)?;
        // WeCom expects the bare plaintext and nothing else.
        return Ok(WebhookOutcome {
            response: WebhookResponse::text(plain),
            events: Vec::new(),
        });
    }
    let body = std::str::from_utf8(&request.body)
        .map_err(|_| WebhookError::verification_failed("body is not UTF-8"))?;
    let xml = crypto
        .decrypt_callback(signature, timestamp, nonce, body)
        .map_err(crypto_error)?;
    check_fresh(host, &config, timestamp)?;
    let events = match crate::callback::parse(&xml)? {
        Callback::Events(events) => events,
        Callback::KfMessages(notice) => {
            let client = Client::new(host, config, None);
            // Answering an error makes WeCom retry the callback (same token), which reads
            // again from the same place; the webhook interface has no "try later" case, so the
            // failure is reported as an unusable payload with its cause.
            crate::kf::pull(&client, &notice).map_err(|e| {
                WebhookError::malformed(format!(
                    "kf_msg_or_event: reading the messages failed ({}): {}",
                    e.kind(),
                    e
                ))
            })?
        }
        Callback::GroupChanged(change) => {
            let client = Client::new(host, config, None);
            match crate::groupchat::describe(&client, &change) {
                Ok(group) => change.members.into_iter().chain([group]).collect(),
                // Members who joined or left are news on their own: deliver them, and learn
                // the group at its next change.
                Err(e) if !change.members.is_empty() => {
                    host.warn(&format!(
                        "change_external_chat: reading group {} failed ({}): {e}; its member \
                         events go on without it",
                        change.chat_id,
                        e.kind()
                    ));
                    change.members
                }
                // Otherwise the failure makes WeCom retry the callback.
                Err(e) => {
                    return Err(WebhookError::malformed(format!(
                        "change_external_chat: reading group {} failed ({}): {e}",
                        change.chat_id,
                        e.kind()
                    )));
                }
            }
        }
    };
    Ok(WebhookOutcome {
        response: WebhookResponse::text("success"),
        events,
    })
}

/// Refuses a signed `timestamp` (Unix seconds) too far from the runtime's clock: a captured
/// callback replayed later. Checked after the signature, so that a forgery is reported as one.
fn check_fresh(host: &dyn Host, config: &Config, timestamp: &str) -> Result<(), WebhookError> {
    let max_age = config
        .callback_max_age_seconds
        .unwrap_or(crate::config::CALLBACK_MAX_AGE_SECONDS);
    if max_age == 0 {
        return Ok(());
    }
    let off = timestamp_age_seconds(timestamp, host.now_ms()).ok_or_else(|| {
        WebhookError::verification_failed(format!("`timestamp` {timestamp:?} is not a number"))
    })?;
    if off.unsigned_abs() > max_age {
        let when = if off > 0 { "old" } else { "in the future" };
        return Err(WebhookError::verification_failed(format!(
            "stale callback: its timestamp is {} s {when}, more than the {max_age} s allowed \
             (`callback_max_age_seconds`); a replay, or a clock out of step",
            off.unsigned_abs()
        )));
    }
    Ok(())
}

/// Signature, key and receiver problems mean we cannot trust the request; anything after a
/// good signature is a readable-but-broken payload.
fn crypto_error(error: CryptoError) -> WebhookError {
    match error {
        CryptoError::SignatureMismatch
        | CryptoError::MissingEncrypt
        | CryptoError::InvalidAesKey
        | CryptoError::ReceiveIdMismatch { .. } => {
            WebhookError::verification_failed(error.to_string())
        }
        other => WebhookError::malformed(other.to_string()),
    }
}
