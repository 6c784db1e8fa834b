//! Customers' messages through 微信客服 against the fake host: the signed `kf_msg_or_event`
//! callback, `kf/sync_msg` pages from the stored cursor, retries of the same callback, and
//! failures while reading.

use serde_json::{Value, json};
use sop_plugin_sdk::testing::{FakeHost, json_response};
use sop_plugin_sdk::{FetchError, NormalizedEvent, Plugin, WebhookError, WebhookOutcome};

use crate::WeCom;
use crate::kf::PAGE_LIMIT;
use crate::tests::{SIGNED_AT_MS, account, body_of, errcode, ok, signed_callback, token_ok};

const SYNC: &str = "/cgi-bin/kf/sync_msg";

fn kf_callback(token: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><CreateTime>1700000000</CreateTime>\
         <MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>\
         <Token><![CDATA[{token}]]></Token><OpenKfId><![CDATA[wk1]]></OpenKfId></xml>"
    )
}

fn text(msgid: &str, from: &str, content: &str) -> Value {
    json!({"msgid": msgid, "open_kfid": "wk1", "external_userid": from, "send_time": 1_700_000_001,
           "origin": 3, "servicer_userid": "li", "msgtype": "text", "text": {"content": content}})
}

fn page(host: &FakeHost, next: &str, more: bool, messages: Vec<Value>) {
    host.respond(
        "POST",
        SYNC,
        ok(json!({"next_cursor": next, "has_more": u8::from(more), "msg_list": messages})),
    );
}

fn deliver(host: &FakeHost, token: &str) -> Result<WebhookOutcome, WebhookError> {
    WeCom::parse_webhook(host, account(), signed_callback(&kf_callback(token)))
}

fn texts(events: &[NormalizedEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let a: Value = serde_json::from_str(&e.attributes).unwrap();
            a["text"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn sync_bodies(host: &FakeHost) -> Vec<Value> {
    host.requests_to(SYNC).iter().map(body_of).collect()
}

#[test]
fn a_kf_callback_reads_the_messages_and_keeps_the_cursor() {
    let host = FakeHost::new(SIGNED_AT_MS);
    token_ok(&host, "T1");
    page(
        &host,
        "c1",
        true,
        vec![
            text("m1", "wmA", "1"),
            // A servicer's reply and a system event are not the customer's words.
            json!({"msgid": "m2", "external_userid": "wmA", "origin": 5, "msgtype": "text", "text": {"content": "您好"}}),
            json!({"msgid": "m3", "origin": 4, "msgtype": "event", "event": {"event_type": "enter_session"}}),
        ],
    );
    page(&host, "c2", false, vec![text("m4", "wmB", "优惠券")]);

    let outcome = deliver(&host, "ENC1").unwrap();
    assert_eq!(outcome.response.body, b"success");
    assert_eq!(texts(&outcome.events), ["1", "优惠券"]);
    let first = &outcome.events[0];
    assert_eq!(first.kind, "message_received");
    assert_eq!(first.contact.as_deref(), Some("wmA"));
    assert_eq!(first.staff.as_deref(), Some("li"));
    assert_eq!(first.occurred_at_ms, 1_700_000_001_000);
    assert_eq!(host.unused_answers(), 0);

    // The first read has no cursor; the next page follows next_cursor; both carry the token.
    let bodies = sync_bodies(&host);
    assert_eq!(
        bodies[0],
        json!({"token": "ENC1", "limit": PAGE_LIMIT, "open_kfid": "wk1"})
    );
    assert_eq!(bodies[1]["cursor"], "c1");
    assert_eq!(bodies[1]["token"], "ENC1");

    // The next callback starts where this one ended.
    page(&host, "c3", false, vec![text("m5", "wmA", "在吗")]);
    let outcome = deliver(&host, "ENC2").unwrap();
    assert_eq!(texts(&outcome.events), ["在吗"]);
    assert_eq!(sync_bodies(&host)[2]["cursor"], "c2");
    assert_eq!(sync_bodies(&host)[2]["token"], "ENC2");
}

#[test]
fn a_retried_callback_reads_again_from_where_it_started() {
    let host = FakeHost::new(SIGNED_AT_MS);
    token_ok(&host, "T1");
    page(&host, "c1", false, vec![text("m1", "wmA", "1")]);
    let first = deliver(&host, "ENC1").unwrap();

    // WeCom did not get our answer and sends the same callback again.
    page(&host, "c1", false, vec![text("m1", "wmA", "1")]);
    let again = deliver(&host, "ENC1").unwrap();
    assert!(
        sync_bodies(&host)[1].get("cursor").is_none(),
        "re-read from the start"
    );
    assert_eq!(
        first.events[0].dedupe_id, again.events[0].dedupe_id,
        "the runtime drops the repeat by the platform's msgid"
    );

    // A new callback moves on from the cursor reached.
    page(&host, "c2", false, vec![]);
    assert!(deliver(&host, "ENC2").unwrap().events.is_empty());
    assert_eq!(sync_bodies(&host)[2]["cursor"], "c1");
}

#[test]
fn a_failed_first_read_asks_for_a_retry_and_a_later_failure_keeps_what_was_read() {
    let host = FakeHost::new(SIGNED_AT_MS);
    token_ok(&host, "T1");
    host.respond(
        "POST",
        SYNC,
        Err(FetchError::Connection(sop_plugin_sdk::ConnectionFailure {
            sent: false,
            message: "refused".into(),
        })),
    );
    let err = deliver(&host, "ENC1").unwrap_err();
    let WebhookError::Malformed(message) = err else {
        panic!("a failed read is an error answer so that WeCom retries: {err:?}");
    };
    assert!(message.contains("transient"), "{message}");

    // The retry reads page one, then page two fails: page one's events still go out and
    // the cursor stays after page one.
    page(&host, "c1", true, vec![text("m1", "wmA", "1")]);
    host.respond("POST", SYNC, errcode(-1));
    let outcome = deliver(&host, "ENC1").unwrap();
    assert_eq!(texts(&outcome.events), ["1"]);
    page(&host, "c2", false, vec![]);
    deliver(&host, "ENC2").unwrap();
    assert_eq!(sync_bodies(&host).last().unwrap()["cursor"], "c1");

    // An expired callback token (95007) is an error for that callback too.
    host.respond("POST", SYNC, errcode(95007));
    assert!(deliver(&host, "ENC3").is_err());
}

#[test]
fn reading_stops_after_the_page_budget() {
    let host = FakeHost::new(SIGNED_AT_MS);
    token_ok(&host, "T1");
    for i in 0..crate::kf::MAX_PAGES + 1 {
        page(
            &host,
            &format!("c{i}"),
            true,
            vec![text(&format!("m{i}"), "wmA", "x")],
        );
    }
    let outcome = deliver(&host, "ENC1").unwrap();
    assert_eq!(outcome.events.len(), crate::kf::MAX_PAGES);
    assert_eq!(
        host.unused_answers(),
        1,
        "the rest waits for the next callback"
    );
    // Within the host's limit of 16 requests per call.
    assert!(host.requests().len() <= 16);
}

#[test]
fn an_unreadable_answer_is_reported() {
    let host = FakeHost::new(SIGNED_AT_MS);
    token_ok(&host, "T1");
    host.respond(
        "POST",
        SYNC,
        json_response(200, &json!({"errcode": 0, "msg_list": "nope"})),
    );
    assert!(matches!(
        deliver(&host, "ENC1"),
        Err(WebhookError::Malformed(_))
    ));
}
