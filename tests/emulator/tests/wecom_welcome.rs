//! Welcome codes: one per add-contact event, valid 20 s, usable once.

mod common;

use common::Emu;
use serde_json::json;
use sop_emulator::Config;

#[tokio::test]
async fn welcome_code_is_single_use_and_expires_after_20s() {
    let emu = Emu::start(Config::default()).await;
    let token = emu.wecom_token().await;
    let send = format!("/cgi-bin/externalcontact/send_welcome_msg?access_token={token}");

    let added = emu
        .event(json!({"kind": "add_contact", "staff": "emu_staff_3", "channel": 1}))
        .await;
    assert_eq!(added["state"], "channel_1");
    let code = added["welcome_code"].as_str().unwrap().to_owned();
    let body = json!({"welcome_code": code, "text": {"content": "你好"}});

    emu.clock.advance(19_999);
    assert_eq!(emu.http.post(&send, &body).await["errcode"], 0);
    assert_eq!(
        emu.http.post(&send, &body).await["errcode"],
        41051,
        "second use"
    );

    let late = emu.event(json!({"kind": "add_contact"})).await;
    emu.clock.advance(20_000);
    let v = emu
        .http
        .post(
            &send,
            &json!({"welcome_code": late["welcome_code"], "text": {"content": "x"}}),
        )
        .await;
    assert_eq!(v["errcode"], 41050, "expired");
    let v = emu
        .http
        .post(
            &send,
            &json!({"welcome_code": "wcForged", "text": {"content": "x"}}),
        )
        .await;
    assert_eq!(v["errcode"], 41050, "unknown");
    let v = emu
        .http
        .post(&send, &json!({"text": {"content": "x"}}))
        .await;
    assert_eq!(v["errcode"], 41049, "missing");
    let v = emu.http.post(&send, &json!("not an object")).await;
    assert_eq!(v["errcode"], 47001);

    let welcomes = emu.deliveries("?channel=welcome").await;
    assert_eq!(welcomes.len(), 1, "exactly one welcome delivered");
    assert_eq!(welcomes[0]["to"], added["external_userid"]);
    assert_eq!(welcomes[0]["from"], "emu_staff_3");
    assert_eq!(welcomes[0]["content"]["text"]["content"], "你好");
}

#[tokio::test]
async fn new_contact_is_visible_through_the_contact_api() {
    let emu = Emu::start(Config::default()).await;
    let token = emu.wecom_token().await;
    let added = emu
        .event(json!({"kind": "add_contact", "staff": "emu_staff_2", "channel": 4}))
        .await;
    let id = added["external_userid"].as_str().unwrap();
    let v = emu
        .http
        .get(&format!(
            "/cgi-bin/externalcontact/get?access_token={token}&external_userid={id}"
        ))
        .await;
    assert_eq!(v["errcode"], 0);
    assert_eq!(v["external_contact"]["external_userid"], id);
    assert_eq!(v["follow_user"][0]["userid"], "emu_staff_2");
    assert_eq!(v["follow_user"][0]["state"], "channel_4");
    let list = emu
        .http
        .get(&format!(
            "/cgi-bin/externalcontact/list?access_token={token}&userid=emu_staff_2"
        ))
        .await;
    assert!(
        list["external_userid"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == id)
    );
}
