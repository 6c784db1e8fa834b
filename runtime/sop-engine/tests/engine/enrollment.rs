//! Entry rules and event routing as pure decisions.

use chrono::TimeDelta;
use serde_json::json;
use sop_engine::*;

use crate::driver::{Driver, load, parse, utc};

fn prior(id: &str, status: RunStatus, days_ago: i64) -> PriorRun {
    PriorRun {
        id: RunId(id.into()),
        status,
        started_at: utc("2026-06-01T00:00:00Z") - TimeDelta::days(days_ago),
    }
}

fn buyer(tags: &[&str]) -> ContactView {
    let mut c = ContactView::new("wm_1");
    c.attributes.insert("orders".into(), json!(1));
    c.tags.extend(tags.iter().map(|t| t.to_string()));
    c
}

fn skipped(decision: Enrollment) -> String {
    match decision {
        Enrollment::Skip { reason } => reason,
        Enrollment::Enroll => panic!("enrolled"),
    }
}

#[test]
fn once_per_window_counts_from_the_previous_entry() {
    let playbook = load("playbooks/reactivation.yaml");
    let now = utc("2026-06-01T00:00:00Z");
    let cause = StartCause::Inactivity {
        last_interaction: None,
    };
    let contact = buyer(&[]);
    let recent = [prior("r1", RunStatus::Completed, 89)];
    assert!(
        skipped(decide_enrollment(&playbook, &cause, &contact, &recent, now)).contains("window")
    );
    let old = [prior("r1", RunStatus::Completed, 91)];
    assert_eq!(
        decide_enrollment(&playbook, &cause, &contact, &old, now),
        Enrollment::Enroll
    );
}

#[test]
fn the_audience_filters_tags_and_conditions() {
    let playbook = load("playbooks/reactivation.yaml");
    let now = utc("2026-06-01T00:00:00Z");
    let cause = StartCause::Inactivity {
        last_interaction: None,
    };
    let reason = skipped(decide_enrollment(
        &playbook,
        &cause,
        &buyer(&["dormant"]),
        &[],
        now,
    ));
    assert_eq!(reason, "carries the excluded tag `dormant`");
    let never_bought = ContactView::new("wm_2");
    let reason = skipped(decide_enrollment(
        &playbook,
        &cause,
        &never_bought,
        &[],
        now,
    ));
    assert!(reason.contains("audience condition"), "{reason}");
    let reason = skipped(decide_enrollment(
        &playbook,
        &StartCause::Manual { by: "ops".into() },
        &buyer(&[]),
        &[],
        now,
    ));
    assert!(
        reason.starts_with("no trigger of the playbook matches"),
        "{reason}"
    );
}

#[test]
fn once_ever_and_event_trigger_filters() {
    let playbook = load("playbooks/welcome.yaml");
    let now = utc("2026-06-01T00:00:00Z");
    let d = Driver::new(playbook.clone(), ContactView::new("wm_1"), now);
    let with_state = StartCause::Event {
        event: d.event("wecom.contact_added", json!({ "state": "qr1" })),
    };
    let without_state = StartCause::Event {
        event: d.event("wecom.contact_added", json!({})),
    };
    let contact = ContactView::new("wm_1");
    assert_eq!(
        decide_enrollment(&playbook, &with_state, &contact, &[], now),
        Enrollment::Enroll
    );
    assert!(
        skipped(decide_enrollment(
            &playbook,
            &without_state,
            &contact,
            &[],
            now
        ))
        .contains("no trigger")
    );
    let before = [prior("r0", RunStatus::Completed, 400)];
    assert!(
        skipped(decide_enrollment(
            &playbook,
            &with_state,
            &contact,
            &before,
            now
        ))
        .contains("once already")
    );
}

#[test]
fn one_active_run_at_a_time() {
    let playbook =
        parse("id: t\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: w\n    wait: 1h\n");
    let now = utc("2026-06-01T00:00:00Z");
    let cause = StartCause::Manual { by: "ops".into() };
    let contact = ContactView::new("wm_1");
    let active = [prior("r1", RunStatus::WaitingTimer, 0)];
    assert!(
        skipped(decide_enrollment(&playbook, &cause, &contact, &active, now))
            .contains("in progress")
    );
    let done = [prior("r1", RunStatus::Failed, 0)];
    assert_eq!(
        decide_enrollment(&playbook, &cause, &contact, &done, now),
        Enrollment::Enroll
    );
}

#[test]
fn routing_picks_the_waiting_runs_an_event_resumes_or_converts() {
    let src = "id: t\nversion: 1\ntriggers: [{manual: true}]\ngoals: [{name: paid, event: shop.order_paid, filter: \"event.attributes.amount >= 100\"}]\nsteps:\n  - id: w\n    wait_for: {event: wecom.message_received, timeout: 1d}\n";
    let now = utc("2026-06-01T00:00:00Z");
    let mut waiting = Driver::new(parse(src), ContactView::new("wm_1"), now);
    waiting.start_manual();
    let mut finished =
        Driver::new(parse(src), ContactView::new("wm_1"), now).with_run_id("run-0002");
    finished.start_manual();
    finished.feed(Input::Cancel {
        reason: "test".into(),
    });
    let runs = [
        (&waiting.state, &waiting.contact),
        (&finished.state, &finished.contact),
    ];

    let reply = waiting.event("wecom.message_received", json!({}));
    let routed = route_event_to_runs(&waiting.playbook, runs, &reply, now);
    assert_eq!(routed.len(), 1);
    assert_eq!(
        routed[0].1,
        Route::Resume {
            step: "w".parse::<String>().map(sop_dsl::model::StepId).unwrap()
        }
    );

    let small = waiting.event("shop.order_paid", json!({ "amount": 50 }));
    assert!(route_event_to_runs(&waiting.playbook, runs, &small, now).is_empty());
    let big = waiting.event("shop.order_paid", json!({ "amount": 150 }));
    let routed = route_event_to_runs(&waiting.playbook, runs, &big, now);
    assert_eq!(
        routed[0].1,
        Route::Convert {
            goal: "paid".into()
        }
    );
}

#[test]
fn group_runs_are_routed_by_the_events_group() {
    let src = "id: t\nversion: 1\ntriggers: [{manual: true}]\naudience: {target: groups}\nsteps:\n  - id: w\n    wait_for: {event: wecom.group_member_joined, timeout: 1d}\n";
    let now = utc("2026-06-01T00:00:00Z");
    let mut d = Driver::new(parse(src), ContactView::new("wrOg_1"), now).for_group();
    d.start_manual();
    let mut joined = d.event("wecom.group_member_joined", json!({}));
    assert_eq!(
        route_event(&d.playbook, &d.state, &joined, &d.contact, now),
        None,
        "contact, not group"
    );
    joined.group = Some("wrOg_1".into());
    let route = route_event(&d.playbook, &d.state, &joined, &d.contact, now);
    assert!(matches!(route, Some(Route::Resume { .. })));
    d.feed(Input::Event { event: joined });
    assert_eq!(d.status(), RunStatus::Completed);
}

#[test]
fn a_group_audience_condition_sees_the_group() {
    let playbook = parse(
        r#"
id: big-groups
version: 1
name: Big groups
triggers:
  - manual: true
audience:
  target: groups
  where: "group.member_count >= 10"
steps:
  - id: done
    end: completed
"#,
    );
    let now = utc("2026-06-01T00:00:00Z");
    let cause = StartCause::Manual { by: "ops".into() };
    let mut group = ContactView::new("wr_1");
    group.attributes.insert("member_count".into(), json!(12));
    assert_eq!(
        decide_enrollment(&playbook, &cause, &group, &[], now),
        Enrollment::Enroll
    );
    group.attributes.insert("member_count".into(), json!(3));
    assert!(skipped(decide_enrollment(&playbook, &cause, &group, &[], now)).contains("is false"));
}
