//! Events reach the daemon's ingress as the platforms send them: WeCom callbacks that decrypt
//! with the official algorithm, Douyin webhooks with a valid signature, retried when the
//! receiver fails or is too slow.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use common::Emu;
use serde_json::{Value, json};
use sop_emulator::Config;
use sop_emulator::delivery::douyin_signature;
use tokio::sync::mpsc;
use wecom_crypto::{Crypto, xml_field};

#[derive(Debug)]
struct Captured {
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: String,
}

/// How the fake daemon behaves.
#[derive(Clone)]
struct Ingress {
    tx: mpsc::UnboundedSender<Captured>,
    /// Answer 500 to this many requests first.
    fail_first: Arc<AtomicU32>,
    /// Answer this many requests too late first.
    slow_first: Arc<AtomicU32>,
    crypto: Arc<Crypto>,
}

async fn receive(
    State(s): State<Ingress>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let _ = s.tx.send(Captured {
        query,
        headers,
        body,
    });
    if s.slow_first.load(Ordering::SeqCst) > 0 {
        s.slow_first.fetch_sub(1, Ordering::SeqCst);
        // A slow daemon: answers after the emulator has given up on this attempt.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
    }
    if s.fail_first.load(Ordering::SeqCst) > 0 {
        s.fail_first.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::OK
}

async fn verify(State(s): State<Ingress>, Query(q): Query<HashMap<String, String>>) -> String {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    s.crypto
        .verify_url(
            get("msg_signature"),
            get("timestamp"),
            get("nonce"),
            get("echostr"),
        )
        .unwrap_or_default()
}

async fn douyin(State(s): State<Ingress>, headers: HeaderMap, body: String) -> axum::Json<Value> {
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    let _ = s.tx.send(Captured {
        query: HashMap::new(),
        headers,
        body,
    });
    if v["event"] == "verify_webhook" {
        return axum::Json(json!({"challenge": v["content"]["challenge"]}));
    }
    axum::Json(json!({}))
}

struct Fixture {
    emu: Emu,
    rx: mpsc::UnboundedReceiver<Captured>,
    ingress: Ingress,
    crypto: Arc<Crypto>,
}

async fn fixture() -> Fixture {
    fixture_with(Config::default()).await
}

async fn fixture_with(base: Config) -> Fixture {
    let w = &base.wecom;
    let crypto = Arc::new(Crypto::new(&w.callback_token, &w.encoding_aes_key, &w.corp_id).unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    let ingress = Ingress {
        tx,
        fail_first: Arc::new(AtomicU32::new(0)),
        slow_first: Arc::new(AtomicU32::new(0)),
        crypto: crypto.clone(),
    };
    let app = Router::new()
        .route("/wecom", get(verify).post(receive))
        .route("/douyin", post(douyin))
        .with_state(ingress.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut config = base;
    config.delivery.wecom_url = Some(format!("http://{addr}/wecom"));
    config.delivery.douyin_url = Some(format!("http://{addr}/douyin"));
    // Generous for a loaded CI machine; the slow receiver above takes 1.5 s.
    config.delivery.timeout_ms = 1_000;
    config.delivery.retry_backoff_ms = 10;
    config.delivery.retries = 3;
    Fixture {
        emu: Emu::start(config).await,
        rx,
        ingress,
        crypto,
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Captured>) -> Captured {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a delivery arrives")
        .expect("channel open")
}

/// Wait until callback `id` has settled (acked or failed) as seen by the inspection API.
async fn settled(emu: &Emu, id: u64) -> Value {
    for _ in 0..500 {
        let all = emu.http.get("/_emulator/callbacks").await;
        let rec = all[(id - 1) as usize].clone();
        if rec["status"] != "pending" {
            return rec;
        }
        // Delivery runs on real sockets with real timeouts: poll its record.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("callback {id} did not settle");
}

#[tokio::test]
async fn add_contact_callback_decrypts_with_the_official_algorithm() {
    let mut f = fixture().await;
    let added = f
        .emu
        .event(json!({"kind": "add_contact", "staff": "emu_staff_5", "channel": 2}))
        .await;
    let got = next(&mut f.rx).await;
    let q = |k: &str| got.query.get(k).cloned().unwrap_or_default();
    let inner = f
        .crypto
        .decrypt_callback(&q("msg_signature"), &q("timestamp"), &q("nonce"), &got.body)
        .expect("signature and encryption are valid");
    assert_eq!(
        xml_field(&got.body, "ToUserName").as_deref(),
        Some("ww0emulator000001")
    );
    assert_eq!(
        xml_field(&inner, "Event").as_deref(),
        Some("change_external_contact")
    );
    assert_eq!(
        xml_field(&inner, "ChangeType").as_deref(),
        Some("add_external_contact")
    );
    assert_eq!(xml_field(&inner, "UserID").as_deref(), Some("emu_staff_5"));
    assert_eq!(xml_field(&inner, "State").as_deref(), Some("channel_2"));
    assert_eq!(
        xml_field(&inner, "WelcomeCode"),
        added["welcome_code"].as_str().map(String::from)
    );
    assert_eq!(
        xml_field(&inner, "ExternalUserID"),
        added["external_userid"].as_str().map(String::from)
    );
    let rec = settled(&f.emu, added["callback_id"].as_u64().unwrap()).await;
    assert_eq!(rec["status"], "acked");
    assert_eq!(rec["attempts"], 1);
}

#[tokio::test]
async fn failed_and_slow_deliveries_are_retried_with_the_same_body() {
    let mut f = fixture().await;
    f.ingress.fail_first.store(1, Ordering::SeqCst);
    f.ingress.slow_first.store(1, Ordering::SeqCst);
    let added = f.emu.event(json!({"kind": "add_contact"})).await;
    let first = next(&mut f.rx).await;
    let second = next(&mut f.rx).await;
    let third = next(&mut f.rx).await;
    assert_eq!(first.body, second.body);
    assert_eq!(
        first.query, third.query,
        "a retry is the same message, so receivers can deduplicate"
    );
    let rec = settled(&f.emu, added["callback_id"].as_u64().unwrap()).await;
    assert_eq!(rec["status"], "acked");
    assert_eq!(rec["attempts"], 3);
}

#[tokio::test]
async fn a_receiver_that_never_answers_well_fails_after_the_retries() {
    let mut f = fixture().await;
    f.ingress.fail_first.store(100, Ordering::SeqCst);
    let added = f.emu.event(json!({"kind": "add_contact"})).await;
    let rec = settled(&f.emu, added["callback_id"].as_u64().unwrap()).await;
    assert_eq!(rec["status"], "failed");
    assert_eq!(rec["attempts"], 4, "first attempt and 3 retries");
    let mut seen = 0;
    while f.rx.try_recv().is_ok() {
        seen += 1;
    }
    assert_eq!(seen, 4);
}

#[tokio::test]
async fn group_membership_callbacks() {
    let mut f = fixture().await;
    let id = "wmEmu0000000001";
    f.emu
        .event(json!({"kind": "join_group", "chat_id": "wrEmu00000000", "external_userid": id}))
        .await;
    let got = next(&mut f.rx).await;
    let q = |k: &str| got.query.get(k).cloned().unwrap_or_default();
    let inner = f
        .crypto
        .decrypt_callback(&q("msg_signature"), &q("timestamp"), &q("nonce"), &got.body)
        .unwrap();
    assert_eq!(
        xml_field(&inner, "Event").as_deref(),
        Some("change_external_chat")
    );
    assert_eq!(
        xml_field(&inner, "UpdateDetail").as_deref(),
        Some("add_member")
    );
    assert_eq!(xml_field(&inner, "Item").as_deref(), Some(id));
    let (status, v) = f
        .emu
        .http
        .send(
            "POST",
            "/_emulator/events",
            &[],
            Some(&json!({"kind": "join_group", "chat_id": "wrEmu00000000", "external_userid": id})),
        )
        .await;
    assert_eq!(status, 400, "already a member: {v}");
}

#[tokio::test]
async fn douyin_webhook_is_signed_and_carries_a_msg_id() {
    let mut f = fixture().await;
    f.emu
        .event(json!({"kind": "douyin_message", "open_id": "dyu-0000000003", "text": "在吗"}))
        .await;
    let got = next(&mut f.rx).await;
    let secret = &f.emu.running.app.config().douyin.client_secret;
    assert_eq!(
        got.headers["x-douyin-signature"].to_str().unwrap(),
        douyin_signature(secret, got.body.as_bytes())
    );
    assert!(
        got.headers["msg-id"]
            .to_str()
            .unwrap()
            .starts_with("dymsg-")
    );
    let v: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(v["event"], "im_receive_msg");
    assert_eq!(v["from_user_id"], "dyu-0000000003");
    let content: Value = serde_json::from_str(v["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["text"], "在吗");
    assert_eq!(content["conversation_type"], 1);
}

#[tokio::test]
async fn url_verification_round_trips() {
    let mut f = fixture().await;
    let v = f
        .emu
        .http
        .post("/_emulator/wecom/verify_url", &json!({}))
        .await;
    assert_eq!(v["ok"], true, "{v}");
    let v = f
        .emu
        .http
        .post("/_emulator/douyin/verify_url", &json!({}))
        .await;
    assert_eq!(v["ok"], true, "{v}");
    let got = next(&mut f.rx).await;
    let secret = &f.emu.running.app.config().douyin.client_secret;
    assert_eq!(
        got.headers["x-douyin-signature"].to_str().unwrap(),
        douyin_signature(secret, got.body.as_bytes())
    );
}

#[tokio::test]
async fn the_apps_own_douyin_sends_are_echoed_as_im_send_msg() {
    let mut f = fixture().await;
    let user = "dyu-0000000004";
    f.emu
        .event(json!({"kind": "douyin_message", "open_id": user, "text": "hi"}))
        .await;
    let first = next(&mut f.rx).await;
    assert!(first.body.contains("im_receive_msg"));
    let token = f.emu.douyin_token().await;
    let ent = f.emu.running.app.config().douyin.enterprise_open_id.clone();
    let (_, v) = f
        .emu
        .http
        .send(
            "POST",
            &format!("/im/send/msg/?open_id={ent}"),
            &[("access-token", &token)],
            Some(
                &json!({"to_user_id": user, "conversation_id": "c1", "content": {"text": "您好"}}),
            ),
        )
        .await;
    assert_eq!(v["data"]["error_code"], 0, "{v}");
    let echo = next(&mut f.rx).await;
    let body: Value = serde_json::from_str(&echo.body).unwrap();
    assert_eq!(body["event"], "im_send_msg");
    assert_eq!(body["from_user_id"], ent);
    assert_eq!(body["to_user_id"], user);
    let content: Value = serde_json::from_str(body["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["server_message_id"], v["data"]["msg_id"]);
}

#[tokio::test]
async fn generated_traffic_arrives_decryptable_and_signed() {
    let mut config = Config::default();
    config.traffic.rate_per_s = 500.0;
    config.traffic.max_events = 40;
    let mut f = fixture_with(config).await;
    let secret = f.emu.running.app.config().douyin.client_secret.clone();
    let (mut wecom, mut douyin) = (0, 0);
    while wecom + douyin < 20 {
        let got = next(&mut f.rx).await;
        if let Some(sig) = got.query.get("msg_signature") {
            let q = |k: &str| got.query.get(k).cloned().unwrap_or_default();
            let inner = f
                .crypto
                .decrypt_callback(sig, &q("timestamp"), &q("nonce"), &got.body)
                .expect("every WeCom callback decrypts");
            assert!(xml_field(&inner, "Event").is_some());
            wecom += 1;
        } else {
            let sig = got.headers["x-douyin-signature"].to_str().unwrap();
            assert_eq!(sig, douyin_signature(&secret, got.body.as_bytes()));
            douyin += 1;
        }
    }
    assert!(
        wecom > 0 && douyin > 0,
        "both platforms in the mix: {wecom} / {douyin}"
    );
}

/// With several corps, an add-contact event can belong to another corp and go to another
/// receiver: its callback names that corp and is encrypted for that corp's receive id.
#[tokio::test]
async fn add_contact_of_another_corp_goes_to_its_own_receiver() {
    let mut cfg = Config::default();
    cfg.wecom.corps = 2;
    let mut f = fixture_with(cfg).await;
    let base = f
        .emu
        .running
        .app
        .config()
        .delivery
        .wecom_url
        .clone()
        .unwrap();
    let url = format!("{base}?account=second");
    let added = f
        .emu
        .event(json!({"kind": "add_contact", "corp": "ww0emulator000001_2", "callback_url": url}))
        .await;
    let got = next(&mut f.rx).await;
    assert_eq!(got.query.get("account").map(String::as_str), Some("second"));
    let q = |k: &str| got.query.get(k).cloned().unwrap_or_default();
    let (sig, ts, nonce) = (q("msg_signature"), q("timestamp"), q("nonce"));
    assert!(
        f.crypto
            .decrypt_callback(&sig, &ts, &nonce, &got.body)
            .is_err(),
        "the first corp's receive id does not match"
    );
    let w = &f.emu.running.app.config().wecom;
    let second = Crypto::new(
        &w.callback_token,
        &w.encoding_aes_key,
        "ww0emulator000001_2",
    )
    .unwrap();
    let inner = second
        .decrypt_callback(&sig, &ts, &nonce, &got.body)
        .expect("encrypted for the second corp");
    assert_eq!(
        xml_field(&inner, "ToUserName").as_deref(),
        Some("ww0emulator000001_2")
    );
    assert_eq!(
        xml_field(&inner, "WelcomeCode"),
        added["welcome_code"].as_str().map(String::from)
    );
    let v = f
        .emu
        .http
        .send(
            "POST",
            "/_emulator/events",
            &[],
            Some(&json!({"kind": "add_contact", "corp": "ww0emulator000001_3"})),
        )
        .await;
    assert_eq!(v.0, 400, "an unknown corp is refused: {}", v.1);
}
