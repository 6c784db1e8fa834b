//! Access tokens: issue, reuse inside the window, expiry on the clock, early expiry and
//! revocation through the control API.

mod common;

use common::Emu;
use serde_json::json;
use sop_emulator::Config;

#[tokio::test]
async fn gettoken_checks_corp_and_secret() {
    let emu = Emu::start(Config::default()).await;
    let corp = emu.running.app.config().wecom.corp_id.clone();
    let v = emu
        .http
        .get(&format!("/cgi-bin/gettoken?corpid={corp}&corpsecret=wrong"))
        .await;
    assert_eq!(v["errcode"], 40001);
    let v = emu
        .http
        .get("/cgi-bin/gettoken?corpid=nope&corpsecret=emu-secret")
        .await;
    assert_eq!(v["errcode"], 40013);
    let v = emu.http.get("/cgi-bin/gettoken").await;
    assert_eq!(v["errcode"], 41002);
    let v = emu
        .http
        .get(&format!(
            "/cgi-bin/gettoken?corpid={corp}&corpsecret=emu-secret"
        ))
        .await;
    assert_eq!(v["errcode"], 0);
    assert_eq!(v["errmsg"], "ok");
    assert_eq!(v["expires_in"], 7200);
}

#[tokio::test]
async fn token_is_reused_in_its_window_and_expires_on_the_clock() {
    let emu = Emu::start(Config::default()).await;
    let a = emu.wecom_token().await;
    emu.clock.advance(3_600_000);
    assert_eq!(emu.wecom_token().await, a, "same token inside the window");
    let get = |t: &str| {
        format!("/cgi-bin/externalcontact/get?access_token={t}&external_userid=wmEmu0000000001")
    };
    assert_eq!(emu.http.get(&get(&a)).await["errcode"], 0);

    emu.clock.advance(3_600_000);
    assert_eq!(emu.http.get(&get(&a)).await["errcode"], 42001);
    let b = emu.wecom_token().await;
    assert_ne!(a, b);
    assert_eq!(emu.http.get(&get(&b)).await["errcode"], 0);
    assert_eq!(emu.http.get(&get("forged")).await["errcode"], 40014);
    assert_eq!(
        emu.http
            .get("/cgi-bin/externalcontact/get?external_userid=wmEmu0000000001")
            .await["errcode"],
        41001
    );
}

#[tokio::test]
async fn tokens_can_be_expired_early_and_revoked() {
    let emu = Emu::start(Config::default()).await;
    let a = emu.wecom_token().await;
    let v = emu
        .http
        .post("/_emulator/tokens/expire", &json!({"platform": "wecom"}))
        .await;
    assert_eq!(v["expired"]["wecom"], 1);
    let path = format!("/cgi-bin/externalcontact/list?access_token={a}&userid=emu_staff_0");
    assert_eq!(emu.http.get(&path).await["errcode"], 42001);

    let b = emu.wecom_token().await;
    assert_ne!(a, b, "an expired token is replaced");
    emu.http.post("/_emulator/tokens/revoke", &json!({})).await;
    let path = format!("/cgi-bin/externalcontact/list?access_token={b}&userid=emu_staff_0");
    assert_eq!(emu.http.get(&path).await["errcode"], 40014);
}

#[tokio::test]
async fn the_clock_api_moves_the_virtual_clock_and_refuses_nonsense() {
    let emu = Emu::start(Config::default()).await;
    let v = emu.http.get("/_emulator/clock").await;
    assert_eq!(v, json!({"now_ms": common::START_MS, "manual": true}));
    let v = emu
        .http
        .post("/_emulator/clock", &json!({"advance_ms": 1_500}))
        .await;
    assert_eq!(v["now_ms"], common::START_MS + 1_500);
    // The test's handle and the emulator share one virtual clock.
    emu.clock.advance(500);
    assert_eq!(emu.running.app.now_ms(), common::START_MS + 2_000);
    let v = emu
        .http
        .post("/_emulator/clock", &json!({"set_ms": 1_000}))
        .await;
    assert_eq!(v["now_ms"], 1_000, "set may go backwards");
    let (status, _) = emu
        .http
        .send(
            "POST",
            "/_emulator/clock",
            &[],
            Some(&json!({"advance_ms": u64::MAX})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = emu
        .http
        .send(
            "POST",
            "/_emulator/clock",
            &[],
            Some(&json!({"set_ms": 5_000, "advance_ms": i64::MAX})),
        )
        .await;
    assert_eq!(status, 400, "past the end of time");
    assert_eq!(
        emu.running.app.now_ms(),
        1_000,
        "a refused move changes nothing"
    );
}
