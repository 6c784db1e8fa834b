//! What the shop plugin declares.

use sop_plugin_sdk::{EventSpec, LimitScope, Manifest, RateLimit, json};

use crate::config::Config;

/// The manifest.
pub fn manifest() -> Manifest {
    let order = |kind: &str, description: &str| {
        EventSpec {
        kind: kind.to_owned(),
        description: description.to_owned(),
        attributes_schema: serde_json::json!({
            "type": "object",
            "properties": {
                "event_id": { "type": "string", "description": "the shop's event id" },
                "order_id": { "type": "string" },
                "member_id": { "type": "string", "description": "the shop's member id" },
                "amount_cents": { "type": "integer", "description": "order total, smallest currency unit" },
                "refund_cents": { "type": "integer", "description": "refunded amount (order_refunded)" },
                "currency": { "type": "string" },
                "wecom_id": { "type": "string", "description": "the buyer's WeCom external_userid, if bound" },
                "douyin_open_id": { "type": "string", "description": "the buyer's Douyin open_id, if known" },
            },
            "required": ["event_id", "order_id", "member_id", "amount_cents", "currency"],
        })
        .to_string(),
    }
    };
    Manifest {
        name: "shop".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        description: "A shop's order webhooks (HMAC-signed, timestamped) and points ledger"
            .to_owned(),
        actions: crate::actions::all().specs(),
        events: vec![
            order(
                "order_paid",
                "An order was paid; `contact` is the buyer's WeCom id, else their Douyin \
                 open_id, else the member id. One event per order.",
            ),
            order("order_refunded", "An order was refunded, fully or in part"),
        ],
        rate_limits: vec![RateLimit {
            name: "api".to_owned(),
            scope: LimitScope::Account,
            max: 100,
            per_seconds: 1,
            error_code: Some("HTTP 429".to_owned()),
        }],
        touch_limits: vec![],
        hosts: vec!["shop.example.com".to_owned()],
        account_schema: json::schema_of::<Config>(),
    }
}
