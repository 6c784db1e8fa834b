//! One behaviour per step kind and per input kind, on small inline playbooks.

use chrono::TimeDelta;
use serde_json::json;
use sop_dsl::model::{Branch, SplitArm, StepId};
use sop_engine::*;

use crate::driver::{Driver, parse, utc};

const HEAD: &str = "id: t\nversion: 1\ntriggers: [{manual: true}]\n";

fn driver(steps: &str) -> Driver {
    let playbook = parse(&format!("{HEAD}{steps}"));
    let mut contact = ContactView::new("wm_1");
    contact.owner = Some("staff_a".into());
    Driver::new(playbook, contact, utc("2026-01-05T02:00:00Z"))
}

#[test]
fn wait_pauses_for_the_duration_then_continues() {
    let mut d = driver("steps:\n  - id: w\n    wait: 2h30m\n  - id: tag\n    add_tags: done\n");
    d.start_manual();
    assert_eq!(d.status(), RunStatus::WaitingTimer);
    assert_eq!(d.timers.values().next(), Some(&utc("2026-01-05T04:30:00Z")));
    d.advance_time(TimeDelta::hours(2));
    assert!(!d.contact.tags.contains("done"));
    d.advance_time(TimeDelta::minutes(30));
    assert!(d.contact.tags.contains("done"));
    assert_eq!(d.status(), RunStatus::Completed);
}

#[test]
fn wait_until_uses_the_contacts_zone_across_the_spring_dst_change() {
    let mut d = driver(
        "steps:\n  - id: morning\n    wait_until: \"09:30\"\n  - id: again\n    wait_until: \"09:30\"\n  - id: tag\n    add_tags: done\n",
    );
    d.contact.timezone = Some("America/New_York".parse().unwrap());
    // Saturday 2026-03-07 12:00 EST; DST starts Sunday 2026-03-08 at 02:00.
    d.now = utc("2026-03-07T17:00:00Z");
    d.start_manual();
    // Sunday 09:30 is already EDT (UTC-4): 13:30 UTC, not 14:30.
    assert_eq!(d.timers.values().next(), Some(&utc("2026-03-08T13:30:00Z")));
    d.advance_time(TimeDelta::days(1));
    assert_eq!(d.timers.values().next(), Some(&utc("2026-03-09T13:30:00Z")));
    d.advance_time(TimeDelta::days(1));
    assert_eq!(d.status(), RunStatus::Completed);
}

#[test]
fn wait_until_falls_back_to_the_playbook_zone() {
    let mut d =
        driver("timezone: Asia/Shanghai\nsteps:\n  - id: morning\n    wait_until: \"10:00\"\n");
    d.start_manual(); // 10:00 Shanghai is 02:00 UTC: exactly now, so tomorrow.
    assert_eq!(d.timers.values().next(), Some(&utc("2026-01-06T02:00:00Z")));
}

#[test]
fn wait_for_ignores_non_matching_events_and_resumes_on_a_match() {
    let mut d = driver(
        "steps:\n  - id: w\n    wait_for:\n      event: wecom.message_received\n      filter: \"event.attributes.text == 'yes'\"\n      timeout: 1d\n  - id: tag\n    add_tags: replied\n",
    );
    d.start_manual();
    assert_eq!(d.subscriptions.len(), 2, "the wait, and the run-long keep");
    d.send_event("wecom.message_received", json!({ "text": "no" }));
    assert_eq!(d.status(), RunStatus::WaitingEvent);
    assert_eq!(d.ignored.len(), 1);
    let mut other = d.event("wecom.message_received", json!({ "text": "yes" }));
    other.contact = Some("someone_else".into());
    d.feed(Input::Event { event: other });
    assert_eq!(
        d.status(),
        RunStatus::WaitingEvent,
        "events about other contacts do not count"
    );
    d.send_event("wecom.message_received", json!({ "text": "yes" }));
    assert_eq!(d.status(), RunStatus::Completed);
    assert!(d.timers.is_empty() && d.subscriptions.is_empty());
}

#[test]
fn set_renders_values_and_later_steps_see_them() {
    let mut d = driver(
        "steps:\n  - id: s\n    set:\n      greeted_by: \"{{ contact.owner }}\"\n      visits: 2\n  - id: check\n    if: \"contact.attributes.greeted_by == 'staff_a'\"\n    then:\n      - id: yes_tag\n        add_tags: greeted\n",
    );
    d.start_manual();
    assert_eq!(d.contact.attributes["greeted_by"], json!("staff_a"));
    assert_eq!(d.contact.attributes["visits"], json!(2));
    assert!(
        d.contact.tags.contains("greeted"),
        "later steps see earlier sets"
    );
}

#[test]
fn wait_for_timeout_takes_the_goto_branch() {
    let mut d = driver(
        "steps:\n  - id: w\n    wait_for:\n      event: wecom.message_received\n      timeout: 1h\n      on_timeout: late\n  - id: replied\n    add_tags: replied\n  - id: stop\n    end: completed\n  - id: late\n    add_tags: silent\n",
    );
    d.start_manual();
    d.advance_time(TimeDelta::hours(1));
    assert!(d.contact.tags.contains("silent"));
    assert!(!d.contact.tags.contains("replied"));
    assert_eq!(d.status(), RunStatus::Completed);
    assert!(d.subscriptions.is_empty());
}

#[test]
fn if_else_branches_by_condition() {
    for (tags, expected) in [(vec!["vip"], "gold"), (vec![], "plain")] {
        let mut d = driver(
            "steps:\n  - id: c\n    if: \"'vip' in contact.tags\"\n    then:\n      - id: g\n        add_tags: gold\n    else: p\n  - id: stop\n    end: completed\n  - id: p\n    add_tags: plain\n",
        );
        d.contact.tags.extend(tags.into_iter().map(String::from));
        d.start_manual();
        assert!(d.contact.tags.contains(expected), "{expected}");
        assert_eq!(d.status(), RunStatus::Completed);
    }
}

#[test]
fn remove_tags_and_end_cancelled() {
    let mut d = driver(
        "steps:\n  - id: r\n    remove_tags: [dormant, cold]\n  - id: e\n    end: cancelled\n",
    );
    d.contact
        .tags
        .extend(["dormant".to_string(), "vip".to_string()]);
    d.start_manual();
    assert_eq!(d.contact.tags.iter().collect::<Vec<_>>(), ["vip"]);
    assert_eq!(d.status(), RunStatus::Cancelled);
}

#[test]
fn handoff_without_on_missed_continues_after_the_deadline() {
    let mut d = driver(
        "steps:\n  - id: h\n    handoff:\n      note: \"{{ contact.id }} needs help\"\n      deadline: 30m\n  - id: after\n    add_tags: handed\n",
    );
    d.start_manual();
    assert_eq!(d.handoffs[0].0, "staff_a", "default: the contact's owner");
    assert_eq!(d.handoffs[0].1.as_deref(), Some("wm_1 needs help"));
    d.advance_time(TimeDelta::minutes(30));
    assert!(d.contact.tags.contains("handed"));
    assert!(d.history.iter().any(|h| h.outcome == "hand-off missed"));
}

#[test]
fn goto_loops_with_a_wait_give_each_pass_its_own_key() {
    let mut d = driver(
        "steps:\n  - id: ping\n    action: wecom.notify_staff\n    params: {touser: a, text: hi}\n  - id: pause\n    wait: 1d\n  - id: again\n    goto: ping\n",
    );
    d.start_manual();
    d.advance_time(TimeDelta::days(3));
    let keys: Vec<String> = d
        .invocations
        .iter()
        .map(|(_, i)| i.key.to_string())
        .collect();
    assert_eq!(
        keys,
        [
            "run-0001/ping/1",
            "run-0001/ping/2",
            "run-0001/ping/3",
            "run-0001/ping/4"
        ]
    );
    assert_eq!(d.state.iteration("pause"), 4);
}

#[test]
fn a_loop_without_a_wait_fails_the_run_at_the_step_budget() {
    // The checker refuses this playbook (SOP0033); the engine still must not spin.
    let loaded = sop_dsl::load(
        &format!("{HEAD}steps:\n  - id: a\n    add_tags: x\n  - id: b\n    goto: a\n"),
        None,
    );
    assert!(loaded.has_errors());
    let mut d = Driver::new(
        loaded.playbook,
        ContactView::new("wm_1"),
        utc("2026-01-05T02:00:00Z"),
    );
    d.start_manual();
    assert_eq!(d.status(), RunStatus::Failed);
    assert!(
        d.finish_reason().contains("1000 steps without waiting"),
        "{}",
        d.finish_reason()
    );
}

#[test]
fn a_template_that_cannot_render_fails_the_run_with_the_step_and_reason() {
    let mut d = driver(
        "steps:\n  - id: s\n    action: wecom.notify_staff\n    params: {touser: a, text: \"{{ 1 / 0 }}\"}\n",
    );
    d.start_manual();
    assert_eq!(d.status(), RunStatus::Failed);
    assert!(
        d.finish_reason().starts_with("step `s`: cannot render"),
        "{}",
        d.finish_reason()
    );
    assert!(d.invocations.is_empty());
}

#[test]
fn split_distribution_over_ten_thousand_runs_is_within_two_percent() {
    let arms: Vec<SplitArm> = [("a", 20), ("b", 30), ("c", 50)]
        .into_iter()
        .map(|(name, percent)| SplitArm {
            name: Some(name.into()),
            percent,
            then: Branch::Goto(StepId(name.into())),
        })
        .collect();
    let mut counts = [0u32; 3];
    for i in 0..10_000 {
        let run = RunId(format!("run-{i:05}"));
        let arm = choose_arm(&run, "coupon_test", &arms).unwrap();
        counts[arms.iter().position(|a| a == arm).unwrap()] += 1;
        assert_eq!(choose_arm(&run, "coupon_test", &arms), Some(arm), "stable");
    }
    for (count, expected) in counts.iter().zip([2_000, 3_000, 5_000]) {
        assert!((*count as i32 - expected).abs() <= 200, "{counts:?}");
    }
}

#[test]
fn split_step_records_the_arm_and_follows_it() {
    let mut d = driver(
        "steps:\n  - id: ab\n    split:\n      - {name: left, percent: 50, then: [{id: l, add_tags: left}]}\n      - {name: right, percent: 50, then: [{id: r, add_tags: right}]}\n",
    );
    d.start_manual();
    let arm = d.state.variables["split.ab"].as_str().unwrap().to_string();
    assert!(d.contact.tags.contains(&arm));
    let other = if arm == "left" { "right" } else { "left" };
    assert!(!d.contact.tags.contains(other), "one arm only");
}

#[test]
fn inputs_that_do_not_fit_are_ignored_with_a_reason() {
    let mut d = driver("steps:\n  - id: w\n    wait: 1h\n");
    d.feed(Input::TimerFired {
        timer: TimerId("nope".into()),
    });
    assert_eq!(d.ignored.last().unwrap(), "the run has not started");
    d.start_manual();
    d.start_manual();
    assert_eq!(d.ignored.last().unwrap(), "the run has already started");
    d.feed(Input::TimerFired {
        timer: TimerId("run-0001/w/7/wait".into()),
    });
    assert!(d.ignored.last().unwrap().contains("not armed"));
    d.feed(Input::ActionResult {
        key: IdempotencyKey("run-0001/w/1".into()),
        result: ActionResult::Done {
            output: json!(null),
        },
    });
    assert!(
        d.ignored
            .last()
            .unwrap()
            .contains("no action result is awaited")
    );
    d.feed(Input::HandoffAnswered { by: "x".into() });
    d.feed(Input::Outcome {
        key: IdempotencyKey("k".into()),
        status: OutcomeStatus::Failed { reason: "r".into() },
    });
    assert_eq!(d.ignored.len(), 6);
    assert_eq!(d.status(), RunStatus::WaitingTimer);
}

#[test]
fn cancel_disarms_everything_and_finished_runs_ignore_inputs() {
    let mut d = driver(
        "goals: [{event: shop.order_paid}]\nsteps:\n  - id: w\n    wait_for: {event: wecom.message_received, timeout: 1d}\n",
    );
    d.start_manual();
    assert_eq!(
        d.subscriptions.len(),
        3,
        "the wait, the goal and the run-long keep"
    );
    d.feed(Input::Cancel {
        reason: "operator".into(),
    });
    assert_eq!(d.status(), RunStatus::Cancelled);
    assert!(d.timers.is_empty() && d.subscriptions.is_empty());
    d.advance_time(TimeDelta::days(2));
    d.feed(Input::Cancel {
        reason: "again".into(),
    });
    assert!(d.ignored.last().unwrap().contains("has finished"));
}

#[test]
fn a_run_on_another_playbook_version_is_not_advanced() {
    let mut d = driver("steps:\n  - id: w\n    wait: 1h\n");
    d.playbook.version = 2;
    d.start_manual();
    assert!(d.ignored.last().unwrap().contains("v1, not t v2"));
}

#[test]
fn run_state_round_trips_through_json() {
    let mut d =
        driver("steps:\n  - id: w\n    wait_for: {event: wecom.message_received, timeout: 1d}\n");
    d.start_manual();
    let text = serde_json::to_string(&d.state).unwrap();
    let back: RunState = serde_json::from_str(&text).unwrap();
    assert_eq!(back, d.state);
    assert_eq!(back.format, STATE_FORMAT);
}
