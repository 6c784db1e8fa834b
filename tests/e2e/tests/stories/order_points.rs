//! Story 6 — Order points (公域订单换私域积分). The shop (the emulator's demo shop) announces a
//! paid order with a signed webhook; the daemon's shop plugin verifies it, the run credits the
//! order's points once, and the balance goes to the fan on WeCom (or, for a fan the brand only
//! knows on Douyin, an invitation into the private domain). The shop's retry, a captured request
//! replayed and a forged order change nothing.

use serde_json::{Value, json};
use sop_e2e::{DEADLINE, MINUTE, OrFail, Story, TICK_MS, count};
use sop_harness::wait_for;

/// `POST path` on the emulator.
async fn emulator(story: &Story, path: &str, body: Value) -> Value {
    story.world.emulator.post(path, &body).await.or_fail(story)
}

/// The shop's ledger of `member`.
async fn ledger(story: &Story, member: &str) -> Value {
    story
        .world
        .emulator
        .get(&format!("/_emulator/shop/members/{member}"))
        .await
        .or_fail(story)
}

/// Waits until the daemon answered shop webhook `id` (the emulator's record is `acked`).
async fn wait_acked(story: &Story, id: &Value) {
    let id = id.as_u64().expect("a callback id");
    wait_for(
        &format!("the daemon to take webhook {id}"),
        DEADLINE,
        || async move {
            story.advance(TICK_MS).await;
            let all = story
                .world
                .emulator
                .get("/_emulator/callbacks")
                .await
                .ok()?;
            let record = all.as_array()?.iter().find(|r| r["id"] == id)?.clone();
            (record["status"] == "acked").then_some(())
        },
    )
    .await
    .or_fail(story)
}

/// Every order-points run about `contact`, whatever its state (the daemon's contact view).
async fn runs_of(story: &Story, contact: &str) -> Vec<Value> {
    let view = story.contact(contact).await;
    view["runs"]
        .as_array()
        .map(|runs| {
            runs.iter()
                .filter(|r| r["playbook"] == "order-points")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn story_6_order_points() {
    let story = Story::start().await;
    let fan = story.add_contact("emu_staff_4", 1).await;
    // The daemon knows the fan as a WeCom contact before they buy (the add-contact callback is
    // delivered on its own; arriving after the order it would convert the run, whose goal is
    // adding the guide).
    story
        .wait_contact("the fan as a WeCom contact", &fan, |v| {
            v["contact"]["platform_ids"]["wecom:demo-wecom"] == fan.as_str()
        })
        .await;

    // The fan pays 129.00 yuan: 129 points.
    let order = emulator(
        &story,
        "/_emulator/shop/orders",
        json!({"external_userid": fan, "amount_cents": 12_900}),
    )
    .await;
    let member = order["member_id"].as_str().expect("member_id").to_owned();
    // The balance reaches the fan on WeCom (through the tenant's WeCom account: the run acts
    // for the shop account), once.
    let got = story
        .wait_deliveries_to("the balance message", &fan, |d| {
            count(d, "mass_send", "当前积分 129") == 1
        })
        .await;
    assert!(got.iter().all(|d| d["platform"] == "wecom"), "{got:#?}");
    let credited = ledger(&story, &member).await;
    assert_eq!(credited["balance"], 129, "{credited:#}");
    let entries = credited["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{credited:#}");
    assert_eq!(entries[0]["order_id"], order["order_id"]);
    assert_eq!(
        entries[0]["idempotency_key"],
        format!("order:{}", order["order_id"].as_str().unwrap())
    );

    // The shop retries the same event (fresh timestamp and signature): the daemon answers it
    // as a duplicate, nothing more is credited, no second run starts.
    let retry = emulator(
        &story,
        &format!(
            "/_emulator/shop/webhooks/{}/redeliver",
            order["callback_id"]
        ),
        json!({}),
    )
    .await;
    wait_acked(&story, &retry["callback_id"]).await;
    // Someone replays the captured request byte for byte inside the 5-minute window: 200 as a
    // duplicate, nothing changes.
    let replay = format!("/_emulator/shop/webhooks/{}/replay", order["callback_id"]);
    let replayed = emulator(&story, &replay, json!({})).await;
    assert_eq!(replayed["status"], 200, "{replayed}");
    // A forged order for another fan (signed with a guessed secret): the daemon refuses it (403), nothing starts.
    let other = story.add_contact("emu_staff_4", 2).await;
    let forged = emulator(
        &story,
        "/_emulator/shop/forge",
        json!({"external_userid": other, "amount_cents": 999_900}),
    )
    .await;
    assert_eq!(forged["status"], 403, "{forged}");
    // Ten minutes later the captured request is stale: refused.
    story.advance(10 * MINUTE).await;
    let stale = emulator(&story, &replay, json!({})).await;
    assert_eq!(stale["status"], 403, "{stale}");

    assert_eq!(
        runs_of(&story, &fan).await.len(),
        1,
        "one run for one order"
    );
    assert!(
        runs_of(&story, &other).await.is_empty(),
        "the forged order started a run"
    );
    assert_eq!(ledger(&story, &member).await, credited, "credited once");
    let shop = story
        .world
        .emulator
        .get("/_emulator/shop")
        .await
        .or_fail(&story);
    assert_eq!(shop["orders"].as_array().map(Vec::len), Some(1), "{shop:#}");
    let balance_messages = count(&story.deliveries_to(&fan).await, "mass_send", "积分");
    assert_eq!(balance_messages, 1, "one balance message for one order");

    // A fan the brand knows only on Douyin (authorised proactive messages) pays: points, and
    // the invitation into the private domain on Douyin.
    let dy_fan = "dyu-0000000021";
    story
        .event(json!({"kind": "douyin_authorize", "open_id": dy_fan}))
        .await;
    let dy_order = emulator(
        &story,
        "/_emulator/shop/orders",
        json!({"open_id": dy_fan, "amount_cents": 5_000}),
    )
    .await;
    story
        .wait_deliveries_to("the Douyin invitation", dy_fan, |d| {
            count(d, "direct_message", "企业微信") == 1
        })
        .await;
    let dy_member = dy_order["member_id"].as_str().expect("member_id");
    assert_eq!(ledger(&story, dy_member).await["balance"], 50);
}
