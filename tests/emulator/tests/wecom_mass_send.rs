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
    assert_eq!(v["errcode"], 41047, "unknown msgid");
    let v = api
        .call(
            "get_groupmsg_send_result",
            json!({"msgid": "msgNope", "userid": "emu_staff_1"}),
        )
        .await;
    assert_eq!(v["errcode"], 41047, "unknown msgid");
    let v = api.call("get_groupmsg_task", json!({})).await;
    assert_eq!(v["errcode"], 41046, "no msgid");
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

/// A world of `contacts` generated customers (all friends) over `staff` members.
fn populated(staff: u32, contacts: u32) -> Config {
    let mut c = Config::default();
    c.world.staff = staff;
    c.world.contacts = contacts;
    c.world.groups = 0;
    c
}

fn contact(i: u32) -> String {
    format!("wmEmu{i:010}")
}

/// The counters that count mass sends, as `(tasks, recipients, fail_list, sent, not_sent)`,
/// and the `add_msg_template` calls.
async fn mass_counters(emu: &Emu) -> ((u64, u64, u64, u64, u64), u64) {
    let c = emu.http.get("/_emulator/counters").await;
    let n = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("no {k} in {c}"));
    let calls = c["endpoints"]["externalcontact/add_msg_template"]["calls"]
        .as_u64()
        .unwrap_or(0);
    (
        (
            n("mass_tasks"),
            n("mass_recipients"),
            n("mass_fail_list"),
            n("mass_sent"),
            n("mass_not_sent"),
        ),
        calls,
    )
}

#[tokio::test]
async fn one_task_for_many_contacts_fails_only_the_unsendable_and_counts_recipients() {
    let emu = Emu::start(populated(3, 2_500)).await;
    let api = Api {
        emu: &emu,
        token: emu.wecom_token().await,
    };
    emu.event(json!({"kind": "customer_deletes_staff", "external_userid": contact(7)}))
        .await;
    let mut ids: Vec<String> = (0..2_500).map(contact).collect();
    ids.push("wmEmu9999999999".into()); // nobody
    ids.push("not-an-id".into());
    ids.push(contact(3)); // repeated: sent once, not a failure
    let v = api
        .call(
            "add_msg_template",
            json!({"chat_type": "single", "external_userid": ids, "text": {"content": "双12"}}),
        )
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(
        v["fail_list"],
        json!([contact(7), "wmEmu9999999999", "not-an-id"])
    );
    let msgid = v["msgid"].as_str().unwrap().to_owned();
    assert_eq!(
        mass_counters(&emu).await,
        ((1, 2_499, 3, 0, 0), 1),
        "one call, one task, 2,499 recipients; nothing sent before confirmation"
    );
    assert!(emu.deliveries(&format!("?task={msgid}")).await.is_empty());

    // Every owner of a recipient is a sender of the task.
    let task = api.call("get_groupmsg_task", json!({"msgid": msgid})).await;
    assert_eq!(task["task_list"].as_array().unwrap().len(), 3, "{task}");

    // One customer leaves before their owner confirms: reported, not delivered.
    emu.event(json!({"kind": "customer_deletes_staff", "external_userid": contact(11)}))
        .await;
    emu.clock.advance(60_000);
    let sent = emu.deliveries(&format!("?task={msgid}")).await;
    let mut to: Vec<&str> = sent.iter().map(|d| d["to"].as_str().unwrap()).collect();
    to.sort_unstable();
    let expected: Vec<String> = (0..2_500)
        .filter(|&i| i != 7 && i != 11)
        .map(contact)
        .collect();
    assert_eq!(to, expected, "one delivery per recipient, no duplicates");
    assert!(sent.iter().all(|d| d["channel"] == "mass_send"
        && d["call"] == "externalcontact/add_msg_template"
        && d["content"]["text"]["content"] == "双12"));
    assert_eq!(mass_counters(&emu).await, ((1, 2_499, 3, 2_498, 1), 1));

    // With a sender, the other members' customers cannot be sent to.
    let owner_of_0 = emu.running.app.lock().world.contacts[0].owner;
    let others: Vec<String> = (0..50)
        .filter(|&i| emu.running.app.lock().world.contacts[i as usize].owner != owner_of_0)
        .map(contact)
        .collect();
    assert!(!others.is_empty());
    let mut ids = vec![contact(0)];
    ids.extend(others.iter().cloned());
    let v = api
        .call(
            "add_msg_template",
            json!({"sender": format!("emu_staff_{owner_of_0}"), "external_userid": ids,
                   "text": {"content": "x"}}),
        )
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(v["fail_list"], json!(others));
    let (counts, calls) = mass_counters(&emu).await;
    assert_eq!(
        (counts.0, counts.1, counts.2, calls),
        (2, 2_500, 3 + others.len() as u64, 2)
    );
}

#[tokio::test]
async fn send_results_of_a_10000_contact_task_take_10_pages_of_1000() {
    let emu = Emu::start(populated(1, 10_001)).await;
    let api = Api {
        emu: &emu,
        token: emu.wecom_token().await,
    };
    let too_many: Vec<String> = (0..10_001).map(contact).collect();
    let v = api
        .call(
            "add_msg_template",
            json!({"external_userid": too_many, "text": {"content": "x"}}),
        )
        .await;
    assert_eq!(v["errcode"], 40058, "more than 10,000 ids: {v}");
    assert_eq!(mass_counters(&emu).await, ((0, 0, 0, 0, 0), 1));

    let ids: Vec<String> = (0..10_000).map(contact).collect();
    let v = api
        .call(
            "add_msg_template",
            json!({"external_userid": ids, "text": {"content": "x"}}),
        )
        .await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(v["fail_list"], json!([]));
    let msgid = v["msgid"].as_str().unwrap().to_owned();
    emu.clock.advance(60_000);

    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = api
            .call(
                "get_groupmsg_send_result",
                json!({"msgid": msgid, "userid": "emu_staff_0", "limit": 1000, "cursor": cursor}),
            )
            .await;
        assert_eq!(page["errcode"], 0, "{page}");
        let list = page["send_list"].as_array().unwrap();
        assert!(list.len() <= 1_000);
        for r in list {
            assert_eq!(r["status"], 1, "{r}");
            assert_eq!(r["userid"], "emu_staff_0");
            seen.push(r["external_userid"].as_str().unwrap().to_owned());
        }
        pages += 1;
        cursor = page["next_cursor"].as_str().unwrap().to_owned();
        if cursor.is_empty() {
            break;
        }
        assert!(pages < 20, "runaway paging");
    }
    assert_eq!(pages, 10);
    assert_eq!(seen, ids, "every recipient once, in order");

    // Without `limit`, or above 1,000, a page is the documented default of 500.
    for body in [
        json!({"msgid": msgid, "userid": "emu_staff_0"}),
        json!({"msgid": msgid, "userid": "emu_staff_0", "limit": 5000}),
    ] {
        let page = api.call("get_groupmsg_send_result", body).await;
        assert_eq!(page["send_list"].as_array().unwrap().len(), 500);
        assert_eq!(page["next_cursor"], "500");
    }

    assert_eq!(
        mass_counters(&emu).await,
        ((1, 10_000, 0, 10_000, 0), 2),
        "two calls (one refused), one task, 10,000 messages"
    );
    assert_eq!(
        emu.deliveries(&format!("?task={msgid}")).await.len(),
        10_000
    );
}
