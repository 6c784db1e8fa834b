//! Customer group callbacks against the fake host: a new or changed group is read with
//! `groupchat/get` (owner, name, size); member events survive a failed read; a dismissal
//! needs no read.

use serde_json::{Value, json};
use sop_plugin_sdk::testing::FakeHost;
use sop_plugin_sdk::{NormalizedEvent, Plugin, WebhookError, WebhookOutcome};

use crate::WeCom;
use crate::tests::{SIGNED_AT_MS, account, body_of, errcode, ok, signed_callback, token_ok};

const GET: &str = "/cgi-bin/externalcontact/groupchat/get";

fn chat_callback(change: &str, detail: &str, members: &[&str]) -> String {
    let items: String = members
        .iter()
        .map(|m| format!("<Item><![CDATA[{m}]]></Item>"))
        .collect();
    format!(
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><CreateTime>1700000000</CreateTime>\
         <MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_chat]]></Event>\
         <ChatId><![CDATA[wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA]]></ChatId><ChangeType><![CDATA[{change}]]></ChangeType>\
         <UpdateDetail><![CDATA[{detail}]]></UpdateDetail><JoinScene>1</JoinScene>\
         <MemChangeCnt>{}</MemChangeCnt><MemChangeList>{items}</MemChangeList><CurMemVer>v7</CurMemVer></xml>",
        members.len()
    )
}

fn group_answer(
    owner: &str,
    members: usize,
) -> Result<sop_plugin_sdk::HttpResponse, sop_plugin_sdk::FetchError> {
    let member_list: Vec<Value> = (0..members)
        .map(|i| json!({"userid": format!("wm{i}"), "type": 2, "join_time": 1_700_000_000, "join_scene": 1}))
        .collect();
    ok(json!({"group_chat": {
        "chat_id": "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", "name": "铁粉福利群", "owner": owner,
        "create_time": 1_699_000_000, "notice": "每周三上新", "member_list": member_list,
        "admin_list": [], "member_version": "v7"}}))
}

fn deliver(host: &FakeHost, xml: &str) -> Result<WebhookOutcome, WebhookError> {
    WeCom::parse_webhook(host, account(), signed_callback(xml))
}

fn attributes(event: &NormalizedEvent) -> Value {
    serde_json::from_str(&event.attributes).unwrap()
}

#[test]
fn a_new_group_is_read_for_its_owner_name_and_size() {
    let host = FakeHost::new(SIGNED_AT_MS);
    token_ok(&host, "T1");
    host.respond("POST", GET, group_answer("zhangsan", 3));
    let outcome = deliver(&host, &chat_callback("create", "", &[])).unwrap();
    assert_eq!(outcome.events.len(), 1);
    let created = &outcome.events[0];
    assert_eq!(created.kind, "group_created");
    assert_eq!(
        created.group.as_deref(),
        Some("wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA")
    );
    assert_eq!(created.staff.as_deref(), Some("zhangsan"));
    assert_eq!(created.contact, None);
    let a = attributes(created);
    assert_eq!(
        (
            a["name"].as_str(),
            a["owner"].as_str(),
            a["member_count"].as_u64(),
            a["change"].as_str()
        ),
        (
            Some("铁粉福利群"),
            Some("zhangsan"),
            Some(3),
            Some("create")
        )
    );
    let asked = body_of(&host.requests_to(GET)[0]);
    assert_eq!(asked["chat_id"], "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA");
}

#[test]
fn joins_come_first_then_the_group_as_read_after_them() {
    let host = FakeHost::new(SIGNED_AT_MS);
    token_ok(&host, "T1");
    host.respond("POST", GET, group_answer("lisi", 5));
    let outcome = deliver(
        &host,
        &chat_callback("update", "add_member", &["wmA", "wmB"]),
    )
    .unwrap();
    let kinds: Vec<&str> = outcome.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "group_member_joined",
            "group_member_joined",
            "group_updated"
        ]
    );
    assert_eq!(attributes(&outcome.events[2])["change"], "add_member");
    assert_eq!(attributes(&outcome.events[2])["member_count"], 5);
    // A retried callback carries the same ids: the runtime drops the copies.
    host.respond("POST", GET, group_answer("lisi", 5));
    let again = deliver(
        &host,
        &chat_callback("update", "add_member", &["wmA", "wmB"]),
    )
    .unwrap();
    let ids = |o: &WebhookOutcome| {
        o.events
            .iter()
            .map(|e| e.dedupe_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&again), ids(&outcome));
}

#[test]
fn a_failed_read_keeps_the_member_events_and_retries_a_bare_change() {
    let host = FakeHost::new(SIGNED_AT_MS);
    token_ok(&host, "T1");
    // 40050: the chat does not exist (or is not visible to the app).
    host.respond("POST", GET, errcode(40050));
    let outcome = deliver(&host, &chat_callback("update", "del_member", &["wmA"])).unwrap();
    let kinds: Vec<&str> = outcome.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["group_member_left"]);

    host.respond("POST", GET, errcode(-1));
    let err = deliver(&host, &chat_callback("update", "change_owner", &[])).unwrap_err();
    assert!(
        matches!(&err, WebhookError::Malformed(m) if m.contains("reading group")),
        "a failed read of a changed group asks WeCom to retry: {err:?}"
    );
}

#[test]
fn a_dismissed_group_needs_no_read() {
    let host = FakeHost::new(SIGNED_AT_MS);
    token_ok(&host, "T1");
    let outcome = deliver(&host, &chat_callback("dismiss", "", &[])).unwrap();
    assert_eq!(outcome.events.len(), 1);
    assert_eq!(outcome.events[0].kind, "group_dismissed");
    assert!(host.requests_to(GET).is_empty());
}
