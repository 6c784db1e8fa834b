//! Customers' messages through 微信客服 (WeChat customer service).
//!
//! WeCom never pushes what a customer wrote. A `kf_msg_or_event` callback only says that the
//! kf account `OpenKfId` has something new and carries a `Token` valid for ten minutes; the
//! messages are read with `POST kf/sync_msg` from a cursor the reader keeps. The cursor lives
//! in the plugin's store, per corp and kf account.
//!
//! Delivery is at least once: the events of one read are committed by the runtime only after
//! this call returns. If that fails, WeCom retries the same callback (same `Token`), and the
//! read starts again from where that callback's first read started; the runtime drops the
//! repeats by their dedupe id (derived from the platform's `msgid`).

use serde::{Deserialize, Serialize};
use sop_plugin_sdk::{Delivery, HostLog, NormalizedEvent, PluginError, kv, webhook::dedupe_id};

use crate::client::Client;

/// Messages asked for per read (the platform allows up to 1,000): small enough that one page
/// of long texts stays well inside the call's output limit.
pub const PAGE_LIMIT: u32 = 200;
/// Reads per callback: with the token fetch and one token retry this stays inside the host's
/// budget of HTTP requests per call. Whatever is left is read at the next callback.
pub const MAX_PAGES: usize = 5;
/// Stop reading once the events gathered are about this large (the call's output is capped at
/// 1 MiB, and one more page may still follow the check).
pub const EVENT_BYTES_BUDGET: usize = 384 * 1024;

/// Origin of a message written by the WeChat customer (4 = system event, 5 = a servicer).
const FROM_CUSTOMER: i64 = 3;

/// What a `kf_msg_or_event` callback announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The callback's `Token`, passed to `sync_msg`.
    pub token: String,
    /// The kf account with new messages (`OpenKfId`; empty in older callbacks).
    pub open_kfid: String,
}

/// The reader's position for one kf account.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Position {
    /// Where the next read starts (`next_cursor` of the last page read; empty = the oldest
    /// message the platform still keeps).
    cursor: String,
    /// The callback whose read moved `cursor` here, and where that read started: a retry of
    /// the same callback reads again from `from`.
    by_token: String,
    from: String,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    next_cursor: String,
    #[serde(default)]
    has_more: serde_json::Value,
    #[serde(default)]
    msg_list: Vec<Message>,
}

#[derive(Deserialize)]
struct Message {
    msgid: String,
    #[serde(default)]
    open_kfid: String,
    #[serde(default)]
    external_userid: String,
    #[serde(default)]
    send_time: i64,
    #[serde(default)]
    origin: i64,
    #[serde(default)]
    servicer_userid: String,
    #[serde(default)]
    msgtype: String,
    #[serde(default)]
    text: Option<Text>,
}

#[derive(Deserialize)]
struct Text {
    #[serde(default)]
    content: String,
    #[serde(default)]
    menu_id: Option<String>,
}

/// The store key of the position for `open_kfid` (digested: ids have no published bound).
fn position_key(corp_id: &str, open_kfid: &str) -> String {
    format!("kf_cursor/{}", dedupe_id(&[corp_id, open_kfid]))
}

/// Reads what `notice` announced and returns one `message_received` event per customer
/// message. The first read failing is an error (the platform should retry the callback); a
/// later one ends the reading with what was read so far.
pub fn pull(client: &Client<'_>, notice: &Notice) -> Result<Vec<NormalizedEvent>, PluginError> {
    let host = client.host;
    let corp = client.config.corp_id.as_str();
    let key = position_key(corp, &notice.open_kfid);
    let position: Position = kv::get_json(host, &key).unwrap_or_default();
    let start = if position.by_token == notice.token {
        position.from
    } else {
        position.cursor
    };
    let mut cursor = start.clone();
    let mut events = Vec::new();
    let mut bytes = 0;
    for page_no in 0..MAX_PAGES {
        let page = match read(client, notice, &cursor) {
            Ok(page) => page,
            Err(e) if page_no == 0 => return Err(e),
            Err(e) => {
                host.warn(&format!(
                    "kf/sync_msg stopped after {page_no} pages ({}); the rest is read at the next callback",
                    e.kind()
                ));
                break;
            }
        };
        for message in &page.msg_list {
            if let Some(event) = event_of(corp, message) {
                bytes += event.attributes.len() + event.dedupe_id.len() + 64;
                events.push(event);
            }
        }
        if !page.next_cursor.is_empty() {
            cursor = page.next_cursor;
        }
        if !more(&page.has_more) || bytes >= EVENT_BYTES_BUDGET {
            break;
        }
    }
    let position = Position {
        cursor,
        by_token: notice.token.clone(),
        from: start,
    };
    kv::set_json(host, &key, &position, None);
    Ok(events)
}

fn read(client: &Client<'_>, notice: &Notice, cursor: &str) -> Result<Page, PluginError> {
    let mut body = serde_json::json!({ "token": notice.token, "limit": PAGE_LIMIT });
    if !cursor.is_empty() {
        body["cursor"] = cursor.into();
    }
    if !notice.open_kfid.is_empty() {
        body["open_kfid"] = notice.open_kfid.as_str().into();
    }
    let answer = client.post("kf/sync_msg", &body, Delivery::Idempotent)?;
    serde_json::from_value(answer)
        .map_err(|e| PluginError::transient(format!("kf/sync_msg: unexpected answer: {e}")))
}

/// `has_more` is documented as 0/1; accept a boolean too.
fn more(has_more: &serde_json::Value) -> bool {
    has_more.as_i64().is_some_and(|n| n != 0) || has_more.as_bool() == Some(true)
}

/// The normalized event of one message; `None` for what the customer did not write
/// (system events, servicers' replies) and for messages without a customer.
fn event_of(corp: &str, message: &Message) -> Option<NormalizedEvent> {
    if message.origin != FROM_CUSTOMER || message.external_userid.is_empty() {
        return None;
    }
    let (text, menu_id) = match &message.text {
        Some(t) => (t.content.as_str(), t.menu_id.as_deref()),
        // Images, voice, files...: still a reply; the text stays empty so filters on it work.
        None => ("", None),
    };
    Some(NormalizedEvent {
        kind: "message_received".to_owned(),
        dedupe_id: dedupe_id(&[corp, "kf", &message.msgid]),
        occurred_at_ms: message.send_time.saturating_mul(1000),
        contact: Some(message.external_userid.clone()),
        staff: Some(message.servicer_userid.clone()).filter(|s| !s.is_empty()),
        group: None,
        attributes: serde_json::json!({
            "text": text,
            "msg_type": message.msgtype,
            "msg_id": message.msgid,
            "open_kfid": message.open_kfid,
            "menu_id": menu_id,
        })
        .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(value: serde_json::Value) -> Message {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn only_customers_messages_become_events() {
        let text = message(serde_json::json!({
            "msgid": "m1", "open_kfid": "wk1", "external_userid": "wmA", "send_time": 1_700_000_000,
            "origin": 3, "servicer_userid": "li", "msgtype": "text", "text": {"content": "1", "menu_id": "101"}
        }));
        let e = event_of("ww1", &text).unwrap();
        assert_eq!(e.kind, "message_received");
        assert_eq!(e.contact.as_deref(), Some("wmA"));
        assert_eq!(e.staff.as_deref(), Some("li"));
        assert_eq!(e.occurred_at_ms, 1_700_000_000_000);
        let attributes: serde_json::Value = serde_json::from_str(&e.attributes).unwrap();
        assert_eq!(attributes["text"], "1");
        assert_eq!(attributes["menu_id"], "101");
        assert_eq!(attributes["msg_id"], "m1");
        // The id follows the platform's msgid only.
        assert_eq!(e.dedupe_id, event_of("ww1", &text).unwrap().dedupe_id);

        let image = message(serde_json::json!({
            "msgid": "m2", "external_userid": "wmA", "origin": 3, "msgtype": "image", "image": {"media_id": "x"}
        }));
        let e = event_of("ww1", &image).unwrap();
        assert_ne!(e.dedupe_id, event_of("ww1", &text).unwrap().dedupe_id);
        assert_eq!(e.staff, None);
        let attributes: serde_json::Value = serde_json::from_str(&e.attributes).unwrap();
        assert_eq!(attributes["text"], "");
        assert_eq!(attributes["msg_type"], "image");

        for origin in [4, 5] {
            let other = message(serde_json::json!({
                "msgid": "m3", "external_userid": "wmA", "origin": origin, "msgtype": "text", "text": {"content": "hi"}
            }));
            assert!(event_of("ww1", &other).is_none(), "origin {origin}");
        }
    }

    #[test]
    fn has_more_reads_numbers_and_booleans() {
        assert!(more(&serde_json::json!(1)));
        assert!(more(&serde_json::json!(true)));
        assert!(!more(&serde_json::json!(0)));
        assert!(!more(&serde_json::Value::Null));
    }
}
