//! What the WeCom plugin declares: actions, events, documented limits, hosts, account schema.

use sop_plugin_sdk::{EventSpec, LimitScope, Manifest, RateLimit, TouchLimit, TouchPeriod, json};

use crate::config::Config;

/// The manifest.
pub fn manifest() -> Manifest {
    Manifest {
        name: "wecom".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        description: "WeCom (企业微信) customer contact: welcome messages, mass-send tasks, tags, \
                      remarks, customer groups, app messages to staff, the contact and group \
                      callbacks, and customers' messages through 微信客服."
            .to_owned(),
        actions: crate::actions::all().specs(),
        events: events(),
        rate_limits: rate_limits(),
        touch_limits: touch_limits(),
        hosts: vec!["qyapi.weixin.qq.com".to_owned()],
        account_schema: json::schema_of::<Config>(),
    }
}

fn rate_limits() -> Vec<RateLimit> {
    let limit = |name: &str, scope, max, per_seconds, code: Option<&str>| RateLimit {
        name: name.to_owned(),
        scope,
        max,
        per_seconds,
        error_code: code.map(str::to_owned),
    };
    vec![
        // Documented per corp per API; declared per account (one app of one corp) as the
        // conservative reading when several accounts share a corp.
        limit(
            "api_per_corp_minute",
            LimitScope::Account,
            10_000,
            60,
            Some("45009"),
        ),
        limit(
            "api_per_corp_hour",
            LimitScope::Account,
            150_000,
            3_600,
            Some("45009"),
        ),
        // The queries of a mass-send task's outcome check (`get_groupmsg_task`, then
        // `get_groupmsg_send_result` per confirming sender): the same documented per-API
        // limit, declared apart so the gate paces checks on their own budget (one cell per
        // check: each API is called once per check unless a result needs several pages).
        limit(
            "outcome_query_per_corp_minute",
            LimitScope::Account,
            10_000,
            60,
            Some("45009"),
        ),
        limit(
            "outcome_query_per_corp_hour",
            LimitScope::Account,
            150_000,
            3_600,
            Some("45009"),
        ),
        // Beyond this WeCom silently drops app messages to that member.
        limit(
            "app_message_per_member",
            LimitScope::Recipient,
            30,
            60,
            None,
        ),
    ]
}

fn touch_limits() -> Vec<TouchLimit> {
    // Current docs allow as many mass messages per month as the month has days; one per
    // calendar day (the admin help's rule) never exceeds that and is what operators expect.
    vec![
        TouchLimit {
            name: "mass_send_per_contact".to_owned(),
            actions: vec!["mass_send_contacts".to_owned()],
            max: 1,
            period: TouchPeriod::Day,
        },
        TouchLimit {
            name: "mass_send_per_group".to_owned(),
            actions: vec!["mass_send_groups".to_owned()],
            max: 1,
            period: TouchPeriod::Day,
        },
    ]
}

fn event(kind: &str, description: &str, attributes: serde_json::Value) -> EventSpec {
    EventSpec {
        kind: kind.to_owned(),
        description: description.to_owned(),
        attributes_schema: serde_json::json!({
            "type": "object",
            "properties": attributes,
        })
        .to_string(),
    }
}

fn group_attributes() -> serde_json::Value {
    let string = serde_json::json!({ "type": "string" });
    serde_json::json!({
        "change": string,
        "name": string,
        "owner": string,
        "member_count": { "type": "integer" },
        "notice": string,
    })
}

fn events() -> Vec<EventSpec> {
    let string = serde_json::json!({ "type": "string" });
    vec![
        event(
            "contact_added",
            "A customer added a staff member (`staff`). `state` is the channel code of the QR \
             code used; `welcome_code` is valid for 20 s for send_welcome.",
            serde_json::json!({ "state": string, "welcome_code": string, "half": { "type": "boolean" } }),
        ),
        event(
            "contact_deleted",
            "The staff member deleted the customer (`source` DELETE_BY_TRANSFER when transferred).",
            serde_json::json!({ "source": string }),
        ),
        event(
            "staff_deleted_by_contact",
            "The customer deleted the staff member: churn.",
            serde_json::json!({}),
        ),
        event(
            "contact_edited",
            "The staff member edited the customer's remark or tags.",
            serde_json::json!({}),
        ),
        event(
            "group_created",
            "A staff member (`staff`, the owner) created a customer group (`group`). Read with \
             groupchat/get: `name`, `owner`, `member_count` (staff included), `notice`.",
            group_attributes(),
        ),
        event(
            "group_updated",
            "A customer group (`group`) changed: `change` is add_member, del_member, \
             change_owner, change_name or change_notice. The group as read afterwards, like \
             group_created; after the member events of the same callback.",
            group_attributes(),
        ),
        event(
            "group_dismissed",
            "The owner dismissed a customer group (`group`).",
            serde_json::json!({}),
        ),
        event(
            "group_member_joined",
            "A member (`contact`) joined a customer group (`group`).",
            serde_json::json!({ "join_scene": { "type": "integer" }, "member_version": string }),
        ),
        event(
            "group_member_left",
            "A member (`contact`) left a customer group (`group`).",
            serde_json::json!({ "quit_scene": { "type": "integer" }, "member_version": string }),
        ),
        event(
            "message_received",
            "A customer (`contact`) wrote to the corp's 微信客服 account; `staff` is the member \
             serving the conversation when WeCom names one. `text` is empty for non-text \
             messages (`msg_type` image, voice, ...); `menu_id` is set when the customer \
             clicked a menu option. Read with kf/sync_msg after a kf_msg_or_event callback.",
            serde_json::json!({
                "text": string,
                "msg_type": string,
                "msg_id": string,
                "open_kfid": string,
                "menu_id": { "type": ["string", "null"] },
            }),
        ),
        event(
            "staff_message_received",
            "A staff member (`staff`) sent a message to the app itself (not to a customer).",
            serde_json::json!({ "msg_type": string, "text": string, "msg_id": string }),
        ),
    ]
}
