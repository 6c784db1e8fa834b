//! Fault injection at run time: platform errors, 5xx, dropped connections, timeouts.

mod common;

use common::Emu;
use serde_json::json;
use sop_emulator::Config;

#[tokio::test]
async fn faults_set_at_run_time_hit_only_their_endpoint() {
    let emu = Emu::start(Config::default()).await;
    let token = emu.wecom_token().await;
    let faults = json!({"endpoints": {
        "/cgi-bin/externalcontact/get": {"error_rate": 1.0},
        "/cgi-bin/externalcontact/list": {"status_5xx_rate": 1.0},
        "/cgi-bin/message/send": {"reset_rate": 1.0},
        "/cgi-bin/externalcontact/remark": {"timeout_rate": 1.0},
    }, "hang_ms": 20});
    let (status, _) = emu
        .http
        .send("PUT", "/_emulator/faults", &[], Some(&faults))
        .await;
    assert_eq!(status, 200);

    let get = format!(
        "/cgi-bin/externalcontact/get?access_token={token}&external_userid=wmEmu0000000001"
    );
    assert_eq!(emu.http.get(&get).await["errcode"], -1);
    let list = format!("/cgi-bin/externalcontact/list?access_token={token}&userid=emu_staff_0");
    let (status, _) = emu.http.send("GET", &list, &[], None).await;
    assert_eq!(status, 503);
    let send = format!("/cgi-bin/message/send?access_token={token}");
    let r = emu.http.raw("POST", &send, &[], "{}".into()).await;
    assert!(r.is_err(), "connection dropped without an answer: {r:?}");
    let remark = format!("/cgi-bin/externalcontact/remark?access_token={token}");
    let r = emu.http.raw("POST", &remark, &[], "{}".into()).await;
    assert!(r.is_err(), "timed out and dropped: {r:?}");

    // Untouched endpoints and the inspection API keep working.
    let v = emu
        .http
        .get("/cgi-bin/gettoken?corpid=ww0emulator000001&corpsecret=emu-secret")
        .await;
    assert_eq!(v["errcode"], 0);
    let counters = emu.http.get("/_emulator/counters").await;
    assert_eq!(counters["faults"]["/cgi-bin/externalcontact/get"], 1);

    emu.http
        .send("PUT", "/_emulator/faults", &[], Some(&json!({})))
        .await;
    assert_eq!(emu.http.get(&get).await["errcode"], 0);
}

#[tokio::test]
async fn faults_configured_at_start_apply_to_douyin_too() {
    let mut c = Config::default();
    c.faults.default.error_rate = 1.0;
    let emu = Emu::start(c).await;
    let v = emu.http.post("/oauth/client_token/", &json!({})).await;
    assert_eq!(v["data"]["error_code"], 2_100_004);
    let v = emu.http.get("/_emulator/health").await;
    assert_eq!(v, "ok");
}
