//! What the Douyin plugin declares.

use sop_plugin_sdk::{EventSpec, LimitScope, Manifest, RateLimit, TouchLimit, TouchPeriod, json};

use crate::config::Config;

/// The manifest.
pub fn manifest() -> Manifest {
    let event = |kind: &str, description: &str| EventSpec {
        kind: kind.to_owned(),
        description: description.to_owned(),
        attributes_schema: serde_json::json!({
            "type": "object",
            "properties": {
                "event": { "type": "string" },
                "conversation_id": { "type": ["string", "null"] },
                "server_message_id": {},
                "message_type": {},
                "text": { "type": ["string", "null"] },
                "user_infos": {},
                "log_id": { "type": "string" },
            },
        })
        .to_string(),
    };
    Manifest {
        name: "douyin".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        description:
            "Douyin (抖音) enterprise account: private-message replies, proactive messages \
                      to users who authorised them, fan-group messages, and the IM webhooks."
                .to_owned(),
        actions: crate::actions::all().specs(),
        events: vec![
            event(
                "message_received",
                "A user sent a private message (or, with `group`, a fan-group message); `contact` \
                 is the user's open_id. Opens the reply window.",
            ),
            event(
                "entered_conversation",
                "A user opened the private conversation page; allows one greeting.",
            ),
            event(
                "authorized",
                "A user authorised proactive messages from the account.",
            ),
            event(
                "group_member_joined",
                "A user joined a fan group (`group`).",
            ),
        ],
        rate_limits: vec![
            // Not published; a conservative per-account pace that stays clear of 28003018.
            RateLimit {
                name: "im_send".to_owned(),
                scope: LimitScope::Account,
                max: 600,
                per_seconds: 60,
                error_code: Some("28003018".to_owned()),
            },
            RateLimit {
                name: "im_read".to_owned(),
                scope: LimitScope::Account,
                max: 600,
                per_seconds: 60,
                error_code: Some("28003018".to_owned()),
            },
        ],
        touch_limits: vec![
            // Documented: proactive messages once a day (up to 3 messages per send).
            TouchLimit {
                name: "proactive_per_day".to_owned(),
                actions: vec!["send_proactive".to_owned()],
                max: 1,
                period: TouchPeriod::Day,
            },
            // Operators' rule of thumb: about 8 proactive touches per fan per month.
            TouchLimit {
                name: "proactive_per_month".to_owned(),
                actions: vec!["send_proactive".to_owned()],
                max: 8,
                period: TouchPeriod::Month,
            },
        ],
        hosts: vec!["open.douyin.com".to_owned()],
        account_schema: json::schema_of::<Config>(),
    }
}
