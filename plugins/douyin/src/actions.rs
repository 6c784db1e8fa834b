//! Private and group messages, and the list of users who authorised proactive messages.

use serde::Deserialize;
use sop_plugin_sdk::action::{ActionDef, Actions};
use sop_plugin_sdk::schemars::{self, JsonSchema};
use sop_plugin_sdk::{Audience, Delivery, InvokeOutcome, PluginError, json};

use crate::client::Client;

/// What a message says: plain `text`, or a raw Douyin `content` object (cards, images).
fn content_of(
    text: Option<String>,
    content: Option<serde_json::Value>,
) -> Result<serde_json::Value, PluginError> {
    match (text.filter(|t| !t.is_empty()), content) {
        (Some(text), None) => Ok(serde_json::json!({ "msg_type": 1, "text": { "text": text } })),
        (None, Some(content)) if content.is_object() => Ok(content),
        (Some(_), Some(_)) => Err(PluginError::invalid_input(
            "give either `text` or `content`, not both",
        )),
        _ => Err(PluginError::invalid_input(
            "a message needs `text` or a `content` object",
        )),
    }
}

/// Input of `reply`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// The user's `open_id` (the event's `contact`).
    pub open_id: String,
    /// The conversation (`conversation_short_id` of the event).
    pub conversation_id: String,
    /// The `server_message_id` replied to, if any.
    #[serde(default)]
    pub msg_id: Option<String>,
    /// Answer an `entered_conversation` event rather than a message.
    #[serde(default)]
    pub after_enter: bool,
    /// Plain text.
    #[serde(default)]
    pub text: Option<String>,
    /// A content object in Douyin's shape, sent as is.
    #[serde(default)]
    pub content: Option<serde_json::Value>,
}

fn send(client: &Client<'_>, body: serde_json::Value) -> Result<InvokeOutcome, PluginError> {
    let data = client.post("/im/send/msg/", &body, Delivery::AtMostOnce)?;
    Ok(InvokeOutcome::Done(json::to_json(&data)))
}

fn reply(client: &Client<'_>, input: Reply) -> Result<InvokeOutcome, PluginError> {
    let scene = if input.after_enter {
        "im_enter_direct_msg"
    } else {
        "im_reply_msg"
    };
    let content = content_of(input.text, input.content)?;
    send(
        client,
        serde_json::json!({
            "msg_id": input.msg_id.unwrap_or_default(),
            "conversation_id": input.conversation_id,
            "to_user_id": input.open_id,
            "content": content,
            "scene": scene,
        }),
    )
}

/// Input of `send_proactive`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendProactive {
    /// The `open_id` of a user who authorised proactive messages (see `list_authorized`).
    pub open_id: String,
    /// The conversation, when known.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// Plain text.
    #[serde(default)]
    pub text: Option<String>,
    /// A content object in Douyin's shape, sent as is.
    #[serde(default)]
    pub content: Option<serde_json::Value>,
}

fn send_proactive(client: &Client<'_>, input: SendProactive) -> Result<InvokeOutcome, PluginError> {
    let content = content_of(input.text, input.content)?;
    send(
        client,
        serde_json::json!({
            "msg_id": "",
            "conversation_id": input.conversation_id.unwrap_or_default(),
            "to_user_id": input.open_id,
            "content": content,
            "scene": "im.direct_message.bind",
        }),
    )
}

/// Input of `send_group`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendGroup {
    /// The fan group's `group_id`.
    pub group_id: String,
    /// Plain text.
    #[serde(default)]
    pub text: Option<String>,
    /// A content object in Douyin's shape, sent as is.
    #[serde(default)]
    pub content: Option<serde_json::Value>,
}

fn send_group(client: &Client<'_>, input: SendGroup) -> Result<InvokeOutcome, PluginError> {
    let content = content_of(input.text, input.content)?;
    let body = serde_json::json!({
        "group_id": input.group_id,
        "content": content,
    });
    let data = client.post("/im/send/msg/group/", &body, Delivery::AtMostOnce)?;
    Ok(InvokeOutcome::Done(json::to_json(&data)))
}

/// Input of `list_authorized`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAuthorized {
    /// The `cursor` of the previous page (0 first).
    #[serde(default)]
    pub cursor: u64,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub count: Option<u32>,
}

fn list_authorized(
    client: &Client<'_>,
    input: ListAuthorized,
) -> Result<InvokeOutcome, PluginError> {
    let count = input.count.unwrap_or(20);
    if !(1..=100).contains(&count) {
        return Err(PluginError::invalid_input(format!(
            "`count` must be 1 to 100, got {count}"
        )));
    }
    let body = serde_json::json!({ "cursor": input.cursor, "count": count });
    let data = client.post("/im/authorize/user_list/", &body, Delivery::Idempotent)?;
    Ok(InvokeOutcome::Done(json::to_json(&data)))
}

/// Every action, in manifest order.
pub fn all<'a>() -> Actions<Client<'a>> {
    Actions::new()
        .action(
            ActionDef::new(
                "reply",
                "Replies to a user's private message (scene im_reply_msg), or greets a user who \
                 entered the conversation (after_enter: im_enter_direct_msg). Only inside the \
                 reply window after the user's action.",
            )
            .at_most_once()
            .audience(Audience::Contact)
            .time_critical()
            .rate_limits(&["im_send"]),
            reply,
        )
        .action(
            ActionDef::new(
                "send_proactive",
                "Sends a proactive private message (scene im.direct_message.bind) to a user who \
                 authorised it: once a day, at most 3 messages.",
            )
            .at_most_once()
            .audience(Audience::Contact)
            .rate_limits(&["im_send"]),
            send_proactive,
        )
        .action(
            ActionDef::new("send_group", "Sends a message to a fan group.")
                .at_most_once()
                .audience(Audience::Group)
                .rate_limits(&["im_send"]),
            send_group,
        )
        .action(
            ActionDef::new(
                "list_authorized",
                "Lists users who authorised proactive messages (`user_list`, `cursor`, `has_more`).",
            )
            .rate_limits(&["im_read"]),
            list_authorized,
        )
}
