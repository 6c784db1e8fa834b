//! The demo shop: the points ledger API (idempotent credits, balances, errors) and order
//! webhooks checked by the real shop plugin (natively) as the daemon's ingress would: a paid
//! order, the shop's retry, a captured request replayed, a forged one.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::Emu;
use serde_json::{Value, json};
use sop_clock::Clock;
use sop_emulator::{Config, VirtualClock};
use sop_plugin_sdk::testing::FakeHost;
use sop_plugin_sdk::{Account, NormalizedEvent, Plugin, WebhookError, WebhookRequest};
use sop_plugin_shop::Shop;
use tokio::sync::mpsc;

const KEY: &str = "Bearer emu-shop-key";

/// What the stand-in ingress saw: the headers and the plugin's verdict.
#[derive(Debug)]
struct Seen {
    headers: Vec<(String, String)>,
    body: String,
    verdict: Result<Vec<NormalizedEvent>, WebhookError>,
}

#[derive(Clone)]
struct Ingress {
    tx: mpsc::UnboundedSender<Seen>,
    clock: Arc<VirtualClock>,
}

/// The daemon's ingress in miniature: the shop plugin verifies and parses on the emulator's
/// clock; 200, or 401 for a refused and 400 for a malformed webhook.
async fn ingress(State(s): State<Ingress>, headers: HeaderMap, body: String) -> StatusCode {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let account = Account {
        id: "demo-shop".into(),
        config: json!({"shop_id": "demo-shop-001", "api_key": "emu-shop-key",
                       "webhook_secret": "emu-shop-webhook-secret"})
        .to_string(),
    };
    let request = WebhookRequest {
        method: "POST".into(),
        query: vec![],
        headers: headers.clone(),
        body: body.clone().into_bytes(),
    };
    let host = FakeHost::new(s.clock.now_ms());
    let verdict = Shop::parse_webhook(&host, account, request).map(|o| o.events);
    let status = match &verdict {
        Ok(_) => StatusCode::OK,
        Err(WebhookError::VerificationFailed(_)) => StatusCode::UNAUTHORIZED,
        Err(WebhookError::Malformed(_)) => StatusCode::BAD_REQUEST,
    };
    let _ = s.tx.send(Seen {
        headers,
        body,
        verdict,
    });
    status
}

async fn fixture() -> (Emu, mpsc::UnboundedReceiver<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config::default();
    config.world.contacts = 50;
    config.delivery.shop_url = Some(format!("http://{addr}/hooks/shop/demo-shop"));
    config.delivery.retry_backoff_ms = 10;
    let emu = Emu::start(config).await;
    // The stand-in ingress reads the emulator's own virtual clock (clones share the time).
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Ingress {
        tx,
        clock: Arc::new(emu.clock.0.clone()),
    };
    let app = Router::new()
        .route("/hooks/shop/demo-shop", post(ingress))
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (emu, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a webhook arrives")
        .expect("channel open")
}

fn header<'a>(seen: &'a Seen, name: &str) -> &'a str {
    seen.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

async fn credit(emu: &Emu, key: &str, body: Value) -> (u16, Value) {
    emu.http
        .send(
            "POST",
            "/api/v1/points/credit",
            &[("authorization", KEY), ("idempotency-key", key)],
            Some(&body),
        )
        .await
}

async fn pay(emu: &Emu, body: Value) -> Value {
    let (status, v) = emu
        .http
        .send("POST", "/_emulator/shop/orders", &[], Some(&body))
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test]
async fn credits_are_idempotent_by_key_and_balances_add_up() {
    let (emu, _rx) = fixture().await;
    let order = pay(
        &emu,
        json!({"external_userid": "wmEmu0000000007", "amount_cents": 12_900}),
    )
    .await;
    let member = order["member_id"].as_str().unwrap().to_owned();
    assert_eq!(member, "mem00000007");
    let body = json!({"member_id": member, "points": 129, "reason": "订单", "order_id": order["order_id"]});
    let (status, first) = credit(&emu, "order:o1", body.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["balance"], 129);
    assert_eq!(first["credited"], true);
    // The same key again: nothing added, the first entry answered.
    let (status, again) = credit(&emu, "order:o1", body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(again["credited"], false);
    assert_eq!(again["balance"], 129);
    assert_eq!(again["entry_id"], first["entry_id"]);
    // Another key adds up.
    let (_, second) = credit(&emu, "order:o2", json!({"member_id": member, "points": 5})).await;
    assert_eq!(second["balance"], 134);
    let (status, balance) = emu
        .http
        .send(
            "GET",
            &format!("/api/v1/points/balance?member_id={member}"),
            &[("authorization", KEY)],
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(balance, json!({"member_id": member, "balance": 134}));
    let ledger = emu
        .http
        .get(&format!("/_emulator/shop/members/{member}"))
        .await;
    assert_eq!(ledger["entries"].as_array().unwrap().len(), 2);
    assert_eq!(ledger["entries"][0]["reason"], "订单");
}

#[tokio::test]
async fn the_ledger_api_refuses_what_it_cannot_do() {
    let (emu, _rx) = fixture().await;
    let order = pay(
        &emu,
        json!({"open_id": "dyu-0000000003", "amount_cents": 500}),
    )
    .await;
    let member = order["member_id"].as_str().unwrap();
    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or_default().to_owned();
    // Wrong key.
    let (status, v) = emu
        .http
        .send(
            "POST",
            "/api/v1/points/credit",
            &[
                ("authorization", "Bearer guessed"),
                ("idempotency-key", "k"),
            ],
            Some(&json!({"member_id": member, "points": 1})),
        )
        .await;
    assert_eq!((status, code(&v)), (401, "unauthorized".into()));
    // No idempotency key.
    let (status, v) = emu
        .http
        .send(
            "POST",
            "/api/v1/points/credit",
            &[("authorization", KEY)],
            Some(&json!({"member_id": member, "points": 1})),
        )
        .await;
    assert_eq!((status, code(&v)), (400, "invalid_request".into()));
    let (status, v) = credit(&emu, "k1", json!({"member_id": member, "points": 0})).await;
    assert_eq!((status, code(&v)), (400, "invalid_points".into()));
    let (status, v) = credit(&emu, "k1", json!({"member_id": "mem-nobody", "points": 1})).await;
    assert_eq!((status, code(&v)), (404, "member_not_found".into()));
    let (status, _) = credit(&emu, "k2", json!({"member_id": member, "points": 3})).await;
    assert_eq!(status, 200);
    let (status, v) = credit(&emu, "k2", json!({"member_id": member, "points": 4})).await;
    assert_eq!((status, code(&v)), (409, "idempotency_conflict".into()));
    let (status, v) = emu
        .http
        .send(
            "GET",
            "/api/v1/points/balance?member_id=mem-nobody",
            &[("authorization", KEY)],
            None,
        )
        .await;
    assert_eq!((status, code(&v)), (404, "member_not_found".into()));
    // Orders need a known buyer and an amount.
    for bad in [
        json!({"amount_cents": 100}),
        json!({"external_userid": "wmEmu9999999999", "amount_cents": 100}),
        json!({"external_userid": "wmEmu0000000001", "open_id": "dyu-0000000002", "amount_cents": 1}),
        json!({"external_userid": "wmEmu0000000001", "amount_cents": 0}),
    ] {
        let (status, v) = emu
            .http
            .send("POST", "/_emulator/shop/orders", &[], Some(&bad))
            .await;
        assert_eq!(status, 400, "{bad}: {v}");
    }
}

#[tokio::test]
async fn a_paid_order_arrives_signed_and_the_plugin_reads_it() {
    let (emu, mut rx) = fixture().await;
    let order = pay(
        &emu,
        json!({"external_userid": "wmEmu0000000007", "open_id": "dyu-0000000007", "amount_cents": 12_900}),
    )
    .await;
    let seen = next(&mut rx).await;
    let events = seen.verdict.as_ref().expect("the plugin accepts it");
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.kind, "order_paid");
    assert_eq!(event.contact.as_deref(), Some("wmEmu0000000007"));
    let attributes: Value = serde_json::from_str(&event.attributes).unwrap();
    assert_eq!(attributes["order_id"], order["order_id"]);
    assert_eq!(attributes["member_id"], "mem00000007");
    assert_eq!(attributes["amount_cents"], 12_900);
    assert_eq!(attributes["douyin_open_id"], "dyu-0000000007");
    assert_eq!(header(&seen, "x-shop-event-id"), order["event_id"]);
    assert_eq!(
        header(&seen, "x-shop-timestamp"),
        (common::START_MS / 1_000).to_string()
    );
    // The traffic generator's orders go the same way.
    let v = emu
        .event(json!({"kind": "order", "external_userid": "wmEmu0000000008", "amount_fen": 300}))
        .await;
    assert!(v["callback_id"].is_u64(), "{v}");
    let seen = next(&mut rx).await;
    let events = seen.verdict.expect("accepted");
    assert_eq!(events[0].contact.as_deref(), Some("wmEmu0000000008"));
}

#[tokio::test]
async fn a_retry_is_the_same_event_a_stale_replay_and_a_forgery_are_refused() {
    let (emu, mut rx) = fixture().await;
    let order = pay(
        &emu,
        json!({"external_userid": "wmEmu0000000002", "amount_cents": 900}),
    )
    .await;
    let first = next(&mut rx).await;
    let dedupe = first.verdict.as_ref().unwrap()[0].dedupe_id.clone();
    let callback = order["callback_id"].as_u64().unwrap();

    // The shop retries a minute later: fresh timestamp and signature, same event.
    emu.clock.advance(60_000);
    let (status, v) = emu
        .http
        .send(
            "POST",
            &format!("/_emulator/shop/webhooks/{callback}/redeliver"),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let retry = next(&mut rx).await;
    assert_eq!(retry.body, first.body);
    assert_ne!(
        header(&retry, "x-shop-timestamp"),
        header(&first, "x-shop-timestamp")
    );
    assert_eq!(retry.verdict.as_ref().unwrap()[0].dedupe_id, dedupe);

    // The captured first request, replayed byte for byte inside the window: accepted by the
    // plugin with the same dedupe id (the runtime drops it); ten minutes on: refused.
    let replay = format!("/_emulator/shop/webhooks/{callback}/replay");
    let (_, v) = emu.http.send("POST", &replay, &[], None).await;
    assert_eq!(v["status"], 200, "{v}");
    let replayed = next(&mut rx).await;
    assert_eq!(
        header(&replayed, "x-shop-signature"),
        header(&first, "x-shop-signature")
    );
    assert_eq!(replayed.verdict.unwrap()[0].dedupe_id, dedupe);
    emu.clock.advance(10 * 60_000);
    let (_, v) = emu.http.send("POST", &replay, &[], None).await;
    assert_eq!(v["status"], 401, "{v}");
    match next(&mut rx).await.verdict {
        Err(WebhookError::VerificationFailed(why)) => assert!(why.contains("stale"), "{why}"),
        other => panic!("{other:?}"),
    }

    // A forged order: signed with another secret, refused; the shop knows nothing of it.
    let (_, v) = emu
        .http
        .send(
            "POST",
            "/_emulator/shop/forge",
            &[],
            Some(&json!({"external_userid": "wmEmu0000000004", "amount_cents": 99_900})),
        )
        .await;
    assert_eq!(v["status"], 401, "{v}");
    assert!(matches!(
        next(&mut rx).await.verdict,
        Err(WebhookError::VerificationFailed(_))
    ));
    let shop = emu.http.get("/_emulator/shop").await;
    assert_eq!(shop["orders"].as_array().unwrap().len(), 1);
    assert!(shop["members"].get("mem00000004").is_none());
}
