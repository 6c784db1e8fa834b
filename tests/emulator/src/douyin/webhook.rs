//! Douyin webhook payloads. `content` is a JSON-encoded string, as in the platform's own
//! examples of IM events.

use serde_json::{Value, json};

/// A webhook body for `event` from `from` to `to`.
pub fn event(
    client_key: &str,
    event: &str,
    from: &str,
    to: &str,
    log_id: &str,
    content: &Value,
) -> String {
    json!({
        "event": event,
        "client_key": client_key,
        "from_user_id": from,
        "to_user_id": to,
        "log_id": log_id,
        "content": content.to_string(),
    })
    .to_string()
}

/// The `content` of an IM message event.
pub fn message_content(
    conversation: &str,
    server_message_id: &str,
    create_time_ms: u64,
    text: &str,
    user_open_id: &str,
    nick_name: &str,
) -> Value {
    json!({
        "conversation_short_id": conversation,
        "server_message_id": server_message_id,
        "conversation_type": 1,
        "message_type": "text",
        "text": text,
        "create_time": create_time_ms,
        "user_infos": [{"open_id": user_open_id, "nick_name": nick_name, "avatar": ""}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_a_json_string() {
        let body = event("ck", "im_receive_msg", "u", "e", "l", &json!({"a": 1}));
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["event"], "im_receive_msg");
        let inner: Value = serde_json::from_str(v["content"].as_str().unwrap()).unwrap();
        assert_eq!(inner["a"], 1);
    }
}
