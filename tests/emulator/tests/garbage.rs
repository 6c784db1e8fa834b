//! Bad input gets a platform error, never a panic or a dropped connection.

mod common;

use common::Emu;
use serde_json::Value;
use sop_emulator::Config;
use sop_emulator::rng::Rng;

// Not `get_corp_tag_list`: an empty body or one without filters is a valid "list all".
const WECOM_POST: [&str; 11] = [
    "externalcontact/mark_tag",
    "externalcontact/add_corp_tag",
    "externalcontact/del_corp_tag",
    "externalcontact/remark",
    "externalcontact/send_welcome_msg",
    "externalcontact/add_msg_template",
    "externalcontact/get_groupmsg_task",
    "externalcontact/get_groupmsg_send_result",
    "externalcontact/groupchat/list",
    "externalcontact/groupchat/get",
    "message/send",
];

const DOUYIN_POST: [&str; 4] = [
    "/im/send/msg/",
    "/im/send/msg/group/",
    "/im/recall/msg/",
    "/im/authorize/user_list/",
];

fn bodies() -> Vec<String> {
    let mut out: Vec<String> = [
        "",
        "{",
        "[]",
        "null",
        "42",
        r#"{"a":1}"#,
        r#"{"userid":7,"external_userid":[1]}"#,
        r#"{"msgid":"msgEmu0000000001","userid":"emu_staff_999999"}"#,
        r#"{"chat_type":"group","text":{"content":"x"}}"#,
        r#"{"limit":1001}"#,
        r#"{"to_user_id":"dyu-9999999999","content":{}}"#,
        r#"{"group_id":"dyg-0000000x","content":{}}"#,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut rng = Rng::new(99);
    for _ in 0..10 {
        let len = rng.below(64) as usize;
        out.push(
            (0..len)
                .map(|_| char::from(32 + rng.below(95) as u8))
                .collect(),
        );
    }
    out
}

#[tokio::test]
async fn wecom_answers_every_bad_body_with_an_errcode() {
    let emu = Emu::start(Config::default()).await;
    let token = emu.wecom_token().await;
    for api in WECOM_POST {
        for body in bodies() {
            let path = format!("/cgi-bin/{api}?access_token={token}");
            let (status, text) = emu
                .http
                .raw("POST", &path, &[], body.clone())
                .await
                .unwrap();
            assert_eq!(status, 200, "{api} {body:?}");
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_ne!(v["errcode"], 0, "{api} {body:?} -> {v}");
        }
    }
    for query in [
        "",
        "external_userid=",
        "external_userid=wmEmu",
        "userid=%FF",
    ] {
        for api in ["externalcontact/get", "externalcontact/list"] {
            let v = emu
                .http
                .get(&format!("/cgi-bin/{api}?access_token={token}&{query}"))
                .await;
            assert_ne!(v["errcode"], 0, "{api} {query}");
        }
    }
    assert_eq!(emu.http.get("/_emulator/health").await, "ok");
}

#[tokio::test]
async fn douyin_answers_every_bad_body_with_an_error_code() {
    let emu = Emu::start(Config::default()).await;
    let token = emu.douyin_token().await;
    let open_id = emu.running.app.config().douyin.enterprise_open_id.clone();
    for api in DOUYIN_POST {
        for body in bodies() {
            let path = format!("{api}?open_id={open_id}");
            let (status, text) = emu
                .http
                .raw("POST", &path, &[("access-token", &token)], body.clone())
                .await
                .unwrap();
            assert_eq!(status, 200, "{api} {body:?}");
            let v: Value = serde_json::from_str(&text).unwrap();
            if api.ends_with("user_list/") {
                // Every field of the page query is optional: many bodies are a first page.
                assert!(v["data"]["error_code"].is_i64(), "{api} {body:?} -> {v}");
            } else {
                assert_ne!(v["data"]["error_code"], 0, "{api} {body:?} -> {v}");
            }
        }
    }
    assert_eq!(emu.http.get("/_emulator/health").await, "ok");
}

#[tokio::test]
async fn control_api_rejects_bad_input_with_4xx() {
    let emu = Emu::start(Config::default()).await;
    for (method, path) in [
        ("POST", "/_emulator/events"),
        ("PUT", "/_emulator/faults"),
        ("POST", "/_emulator/rate_limit/burst"),
        ("POST", "/_emulator/clock"),
        ("POST", "/_emulator/traffic"),
        ("POST", "/_emulator/tokens/expire"),
    ] {
        for body in ["{", "[true]", r#"{"kind":"nope"}"#] {
            let (status, _) = emu
                .http
                .raw(method, path, &[], body.to_owned())
                .await
                .unwrap();
            assert!(
                (400..500).contains(&status),
                "{method} {path} {body}: {status}"
            );
        }
    }
    let (status, _) = emu
        .http
        .raw(
            "POST",
            "/_emulator/events",
            &[],
            r#"{"kind":"go_silent","external_userid":"x"}"#.to_owned(),
        )
        .await
        .unwrap();
    assert_eq!(status, 400);
}
