//! Hostile callbacks, natively: whatever the query and body, `parse_webhook` answers with an
//! error or an outcome, never a panic; nothing unsigned yields events; a signed payload of
//! any shape (the platform's, or one signed with a leaked key) is parsed or refused.
//!
//! Cases per property: 64, or `PROPTEST_CASES` for longer runs by hand.

use proptest::prelude::*;
use sop_plugin_sdk::testing::FakeHost;
use sop_plugin_sdk::{Plugin, WebhookError, WebhookRequest};

use crate::WeCom;
use crate::tests::{SIGNED_AT_MS, account, signed_callback, webhook};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig::with_cases(cases)
}

const VALID: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
    <CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>\
    <ChangeType><![CDATA[add_external_contact]]></ChangeType><UserID><![CDATA[li]]></UserID>\
    <ExternalUserID><![CDATA[wmA]]></ExternalUserID><State><![CDATA[live_qr]]></State><WelcomeCode><![CDATA[WC9]]></WelcomeCode></xml>";

fn parse(request: WebhookRequest) -> Result<sop_plugin_sdk::WebhookOutcome, WebhookError> {
    WeCom::parse_webhook(&FakeHost::new(SIGNED_AT_MS), account(), request)
}

/// `text` with a few characters deleted, replaced or inserted at chosen places.
fn mutate(text: &str, edits: &[(usize, u8, char)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for &(at, op, c) in edits {
        let at = at % (chars.len() + 1);
        match op % 3 {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 if at < chars.len() => chars[at] = c,
            _ => chars.insert(at, c),
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn unsigned_requests_of_any_shape_are_refused(
        method in prop_oneof![Just("GET".to_owned()), Just("POST".to_owned()), "[A-Z]{0,8}"],
        query in prop::collection::vec(("[a-z_]{0,14}", ".{0,80}"), 0..6),
        body in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut request = webhook(&method, &query, "");
        request.body = body;
        match parse(request) {
            Err(_) => {}
            Ok(outcome) => prop_assert!(outcome.events.is_empty(), "unsigned events: {outcome:?}"),
        }
    }

    #[test]
    fn signed_payloads_of_any_text_are_parsed_or_refused(inner in ".{0,600}") {
        let _ = parse(signed_callback(&inner));
    }

    #[test]
    fn signed_mutations_of_a_valid_callback_are_parsed_or_refused(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<char>()), 1..8),
    ) {
        let inner = mutate(VALID, &edits);
        if let Ok(outcome) = parse(signed_callback(&inner)) {
            for event in outcome.events {
                prop_assert!(!event.dedupe_id.is_empty());
                prop_assert!(serde_json::from_str::<serde_json::Value>(&event.attributes).is_ok());
            }
        }
    }
}

fn malformed(inner: &str) -> String {
    match parse(signed_callback(inner)) {
        Err(WebhookError::Malformed(why)) => why,
        other => panic!("expected a malformed-payload error, got {other:?}"),
    }
}

#[test]
fn deeply_nested_xml_is_a_clear_error() {
    let deep = format!(
        "<xml>{}{}</xml>",
        "<a>".repeat(100_000),
        "</a>".repeat(100_000)
    );
    let why = malformed(&deep);
    assert!(!why.is_empty());
}

#[test]
fn entity_expansion_is_refused() {
    let mut dtd = String::from("<!DOCTYPE xml [<!ENTITY l0 \"lol\">");
    for i in 1..10 {
        let prev = format!("&l{};", i - 1);
        dtd.push_str(&format!("<!ENTITY l{i} \"{}\">", prev.repeat(10)));
    }
    dtd.push_str("]>");
    let laughs = format!(
        "{dtd}<xml><MsgType>event</MsgType><Event>change_external_contact</Event><ExternalUserID>&l9;</ExternalUserID></xml>"
    );
    let result = parse(signed_callback(&laughs));
    assert!(result.is_err(), "a billion laughs was accepted: {result:?}");
}

#[test]
fn a_body_that_is_not_utf8_is_refused() {
    let mut request = signed_callback(VALID);
    request.body.extend_from_slice(&[0xff, 0xfe, 0x80]);
    let err = parse(request).unwrap_err();
    assert!(
        matches!(&err, WebhookError::VerificationFailed(w) if w.contains("UTF-8")),
        "{err:?}"
    );
}
