//! Decrypted callback XML → normalized events.
//!
//! The XML is parsed with roxmltree (pure Rust, no dependencies, builds for wasm32) rather
//! than by string search, because `change_external_chat` nests `MemChangeList/Item` and
//! values arrive as CDATA or escaped text interchangeably.

use sop_plugin_sdk::{NormalizedEvent, WebhookError, webhook::dedupe_id};

use crate::kf::Notice;

/// What one decrypted callback means.
#[derive(Debug)]
pub enum Callback {
    /// Events carried by the callback itself (contact and group changes, app messages).
    Events(Vec<NormalizedEvent>),
    /// A `kf_msg_or_event`: customers wrote to a kf account; read the messages with
    /// `kf/sync_msg`.
    KfMessages(Notice),
    /// A customer group was created or changed: read it with `groupchat/get`, so that sop
    /// learns its owner, name and size (the callback carries only the `ChatId`).
    GroupChanged(GroupChange),
}

/// A `change_external_chat` callback other than `dismiss`.
#[derive(Debug)]
pub struct GroupChange {
    pub chat_id: String,
    /// `group_created` or `group_updated`.
    pub kind: &'static str,
    /// `create`, or the `UpdateDetail` (`add_member`, `change_owner`, `change_name`, ...).
    pub change: String,
    pub dedupe_id: String,
    pub occurred_at_ms: i64,
    /// One `group_member_joined`/`group_member_left` per member, delivered even when the
    /// group cannot be read.
    pub members: Vec<NormalizedEvent>,
}

/// The root's child elements of one callback.
struct Fields<'a, 'input> {
    root: roxmltree::Node<'a, 'input>,
}

impl Fields<'_, '_> {
    fn get(&self, name: &str) -> Option<String> {
        self.root
            .children()
            .find(|n| n.has_tag_name(name))
            .map(|n| n.text().unwrap_or_default().trim().to_owned())
    }

    fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default()
    }

    fn non_empty(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// `MemChangeList/Item` values.
    fn members(&self) -> Vec<String> {
        self.root
            .children()
            .filter(|n| n.has_tag_name("MemChangeList"))
            .flat_map(|list| list.children().filter(|n| n.has_tag_name("Item")))
            .filter_map(|item| item.text().map(|t| t.trim().to_owned()))
            .filter(|t| !t.is_empty())
            .collect()
    }
}

/// An event with the common fields filled in.
fn event(
    kind: &str,
    dedupe_parts: &[&str],
    occurred_at_ms: i64,
    attributes: serde_json::Value,
) -> NormalizedEvent {
    NormalizedEvent {
        kind: kind.to_owned(),
        dedupe_id: dedupe_id(dedupe_parts),
        occurred_at_ms,
        contact: None,
        staff: None,
        group: None,
        attributes: attributes.to_string(),
    }
}

/// The meaning of one decrypted callback. Callbacks we do not act on yield no events (and
/// are still answered "success", or WeCom would retry them).
pub fn parse(xml: &str) -> Result<Callback, WebhookError> {
    let document = roxmltree::Document::parse(xml)
        .map_err(|e| WebhookError::malformed(format!("callback XML: {e}")))?;
    let fields = Fields {
        root: document.root_element(),
    };
    let create_time = fields.text("CreateTime");
    let occurred_at_ms = create_time
        .parse::<i64>()
        .map_err(|_| {
            WebhookError::malformed(format!("CreateTime `{create_time}` is not a number"))
        })?
        .saturating_mul(1000);
    let to = fields.text("ToUserName");
    if fields.text("MsgType") != "event" {
        return Ok(Callback::Events(
            message(&fields, &to, occurred_at_ms).into_iter().collect(),
        ));
    }
    let name = fields.text("Event");
    let change = fields.text("ChangeType");
    let events = match name.as_str() {
        "change_external_contact" => {
            contact_change(&fields, &to, &change, &create_time, occurred_at_ms)
                .into_iter()
                .collect()
        }
        "change_external_chat" => {
            return Ok(chat_change(
                &fields,
                &to,
                &change,
                &create_time,
                occurred_at_ms,
            ));
        }
        "kf_msg_or_event" => {
            let token = fields
                .non_empty("Token")
                .ok_or_else(|| WebhookError::malformed("kf_msg_or_event without a Token"))?;
            return Ok(Callback::KfMessages(Notice {
                token,
                open_kfid: fields.text("OpenKfId"),
            }));
        }
        _ => Vec::new(),
    };
    Ok(Callback::Events(events))
}

fn message(fields: &Fields<'_, '_>, to: &str, occurred_at_ms: i64) -> Option<NormalizedEvent> {
    let msg_id = fields.non_empty("MsgId")?;
    let msg_type = fields.text("MsgType");
    // A staff member writing to the app; customers' messages come through 微信客服 (`kf`).
    let mut event = event(
        "staff_message_received",
        &[to, &msg_id],
        occurred_at_ms,
        serde_json::json!({
            "msg_type": msg_type,
            "text": fields.get("Content"),
            "msg_id": msg_id,
        }),
    );
    event.staff = fields.non_empty("FromUserName");
    Some(event)
}

fn contact_change(
    fields: &Fields<'_, '_>,
    to: &str,
    change: &str,
    create_time: &str,
    occurred_at_ms: i64,
) -> Option<NormalizedEvent> {
    let staff = fields.text("UserID");
    let contact = fields.text("ExternalUserID");
    let parts = [
        to,
        "change_external_contact",
        change,
        &staff,
        &contact,
        create_time,
    ];
    let mut event = match change {
        "add_external_contact" | "add_half_external_contact" => event(
            "contact_added",
            &parts,
            occurred_at_ms,
            serde_json::json!({
                "state": fields.get("State"),
                "welcome_code": fields.non_empty("WelcomeCode"),
                "half": change == "add_half_external_contact",
            }),
        ),
        "edit_external_contact" => event(
            "contact_edited",
            &parts,
            occurred_at_ms,
            serde_json::json!({}),
        ),
        "del_external_contact" => event(
            "contact_deleted",
            &parts,
            occurred_at_ms,
            serde_json::json!({ "source": fields.get("Source") }),
        ),
        "del_follow_user" => event(
            "staff_deleted_by_contact",
            &parts,
            occurred_at_ms,
            serde_json::json!({}),
        ),
        _ => return None,
    };
    event.staff = Some(staff).filter(|s| !s.is_empty());
    event.contact = Some(contact).filter(|c| !c.is_empty());
    Some(event)
}

fn chat_change(
    fields: &Fields<'_, '_>,
    to: &str,
    change: &str,
    create_time: &str,
    occurred_at_ms: i64,
) -> Callback {
    let chat_id = fields.text("ChatId");
    let detail = fields.text("UpdateDetail");
    let dedupe = |extra: &str| {
        dedupe_id(&[
            to,
            "change_external_chat",
            &chat_id,
            change,
            &detail,
            extra,
            create_time,
        ])
    };
    let kind = match change {
        "create" => "group_created",
        "update" => "group_updated",
        "dismiss" => {
            let mut gone = event(
                "group_dismissed",
                &[to, "change_external_chat", &chat_id, change, create_time],
                occurred_at_ms,
                serde_json::json!({}),
            );
            gone.group = Some(chat_id).filter(|c| !c.is_empty());
            return Callback::Events(gone.group.is_some().then_some(gone).into_iter().collect());
        }
        _ => return Callback::Events(Vec::new()),
    };
    if chat_id.is_empty() {
        return Callback::Events(Vec::new());
    }
    let members = match (change, detail.as_str()) {
        ("update", "add_member") => member_events(
            fields,
            to,
            "group_member_joined",
            &chat_id,
            &detail,
            create_time,
            occurred_at_ms,
        ),
        ("update", "del_member") => member_events(
            fields,
            to,
            "group_member_left",
            &chat_id,
            &detail,
            create_time,
            occurred_at_ms,
        ),
        _ => Vec::new(),
    };
    Callback::GroupChanged(GroupChange {
        kind,
        change: if change == "create" {
            change.to_owned()
        } else {
            detail.clone()
        },
        dedupe_id: dedupe(&fields.text("CurMemVer")),
        occurred_at_ms,
        members,
        chat_id,
    })
}

fn member_events(
    fields: &Fields<'_, '_>,
    to: &str,
    kind: &str,
    chat_id: &str,
    detail: &str,
    create_time: &str,
    occurred_at_ms: i64,
) -> Vec<NormalizedEvent> {
    let version = fields.text("CurMemVer");
    let scene = |name: &str| fields.get(name).and_then(|s| s.parse::<i64>().ok());
    fields
        .members()
        .into_iter()
        .map(|member| {
            let attributes = if kind == "group_member_joined" {
                serde_json::json!({ "join_scene": scene("JoinScene"), "member_version": version })
            } else {
                serde_json::json!({ "quit_scene": scene("QuitScene"), "member_version": version })
            };
            let mut event = event(
                kind,
                &[
                    to,
                    "change_external_chat",
                    chat_id,
                    detail,
                    &member,
                    create_time,
                    &version,
                ],
                occurred_at_ms,
                attributes,
            );
            event.group = Some(chat_id.to_owned());
            event.contact = Some(member);
            event
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(xml: &str) -> Result<Vec<NormalizedEvent>, WebhookError> {
        match parse(xml)? {
            Callback::Events(events) => Ok(events),
            Callback::GroupChanged(change) => Ok(change.members),
            Callback::KfMessages(notice) => panic!("unexpected kf notice {notice:?}"),
        }
    }

    #[test]
    fn add_contact_carries_state_and_welcome_code() {
        let xml = "<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
            <CreateTime>1403610513</CreateTime><MsgType><![CDATA[event]]></MsgType>\
            <Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType>\
            <UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[wmA]]></ExternalUserID>\
            <State><![CDATA[qr_live]]></State><WelcomeCode><![CDATA[WC1]]></WelcomeCode></xml>";
        let events = events(xml).unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.kind, "contact_added");
        assert_eq!(e.occurred_at_ms, 1_403_610_513_000);
        assert_eq!(e.staff.as_deref(), Some("zhangsan"));
        assert_eq!(e.contact.as_deref(), Some("wmA"));
        let attributes: serde_json::Value = serde_json::from_str(&e.attributes).unwrap();
        assert_eq!(attributes["state"], "qr_live");
        assert_eq!(attributes["welcome_code"], "WC1");
        // A retry of the same callback has the same id; another contact a different one.
        assert_eq!(events_of(xml)[0].dedupe_id, e.dedupe_id);
        assert_ne!(
            events_of(&xml.replace("wmA", "wmB"))[0].dedupe_id,
            e.dedupe_id
        );
    }

    fn events_of(xml: &str) -> Vec<NormalizedEvent> {
        events(xml).unwrap()
    }

    #[test]
    fn contact_deletions_in_both_directions() {
        let xml = |change: &str| {
            format!(
                "<xml><ToUserName>ww1</ToUserName><CreateTime>1</CreateTime><MsgType>event</MsgType>\
                 <Event>change_external_contact</Event><ChangeType>{change}</ChangeType>\
                 <UserID>li</UserID><ExternalUserID>wmA</ExternalUserID><Source>DELETE_BY_TRANSFER</Source></xml>"
            )
        };
        assert_eq!(
            events_of(&xml("del_external_contact"))[0].kind,
            "contact_deleted"
        );
        assert_eq!(
            events_of(&xml("del_follow_user"))[0].kind,
            "staff_deleted_by_contact"
        );
        assert!(events_of(&xml("transfer_fail")).is_empty());
    }

    #[test]
    fn group_updates_yield_one_event_per_member() {
        let xml = "<xml><ToUserName>ww1</ToUserName><CreateTime>2</CreateTime><MsgType>event</MsgType>\
            <Event>change_external_chat</Event><ChatId>wrC</ChatId><ChangeType>update</ChangeType>\
            <UpdateDetail>add_member</UpdateDetail><JoinScene>3</JoinScene><MemChangeCnt>2</MemChangeCnt>\
            <MemChangeList><Item>wmA</Item><Item>wmB</Item></MemChangeList><CurMemVer>v2</CurMemVer></xml>";
        let events = events_of(xml);
        assert_eq!(events.len(), 2);
        assert!(
            events
                .iter()
                .all(|e| e.kind == "group_member_joined" && e.group.as_deref() == Some("wrC"))
        );
        assert_eq!(events[1].contact.as_deref(), Some("wmB"));
        assert_ne!(events[0].dedupe_id, events[1].dedupe_id);
        let left = events_of(&xml.replace("add_member", "del_member"));
        assert_eq!(left[0].kind, "group_member_left");
        assert!(events_of(&xml.replace("add_member", "change_name")).is_empty());
    }

    #[test]
    fn group_changes_ask_for_the_group_and_dismissals_do_not() {
        let xml = |change: &str, detail: &str| {
            format!(
                "<xml><ToUserName>ww1</ToUserName><CreateTime>5</CreateTime><MsgType>event</MsgType>\
                 <Event>change_external_chat</Event><ChatId>wrC</ChatId><ChangeType>{change}</ChangeType>\
                 <UpdateDetail>{detail}</UpdateDetail></xml>"
            )
        };
        let Callback::GroupChanged(created) = parse(&xml("create", "")).unwrap() else {
            panic!("a new group is read");
        };
        assert_eq!(
            (created.kind, created.change.as_str()),
            ("group_created", "create")
        );
        assert_eq!(created.chat_id, "wrC");
        assert!(created.members.is_empty());
        let Callback::GroupChanged(renamed) = parse(&xml("update", "change_name")).unwrap() else {
            panic!("a renamed group is read again");
        };
        assert_eq!(
            (renamed.kind, renamed.change.as_str()),
            ("group_updated", "change_name")
        );
        assert_ne!(renamed.dedupe_id, created.dedupe_id);
        let Callback::GroupChanged(owner) = parse(&xml("update", "change_owner")).unwrap() else {
            panic!("a new owner is read");
        };
        assert_ne!(owner.dedupe_id, renamed.dedupe_id);
        let gone = events_of(&xml("dismiss", ""));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].kind, "group_dismissed");
        assert_eq!(gone[0].group.as_deref(), Some("wrC"));
        assert!(events_of(&xml("dismiss", "").replace("wrC", "")).is_empty());
    }

    #[test]
    fn app_messages_from_staff() {
        let xml = "<xml><ToUserName>ww1</ToUserName><FromUserName>li</FromUserName><CreateTime>3</CreateTime>\
            <MsgType>text</MsgType><Content>1</Content><MsgId>123</MsgId><AgentID>1000002</AgentID></xml>";
        let events = events_of(xml);
        assert_eq!(events[0].kind, "staff_message_received");
        assert_eq!(events[0].staff.as_deref(), Some("li"));
    }

    #[test]
    fn kf_callbacks_announce_messages_to_read() {
        let xml = "<xml><ToUserName>ww1</ToUserName><CreateTime>4</CreateTime><MsgType>event</MsgType>\
            <Event>kf_msg_or_event</Event><Token><![CDATA[ENCApH]]></Token><OpenKfId>wk1</OpenKfId></xml>";
        let Callback::KfMessages(notice) = parse(xml).unwrap() else {
            panic!("a kf callback announces messages");
        };
        assert_eq!(notice.token, "ENCApH");
        assert_eq!(notice.open_kfid, "wk1");
        let no_token = xml.replace("<Token><![CDATA[ENCApH]]></Token>", "");
        assert!(matches!(parse(&no_token), Err(WebhookError::Malformed(_))));
    }

    #[test]
    fn broken_xml_is_malformed() {
        assert!(matches!(
            events("<xml><CreateTime>"),
            Err(WebhookError::Malformed(_))
        ));
        assert!(matches!(
            events("<xml><CreateTime>soon</CreateTime></xml>"),
            Err(WebhookError::Malformed(_))
        ));
    }
}
