//! Webhooks: the signature and timestamp check, then order events → normalized events.
//!
//! The shop POSTs JSON with three headers: `X-Shop-Event-Id`, `X-Shop-Timestamp` (Unix
//! seconds) and `X-Shop-Signature` (see [`crate::signature`]). A request is refused unless it
//! is signed with the account's secret, its timestamp is within the freshness window of the
//! runtime's clock, and it is for this shop. Replays inside the window are dropped by the
//! runtime's de-duplication: an order's `order_paid` has one dedupe id however often the shop
//! (or anyone replaying it) sends it.

use serde::Deserialize;
use sop_plugin_sdk::{
    Account, Host, NormalizedEvent, WebhookError, WebhookOutcome, WebhookRequest, WebhookResponse,
    webhook::{dedupe_id, timestamp_age_seconds},
};

use crate::config::Config;
use crate::signature;

/// The envelope of every webhook.
#[derive(Debug, Deserialize)]
struct Envelope {
    /// The event's id (`evt_…`); equals the `X-Shop-Event-Id` header.
    id: String,
    /// `order.paid`, `order.refunded`, `webhook.ping`, …
    #[serde(rename = "type")]
    kind: String,
    shop_id: String,
    /// When the shop created the event, Unix ms.
    created_at: i64,
    #[serde(default)]
    data: serde_json::Value,
}

/// The `data` of an order event.
#[derive(Debug, Deserialize)]
struct Order {
    order_id: String,
    member_id: String,
    /// In the currency's smallest unit (fen for CNY).
    amount_cents: i64,
    #[serde(default = "cny")]
    currency: String,
    /// Refunded amount, on `order.refunded`.
    #[serde(default)]
    refund_cents: Option<i64>,
    /// When the order was paid (or refunded), Unix ms.
    #[serde(default)]
    at: Option<i64>,
    #[serde(default)]
    buyer: Buyer,
}

/// Who bought: the member's ids on the private-domain platforms, when the shop knows them.
#[derive(Debug, Default, Deserialize)]
struct Buyer {
    #[serde(default)]
    wecom_external_userid: Option<String>,
    #[serde(default)]
    douyin_open_id: Option<String>,
}

fn cny() -> String {
    "CNY".to_owned()
}

/// Verifies and translates one webhook for `account`.
pub fn parse(
    host: &dyn Host,
    account: &Account,
    request: &WebhookRequest,
) -> Result<WebhookOutcome, WebhookError> {
    let config: Config = sop_plugin_sdk::json::parse_webhook_config(&account.config)?;
    verify(host, &config, request)?;
    let envelope: Envelope = serde_json::from_slice(&request.body)
        .map_err(|e| WebhookError::malformed(format!("body: {e}")))?;
    if envelope.shop_id != config.shop_id {
        return Err(WebhookError::verification_failed(format!(
            "event for shop {:?}, not this account's shop",
            envelope.shop_id
        )));
    }
    if request
        .header("x-shop-event-id")
        .is_some_and(|id| id != envelope.id)
    {
        return Err(WebhookError::malformed(
            "X-Shop-Event-Id does not match the body's id",
        ));
    }
    let events = match envelope.kind.as_str() {
        "order.paid" | "order.refunded" => vec![order_event(&envelope)?],
        // A URL check from the shop's admin, and kinds we do not act on: acknowledged so the
        // shop stops retrying, nothing committed.
        _ => Vec::new(),
    };
    Ok(WebhookOutcome {
        response: WebhookResponse::json(&serde_json::json!({ "ok": true })),
        events,
    })
}

/// The signature and the freshness of the signed timestamp.
fn verify(host: &dyn Host, config: &Config, request: &WebhookRequest) -> Result<(), WebhookError> {
    let timestamp = request
        .header("x-shop-timestamp")
        .ok_or_else(|| WebhookError::verification_failed("missing X-Shop-Timestamp"))?;
    let given = request
        .header("x-shop-signature")
        .ok_or_else(|| WebhookError::verification_failed("missing X-Shop-Signature"))?;
    if !signature::verify(&config.webhook_secret, timestamp, &request.body, given) {
        return Err(WebhookError::verification_failed(
            "X-Shop-Signature does not match",
        ));
    }
    let skew = timestamp_age_seconds(timestamp, host.now_ms())
        .ok_or_else(|| WebhookError::verification_failed("X-Shop-Timestamp is not Unix seconds"))?
        .unsigned_abs();
    if skew > config.tolerance_s() {
        return Err(WebhookError::verification_failed(format!(
            "X-Shop-Timestamp is {skew} s away from now (window {} s): stale or replayed",
            config.tolerance_s()
        )));
    }
    Ok(())
}

fn order_event(envelope: &Envelope) -> Result<NormalizedEvent, WebhookError> {
    let order: Order = serde_json::from_value(envelope.data.clone())
        .map_err(|e| WebhookError::malformed(format!("{} data: {e}", envelope.kind)))?;
    if order.order_id.is_empty() || order.member_id.is_empty() {
        return Err(WebhookError::malformed(format!(
            "{}: order_id and member_id must not be empty",
            envelope.kind
        )));
    }
    if order.amount_cents < 0 || order.refund_cents.is_some_and(|r| r < 0) {
        return Err(WebhookError::malformed(format!(
            "{}: negative amount",
            envelope.kind
        )));
    }
    let (kind, dedupe) = if envelope.kind == "order.paid" {
        // An order is paid once: whatever event id a re-send carries, it is one event.
        let key = dedupe_id(&["order_paid", &envelope.shop_id, &order.order_id]);
        ("order_paid", key)
    } else {
        // Partial refunds are several events of one order: their own ids tell them apart.
        let key = dedupe_id(&["order_refunded", &envelope.shop_id, &envelope.id]);
        ("order_refunded", key)
    };
    let wecom = order.buyer.wecom_external_userid.filter(|s| !s.is_empty());
    let douyin = order.buyer.douyin_open_id.filter(|s| !s.is_empty());
    let mut attributes = serde_json::json!({
        "event_id": envelope.id,
        "order_id": order.order_id,
        "member_id": order.member_id,
        "amount_cents": order.amount_cents,
        "currency": order.currency,
    });
    if let Some(refund) = order.refund_cents {
        attributes["refund_cents"] = refund.into();
    }
    if let Some(id) = &wecom {
        attributes["wecom_id"] = id.as_str().into();
    }
    if let Some(id) = &douyin {
        attributes["douyin_open_id"] = id.as_str().into();
    }
    // The contact is the buyer in the private domain when the shop knows them (their WeCom
    // contact, else their Douyin user), so the order lands on the record those platforms'
    // events keep; a member known only to the shop is a contact of their own.
    let contact = wecom.or(douyin).unwrap_or(order.member_id);
    Ok(NormalizedEvent {
        kind: kind.to_owned(),
        dedupe_id: dedupe,
        occurred_at_ms: order.at.unwrap_or(envelope.created_at),
        contact: Some(contact),
        staff: None,
        group: None,
        attributes: attributes.to_string(),
    })
}
