//! Customers' messages to the 微信客服 account: a `kf_msg_or_event` callback with a token,
//! then `kf/sync_msg` pages from the reader's cursor.

mod common;

use common::Emu;
use serde_json::{Value, json};
use sop_emulator::Config;

const CUSTOMER: &str = "wmEmu0000000042";

async fn write(emu: &Emu, text: &str) -> Value {
    emu.event(json!({"kind": "customer_message", "external_userid": CUSTOMER, "text": text}))
        .await
}

#[tokio::test]
async fn a_customer_message_is_announced_then_read_with_the_cursor() {
    let emu = Emu::start(Config::default()).await;
    let access = emu.wecom_token().await;
    let sync = format!("/cgi-bin/kf/sync_msg?access_token={access}");

    let first = write(&emu, "在吗").await;
    assert_eq!(first["external_userid"], CUSTOMER);
    assert_eq!(first["open_kfid"], "wkEmu00000000001");
    let owner = first["servicer_userid"].as_str().unwrap().to_owned();
    assert!(owner.starts_with("emu_staff_"), "{owner}");

    // The callback carries only the token and the kf account, never the text.
    let callbacks = emu.http.get("/_emulator/callbacks").await;
    let record = callbacks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == first["callback_id"])
        .unwrap()
        .clone();
    assert_eq!(record["event"], "kf_msg_or_event");
    let xml = record["payload"].as_str().unwrap();
    assert!(
        xml.contains("<Event><![CDATA[kf_msg_or_event]]></Event>"),
        "{xml}"
    );
    assert!(xml.contains(first["token"].as_str().unwrap()));
    assert!(!xml.contains("在吗"));

    let token = first["token"].clone();
    let page = emu
        .http
        .post(&sync, &json!({"token": token, "limit": 1000}))
        .await;
    assert_eq!(page["errcode"], 0, "{page}");
    assert_eq!(page["has_more"], 0);
    let msg = &page["msg_list"][0];
    assert_eq!(msg["msgid"], first["msgid"]);
    assert_eq!(msg["external_userid"], CUSTOMER);
    assert_eq!(msg["servicer_userid"], owner.as_str());
    assert_eq!(msg["origin"], 3);
    assert_eq!(msg["msgtype"], "text");
    assert_eq!(msg["text"]["content"], "在吗");
    assert_eq!(msg["send_time"], common::START_MS / 1_000);

    // The next read from the returned cursor sees only what came after.
    emu.clock.advance(1_000);
    let second = write(&emu, "1").await;
    let page = emu
        .http
        .post(
            &sync,
            &json!({"cursor": page["next_cursor"], "token": second["token"], "open_kfid": "wkEmu00000000001"}),
        )
        .await;
    let texts: Vec<_> = page["msg_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"]["content"].clone())
        .collect();
    assert_eq!(texts, [json!("1")]);
}

#[tokio::test]
async fn sync_msg_errors() {
    let emu = Emu::start(Config::default()).await;
    let access = emu.wecom_token().await;
    let sync = format!("/cgi-bin/kf/sync_msg?access_token={access}");
    let w = write(&emu, "hi").await;

    let v = emu
        .http
        .post("/cgi-bin/kf/sync_msg", &json!({"token": w["token"]}))
        .await;
    assert_eq!(v["errcode"], 41001, "no access token");
    let v = emu.http.post(&sync, &json!("not an object")).await;
    assert_eq!(v["errcode"], 47001);
    let v = emu.http.post(&sync, &json!({"token": "ENCforged"})).await;
    assert_eq!(v["errcode"], 95007);
    let v = emu
        .http
        .post(&sync, &json!({"token": w["token"], "cursor": "garbage"}))
        .await;
    assert_eq!(v["errcode"], 40058);
    let v = emu
        .http
        .post(&sync, &json!({"token": w["token"], "open_kfid": "wkOther"}))
        .await;
    assert_eq!(v["errcode"], 95004);
    emu.clock.advance(600_000);
    let v = emu.http.post(&sync, &json!({"token": w["token"]})).await;
    assert_eq!(v["errcode"], 95007, "the callback token lives ten minutes");

    // Injected events that do not fit the world are refused.
    for bad in [
        json!({"kind": "customer_message", "external_userid": "wmNobody", "text": "x"}),
        json!({"kind": "customer_message", "external_userid": CUSTOMER, "text": "  "}),
    ] {
        let (status, _) = emu
            .http
            .send("POST", "/_emulator/events", &[], Some(&bad))
            .await;
        assert_eq!(status, 400, "{bad}");
    }
}
