//! Plugin-level tests against the fake host: webhook signing, freshness, parsing and errors;
//! the ledger actions' requests, answers and error mapping.

use serde_json::{Value, json};
use sop_plugin_sdk::testing::{FakeHost, json_response, url_query};
use sop_plugin_sdk::{
    Account, FetchError, Invocation, InvokeOutcome, Plugin, WebhookError, WebhookOutcome,
    WebhookRequest,
};

use crate::Shop;
use crate::actions::{BALANCE, CREDIT};
use crate::signature::sign;

const SECRET: &str = "whsec-test";
/// 2026-03-02 09:00 Asia/Shanghai.
const NOW_MS: i64 = 1_772_413_200_000;

fn account() -> Account {
    Account {
        id: "demo-shop".to_owned(),
        config: json!({"shop_id": "shop-1", "api_key": "key-1", "webhook_secret": SECRET})
            .to_string(),
    }
}

fn paid_body(order: &str) -> Value {
    json!({
        "id": format!("evt_{order}"),
        "type": "order.paid",
        "shop_id": "shop-1",
        "created_at": NOW_MS,
        "data": {
            "order_id": order, "member_id": "mem-7", "amount_cents": 12_900,
            "currency": "CNY", "at": NOW_MS - 5_000,
            "buyer": {"wecom_external_userid": "wmEmu7", "douyin_open_id": "dy-7"},
        },
    })
}

/// A request as the shop sends it: signed at `at_s` with `secret`.
fn request(body: &[u8], at_s: i64, secret: &str) -> WebhookRequest {
    let ts = at_s.to_string();
    WebhookRequest {
        method: "POST".to_owned(),
        query: vec![],
        headers: vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("X-Shop-Timestamp".to_owned(), ts.clone()),
            ("X-Shop-Signature".to_owned(), sign(secret, &ts, body)),
        ],
        body: body.to_vec(),
    }
}

fn parse(host: &FakeHost, request: WebhookRequest) -> Result<WebhookOutcome, WebhookError> {
    Shop::parse_webhook(host, account(), request)
}

fn refused(result: Result<WebhookOutcome, WebhookError>) -> String {
    match result {
        Err(WebhookError::VerificationFailed(why)) => why,
        other => panic!("expected verification-failed, got {other:?}"),
    }
}

fn malformed(result: Result<WebhookOutcome, WebhookError>) -> String {
    match result {
        Err(WebhookError::Malformed(why)) => why,
        other => panic!("expected malformed, got {other:?}"),
    }
}

#[test]
fn a_signed_order_paid_becomes_one_event_on_the_buyers_wecom_contact() {
    let host = FakeHost::new(NOW_MS);
    let body = paid_body("o-1").to_string();
    let outcome = parse(&host, request(body.as_bytes(), NOW_MS / 1_000, SECRET)).unwrap();
    assert_eq!(outcome.response.status, 200);
    assert_eq!(outcome.events.len(), 1);
    let event = &outcome.events[0];
    assert_eq!(event.kind, "order_paid");
    assert_eq!(event.contact.as_deref(), Some("wmEmu7"));
    assert_eq!(event.occurred_at_ms, NOW_MS - 5_000);
    let attributes: Value = serde_json::from_str(&event.attributes).unwrap();
    assert_eq!(
        attributes,
        json!({"event_id": "evt_o-1", "order_id": "o-1", "member_id": "mem-7",
               "amount_cents": 12_900, "currency": "CNY", "wecom_id": "wmEmu7",
               "douyin_open_id": "dy-7"})
    );
}

#[test]
fn the_contact_falls_back_to_douyin_then_to_the_member() {
    let host = FakeHost::new(NOW_MS);
    let contact_of = |buyer: Value| {
        let mut body = paid_body("o-2");
        body["data"]["buyer"] = buyer;
        let body = body.to_string();
        let outcome = parse(&host, request(body.as_bytes(), NOW_MS / 1_000, SECRET)).unwrap();
        let attributes: Value = serde_json::from_str(&outcome.events[0].attributes).unwrap();
        (outcome.events[0].contact.clone().unwrap(), attributes)
    };
    let (contact, attributes) = contact_of(json!({"douyin_open_id": "dy-7"}));
    assert_eq!(contact, "dy-7");
    assert!(attributes.get("wecom_id").is_none());
    let (contact, attributes) = contact_of(json!({"wecom_external_userid": ""}));
    assert_eq!(contact, "mem-7");
    assert!(attributes.get("wecom_id").is_none() && attributes.get("douyin_open_id").is_none());
}

#[test]
fn an_order_has_one_dedupe_id_whatever_event_id_a_resend_carries() {
    let host = FakeHost::new(NOW_MS);
    let first = paid_body("o-3").to_string();
    let mut again = paid_body("o-3");
    again["id"] = "evt_resent".into();
    let again = again.to_string();
    let other = paid_body("o-4").to_string();
    let id = |body: &str| {
        parse(&host, request(body.as_bytes(), NOW_MS / 1_000, SECRET))
            .unwrap()
            .events[0]
            .dedupe_id
            .clone()
    };
    assert_eq!(id(&first), id(&again));
    assert_ne!(id(&first), id(&other));
}

#[test]
fn a_bad_or_missing_signature_is_refused() {
    let host = FakeHost::new(NOW_MS);
    let body = paid_body("o-1").to_string();
    let why = refused(parse(
        &host,
        request(body.as_bytes(), NOW_MS / 1_000, "guessed"),
    ));
    assert!(why.contains("does not match"), "{why}");
    // Signed, then the body changed (points inflated on the way).
    let mut tampered = request(body.as_bytes(), NOW_MS / 1_000, SECRET);
    tampered.body = body.replace("12900", "1290000").into_bytes();
    refused(parse(&host, tampered));
    // Signed, then the timestamp moved to look fresh.
    let mut moved = request(body.as_bytes(), NOW_MS / 1_000 - 3_600, SECRET);
    moved.headers[1].1 = (NOW_MS / 1_000).to_string();
    refused(parse(&host, moved));
    for header in ["X-Shop-Signature", "X-Shop-Timestamp"] {
        let mut missing = request(body.as_bytes(), NOW_MS / 1_000, SECRET);
        missing.headers.retain(|(name, _)| name != header);
        let why = refused(parse(&host, missing));
        assert!(why.contains(header), "{why}");
    }
}

#[test]
fn a_stale_or_future_timestamp_is_refused_on_the_runtimes_clock() {
    let host = FakeHost::new(NOW_MS);
    let body = paid_body("o-1").to_string();
    let at = NOW_MS / 1_000;
    // Inside the 300 s window either way.
    assert!(parse(&host, request(body.as_bytes(), at - 300, SECRET)).is_ok());
    assert!(parse(&host, request(body.as_bytes(), at + 300, SECRET)).is_ok());
    let why = refused(parse(&host, request(body.as_bytes(), at - 301, SECRET)));
    assert!(why.contains("stale or replayed"), "{why}");
    refused(parse(&host, request(body.as_bytes(), at + 301, SECRET)));
    // The same captured request, replayed ten minutes later.
    let captured = request(body.as_bytes(), at, SECRET);
    assert!(parse(&host, captured.clone()).is_ok());
    host.advance_ms(600_000);
    refused(parse(&host, captured));
    // A timestamp that is not seconds, correctly signed.
    let mut odd = request(body.as_bytes(), at, SECRET);
    odd.headers[1].1 = "yesterday".to_owned();
    odd.headers[2].1 = sign(SECRET, "yesterday", body.as_bytes());
    let why = refused(parse(&host, odd));
    assert!(why.contains("Unix seconds"), "{why}");
}

#[test]
fn the_window_follows_the_account_setting() {
    let host = FakeHost::new(NOW_MS);
    let body = paid_body("o-1").to_string();
    let mut account = account();
    account.config = json!({"shop_id": "shop-1", "api_key": "k", "webhook_secret": SECRET,
                            "webhook_tolerance_s": 30})
    .to_string();
    let late = request(body.as_bytes(), NOW_MS / 1_000 - 31, SECRET);
    refused(Shop::parse_webhook(&host, account, late));
}

#[test]
fn malformed_bodies_get_a_clear_error() {
    let host = FakeHost::new(NOW_MS);
    let at = NOW_MS / 1_000;
    let why = malformed(parse(&host, request(b"{not json", at, SECRET)));
    assert!(why.starts_with("body:"), "{why}");
    let mut no_amount = paid_body("o-1");
    no_amount["data"]
        .as_object_mut()
        .unwrap()
        .remove("amount_cents");
    let why = malformed(parse(
        &host,
        request(no_amount.to_string().as_bytes(), at, SECRET),
    ));
    assert!(
        why.contains("order.paid data") && why.contains("amount_cents"),
        "{why}"
    );
    let mut negative = paid_body("o-1");
    negative["data"]["amount_cents"] = (-5).into();
    let why = malformed(parse(
        &host,
        request(negative.to_string().as_bytes(), at, SECRET),
    ));
    assert!(why.contains("negative"), "{why}");
    let mut empty = paid_body("o-1");
    empty["data"]["order_id"] = "".into();
    malformed(parse(
        &host,
        request(empty.to_string().as_bytes(), at, SECRET),
    ));
    // The header's event id must be the body's.
    let body = paid_body("o-1").to_string();
    let mut mismatched = request(body.as_bytes(), at, SECRET);
    mismatched
        .headers
        .push(("X-Shop-Event-Id".to_owned(), "evt_other".to_owned()));
    malformed(parse(&host, mismatched));
}

#[test]
fn another_shops_event_is_refused_and_other_kinds_commit_nothing() {
    let host = FakeHost::new(NOW_MS);
    let at = NOW_MS / 1_000;
    let mut foreign = paid_body("o-1");
    foreign["shop_id"] = "shop-2".into();
    let why = refused(parse(
        &host,
        request(foreign.to_string().as_bytes(), at, SECRET),
    ));
    assert!(why.contains("shop-2"), "{why}");
    let ping = json!({"id": "evt_ping", "type": "webhook.ping", "shop_id": "shop-1",
                      "created_at": NOW_MS});
    let outcome = parse(&host, request(ping.to_string().as_bytes(), at, SECRET)).unwrap();
    assert_eq!(outcome.response.status, 200);
    assert!(outcome.events.is_empty());
}

#[test]
fn refunds_are_events_of_their_own() {
    let host = FakeHost::new(NOW_MS);
    let at = NOW_MS / 1_000;
    let refund = |id: &str| {
        let mut body = paid_body("o-1");
        body["type"] = "order.refunded".into();
        body["id"] = id.into();
        body["data"]["refund_cents"] = 2_000.into();
        let outcome = parse(&host, request(body.to_string().as_bytes(), at, SECRET)).unwrap();
        outcome.events[0].clone()
    };
    let (first, second) = (refund("evt_r1"), refund("evt_r2"));
    assert_eq!(first.kind, "order_refunded");
    assert_ne!(first.dedupe_id, second.dedupe_id);
    let attributes: Value = serde_json::from_str(&first.attributes).unwrap();
    assert_eq!(attributes["refund_cents"], 2_000);
}

fn call(action: &str, input: Value) -> Invocation {
    Invocation {
        action: action.to_owned(),
        account: account(),
        input: input.to_string(),
        idempotency_key: "run-9/credit/0".to_owned(),
    }
}

fn done(outcome: InvokeOutcome) -> Value {
    match outcome {
        InvokeOutcome::Done(output) => serde_json::from_str(&output).unwrap(),
        other => panic!("expected done, got {other:?}"),
    }
}

fn header<'a>(request: &'a sop_plugin_sdk::HttpRequest, name: &str) -> Option<&'a str> {
    sop_plugin_sdk::http::header(&request.headers, name)
}

#[test]
fn credit_points_is_keyed_by_the_order_and_answers_the_balance() {
    let host = FakeHost::new(NOW_MS);
    host.respond(
        "POST",
        CREDIT,
        json_response(
            200,
            &json!({"member_id": "mem-7", "balance": 229, "credited": true, "entry_id": "pe-1"}),
        ),
    );
    let input =
        json!({"member_id": "mem-7", "points": 129, "reason": "订单 o-1", "order_id": "o-1"});
    let output = done(Shop::invoke(&host, call("credit_points", input)).unwrap());
    assert_eq!(
        output,
        json!({"member_id": "mem-7", "balance": 229, "credited": true, "entry_id": "pe-1"})
    );
    let sent = &host.requests_to(CREDIT)[0];
    assert_eq!(sent.url, "https://shop.example.com/api/v1/points/credit");
    assert_eq!(header(sent, "authorization"), Some("Bearer key-1"));
    assert_eq!(header(sent, "idempotency-key"), Some("order:o-1"));
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        body,
        json!({"member_id": "mem-7", "points": 129, "reason": "订单 o-1", "order_id": "o-1"})
    );
}

#[test]
fn without_an_order_the_runtimes_key_makes_the_credit_idempotent() {
    let host = FakeHost::new(NOW_MS);
    host.respond(
        "POST",
        CREDIT,
        json_response(
            200,
            &json!({"member_id": "m", "balance": 5, "credited": false, "entry_id": "pe-1"}),
        ),
    );
    let output = done(
        Shop::invoke(
            &host,
            call("credit_points", json!({"member_id": "m", "points": 5})),
        )
        .unwrap(),
    );
    assert_eq!(output["credited"], false);
    let sent = &host.requests_to(CREDIT)[0];
    assert_eq!(header(sent, "idempotency-key"), Some("sop:run-9/credit/0"));
}

#[test]
fn get_balance_reads_the_ledger() {
    let host = FakeHost::new(NOW_MS);
    host.respond(
        "GET",
        BALANCE,
        json_response(200, &json!({"member_id": "mem 7", "balance": 42})),
    );
    let output =
        done(Shop::invoke(&host, call("get_balance", json!({"member_id": "mem 7"}))).unwrap());
    assert_eq!(output, json!({"member_id": "mem 7", "balance": 42}));
    let sent = &host.requests_to(BALANCE)[0];
    assert_eq!(url_query(&sent.url, "member_id").as_deref(), Some("mem 7"));
}

#[test]
fn bad_input_never_reaches_the_shop() {
    let host = FakeHost::new(NOW_MS);
    for (action, input, needle) in [
        (
            "credit_points",
            json!({"member_id": "m", "points": 0}),
            "points must be",
        ),
        (
            "credit_points",
            json!({"member_id": "m", "points": 2_000_000}),
            "points must be",
        ),
        (
            "credit_points",
            json!({"member_id": " ", "points": 3}),
            "member_id is empty",
        ),
        (
            "credit_points",
            json!({"member_id": "m", "points": "ten"}),
            "points",
        ),
        (
            "credit_points",
            json!({"member_id": "m", "points": 1, "bonus": 1}),
            "bonus",
        ),
        ("get_balance", json!({}), "member_id"),
        ("refund", json!({}), "refund"),
    ] {
        let err = Shop::invoke(&host, call(action, input.clone())).unwrap_err();
        assert_eq!(err.kind(), "invalid-input", "{action} {input}");
        assert!(
            format!("{err:?}").contains(needle),
            "{action} {input}: {err:?}"
        );
    }
    assert!(host.requests().is_empty());
}

#[test]
fn shop_errors_map_to_the_runtimes_cases() {
    let error = |status: u16, code: &str| {
        json_response(
            status,
            &json!({"error": {"code": code, "message": "from the shop"}}),
        )
    };
    let cases: Vec<(Result<sop_plugin_sdk::HttpResponse, FetchError>, &str)> = vec![
        (error(404, "member_not_found"), "permanent"),
        (error(409, "idempotency_conflict"), "permanent"),
        (error(400, "invalid_points"), "invalid-input"),
        (error(401, "unauthorized"), "auth-expired"),
        (error(429, "rate_limited"), "rate-limited"),
        (error(500, "internal"), "transient"),
        (error(503, "maintenance"), "transient"),
        (json_response(403, &json!("no")), "permanent"),
        (Err(FetchError::Timeout), "transient"),
        (
            Ok(sop_plugin_sdk::HttpResponse {
                status: 200,
                headers: vec![],
                body: b"<html>".to_vec(),
            }),
            "transient",
        ),
    ];
    for (answer, kind) in cases {
        let host = FakeHost::new(NOW_MS);
        host.respond("POST", CREDIT, answer);
        let err = Shop::invoke(
            &host,
            call(
                "credit_points",
                json!({"member_id": "m", "points": 1, "order_id": "o"}),
            ),
        )
        .unwrap_err();
        assert_eq!(err.kind(), kind, "{err:?}");
    }
}

#[test]
fn a_bad_account_config_is_permanent_and_never_echoes_secrets() {
    let host = FakeHost::new(NOW_MS);
    let mut bad = call("get_balance", json!({"member_id": "m"}));
    bad.account.config = json!({"shop_id": "s", "api_key": "SECRET-KEY"}).to_string();
    let err = Shop::invoke(&host, bad).unwrap_err();
    assert_eq!(err.kind(), "permanent");
    assert!(!format!("{err:?}").contains("SECRET-KEY"));
}

#[test]
fn the_manifest_declares_what_the_playbooks_use() {
    let manifest = Shop::describe();
    assert_eq!(manifest.name, "shop");
    let actions: Vec<&str> = manifest.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(actions, ["credit_points", "get_balance"]);
    let events: Vec<&str> = manifest.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(events, ["order_paid", "order_refunded"]);
    assert_eq!(manifest.hosts, ["shop.example.com"]);
}
