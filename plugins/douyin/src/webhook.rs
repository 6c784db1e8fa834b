//! Webhooks: signature check, the `verify_webhook` challenge, and events → normalized events.

use serde::Deserialize;
use sop_plugin_sdk::{
    Account, Host, NormalizedEvent, WebhookError, WebhookOutcome, WebhookRequest, WebhookResponse,
    webhook::dedupe_id,
};

use crate::config::Config;
use crate::signature;

#[derive(Debug, Deserialize)]
struct Envelope {
    event: String,
    #[serde(default)]
    from_user_id: String,
    #[serde(default)]
    to_user_id: String,
    #[serde(default)]
    client_key: String,
    #[serde(default)]
    log_id: String,
    /// An object, or (as in the platform's IM examples) a JSON-encoded string.
    #[serde(default)]
    content: serde_json::Value,
}

/// Verifies and translates one webhook for `account`.
pub fn parse(
    host: &dyn Host,
    account: &Account,
    request: &WebhookRequest,
) -> Result<WebhookOutcome, WebhookError> {
    let config: Config = sop_plugin_sdk::json::parse_webhook_config(&account.config)?;
    let given = request.header("x-douyin-signature");
    let signed = given.is_some_and(|g| signature::verify(&config.client_secret, &request.body, g));
    if given.is_some() && !signed {
        return Err(WebhookError::verification_failed(
            "X-Douyin-Signature does not match",
        ));
    }
    let envelope: Envelope = serde_json::from_slice(&request.body)
        .map_err(|e| WebhookError::malformed(format!("body: {e}")))?;
    if !envelope.client_key.is_empty() && envelope.client_key != config.client_key {
        return Err(WebhookError::verification_failed(format!(
            "event for client_key {:?}, not this app",
            envelope.client_key
        )));
    }
    let content = match envelope.content.clone() {
        serde_json::Value::String(text) => serde_json::from_str(&text)
            .map_err(|e| WebhookError::malformed(format!("content: {e}")))?,
        other => other,
    };
    if envelope.event == "verify_webhook" {
        // Echoing the challenge commits nothing, so an unsigned URL check is answered too.
        let challenge = content
            .get("challenge")
            .cloned()
            .filter(|c| c.is_number() || c.is_string())
            .ok_or_else(|| WebhookError::malformed("verify_webhook without a challenge"))?;
        return Ok(WebhookOutcome {
            response: WebhookResponse::json(&serde_json::json!({ "challenge": challenge })),
            events: Vec::new(),
        });
    }
    if !signed {
        return Err(WebhookError::verification_failed(
            "missing X-Douyin-Signature",
        ));
    }
    let dedupe = request
        .header("msg-id")
        .map(str::to_owned)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| {
            let message = content
                .get("server_message_id")
                .map(ToString::to_string)
                .unwrap_or_default();
            dedupe_id(&[&envelope.event, &envelope.log_id, &message])
        });
    let events = normalize(&envelope, &content, dedupe, host.now_ms())
        .into_iter()
        .collect();
    Ok(WebhookOutcome {
        response: WebhookResponse::text("success"),
        events,
    })
}

fn text_of(content: &serde_json::Value) -> Option<String> {
    let text = content.get("text")?;
    text.as_str()
        .map(str::to_owned)
        .or_else(|| text.get("text").and_then(|t| t.as_str()).map(str::to_owned))
}

fn normalize(
    envelope: &Envelope,
    content: &serde_json::Value,
    dedupe_id: String,
    now_ms: i64,
) -> Option<NormalizedEvent> {
    let field = |name: &str| content.get(name).cloned().unwrap_or_default();
    let conversation = content
        .get("conversation_short_id")
        .or_else(|| content.get("conversation_id"))
        .and_then(|c| {
            c.as_str()
                .map(str::to_owned)
                .or_else(|| c.as_i64().map(|n| n.to_string()))
        });
    let (kind, group) = match envelope.event.as_str() {
        "im_receive_msg" => ("message_received", None),
        "im_group_receive_msg" => ("message_received", conversation.clone()),
        "im_enter_direct_msg" => ("entered_conversation", None),
        "im_authorize" => ("authorized", None),
        "group_fans_event" => (
            "group_member_joined",
            content
                .get("group_id")
                .and_then(|g| g.as_str().map(str::to_owned))
                .or_else(|| conversation.clone()),
        ),
        _ => return None,
    };
    let attributes = serde_json::json!({
        "event": envelope.event,
        "conversation_id": conversation,
        "server_message_id": field("server_message_id"),
        "message_type": field("message_type"),
        "text": text_of(content),
        "user_infos": field("user_infos"),
        "log_id": envelope.log_id,
    });
    Some(NormalizedEvent {
        kind: kind.to_owned(),
        dedupe_id,
        occurred_at_ms: content
            .get("create_time")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(now_ms),
        contact: Some(envelope.from_user_id.clone()).filter(|c| !c.is_empty()),
        staff: Some(envelope.to_user_id.clone()).filter(|s| !s.is_empty()),
        group,
        attributes: attributes.to_string(),
    })
}
