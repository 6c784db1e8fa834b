//! Hostile webhooks, natively: whatever the headers and body, `parse_webhook` answers with an
//! error or an outcome, never a panic; nothing without a valid `X-Douyin-Signature` yields
//! events; a signed body of any shape (the platform's, or one signed with a leaked secret) is
//! parsed or refused.
//!
//! Cases per property: 64, or `PROPTEST_CASES` for longer runs by hand.

use proptest::prelude::*;
use sop_plugin_sdk::testing::FakeHost;
use sop_plugin_sdk::{Plugin, WebhookError, WebhookOutcome, WebhookRequest};

use crate::Douyin;
use crate::tests::{account, message_body, signed, webhook};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig::with_cases(cases)
}

fn parse(request: WebhookRequest) -> Result<WebhookOutcome, WebhookError> {
    Douyin::parse_webhook(&FakeHost::new(0), account(), request)
}

/// Any JSON value, a few levels deep.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("event".to_owned()),
                    Just("content".to_owned()),
                    Just("client_key".to_owned()),
                    Just("from_user_id".to_owned()),
                    Just("create_time".to_owned()),
                    Just("text".to_owned()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn unsigned_or_forged_requests_yield_no_events(
        body in prop::collection::vec(any::<u8>(), 0..2048),
        signature in prop::option::of("[0-9a-fA-F]{0,48}"),
        headers in prop::collection::vec(("[A-Za-z-]{1,20}", ".{0,40}"), 0..4),
    ) {
        let mut request = webhook("", signature.as_deref(), None);
        request.body = body;
        request.headers.extend(headers);
        match parse(request) {
            Err(_) => {}
            Ok(outcome) => prop_assert!(outcome.events.is_empty(), "events without a signature: {outcome:?}"),
        }
    }

    #[test]
    fn signed_json_of_any_shape_is_parsed_or_refused(value in json(), as_string in any::<bool>()) {
        // Douyin's `content` is an object or a JSON-encoded string: try both.
        let mut value = value;
        if as_string && let Some(content) = value.get_mut("content") {
            *content = serde_json::Value::String(content.to_string());
        }
        let _ = parse(signed(&value.to_string(), None));
    }

    #[test]
    fn signed_mutations_of_a_message_are_parsed_or_refused(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = message_body("im_receive_msg").into_bytes();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let body = String::from_utf8_lossy(&bytes).into_owned();
        if let Ok(outcome) = parse(signed(&body, None)) {
            for event in outcome.events {
                prop_assert!(!event.dedupe_id.is_empty());
            }
        }
    }
}

fn malformed(body: &str) -> String {
    match parse(signed(body, None)) {
        Err(WebhookError::Malformed(why)) => why,
        other => panic!("expected a malformed-body error, got {other:?}"),
    }
}

#[test]
fn deeply_nested_json_is_a_clear_error() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    // Refused as the wrong shape before serde_json descends.
    assert!(malformed(&deep).starts_with("body:"));
    // Nested inside the JSON-encoded `content` string as well.
    let inner = format!("{}{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    let body = serde_json::json!({"event": "im_receive_msg", "content": inner}).to_string();
    assert!(malformed(&body).contains("recursion limit"));
}

#[test]
fn a_body_that_is_not_utf8_is_refused() {
    let mut body = message_body("im_receive_msg").into_bytes();
    body.insert(10, 0xff);
    let mut request = webhook("", None, None);
    let signature = crate::signature::sign("dy-secret", &body);
    request
        .headers
        .push(("X-Douyin-Signature".into(), signature));
    request.body = body;
    let err = parse(request).unwrap_err();
    assert!(matches!(err, WebhookError::Malformed(_)), "{err:?}");
}
