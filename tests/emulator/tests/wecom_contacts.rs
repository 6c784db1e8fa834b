//! Contacts, tags, remarks, groups and app messages.

mod common;

use common::Emu;
use serde_json::json;
use sop_emulator::Config;

#[tokio::test]
async fn tags_and_remarks_show_up_in_get() {
    let emu = Emu::start(Config::default()).await;
    let token = emu.wecom_token().await;
    let added = emu
        .event(json!({"kind": "add_contact", "staff": "emu_staff_0"}))
        .await;
    let id = added["external_userid"].as_str().unwrap();
    let call = |name: &str| format!("/cgi-bin/externalcontact/{name}?access_token={token}");
    let tag = json!({"userid": "emu_staff_0", "external_userid": id, "add_tag": ["etEmu000001", "etEmu000002"]});
    assert_eq!(emu.http.post(&call("mark_tag"), &tag).await["errcode"], 0);
    assert_eq!(
        emu.http.post(&call("mark_tag"), &tag).await["errcode"],
        0,
        "idempotent"
    );
    let v = emu
        .http
        .post(
            &call("mark_tag"),
            &json!({"userid": "emu_staff_0", "external_userid": id, "remove_tag": ["etEmu000001"]}),
        )
        .await;
    assert_eq!(v["errcode"], 0);
    let v = emu
        .http
        .post(
            &call("mark_tag"),
            &json!({"userid": "emu_staff_0", "external_userid": id, "add_tag": ["etEmu999999"]}),
        )
        .await;
    assert_eq!(v["errcode"], 40068);
    let v = emu
        .http
        .post(
            &call("mark_tag"),
            &json!({"userid": "emu_staff_1", "external_userid": id, "add_tag": ["etEmu000001"]}),
        )
        .await;
    assert_eq!(v["errcode"], 84061, "not this staff member's customer");

    let remark = json!({"userid": "emu_staff_0", "external_userid": id, "remark": "VIP 张", "description": "买过两次"});
    assert_eq!(emu.http.post(&call("remark"), &remark).await["errcode"], 0);
    let long = json!({"userid": "emu_staff_0", "external_userid": id, "remark": "x".repeat(21)});
    assert_eq!(
        emu.http.post(&call("remark"), &long).await["errcode"],
        40058
    );

    let v = emu
        .http
        .get(&format!("{}&external_userid={id}", call("get")))
        .await;
    let follow = &v["follow_user"][0];
    assert_eq!(follow["remark"], "VIP 张");
    assert_eq!(follow["description"], "买过两次");
    assert_eq!(follow["tags"].as_array().unwrap().len(), 1);
    assert_eq!(follow["tags"][0]["tag_id"], "etEmu000002");
}

#[tokio::test]
async fn deleted_friend_cannot_be_looked_up_or_tagged() {
    let emu = Emu::start(Config::default()).await;
    let token = emu.wecom_token().await;
    let added = emu
        .event(json!({"kind": "add_contact", "staff": "emu_staff_0"}))
        .await;
    let id = added["external_userid"].as_str().unwrap();
    emu.event(json!({"kind": "staff_deletes_customer", "external_userid": id}))
        .await;
    let v = emu
        .http
        .get(&format!(
            "/cgi-bin/externalcontact/get?access_token={token}&external_userid={id}"
        ))
        .await;
    assert_eq!(v["errcode"], 84061);
    let v = emu
        .http
        .get(&format!(
            "/cgi-bin/externalcontact/get?access_token={token}&external_userid=garbage"
        ))
        .await;
    assert_eq!(v["errcode"], 40096);
}

#[tokio::test]
async fn groupchat_list_pages_and_get_shows_members() {
    let mut c = Config::default();
    c.world.groups = 5;
    c.world.group_size = 4;
    let emu = Emu::start(c).await;
    let token = emu.wecom_token().await;
    let list = format!("/cgi-bin/externalcontact/groupchat/list?access_token={token}");
    let v = emu
        .http
        .post(&list, &json!({"status_filter": 0, "limit": 3}))
        .await;
    assert_eq!(v["group_chat_list"].as_array().unwrap().len(), 3);
    let next = v["next_cursor"].as_str().unwrap().to_owned();
    assert!(!next.is_empty());
    let v = emu
        .http
        .post(&list, &json!({"limit": 3, "cursor": next}))
        .await;
    assert_eq!(v["group_chat_list"].as_array().unwrap().len(), 2);
    assert_eq!(v["next_cursor"], "");
    assert_eq!(
        emu.http.post(&list, &json!({"limit": 0})).await["errcode"],
        40058
    );

    let get = format!("/cgi-bin/externalcontact/groupchat/get?access_token={token}");
    let v = emu
        .http
        .post(&get, &json!({"chat_id": "wrEmu00000001", "need_name": 1}))
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    let members = v["group_chat"]["member_list"].as_array().unwrap();
    assert_eq!(members.len(), 5, "owner and four customers");
    assert_eq!(members[1]["type"], 2);
    assert!(members[1]["name"].is_string());
    assert_eq!(
        emu.http
            .post(&get, &json!({"chat_id": "wrEmu99999999"}))
            .await["errcode"],
        40050
    );
}

#[tokio::test]
async fn app_messages_report_invalid_users_and_drop_the_excess() {
    let emu = Emu::start(Config::default()).await;
    let token = emu.wecom_token().await;
    let send = format!("/cgi-bin/message/send?access_token={token}");
    let msg = |to: &str| json!({"touser": to, "msgtype": "text", "agentid": 1_000_002, "text": {"content": "客户要退款"}});
    let v = emu.http.post(&send, &msg("emu_staff_1|nobody")).await;
    assert_eq!(v["errcode"], 0);
    assert_eq!(v["invaliduser"], "nobody");
    assert_eq!(emu.http.post(&send, &msg("nobody")).await["errcode"], 81013);
    let mut wrong_agent = msg("emu_staff_1");
    wrong_agent["agentid"] = json!(1);
    assert_ne!(emu.http.post(&send, &wrong_agent).await["errcode"], 0);

    for _ in 0..40 {
        emu.http.post(&send, &msg("emu_staff_2")).await;
    }
    assert_eq!(
        emu.deliveries("?to=emu_staff_2").await.len(),
        30,
        "30 a minute reach a member"
    );
    emu.clock.advance(60_000);
    let token = emu.wecom_token().await;
    let send = format!("/cgi-bin/message/send?access_token={token}");
    emu.http.post(&send, &msg("emu_staff_2")).await;
    assert_eq!(emu.deliveries("?to=emu_staff_2").await.len(), 31);
}

#[tokio::test]
async fn groups_can_be_created_and_dismissed() {
    let emu = Emu::start(Config::default()).await;
    let token = emu.wecom_token().await;
    let created = emu
        .event(json!({"kind": "create_group", "staff": "emu_staff_4"}))
        .await;
    let chat_id = created["chat_id"].as_str().unwrap().to_owned();
    let get = format!("/cgi-bin/externalcontact/groupchat/get?access_token={token}");
    let v = emu.http.post(&get, &json!({"chat_id": chat_id})).await;
    assert_eq!(v["group_chat"]["owner"], "emu_staff_4");
    assert_eq!(v["group_chat"]["member_list"].as_array().unwrap().len(), 1);

    emu.event(json!({"kind": "dismiss_group", "chat_id": chat_id}))
        .await;
    let v = emu.http.post(&get, &json!({"chat_id": chat_id})).await;
    assert_eq!(v["errcode"], 40050);
    let (status, _) = emu
        .http
        .send(
            "POST",
            "/_emulator/events",
            &[],
            Some(&json!({"kind": "dismiss_group", "chat_id": chat_id})),
        )
        .await;
    assert_eq!(status, 400, "already dismissed");
    let callbacks = emu.http.get("/_emulator/callbacks").await;
    let events: Vec<&str> = callbacks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["create", "dismiss"]);
}
