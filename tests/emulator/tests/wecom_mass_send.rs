//! Mass-send tasks: nothing is delivered before the staff member confirms; confirmation
//! applies friendships and receive limits; results are reported per sender and recipient.

mod common;

use common::Emu;
use serde_json::{Value, json};
use sop_emulator::Config;
use sop_emulator::config::ReceiveLimit;

struct Api<'a> {
    emu: &'a Emu,
    token: String,
}

impl Api<'_> {
    async fn call(&self, name: &str, body: Value) -> Value {
        self.emu
            .http
            .post(
                &format!(
                    "/cgi-bin/externalcontact/{name}?access_token={}",
                    self.token
                ),
                &body,
            )
            .await
    }
}

/// Three contacts of staff 1, one of them deleted, plus a stranger.
async fn setup(config: Config) -> (Emu, String, Vec<String>) {
    let emu = Emu::start(config).await;
    let token = emu.wecom_token().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let v = emu
            .event(json!({"kind": "add_contact", "staff": "emu_staff_1"}))
            .await;
        ids.push(v["external_userid"].as_str().unwrap().to_owned());
    }
    emu.event(json!({"kind": "customer_deletes_staff", "external_userid": ids[2]}))
        .await;
    (emu, token, ids)
}

fn small_world() -> Config {
    let mut c = Config::default();
    c.world.contacts = 0;
    c.world.groups = 0;
    c
}

#[tokio::test]
async fn task_waits_for_confirmation_then_delivers() {
    let (emu, token, ids) = setup(small_world()).await;
    let api = Api { emu: &emu, token };
    let v = api
        .call(
            "add_msg_template",
            json!({"chat_type": "single", "sender": "emu_staff_1",
                   "external_userid": [ids[0], ids[1], ids[2], "wmEmu9999999999"],
                   "text": {"content": "双11"}}),
        )
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(v["fail_list"], json!([ids[2], "wmEmu9999999999"]));
    let msgid = v["msgid"].as_str().unwrap().to_owned();

    let task = api.call("get_groupmsg_task", json!({"msgid": msgid})).await;
    assert_eq!(
        task["task_list"],
        json!([{"userid": "emu_staff_1", "status": 0}])
    );
    assert!(
        emu.deliveries("?channel=mass_send").await.is_empty(),
        "nothing before confirmation"
    );

    emu.clock.advance(60_000);
    let task = api.call("get_groupmsg_task", json!({"msgid": msgid})).await;
    assert_eq!(task["task_list"][0]["status"], 2);
    let result = api
        .call(
            "get_groupmsg_send_result",
            json!({"msgid": msgid, "userid": "emu_staff_1"}),
        )
        .await;
    let list = result["send_list"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .all(|r| r["status"] == 1 && r["send_time"].is_u64())
    );

    let sent = emu.deliveries(&format!("?task={msgid}")).await;
    let mut to: Vec<&str> = sent.iter().map(|d| d["to"].as_str().unwrap()).collect();
    to.sort_unstable();
    assert_eq!(
        to,
        vec![ids[0].as_str(), ids[1].as_str()],
        "exactly these, no duplicates"
    );
}

#[tokio::test]
async fn friend_deleted_before_confirmation_is_reported_not_delivered() {
    let (emu, token, ids) = setup(small_world()).await;
    let api = Api { emu: &emu, token };
    let v = api
        .call("add_msg_template", json!({"sender": "emu_staff_1", "external_userid": [ids[0], ids[1]], "text": {"content": "hi"}}))
        .await;
    let msgid = v["msgid"].as_str().unwrap().to_owned();
    emu.event(json!({"kind": "customer_deletes_staff", "external_userid": ids[1]}))
        .await;
    emu.clock.advance(60_000);
    let result = api
        .call(
            "get_groupmsg_send_result",
            json!({"msgid": msgid, "userid": "emu_staff_1"}),
        )
        .await;
    let status: Vec<(String, u64)> = result["send_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["external_userid"].as_str().unwrap().to_owned(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(status.contains(&(ids[0].clone(), 1)));
    assert!(status.contains(&(ids[1].clone(), 2)));
    assert_eq!(emu.deliveries(&format!("?to={}", ids[1])).await.len(), 0);
}

#[tokio::test]
async fn receive_limit_stops_the_third_message_of_the_month() {
    let mut c = small_world();
    c.wecom.customer_receive_limit = ReceiveLimit::PerMonth(2);
    let (emu, token, ids) = setup(c).await;
    let api = Api { emu: &emu, token };
    let mut msgids = Vec::new();
    for i in 0..3 {
        let v = api
            .call("add_msg_template", json!({"sender": "emu_staff_1", "external_userid": [ids[0]], "text": {"content": format!("m{i}")}}))
            .await;
        msgids.push(v["msgid"].as_str().unwrap().to_owned());
        emu.clock.advance(60_000);
    }
    let third = api
        .call(
            "get_groupmsg_send_result",
            json!({"msgid": msgids[2], "userid": "emu_staff_1"}),
        )
        .await;
    assert_eq!(third["send_list"][0]["status"], 3, "over the receive limit");
    assert_eq!(
        emu.deliveries(&format!("?to={}", ids[0])).await.len(),
        2,
        "no limit exceeded"
    );
}

#[tokio::test]
async fn default_rule_allows_days_in_month() {
    let (emu, token, ids) = setup(small_world()).await;
    let api = Api { emu: &emu, token };
    // March has 31 days: the 32nd message in the month is refused.
    for i in 0..32 {
        api.call("add_msg_template", json!({"sender": "emu_staff_1", "external_userid": [ids[0]], "text": {"content": format!("m{i}")}}))
            .await;
        emu.clock.advance(61_000);
    }
    emu.clock.advance(60_000);
    let to_first = emu.deliveries(&format!("?to={}", ids[0])).await;
    assert_eq!(to_first.len(), 31);
}

#[tokio::test]
async fn never_confirmed_tasks_can_be_confirmed_on_request() {
    let mut c = small_world();
    c.wecom.confirm_after_ms = None;
    let (emu, token, ids) = setup(c).await;
    let api = Api { emu: &emu, token };
    let v = api
        .call(
            "add_msg_template",
            json!({"sender": "emu_staff_1", "external_userid": [ids[0]], "text": {"content": "x"}}),
        )
        .await;
    let msgid = v["msgid"].as_str().unwrap().to_owned();
    emu.clock.advance(86_400_000);
    let api = Api {
        emu: &emu,
        token: emu.wecom_token().await,
    };
    assert_eq!(
        api.call("get_groupmsg_task", json!({"msgid": msgid})).await["task_list"][0]["status"],
        0
    );
    let v = emu
        .http
        .post(
            &format!("/_emulator/wecom/tasks/{msgid}/confirm"),
            &json!({}),
        )
        .await;
    assert_eq!(v["confirmed_senders"], 1);
    assert_eq!(
        api.call("get_groupmsg_task", json!({"msgid": msgid})).await["task_list"][0]["status"],
        2
    );
    let (status, _) = emu
        .http
        .send("POST", "/_emulator/wecom/tasks/msgNope/confirm", &[], None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn nothing_sendable_is_41048_and_bad_input_is_reported() {
    let (emu, token, ids) = setup(small_world()).await;
    let api = Api { emu: &emu, token };
    let v = api
        .call(
            "add_msg_template",
            json!({"sender": "emu_staff_1", "external_userid": [ids[2]], "text": {"content": "x"}}),
        )
        .await;
    assert_eq!(v["errcode"], 41048);
    let v = api
        .call(
            "add_msg_template",
            json!({"sender": "emu_staff_1", "external_userid": [ids[0]]}),
        )
        .await;
    assert_eq!(v["errcode"], 40058, "no content");
    let v = api
        .call("get_groupmsg_task", json!({"msgid": "msgNope"}))
        .await;
    assert_ne!(v["errcode"], 0);
}

#[tokio::test]
async fn group_mass_send_reaches_the_senders_groups() {
    let mut c = Config::default();
    c.world.staff = 1;
    c.world.groups = 3;
    c.world.contacts = 100;
    c.world.group_size = 10;
    let emu = Emu::start(c).await;
    let token = emu.wecom_token().await;
    let api = Api { emu: &emu, token };
    let v = api
        .call(
            "add_msg_template",
            json!({"chat_type": "group", "sender": "emu_staff_0", "text": {"content": "群发"}}),
        )
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    emu.clock.advance(60_000);
    let sent = emu.deliveries("?channel=group_mass_send").await;
    assert_eq!(sent.len(), 3);
    let export = emu
        .http
        .raw("GET", "/_emulator/export.jsonl", &[], String::new())
        .await
        .unwrap()
        .1;
    assert_eq!(export.lines().count(), 3);
    for line in export.lines() {
        let d: Value = serde_json::from_str(line).unwrap();
        assert_eq!(d["call"], "externalcontact/add_msg_template");
        assert_eq!(d["task"], v["msgid"]);
    }
}

#[tokio::test]
async fn deletion_after_the_confirmation_time_does_not_undo_the_delivery() {
    let (emu, token, ids) = setup(small_world()).await;
    let api = Api { emu: &emu, token };
    let v = api
        .call(
            "add_msg_template",
            json!({"sender": "emu_staff_1", "external_userid": [ids[0]], "text": {"content": "x"}}),
        )
        .await;
    let msgid = v["msgid"].as_str().unwrap().to_owned();
    emu.clock.advance(120_000);
    // Nobody looked at the task before the customer left; the message had gone out at 60 s.
    emu.event(json!({"kind": "customer_deletes_staff", "external_userid": ids[0]}))
        .await;
    let result = api
        .call(
            "get_groupmsg_send_result",
            json!({"msgid": msgid, "userid": "emu_staff_1"}),
        )
        .await;
    assert_eq!(result["send_list"][0]["status"], 1);
    let sent = emu.deliveries(&format!("?task={msgid}")).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["at_ms"].as_u64().unwrap(),
        common::START_MS + 60_000
    );
}
