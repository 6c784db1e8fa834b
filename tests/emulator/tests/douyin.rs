//! Douyin: tokens, reply windows, proactive authorisation and its daily quota, recall.

mod common;

use common::Emu;
use serde_json::{Value, json};
use sop_emulator::Config;

const USER: &str = "dyu-0000000009";

async fn send(emu: &Emu, token: &str, scene: &str, text: &str) -> Value {
    let open_id = emu.running.app.config().douyin.enterprise_open_id.clone();
    let body = json!({
        "msg_id": "",
        "conversation_id": "conv-0000000009",
        "to_user_id": USER,
        "scene": scene,
        "content": {"msg_type": 1, "text": {"text": text}},
    });
    emu.http
        .send(
            "POST",
            &format!("/im/send/msg/?open_id={open_id}"),
            &[("access-token", token)],
            Some(&body),
        )
        .await
        .1
}

fn code(v: &Value) -> i64 {
    v["data"]["error_code"].as_i64().unwrap_or(-99)
}

#[tokio::test]
async fn client_token_needs_the_right_credentials() {
    let emu = Emu::start(Config::default()).await;
    let d = emu.running.app.config().douyin.clone();
    let v = emu
        .http
        .post(
            "/oauth/client_token/",
            &json!({"client_key": d.client_key, "client_secret": d.client_secret, "grant_type": "client_credential"}),
        )
        .await;
    assert_eq!(code(&v), 0, "{v}");
    assert_eq!(v["data"]["expires_in"], 7200);
    assert!(
        v["data"]["access_token"]
            .as_str()
            .unwrap()
            .starts_with("clt.")
    );
    let v = emu
        .http
        .post("/oauth/client_token/", &json!({"client_key": d.client_key, "client_secret": "x", "grant_type": "client_credential"}))
        .await;
    assert_ne!(code(&v), 0);
    assert_eq!(v["extra"]["error_code"], v["data"]["error_code"]);
}

#[tokio::test]
async fn replies_need_an_open_window_with_allowance_left() {
    let emu = Emu::start(Config::default()).await;
    let token = emu.douyin_token().await;
    assert_eq!(
        code(&send(&emu, &token, "im_reply_msg", "hi").await),
        28_003_017,
        "no message yet"
    );

    emu.event(json!({"kind": "douyin_message", "open_id": USER, "text": "你好"}))
        .await;
    for i in 0..5 {
        let v = send(&emu, &token, "im_reply_msg", &format!("r{i}")).await;
        assert_eq!(code(&v), 0, "{v}");
        assert!(v["data"]["msg_id"].as_str().unwrap().starts_with("dysent-"));
    }
    assert_eq!(
        code(&send(&emu, &token, "im_reply_msg", "r5").await),
        28_003_017,
        "allowance used"
    );

    emu.event(json!({"kind": "douyin_message", "open_id": USER, "text": "again"}))
        .await;
    emu.clock.advance(24 * 3_600_000);
    let token = emu.douyin_token().await;
    assert_eq!(
        code(&send(&emu, &token, "im_reply_msg", "late").await),
        28_003_017,
        "window closed"
    );
    assert_eq!(emu.deliveries(&format!("?to={USER}")).await.len(), 5);
}

#[tokio::test]
async fn proactive_messages_need_authorisation_and_fit_the_daily_quota() {
    let emu = Emu::start(Config::default()).await;
    let token = emu.douyin_token().await;
    let bind = "im.direct_message.bind";
    assert_eq!(code(&send(&emu, &token, bind, "x").await), 28_001_003);
    emu.event(json!({"kind": "douyin_authorize", "open_id": USER}))
        .await;
    for _ in 0..3 {
        assert_eq!(code(&send(&emu, &token, bind, "x").await), 0);
    }
    assert_eq!(code(&send(&emu, &token, bind, "x").await), 28_003_017);
    emu.clock.advance(86_400_000);
    let token = emu.douyin_token().await;
    assert_eq!(code(&send(&emu, &token, bind, "next day").await), 0);

    let open_id = emu.running.app.config().douyin.enterprise_open_id.clone();
    let (_, list) = emu
        .http
        .send(
            "POST",
            &format!("/im/authorize/user_list/?open_id={open_id}"),
            &[("access-token", &token)],
            Some(&json!({"cursor": 0, "count": 10})),
        )
        .await;
    assert_eq!(list["data"]["user_list"][0]["open_id"], USER);
}

#[tokio::test]
async fn tokens_expire_and_bad_calls_are_rejected() {
    let emu = Emu::start(Config::default()).await;
    let token = emu.douyin_token().await;
    emu.event(json!({"kind": "douyin_enter", "open_id": USER}))
        .await;
    assert_eq!(
        code(&send(&emu, &token, "im_enter_direct_msg", "欢迎").await),
        0
    );
    emu.http
        .post("/_emulator/tokens/expire", &json!({"platform": "douyin"}))
        .await;
    assert_eq!(
        code(&send(&emu, &token, "im_enter_direct_msg", "x").await),
        2_190_008
    );
    assert_eq!(
        code(&send(&emu, "forged", "im_reply_msg", "x").await),
        2_190_002
    );
    let token = emu.douyin_token().await;
    assert_eq!(
        code(&send(&emu, &token, "no_such_scene", "x").await),
        2_100_005
    );
}

#[tokio::test]
async fn sent_messages_can_be_recalled_once() {
    let emu = Emu::start(Config::default()).await;
    let token = emu.douyin_token().await;
    emu.event(json!({"kind": "douyin_message", "open_id": USER, "text": "?"}))
        .await;
    let v = send(&emu, &token, "im_reply_msg", "oops").await;
    let msg_id = v["data"]["msg_id"].as_str().unwrap().to_owned();
    let open_id = emu.running.app.config().douyin.enterprise_open_id.clone();
    let recall = |id: String| {
        let token = token.clone();
        let path = format!("/im/recall/msg/?open_id={open_id}");
        let emu = &emu;
        async move {
            emu.http
                .send(
                    "POST",
                    &path,
                    &[("access-token", &token)],
                    Some(&json!({"msg_id": id, "conversation_id": "c", "conversation_type": 1})),
                )
                .await
                .1
        }
    };
    assert_eq!(code(&recall(msg_id.clone()).await), 0);
    assert_ne!(code(&recall(msg_id).await), 0);
    assert_eq!(emu.deliveries("?channel=recall").await.len(), 1);
}

#[tokio::test]
async fn refresh_tokens_rotate() {
    let emu = Emu::start(Config::default()).await;
    let d = emu.running.app.config().douyin.clone();
    let form = |extra: &str| format!("client_key={}&grant_type={extra}", d.client_key);
    let (_, v) = emu
        .http
        .raw(
            "POST",
            "/oauth/access_token/",
            &[("content-type", "application/x-www-form-urlencoded")],
            format!(
                "{}&client_secret={}&code=abc",
                form("authorization_code"),
                d.client_secret
            ),
        )
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&v).unwrap();
    assert_eq!(code(&v), 0, "{v}");
    let refresh = v["data"]["refresh_token"].as_str().unwrap().to_owned();
    let body = format!("{}&refresh_token={refresh}", form("refresh_token"));
    let (_, again) = emu
        .http
        .raw("POST", "/oauth/refresh_token/", &[], body.clone())
        .await
        .unwrap();
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(code(&again), 0, "{again}");
    assert_ne!(again["data"]["refresh_token"], v["data"]["refresh_token"]);
    let token = again["data"]["access_token"].as_str().unwrap().to_owned();
    emu.event(json!({"kind": "douyin_message", "open_id": USER, "text": "?"}))
        .await;
    assert_eq!(code(&send(&emu, &token, "im_reply_msg", "ok").await), 0);
    let (_, used) = emu
        .http
        .raw("POST", "/oauth/refresh_token/", &[], body)
        .await
        .unwrap();
    let used: Value = serde_json::from_str(&used).unwrap();
    assert_ne!(code(&used), 0, "a refresh token works once");
}

#[tokio::test]
async fn group_messages_go_to_known_fan_groups() {
    let emu = Emu::start(Config::default()).await;
    let token = emu.douyin_token().await;
    let open_id = emu.running.app.config().douyin.enterprise_open_id.clone();
    let path = format!("/im/send/msg/group/?open_id={open_id}");
    let body =
        |g: &str| json!({"group_id": g, "content": {"msg_type": 1, "text": {"text": "开团"}}});
    let (_, v) = emu
        .http
        .send(
            "POST",
            &path,
            &[("access-token", &token)],
            Some(&body("dyg-00000001")),
        )
        .await;
    assert_eq!(code(&v), 0, "{v}");
    let (_, v) = emu
        .http
        .send(
            "POST",
            &path,
            &[("access-token", &token)],
            Some(&body("dyg-99999999")),
        )
        .await;
    assert_eq!(code(&v), 2_100_005);
    let sent = emu.deliveries("?channel=group_message").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["to"], "dyg-00000001");
}

#[tokio::test]
async fn send_rate_limit_answers_28003018() {
    let emu = Emu::start(Config::default()).await;
    let token = emu.douyin_token().await;
    emu.event(json!({"kind": "douyin_message", "open_id": USER, "text": "?"}))
        .await;
    let v = emu
        .http
        .post(
            "/_emulator/rate_limit/burst",
            &json!({"platform": "douyin", "calls": 1}),
        )
        .await;
    assert_eq!(v["burst"]["calls"], 1);
    assert_eq!(
        code(&send(&emu, &token, "im_reply_msg", "a").await),
        28_003_018
    );
    assert_eq!(code(&send(&emu, &token, "im_reply_msg", "b").await), 0);
    let counters = emu.http.get("/_emulator/counters").await;
    assert_eq!(counters["endpoints"]["im/send/msg"]["rate_limited"], 1);
}
