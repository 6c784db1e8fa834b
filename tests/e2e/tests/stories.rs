//! DESIGN.md's six stories, each walked through the real daemon and emulator processes with
//! the bundled playbooks and WASM plugins, on manual clocks moved together (see `sop_e2e`).

use serde_json::{Value, json};
use sop_e2e::{DAY, DEADLINE, HOUR, MINUTE, OrFail, START_MS, Story, TICK_MS, count, text};
use sop_harness::wait_for;

/// Story 6 lives in its own file (`stories/order_points.rs`).
#[path = "stories/order_points.rs"]
mod order_points;

/// Story 1 — Welcome. A contact adds a staff member through a channel QR code: the welcome
/// (text + mini-program card saying where they came from) goes out with the callback's
/// welcome code, once each; WeCom tags them by channel; "1" gets the coupon, and a day
/// without a reply gets the fan-group invite.
#[tokio::test]
async fn story_1_welcome() {
    let story = Story::start().await;
    let replier = story.add_contact("emu_staff_1", 2).await;
    let silent = story.add_contact("emu_staff_1", 3).await;

    // The welcome, within the welcome code's 20 s (the emulator refuses an expired code).
    for (who, channel) in [(&replier, "channel_2"), (&silent, "channel_3")] {
        let got = story
            .wait_deliveries_to("the welcome", who, |d| count(d, "welcome", "欢迎来到") == 1)
            .await;
        let welcome = &got[0];
        assert_eq!(welcome["from"], "emu_staff_1");
        assert!(
            text(welcome).contains(&format!("from={channel}")),
            "the card says where they came from: {welcome}"
        );
    }

    // Tagged on WeCom by channel: the plugin created `channel:…` in the `sop` tag group.
    for (who, channel) in [(&replier, "channel_2"), (&silent, "channel_3")] {
        story.wait_run("welcome", who, "waiting").await;
        let tags = story.wecom_tags(who).await;
        assert_eq!(tags, [format!("channel:{channel}")], "{who}");
    }
    let library = story
        .wecom_post("externalcontact/get_corp_tag_list", &json!({}))
        .await;
    let mut sop_group: Vec<&str> = library["tag_group"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["group_name"] == "sop")
        .flat_map(|g| g["tag"].as_array().into_iter().flatten())
        .filter_map(|t| t["name"].as_str())
        .collect();
    sop_group.sort_unstable(); // the two runs tag in either order
    assert_eq!(
        sop_group,
        ["channel:channel_2", "channel:channel_3"],
        "{library}"
    );

    // A menu keyword gets the matching answer. Mass sends are asynchronous: the run goes on
    // once the plugin has checked the outcome, 5 minutes after the task (its default).
    story.contact_writes(&replier, "1").await;
    story
        .wait_deliveries_to("the coupon", &replier, |d| {
            count(d, "mass_send", "您的新人券") == 1
        })
        .await;
    story.advance(6 * MINUTE).await;
    story.wait_run("welcome", &replier, "completed").await;
    let tags = story.tags(&replier).await;
    assert!(tags.contains(&"coupon_sent".to_owned()), "{tags:?}");

    // A day without a reply: the fan-group invite, to the silent contact only.
    story.advance(DAY - 6 * MINUTE).await;
    story
        .wait_deliveries_to("the fan-group invite", &silent, |d| {
            count(d, "mass_send", "粉丝群") == 1
        })
        .await;
    story.advance(6 * MINUTE).await;
    story.wait_run("welcome", &silent, "completed").await;

    let all = story.deliveries().await;
    assert_eq!(count(&all, "welcome", ""), 2, "one welcome each: {all:#?}");
    let replier_got = story.deliveries_to(&replier).await;
    assert_eq!(
        count(&replier_got, "mass_send", "粉丝群"),
        0,
        "{replier_got:#?}"
    );
    assert_eq!(
        count(&replier_got, "mass_send", "您的新人券"),
        1,
        "{replier_got:#?}"
    );
    let silent_got = story.deliveries_to(&silent).await;
    assert_eq!(
        count(&silent_got, "mass_send", "粉丝群"),
        1,
        "{silent_got:#?}"
    );
    assert_eq!(
        count(&silent_got, "mass_send", "您的新人券"),
        0,
        "{silent_got:#?}"
    );
}

/// Tags the given contacts (a playbook deployed and started over the admin API, as an
/// operator would: sop has no other way to tag a contact by hand).
/// Story 2 — Group nurturing. A staff member creates a customer group; sop reads its owner
/// from WeCom. The operator tags it `nurture` and gives it materials and a live day over the
/// admin API. Members who join in a burst get one welcome, 10 minutes after the last join;
/// the group gets the day's material at 10:00 on weekdays, with the live preview on its live
/// day; an untagged group gets nothing; a dismissed group nothing more.
#[tokio::test]
async fn story_2_group_nurture() {
    let story = Story::start().await;
    let created = story
        .event(json!({"kind": "create_group", "staff": "emu_staff_1"}))
        .await;
    let nurtured = created["chat_id"].as_str().expect("chat_id").to_owned();
    let other = story
        .event(json!({"kind": "create_group", "staff": "emu_staff_2"}))
        .await["chat_id"]
        .as_str()
        .expect("chat_id")
        .to_owned();
    for (chat, owner) in [(&nurtured, "emu_staff_1"), (&other, "emu_staff_2")] {
        story
            .wait_group("the group read from WeCom", chat, |g| {
                g["group"]["owner"] == owner
            })
            .await;
    }

    // The operator's part: the tag, the materials, the live day (Tuesday).
    let edited = story
        .world
        .admin
        .patch(
            &format!("/api/groups/{}/{nurtured}", sop_e2e::TENANT),
            &json!({"add_tags": ["nurture"],
                    "attributes": {"materials": ["今日好物 A", "今日好物 B"], "live_days": [2]}}),
        )
        .await
        .or_fail(&story);
    assert_eq!(edited["group"]["tags"], json!(["nurture"]), "{edited}");

    // 09:00: two customers join the nurtured group 3 minutes apart, one joins the other group.
    let first = story.add_contact("emu_staff_1", 0).await;
    let second = story.add_contact("emu_staff_1", 0).await;
    let elsewhere = story.add_contact("emu_staff_2", 0).await;
    let join = |chat: &str, who: &str| json!({"kind": "join_group", "chat_id": chat, "external_userid": who});
    story.event(join(&nurtured, &first)).await;
    story.event(join(&other, &elsewhere)).await;
    story
        .wait_group("the join counted", &nurtured, |g| {
            g["group"]["member_count"] == 2
        })
        .await;
    story.advance(3 * MINUTE).await;
    story.event(join(&nurtured, &second)).await;
    // The callback is on its way, not yet taken: moving the clock before the daemon has it
    // would date the join (and the burst's 10 minutes) after the move.
    story
        .wait_group("the second join counted", &nurtured, |g| {
            g["group"]["member_count"] == 3
        })
        .await;
    // One welcome for the burst, 10 minutes after the last join; none before.
    story.advance(9 * MINUTE).await;
    assert_eq!(
        count(&story.deliveries_to(&nurtured).await, "group_mass_send", ""),
        0,
        "the burst is still going"
    );
    story.advance(MINUTE).await;
    let got = story
        .wait_deliveries_to("the welcome", &nurtured, |d| {
            count(d, "group_mass_send", "欢迎新朋友加入") == 1
        })
        .await;
    assert_eq!(got[0]["from"], "emu_staff_1", "sent by the owner: {got:#?}");

    // 10:00 Monday (day 61 of the year): the second material, no preview.
    story.advance_to(START_MS + HOUR).await;
    story
        .wait_deliveries_to("Monday's content", &nurtured, |d| {
            count(d, "group_mass_send", "今日好物 B") == 1
        })
        .await;
    // The run ends at the send's outcome check: walk through it, or Tuesday's start would
    // meet Monday's run still live (`one_active_run`) when one jump fires both at once.
    past_the_outcome_check(&story).await;
    story
        .wait_run("group-nurture", &nurtured, "completed")
        .await;
    // 10:00 Tuesday, its live day: the first material with the live preview, in one message.
    story.advance_to(START_MS + DAY + HOUR).await;
    let got = story
        .wait_deliveries_to("Tuesday's content", &nurtured, |d| {
            count(d, "group_mass_send", "今日好物 A") == 1
        })
        .await;
    let tuesday = got.iter().find(|d| text(d).contains("今日好物 A")).unwrap();
    assert!(text(tuesday).contains("今晚 19:00 直播预告"), "{tuesday:#}");
    assert!(
        !got.iter()
            .any(|d| text(d).contains("今日好物 B") && text(d).contains("直播预告"))
    );
    past_the_outcome_check(&story).await;

    // The owner dismisses the group: nothing on Wednesday.
    story
        .event(json!({"kind": "dismiss_group", "chat_id": nurtured}))
        .await;
    story
        .wait_group("the dismissal", &nurtured, |g| {
            g["group"]["attributes"]["dismissed"] == true
        })
        .await;
    story
        .advance_to(START_MS + 2 * DAY + HOUR + 10 * MINUTE)
        .await;
    story
        .wait_run("group-nurture", &nurtured, "completed")
        .await;
    let nurtured_got = story.deliveries_to(&nurtured).await;
    assert_eq!(
        count(&nurtured_got, "group_mass_send", ""),
        3,
        "one welcome, Monday's and Tuesday's content: {nurtured_got:#?}"
    );
    let other_got = story.deliveries_to(&other).await;
    assert!(other_got.is_empty(), "not tagged: {other_got:#?}");
}

async fn tag_contacts(story: &Story, id: &str, step: &str, contacts: &[&str]) {
    let source = format!(
        "id: {id}\nversion: 1\nname: {id}\ntenant: demo-brand\ntriggers: [{{manual: true}}]\nsteps:\n{step}"
    );
    story.deploy(&source, "demo-wecom").await;
    let started = story.start_for(id, contacts).await;
    assert_eq!(
        started["enrolled"].as_array().map(Vec::len),
        Some(contacts.len()),
        "{started}"
    );
    for c in contacts {
        story.wait_run(id, c, "completed").await;
    }
}

/// Waits until the run of `playbook` about `contact` waits at `step` (the admin API's
/// `waiting` state covers timers, events, hand-offs and asynchronous outcomes).
async fn wait_run_at(story: &Story, playbook: &str, contact: &str, step: &str) -> Value {
    wait_for(
        &format!("the run of {playbook} for {contact} waiting at `{step}`"),
        DEADLINE,
        || async move {
            story.advance(TICK_MS).await;
            story
                .runs(playbook, "waiting")
                .await
                .into_iter()
                .find(|r| r["subject"]["contact"] == contact && r["step"].as_str() == Some(step))
        },
    )
    .await
    .or_fail(story)
}

/// Moves both clocks past a WeCom mass send's outcome check: the plugin asks WeCom 5 minutes
/// after the send (`mass_send_check_ms`), and the run goes on only once it knows.
///
/// The check is armed when the daemon records the send's answer, which comes after the
/// emulator logs the delivery the story saw: the clock moves only once no call is pending,
/// or a slow answer would arm the check 5 minutes after the move.
async fn past_the_outcome_check(story: &Story) {
    wait_for("every plugin call's answer recorded", DEADLINE, || async {
        let pending = story.admin("/api/outbox?state=pending").await;
        pending["entries"]
            .as_array()
            .is_some_and(|entries| entries.is_empty())
            .then_some(())
    })
    .await
    .or_fail(story);
    story.advance(5 * MINUTE + 10_000).await;
}

/// Story 3 — Live reminder. 30 minutes before the 19:00 live, contacts tagged as live fans
/// are reminded 1:1 and one who says they are watching converts; after the live, the replay
/// for the fan who did not come is due at about 21:05, before quiet hours; contacts who are
/// not fans get nothing.
///
/// KNOWN GAP (docs/testing.md): the replay is a second 1:1 WeCom mass send to the contact on
/// the same day, which WeCom's per-contact limit (1 a day, `wecom.mass_send_per_contact`)
/// and the default `marketing_per_day` cap forbid, so the gate skips it (`on_cap: skip`).
/// This asserts that, at the right time: which channel carries a same-day replay is a product
/// decision left to the lead.
#[tokio::test]
async fn story_3_live_reminder() {
    let story = Story::start().await;
    let watcher = story.add_contact("emu_staff_2", 1).await;
    let misser = story.add_contact("emu_staff_2", 1).await;
    let bystander = story.add_contact("emu_staff_2", 1).await;
    tag_contacts(
        &story,
        "tag-live-fans",
        "  - id: tag\n    add_tags: live_fan\n",
        &[&watcher, &misser],
    )
    .await;

    // 18:30 Asia/Shanghai on the first day (10:30 UTC).
    story.advance_to(START_MS + 9 * HOUR + 30 * MINUTE).await;
    for fan in [&watcher, &misser] {
        story
            .wait_deliveries_to("the live reminder", fan, |d| {
                count(d, "mass_send", "直播 30 分钟后开始") == 1
            })
            .await;
    }
    story.contact_writes(&watcher, "在直播间了").await;
    story.wait_run("live-reminder", &watcher, "converted").await;

    // The 2.5-hour wait starts once the reminder's outcome is known. Moving the clocks in one
    // jump to after the live would make the daemon learn the outcome only then (its timers
    // fire at the clock's new time), start the wait late and put the replay into quiet hours
    // (22:00): walk through the outcome check first, as a real clock would.
    past_the_outcome_check(&story).await;
    wait_run_at(&story, "live-reminder", &misser, "wait_live_end").await;
    // 21:06: the live is over (the wait ended at about 21:05:10); the replay is due, before
    // quiet hours (22:00), and the caps skip it.
    story.advance_to(START_MS + 12 * HOUR + 6 * MINUTE).await;
    story.wait_run("live-reminder", &misser, "completed").await;
    let view = story.contact(&misser).await;
    let timeline = view["timeline"].as_array().cloned().unwrap_or_default();
    let replay = timeline
        .iter()
        .find(|h| h["step"] == "send_replay" && h["input"] == "policy gate")
        .unwrap_or_else(|| panic!("no gate decision for the replay: {view:#}"));
    let outcome = replay["outcome"].as_str().unwrap_or_default();
    assert!(
        outcome.starts_with("skipped: frequency cap")
            && outcome.contains("wecom.mass_send_per_contact 1/1 per day"),
        "{replay}"
    );
    assert_eq!(
        replay["at"].as_str().map(|at| &at[..16]),
        Some("2026-03-02T13:06"),
        "the replay was due at 21:06 Asia/Shanghai, not deferred by quiet hours: {replay}"
    );
    let missed = story.deliveries_to(&misser).await;
    assert_eq!(count(&missed, "mass_send", ""), 1, "{missed:#?}");

    let watched = story.deliveries_to(&watcher).await;
    let bystood = story.deliveries_to(&bystander).await;
    assert_eq!(
        count(&watched, "mass_send", "直播 30 分钟后开始"),
        1,
        "{watched:#?}"
    );
    assert_eq!(count(&watched, "mass_send", "回放"), 0, "{watched:#?}");
    assert_eq!(
        count(&bystood, "mass_send", ""),
        0,
        "not a fan: {bystood:#?}"
    );
}

/// Story 4 — Reactivation. Past buyers silent for 30 days get a coupon at the 11:00 check;
/// one answers at once (before sop has even checked the touch's outcome), is tagged
/// `reactivated` and handed to their owner, who is alerted when they do not answer within 4
/// hours; the other stays silent, gets the second touch after 7 days and the `dormant` tag 7
/// days later; a contact who never bought gets nothing.
#[tokio::test]
async fn story_4_reactivation() {
    let story = Story::start().await;
    let replier = story.add_contact("emu_staff_3", 0).await;
    let sleeper = story.add_contact("emu_staff_3", 0).await;
    let never_bought = story.add_contact("emu_staff_3", 0).await;
    tag_contacts(
        &story,
        "mark-buyers",
        "  - id: bought\n    set:\n      orders: 2\n",
        &[&replier, &sleeper],
    )
    .await;

    // Day 1: the welcome playbook (story 1) invites each contact who did not answer into the
    // fan group. Walked first, so that its invite and the reactivation touch do not meet the
    // one-marketing-touch-a-day cap on day 30 (the later one would be deferred). The
    // welcomes go first: a welcome code lives 20 s on the platform's clock.
    for who in [&replier, &sleeper, &never_bought] {
        story
            .wait_deliveries_to("the welcome", who, |d| count(d, "welcome", "") == 1)
            .await;
    }
    for who in [&replier, &sleeper, &never_bought] {
        wait_run_at(&story, "welcome", who, "wait_reply").await;
    }
    story.advance(DAY).await;
    for who in [&replier, &sleeper, &never_bought] {
        story
            .wait_deliveries_to("the fan-group invite", who, |d| {
                count(d, "mass_send", "粉丝群") == 1
            })
            .await;
    }
    story.advance(6 * MINUTE).await;

    // Day 30, 11:00 Asia/Shanghai (03:00 UTC): the daily check finds them silent for 30 days.
    story.advance_to(START_MS + 30 * DAY + 2 * HOUR).await;
    for who in [&replier, &sleeper] {
        story
            .wait_deliveries_to("the reactivation touch", who, |d| {
                count(d, "mass_send", "好久不见") == 1
            })
            .await;
    }

    // The replier answers while the run still waits for the touch's outcome (checked 5
    // minutes after the send): the reply is kept for `wait_reply_1`, not lost.
    story.contact_writes(&replier, "在的，券怎么用？").await;
    story
        .wait_contact("the reply kept by the run", &replier, |v| {
            v["timeline"]
                .to_string()
                .contains("kept for the next wait_for")
        })
        .await;
    past_the_outcome_check(&story).await;
    // The sleeper's 7-day wait starts once its touch's outcome is known: let the daemon learn
    // it before the 4-hour jump below, or the wait would start 4 hours late (as in story 3).
    wait_run_at(&story, "reactivation", &sleeper, "wait_reply_1").await;
    story
        .wait_contact("the replier tagged reactivated", &replier, |v| {
            v["contact"]["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "reactivated"))
        })
        .await;
    wait_run_at(&story, "reactivation", &replier, "to_owner").await;
    // Nobody answers the hand-off within 4 hours: the owner is alerted on WeCom.
    story.advance(4 * HOUR + MINUTE).await;
    story
        .wait_deliveries_to("the owner's alert", "emu_staff_3", |d| {
            count(d, "app_message", "已等待 4 小时未回复") == 1
        })
        .await;
    story.wait_run("reactivation", &replier, "converted").await;

    // The sleeper's run has been waiting for a reply since the outcome check (about 11:05):
    // 7 silent days later (12:00 on day 37, the wait ended at about 11:05) the second touch.
    story.advance_to(START_MS + 37 * DAY + 3 * HOUR).await;
    story
        .wait_deliveries_to("the second touch", &sleeper, |d| {
            count(d, "mass_send", "回归券明天就过期啦") == 1
        })
        .await;
    past_the_outcome_check(&story).await;
    wait_run_at(&story, "reactivation", &sleeper, "wait_reply_2").await;
    // 7 more silent days: `dormant`, and the run ends.
    story.advance(7 * DAY + HOUR).await;
    story.wait_run("reactivation", &sleeper, "completed").await;
    let tags = story.tags(&sleeper).await;
    assert!(tags.contains(&"dormant".to_owned()), "{tags:?}");
    assert!(!tags.contains(&"reactivated".to_owned()), "{tags:?}");

    let replier_got = story.deliveries_to(&replier).await;
    assert_eq!(
        count(&replier_got, "mass_send", "好久不见"),
        1,
        "{replier_got:#?}"
    );
    assert_eq!(
        count(&replier_got, "mass_send", "回归券明天就过期啦"),
        0,
        "no second touch after a reply: {replier_got:#?}"
    );
    let sleeper_got = story.deliveries_to(&sleeper).await;
    assert_eq!(
        count(&sleeper_got, "mass_send", ""),
        3,
        "the fan-group invite and two touches: {sleeper_got:#?}"
    );
    let never = story.deliveries_to(&never_bought).await;
    assert_eq!(
        count(&never, "mass_send", "好久不见"),
        0,
        "only past buyers: {never:#?}"
    );
    let alerts = story.deliveries_to("emu_staff_3").await;
    assert_eq!(count(&alerts, "app_message", ""), 1, "{alerts:#?}");
}

/// Story 5 — Douyin private messages. A question gets the menu answer and the fan-group
/// invitation; after-sales words get an acknowledgement and a hand-off whose 30-minute
/// deadline, when missed, alerts the after-sales lead on WeCom: a step of a run acting for
/// the Douyin account that acts through the tenant's WeCom account (`account:`).
#[tokio::test]
async fn story_5_douyin_dm() {
    let story = Story::start().await;
    // The operator names their after-sales lead (a WeCom staff member of the emulated corp)
    // and deploys the bundled playbook as a new version.
    let bundled = include_str!("../../../playbooks/douyin-dm.yaml");
    assert!(bundled.contains("touser: after-sales-lead") && bundled.contains("version: 1"));
    let source = bundled
        .replace("touser: after-sales-lead", "touser: emu_staff_4")
        .replace("version: 1", "version: 2");
    story.deploy(&source, "demo-douyin").await;
    // An account the tenant does not have is refused at deploy, with where and why.
    let typo = story
        .world
        .admin
        .post_raw(
            "/api/playbooks",
            &json!({"source": source.replace("account: demo-wecom", "account: demo-wecon").replace("version: 2", "version: 3"), "account": "demo-douyin"}),
        )
        .await
        .or_fail(&story);
    let refusal = typo.text();
    assert!(
        refusal.contains("SOP0059") && refusal.contains("demo-wecon"),
        "{refusal}"
    );

    let fan = "dyu-0000000011";
    // The fan allowed proactive messages (Douyin's rule for anything but a direct reply).
    story
        .event(json!({"kind": "douyin_authorize", "open_id": fan}))
        .await;
    story
        .event(json!({"kind": "douyin_message", "open_id": fan, "text": "这个价格多少？"}))
        .await;
    let got = story
        .wait_deliveries_to("the menu answer and the invite", fan, |d| {
            count(d, "direct_message", "专属价") == 1 && count(d, "direct_message", "粉丝群") == 1
        })
        .await;
    assert!(got.iter().all(|d| d["platform"] == "douyin"), "{got:#?}");
    story.wait_run("douyin-dm", fan, "completed").await;

    let unhappy = "dyu-0000000012";
    story
        .event(json!({"kind": "douyin_message", "open_id": unhappy, "text": "收到的东西坏了，我要退货"}))
        .await;
    story
        .wait_deliveries_to("the after-sales acknowledgement", unhappy, |d| {
            count(d, "direct_message", "售后专员") == 1
        })
        .await;
    wait_run_at(&story, "douyin-dm", unhappy, "human").await;
    // Nobody answers for 30 minutes: the deadline is missed and the lead is alerted on WeCom,
    // through the tenant's WeCom account.
    story.advance(31 * MINUTE).await;
    let alerts = story
        .wait_deliveries_to("the after-sales alert", "emu_staff_4", |d| {
            count(d, "app_message", "超过 30 分钟未响应") == 1
        })
        .await;
    assert!(
        alerts.iter().all(|d| d["platform"] == "wecom"),
        "{alerts:#?}"
    );
    story.wait_run("douyin-dm", unhappy, "completed").await;
    let view = story.contact(unhappy).await;
    assert!(
        view["timeline"].to_string().contains("hand-off missed"),
        "{view:#}"
    );
    let unhappy_got = story.deliveries_to(unhappy).await;
    assert_eq!(
        unhappy_got.len(),
        1,
        "only the acknowledgement: {unhappy_got:#?}"
    );
    let all_alerts: Vec<_> = story
        .deliveries()
        .await
        .into_iter()
        .filter(|d| d["channel"] == "app_message")
        .collect();
    assert_eq!(all_alerts.len(), 1, "one alert: {all_alerts:#?}");
}
