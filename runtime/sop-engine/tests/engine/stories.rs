//! The product stories from DESIGN.md, played by the bundled playbooks.

use chrono::TimeDelta;
use serde_json::json;
use sop_engine::*;

use crate::driver::{Behaviour, Driver, load, utc};

fn silent_buyer() -> ContactView {
    let mut contact = ContactView::new("wm_li");
    contact.name = Some("李女士".into());
    contact.owner = Some("staff_zhang".into());
    contact.attributes.insert("orders".into(), json!(3));
    contact
        .attributes
        .insert("last_product".into(), json!("面霜"));
    contact
}

/// Day 0 11:00 Asia/Shanghai: the inactivity scan found the contact silent for 30 days.
fn reactivation() -> Driver {
    let playbook = load("playbooks/reactivation.yaml");
    let now = utc("2026-04-01T03:00:00Z");
    let contact = silent_buyer();
    let cause = StartCause::Inactivity {
        last_interaction: Some(now - TimeDelta::days(30)),
    };
    assert_eq!(
        decide_enrollment(&playbook, &cause, &contact, &[], now),
        Enrollment::Enroll
    );
    let mut d = Driver::new(playbook, contact, now)
        // WeCom mass sends are asynchronous: the staff member confirms a minute later.
        .behave(
            "wecom.mass_send_contacts",
            Behaviour::Accepted(Some(60_000)),
        );
    d.feed(Input::Start { cause });
    d
}

#[test]
fn reactivation_without_reply_gets_a_second_touch_then_dormant() {
    let mut d = reactivation();
    assert_eq!(d.invoked(), ["wecom.mass_send_contacts"]);
    let first = &d.invocations[0].1;
    let text = first.input["text"].as_str().unwrap();
    assert!(text.starts_with("李女士，好久不见！"), "{text}");
    assert_eq!(first.input["contacts"], json!(["wm_li"]));
    assert_eq!(first.input["sender"], json!("staff_zhang"));

    // The staff member confirms; the run waits 7 days for a reply that never comes.
    d.advance_time(TimeDelta::minutes(2));
    assert_eq!(d.status(), RunStatus::WaitingEvent);
    d.advance_time(TimeDelta::days(7));
    assert_eq!(d.invoked_steps().last().unwrap(), "second_touch");
    d.advance_time(TimeDelta::days(7) + TimeDelta::minutes(2));

    assert_eq!(d.status(), RunStatus::Completed);
    assert!(d.contact.tags.contains("dormant"));
    assert!(!d.contact.tags.contains("reactivated"));
    assert_eq!(d.invoked().len(), 2, "exactly two touches");
    assert!(
        d.timers.is_empty() && d.subscriptions.is_empty(),
        "nothing left armed"
    );
    assert!(d.finish_reason().contains("done_dormant"));
}

#[test]
fn reactivation_reply_tags_reactivated_and_hands_off_to_the_owner() {
    let mut d = reactivation();
    d.advance_time(TimeDelta::days(2));
    d.send_event("wecom.message_received", json!({ "text": "还有券吗" }));

    assert!(d.contact.tags.contains("reactivated"));
    assert_eq!(d.status(), RunStatus::WaitingEvent);
    let (to, note, deadline) = d.handoffs.last().cloned().unwrap();
    assert_eq!(to, "staff_zhang");
    assert_eq!(note.unwrap(), "沉睡客户 李女士 回复了唤醒消息：还有券吗");
    assert_eq!(deadline, d.now + TimeDelta::hours(4));

    d.feed(Input::HandoffAnswered {
        by: "staff_zhang".into(),
    });
    assert_eq!(d.status(), RunStatus::Converted);
    assert_eq!(d.invoked(), ["wecom.mass_send_contacts"], "no second touch");
    assert!(d.timers.is_empty() && d.subscriptions.is_empty());
}

/// Story 4 as the daemon sees it: WeCom confirms the touch at once, but sop only learns so
/// at the outcome check (a minute later here, 5 minutes with the WeCom plugin), and the
/// contact may answer before that. The reply is kept and the `wait_for` takes it.
#[test]
fn reactivation_reply_before_the_touch_outcome_is_kept_for_the_wait() {
    let mut d = reactivation();
    assert_eq!(d.status(), RunStatus::WaitingOutcome);
    d.advance_time(TimeDelta::seconds(20));
    d.send_event("wecom.message_received", json!({ "text": "还有券吗" }));
    assert_eq!(
        d.status(),
        RunStatus::WaitingOutcome,
        "still waiting for the outcome"
    );
    assert_eq!(d.state.kept_events.len(), 1);

    d.advance_time(TimeDelta::minutes(1));
    assert!(d.contact.tags.contains("reactivated"));
    let (to, note, _) = d.handoffs.last().cloned().unwrap();
    assert_eq!(to, "staff_zhang");
    assert_eq!(note.unwrap(), "沉睡客户 李女士 回复了唤醒消息：还有券吗");
    assert!(d.state.kept_events.is_empty());
    assert!(
        d.history
            .iter()
            .any(|h| h.outcome == "kept for the next wait_for"),
        "{:#?}",
        d.history
    );
}

/// A kept event counts only for the next `wait_for`, and only if it matches it; what that
/// wait did not take is forgotten, so an old reply never resumes a later wait.
#[test]
fn kept_events_count_once_for_the_next_wait_for_only() {
    let src = "id: keep\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: pause\n    wait: 1h\n  - id: first\n    wait_for:\n      event: wecom.message_received\n      filter: \"event.attributes.text == 'yes'\"\n      timeout: 1d\n      on_timeout:\n        - id: gave_up\n          end: cancelled\n  - id: second\n    wait_for:\n      event: wecom.message_received\n      timeout: 1d\n      on_timeout:\n        - id: silent\n          end: completed\n  - id: answered\n    end: converted\n";
    let playbook = crate::driver::parse(src);
    let now = utc("2026-04-01T03:00:00Z");
    let mut d = Driver::new(playbook, ContactView::new("wm_li"), now);
    d.start_manual();
    assert_eq!(d.status(), RunStatus::WaitingTimer);
    // During the pause: one that `first` does not want, then one it does, then another.
    d.send_event("wecom.message_received", json!({ "text": "no" }));
    d.send_event("wecom.message_received", json!({ "text": "yes" }));
    d.send_event("wecom.message_received", json!({ "text": "later" }));
    assert_eq!(d.state.kept_events.len(), 3);
    d.advance_time(TimeDelta::hours(1));
    // `first` took "yes" at once; "no" and "later" are forgotten, so `second` waits.
    assert_eq!(d.state.step.as_ref().unwrap().as_str(), "second");
    assert_eq!(d.status(), RunStatus::WaitingEvent);
    assert!(d.state.kept_events.is_empty());
    d.advance_time(TimeDelta::days(1));
    assert_eq!(d.status(), RunStatus::Completed);
    assert!(d.finish_reason().contains("silent"));
    assert!(d.subscriptions.is_empty(), "{:#?}", d.subscriptions);
}

/// A run keeps a bounded number of events: a chatty contact cannot grow its record.
#[test]
fn a_run_keeps_at_most_the_newest_events() {
    let src = "id: keep\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: pause\n    wait: 1h\n  - id: reply\n    wait_for:\n      event: wecom.message_received\n      filter: \"event.attributes.text == 'first'\"\n      timeout: 1d\n";
    let playbook = crate::driver::parse(src);
    let mut d = Driver::new(
        playbook,
        ContactView::new("wm_li"),
        utc("2026-04-01T03:00:00Z"),
    );
    d.start_manual();
    d.send_event("wecom.message_received", json!({ "text": "first" }));
    for n in 0..KEPT_EVENTS {
        d.send_event(
            "wecom.message_received",
            json!({ "text": format!("more {n}") }),
        );
    }
    assert_eq!(d.state.kept_events.len(), KEPT_EVENTS);
    d.advance_time(TimeDelta::hours(1));
    // The oldest ("first") was dropped to keep the newest: the wait does not see it.
    assert_eq!(d.status(), RunStatus::WaitingEvent);
}

#[test]
fn reactivation_missed_handoff_alerts_the_owner() {
    let mut d = reactivation();
    d.advance_time(TimeDelta::hours(3));
    d.send_event("wecom.message_received", json!({ "text": "在吗" }));
    d.advance_time(TimeDelta::hours(4));
    assert_eq!(d.invoked_steps().last().unwrap(), "alert_owner");
    let alert = &d.invocations.last().unwrap().1;
    assert_eq!(
        alert.input["text"],
        json!("客户 李女士 已等待 4 小时未回复，请尽快跟进。")
    );
    assert_eq!(
        d.status(),
        RunStatus::Converted,
        "on_missed falls through to done_reactivated"
    );
}

#[test]
fn reactivation_purchase_goal_converts_a_waiting_run() {
    let mut d = reactivation();
    d.advance_time(TimeDelta::days(1));
    d.send_event("shop.order_paid", json!({ "amount_cents": 19900 }));
    assert_eq!(d.status(), RunStatus::Converted);
    assert!(d.finish_reason().contains("purchased"));
    assert!(d.timers.is_empty() && d.subscriptions.is_empty());
}

#[test]
fn reactivation_coupon_arm_is_stable_for_a_run() {
    let a = reactivation();
    let b = reactivation();
    assert_eq!(a.invoked_steps(), b.invoked_steps());
    assert_eq!(a.state.variables, b.state.variables);
    let arm = a.state.variables["split.coupon_test"].as_str().unwrap();
    assert!(["coupon_30", "coupon_20"].contains(&arm));
}

fn welcome() -> Driver {
    let playbook = load("playbooks/welcome.yaml");
    let mut contact = ContactView::new("wm_wang");
    contact.owner = Some("staff_zhang".into());
    let mut d = Driver::new(playbook, contact, utc("2026-05-04T06:00:00Z")).behave(
        "wecom.mass_send_contacts",
        Behaviour::Accepted(Some(30_000)),
    );
    d.start_with_event(
        "wecom.contact_added",
        json!({ "state": "spring_fair", "welcome_code": "WC-1" }),
    );
    d
}

#[test]
fn welcome_sends_tags_by_channel_and_answers_the_menu_keyword() {
    let mut d = welcome();
    assert_eq!(d.invoked(), ["wecom.send_welcome", "wecom.mark_tag"]);
    let welcome = &d.invocations[0].1;
    assert_eq!(welcome.input["welcome_code"], json!("WC-1"));
    assert!(
        welcome.input["text"]
            .as_str()
            .unwrap()
            .starts_with("亲，欢迎来到 Demo 品牌")
    );
    assert_eq!(
        welcome.input["attachments"][0]["miniprogram"]["page"],
        json!("pages/coupon/index?from=spring_fair")
    );
    assert!(welcome.time_critical);
    assert_eq!(
        d.invocations[1].1.input["add_tag_names"],
        json!(["channel:spring_fair"])
    );
    assert_eq!(d.status(), RunStatus::WaitingEvent);

    d.advance_time(TimeDelta::hours(2));
    d.send_event("wecom.message_received", json!({ "text": " 1 " }));
    assert_eq!(d.invoked_steps().last().unwrap(), "send_coupon");
    let coupon = &d.invocations.last().unwrap().1;
    assert!(coupon.input["text"].as_str().unwrap().contains("RUN-0001"));
    d.advance_time(TimeDelta::minutes(1));
    assert!(d.contact.tags.contains("coupon_sent"));
    assert_eq!(d.status(), RunStatus::Completed);
}

#[test]
fn welcome_other_reply_notifies_the_owner() {
    let mut d = welcome();
    d.send_event("wecom.message_received", json!({ "text": "你好" }));
    assert_eq!(d.invoked_steps().last().unwrap(), "tell_owner");
    let note = &d.invocations.last().unwrap().1;
    assert_eq!(note.input["text"], json!("新客  留言：你好"));
    assert_eq!(d.status(), RunStatus::Completed);
}

#[test]
fn welcome_without_reply_invites_to_the_fan_group_after_a_day() {
    let mut d = welcome();
    d.advance_time(TimeDelta::hours(23));
    assert_eq!(d.invoked().len(), 2);
    d.advance_time(TimeDelta::hours(1) + TimeDelta::minutes(1));
    assert_eq!(d.invoked_steps().last().unwrap(), "invite_group");
    let invite = &d.invocations.last().unwrap().1;
    assert_eq!(invite.policy.category, sop_dsl::model::Category::Marketing);
    assert_eq!(d.status(), RunStatus::Completed);
    assert!(d.finish_reason().contains("done_no_reply"));
}

#[test]
fn welcome_goal_converts_when_the_contact_joins_the_fan_group() {
    let mut d = welcome();
    d.send_event("wecom.group_member_joined", json!({}));
    assert_eq!(d.status(), RunStatus::Converted);
}

/// A group owned by staff_zhang; tagged `nurture` with three materials and Wednesday as its
/// live day when `nurtured`.
fn group(id: &str, nurtured: bool) -> ContactView {
    let mut group = ContactView::new(id);
    group.owner = Some("staff_zhang".into());
    if nurtured {
        group.tags.insert("nurture".into());
        group
            .attributes
            .insert("materials".into(), json!(["A", "B", "C"]));
        group.attributes.insert("live_days".into(), json!([3]));
    }
    group
}

/// The group-nurture run of `group` started by the 10:00 fire at `fired`, its mass send
/// accepted and confirmed a second later.
fn nurture(group: ContactView, fired: chrono::DateTime<chrono::Utc>) -> Driver {
    let mut d = Driver::new(load("playbooks/group-nurture.yaml"), group, fired)
        .for_group()
        .behave("wecom.mass_send_groups", Behaviour::Accepted(Some(1_000)));
    d.feed(Input::Start {
        cause: StartCause::Schedule { fired_at: fired },
    });
    d
}

#[test]
fn group_nurture_rotates_materials_and_previews_on_live_days() {
    // Wednesday 2026-01-07 10:00 Shanghai: day 7 of the year, weekday 3.
    let fired = utc("2026-01-07T02:00:00Z");
    let cause = StartCause::Schedule { fired_at: fired };
    assert_eq!(
        decide_enrollment(
            &load("playbooks/group-nurture.yaml"),
            &cause,
            &group("wrOg_1", true),
            &[],
            fired
        ),
        Enrollment::Enroll
    );
    let mut d = nurture(group("wrOg_1", true), fired);
    let content = &d.invocations[0].1;
    // materials[7 % 3], and on a live day the preview in the same message (one a day).
    let text = content.input["text"].as_str().unwrap();
    assert!(text.starts_with("B\n\n📣 今晚 19:00 直播预告"), "{text}");
    assert_eq!(content.input["groups"], json!(["wrOg_1"]));
    d.advance_time(TimeDelta::minutes(5));
    assert_eq!(d.invoked_steps(), ["daily_content"]);
    assert_eq!(d.status(), RunStatus::Completed);

    // Thursday: day 8, not a live day: the material alone.
    let thursday = utc("2026-01-08T02:00:00Z");
    let d = nurture(group("wrOg_1", true), thursday);
    assert_eq!(d.invocations[0].1.input["text"], json!("C"));

    // A group without materials gets the default line.
    let d = nurture(group("wrOg_2", false), thursday);
    assert_eq!(
        d.invocations[0].1.input["text"],
        json!("今日好物推荐：点击小程序查看")
    );
}

#[test]
fn welcome_members_greets_a_nurtured_group_from_its_owner() {
    let playbook = load("playbooks/welcome-members.yaml");
    let mut group = group("wrOg_1", false);
    group.name = Some("铁粉福利群".into());
    let joined = |d: &Driver| d.event("wecom.group_member_joined", json!({"join_scene": 3}));
    let now = utc("2026-01-07T03:00:00Z");
    // Only groups tagged `nurture`.
    let probe = Driver::new(playbook.clone(), group.clone(), now).for_group();
    let cause = StartCause::Event {
        event: joined(&probe),
    };
    assert!(matches!(
        decide_enrollment(&playbook, &cause, &group, &[], now),
        Enrollment::Skip { .. }
    ));
    group.tags.insert("nurture".into());
    assert_eq!(
        decide_enrollment(&playbook, &cause, &group, &[], now),
        Enrollment::Enroll
    );
    let mut d = Driver::new(playbook, group, now)
        .for_group()
        .behave("wecom.mass_send_groups", Behaviour::Accepted(Some(1_000)));
    d.feed(Input::Start { cause });
    let welcome = &d.invocations[0].1;
    assert_eq!(welcome.input["sender"], json!("staff_zhang"));
    assert_eq!(welcome.input["groups"], json!(["wrOg_1"]));
    let text = welcome.input["text"].as_str().unwrap();
    assert!(text.starts_with("欢迎新朋友加入铁粉福利群！"), "{text}");
    d.advance_time(TimeDelta::minutes(1));
    assert_eq!(d.status(), RunStatus::Completed);
}

#[test]
fn douyin_after_sales_words_hand_off_and_alert_when_the_deadline_is_missed() {
    let playbook = load("playbooks/douyin-dm.yaml");
    let mut fan = ContactView::new("open_fan_1");
    fan.name = Some("小周".into());
    let mut d = Driver::new(playbook, fan, utc("2026-02-10T12:00:00Z"));
    d.start_with_event(
        "douyin.message_received",
        json!({ "text": "我要退货", "conversation_id": "conv-9" }),
    );
    assert_eq!(d.invoked_steps(), ["ack"]);
    assert_eq!(d.invocations[0].1.input["conversation_id"], json!("conv-9"));
    let (to, note, _) = d.handoffs[0].clone();
    assert_eq!(to, "after-sales");
    assert_eq!(note.unwrap(), "抖音粉丝 小周 需要售后：我要退货");
    d.advance_time(TimeDelta::minutes(30));
    assert_eq!(d.invoked_steps(), ["ack", "alert"]);
    assert_eq!(d.status(), RunStatus::Completed);
}

#[test]
fn douyin_other_words_get_the_menu_answer_and_the_group_invite() {
    let playbook = load("playbooks/douyin-dm.yaml");
    let mut d = Driver::new(
        playbook,
        ContactView::new("open_fan_2"),
        utc("2026-02-10T12:00:00Z"),
    );
    d.start_with_event(
        "douyin.message_received",
        json!({ "text": "什么时候发货", "conversation_id": "conv-1" }),
    );
    assert_eq!(d.invoked_steps(), ["answer", "invite"]);
    let answer = d.invocations[0].1.input["text"]
        .as_str()
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(answer, "下单后 48 小时内发货，顺丰包邮。");
    assert_eq!(d.status(), RunStatus::Completed);
}

#[test]
fn order_points_credits_whole_points_as_a_number() {
    let playbook = load("playbooks/order-points.yaml");
    let mut buyer = ContactView::new("dy_buyer");
    buyer.owner = Some("staff_zhang".into());
    buyer
        .attributes
        .insert("wecom_id".into(), json!("wm_buyer"));
    let mut d = Driver::new(playbook, buyer, utc("2026-02-10T12:00:00Z"))
        .behave("wecom.mass_send_contacts", Behaviour::Accepted(Some(1_000)));
    d.start_with_event(
        "shop.order_paid",
        json!({ "amount_cents": 19_950, "member_id": "m-7", "order_id": "o-1" }),
    );
    let credit = &d.invocations[0].1;
    assert_eq!(credit.input["points"], json!(199));
    assert_eq!(credit.input["reason"], json!("订单 o-1 消费积分"));
    assert_eq!(d.invoked_steps(), ["credit", "send_balance"]);
    assert_eq!(d.invocations[1].1.input["contacts"], json!(["wm_buyer"]));
}

/// A run stored by format 1 must keep resuming in later versions of the engine.
#[test]
fn a_stored_format_1_run_resumes_where_it_waited() {
    let text = include_str!("fixtures/run_state_v1.json");
    let state: RunState = serde_json::from_str(text).expect("format 1 still reads");
    let mut d = Driver::new(
        load("playbooks/reactivation.yaml"),
        silent_buyer(),
        state.updated_at,
    )
    .behave(
        "wecom.mass_send_contacts",
        Behaviour::Accepted(Some(60_000)),
    );
    d.state = state;
    d.feed(Input::TimerFired {
        timer: TimerId("run-0001/wait_reply_1/1/timeout".into()),
    });
    assert_eq!(d.invoked_steps(), ["second_touch"]);
    assert_eq!(d.invocations[0].1.key.as_str(), "run-0001/second_touch/1");
}
