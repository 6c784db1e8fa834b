//! The bundled playbooks' stories through the whole runtime.

use serde_json::json;
use sop_clock::TimeDelta;
use sop_engine::{RunStatus, StartCause};
use sop_runtime::{EnrollRequest, ManualReceipt};
use sop_store::{Contact, ContactKey, OutboxStateKind, RunState, Store, Subject};

use crate::harness::*;

fn added(h: &Harness, contact: &str, dedupe: &str) -> sop_engine::Event {
    h.event(
        "wecom.contact_added",
        contact,
        dedupe,
        json!({"state": "qr_mall", "welcome_code": "WC-1"}),
    )
}

#[tokio::test]
async fn welcome_reply_gets_the_coupon() {
    let mut h = Harness::new();
    h.deploy(vec![bundled("welcome.yaml")]);
    h.serve().await;
    let receipt = h.ingest(vec![added(&h, "wm_ann", "m1")]).await;
    assert_eq!(receipt.accepted, 1);
    let [run] = receipt.enrolled[..] else {
        panic!("one run expected: {receipt:?}")
    };
    assert_eq!(h.plugins.called(), ["wecom.send_welcome", "wecom.mark_tag"]);
    let welcome = &h.plugins.calls_of("wecom.send_welcome")[0];
    assert_eq!(welcome.input["welcome_code"], "WC-1");
    assert_eq!(welcome.key, format!("{run}.send_welcome.1"));
    assert_eq!(h.state(run).status, RunStatus::WaitingEvent);
    // The contact came to exist with the staff as owner and a last interaction.
    let contact = h
        .store
        .contact(&ContactKey::new(TENANT, "wm_ann"))
        .unwrap()
        .unwrap();
    assert_eq!(contact.owner.as_deref(), Some("staff_zhang"));
    assert_eq!(contact.last_interaction, Some(t0()));

    h.run_for(TimeDelta::minutes(10)).await;
    let reply = h.event(
        "wecom.message_received",
        "wm_ann",
        "m2",
        json!({"text": "1"}),
    );
    let receipt = h.ingest(vec![reply]).await;
    assert_eq!(receipt.resumed, vec![run]);
    // The coupon goes by mass send (asynchronous): accepted, checked a minute later.
    assert_eq!(h.state(run).status, RunStatus::WaitingOutcome);
    h.run_for(TimeDelta::minutes(2)).await;
    assert_eq!(h.state(run).status, RunStatus::Completed);
    assert_eq!(
        h.plugins.called(),
        [
            "wecom.send_welcome",
            "wecom.mark_tag",
            "wecom.mass_send_contacts"
        ]
    );
    assert_eq!(h.plugins.checks.lock().unwrap().len(), 1);
    assert!(h.tags("wm_ann").contains(&"coupon_sent".to_string()));
    assert_eq!(h.run(run).state, RunState::Completed);
    // Every send is in the outbox with its outcome; nothing is left pending.
    assert!(
        h.store
            .outbox_in_state(OutboxStateKind::Pending, None, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        h.store
            .outbox_in_state(OutboxStateKind::Sent, None, 10)
            .unwrap()
            .len(),
        3
    );
    // The timeout timer went with the wait; the goal subscription with the run.
    assert_eq!(h.store.waits_of_run(run).unwrap(), (vec![], vec![]));
    h.shutdown().await;
}

#[tokio::test]
async fn welcome_without_reply_invites_to_the_fan_group_after_a_day() {
    let mut h = Harness::new();
    h.deploy(vec![bundled("welcome.yaml")]);
    h.serve().await;
    let run = h.ingest(vec![added(&h, "wm_bob", "m1")]).await.enrolled[0];
    h.run_for(TimeDelta::hours(23)).await;
    assert_eq!(h.state(run).status, RunStatus::WaitingEvent);
    h.run_for(TimeDelta::hours(1) + TimeDelta::minutes(5)).await;
    assert_eq!(h.state(run).status, RunStatus::Completed);
    let invite = &h.plugins.calls_of("wecom.mass_send_contacts")[0];
    assert_eq!(invite.input["contacts"], json!(["wm_bob"]));
    let history = h.history(run);
    assert!(history.iter().any(|e| e.outcome == "no matching event"));
    h.shutdown().await;
}

#[tokio::test]
async fn events_are_deduplicated_by_source_and_platform_id() {
    let mut h = Harness::new();
    h.deploy(vec![bundled("welcome.yaml")]);
    h.serve().await;
    let first = h
        .ingest(vec![added(&h, "wm_cat", "m1"), added(&h, "wm_cat", "m1")])
        .await;
    assert_eq!((first.accepted, first.duplicates), (1, 1));
    let again = h.ingest(vec![added(&h, "wm_cat", "m1")]).await;
    assert_eq!((again.accepted, again.duplicates), (0, 1));
    assert_eq!(h.store.events(None, 10).unwrap().len(), 1);
    assert_eq!(h.plugins.calls_of("wecom.send_welcome").len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn entry_rules_filter_once_and_one_active_run() {
    let mut h = Harness::new();
    h.deploy(vec![bundled("welcome.yaml")]);
    h.serve().await;
    // No channel state: the trigger's filter refuses.
    let plain = h.event(
        "wecom.contact_added",
        "wm_dan",
        "m0",
        json!({"welcome_code": "x"}),
    );
    assert!(h.ingest(vec![plain]).await.enrolled.is_empty());
    let run = h.ingest(vec![added(&h, "wm_dan", "m1")]).await.enrolled[0];
    h.rt.cancel_run(run, "test").await.unwrap();
    // `repeat: once`: re-adding later does not welcome again, even after the run ended.
    let receipt = h.ingest(vec![added(&h, "wm_dan", "m2")]).await;
    assert_eq!(receipt.accepted, 1);
    assert!(receipt.enrolled.is_empty());

    // one_active_run (default) on a manual playbook.
    h.deploy(vec![inline(
        "id: nudge\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: pause\n    wait: 1h\n",
    )]);
    let mut receipt = ManualReceipt::default();
    let request = EnrollRequest {
        playbook: "nudge".into(),
        subject: Subject::Contact(ContactKey::new(TENANT, "wm_dan")),
        cause: StartCause::Manual { by: "ops".into() },
        dedupe: None,
    };
    h.rt.enroll(vec![request.clone(), request.clone()], &mut receipt)
        .await
        .unwrap();
    assert_eq!(receipt.enrolled.len(), 1);
    assert!(
        receipt.skipped[0].1.contains("still in progress"),
        "{receipt:?}"
    );
    h.run_for(TimeDelta::hours(1)).await;
    let mut later = ManualReceipt::default();
    h.rt.enroll(vec![request], &mut later).await.unwrap();
    assert_eq!(later.enrolled.len(), 1, "the first run has finished");
    h.shutdown().await;
}

fn dormant_candidate(id: &str) -> Contact {
    let mut contact = Contact::new(ContactKey::new(TENANT, id), t0());
    contact.owner = Some("staff_li".into());
    contact.attributes.insert("name".into(), json!("Li Lei"));
    contact.attributes.insert("orders".into(), json!(3));
    contact.last_interaction = Some(t0());
    contact
}

async fn reactivate(h: &Harness, id: &str) -> sop_store::RunId {
    let mut receipt = ManualReceipt::default();
    let request = EnrollRequest {
        playbook: "reactivation".into(),
        subject: Subject::Contact(ContactKey::new(TENANT, id)),
        cause: StartCause::Inactivity {
            last_interaction: Some(t0()),
        },
        dedupe: None,
    };
    h.rt.enroll(vec![request], &mut receipt).await.unwrap();
    h.settle().await;
    assert_eq!(receipt.enrolled.len(), 1, "{receipt:?}");
    receipt.enrolled[0]
}

#[tokio::test]
async fn reactivation_30_days_silent_then_two_touches_then_dormant() {
    let mut h = Harness::new();
    h.deploy(vec![bundled("reactivation.yaml")]);
    h.put_contact(dormant_candidate("wm_eve"));
    h.serve().await;
    // Thirty silent days pass on the virtual clock; the daily 11:00 check (03:00 UTC) finds
    // the contact on day 30 and enrols it through the entry rules.
    h.run_for(TimeDelta::days(30)).await;
    assert!(
        h.plugins.called().is_empty(),
        "not yet 30 days at 03:00 UTC"
    );
    h.run_for(TimeDelta::hours(2)).await;
    let subject = Subject::Contact(ContactKey::new(TENANT, "wm_eve"));
    let runs = h.store.runs_of_subject(&subject).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = runs[0].id;
    assert_eq!(
        h.state(run).cause,
        Some(StartCause::Inactivity {
            last_interaction: Some(t0())
        })
    );
    let touch = h.plugins.calls_of("wecom.mass_send_contacts");
    assert_eq!(touch.len(), 1);
    assert!(touch[0].input["text"].as_str().unwrap().contains("Li Lei"));
    h.run_for(TimeDelta::days(7) + TimeDelta::hours(1)).await;
    assert_eq!(
        h.plugins.calls_of("wecom.mass_send_contacts").len(),
        2,
        "second touch"
    );
    h.run_for(TimeDelta::days(7)).await;
    assert_eq!(h.state(run).status, RunStatus::Completed);
    assert!(h.tags("wm_eve").contains(&"dormant".to_string()));
    // Later daily checks still find the contact silent, but the 90-day window holds.
    assert_eq!(h.store.runs_of_subject(&subject).unwrap().len(), 1);
    // Each touch was checked once for its asynchronous outcome.
    assert_eq!(h.plugins.checks.lock().unwrap().len(), 2);
    assert!(
        h.store
            .due_timers(h.clock_now() + TimeDelta::days(365), None, 10)
            .unwrap()
            .is_empty()
    );
    h.shutdown().await;
}

#[tokio::test]
async fn reactivation_reply_hands_off_and_a_purchase_converts() {
    let mut h = Harness::new();
    h.deploy(vec![bundled("reactivation.yaml")]);
    h.put_contact(dormant_candidate("wm_fay"));
    h.put_contact(dormant_candidate("wm_gus"));
    h.serve().await;
    let fay = reactivate(&h, "wm_fay").await;
    let gus = reactivate(&h, "wm_gus").await;
    h.run_for(TimeDelta::hours(2)).await;
    let reply = h.event(
        "wecom.message_received",
        "wm_fay",
        "r1",
        json!({"text": "还有券吗"}),
    );
    h.ingest(vec![reply]).await;
    assert!(h.tags("wm_fay").contains(&"reactivated".to_string()));
    assert_eq!(
        h.state(fay).status,
        RunStatus::WaitingEvent,
        "hand-off waits"
    );
    h.rt.handoff_answered(fay, "staff_li").await.unwrap();
    assert_eq!(h.state(fay).status, RunStatus::Converted);

    let order = sop_engine::Event {
        kind: "shop.order_paid".into(),
        ..h.event("shop.order_paid", "wm_gus", "o1", json!({"amount": 99}))
    };
    h.ingest(vec![order]).await;
    assert_eq!(h.state(gus).status, RunStatus::Converted);
    assert_eq!(h.run(gus).state, RunState::Converted);
    assert_eq!(h.store.waits_of_run(gus).unwrap(), (vec![], vec![]));
    h.shutdown().await;
}

/// Story 4 in the daemon: the contact answers the touch before sop has checked the mass
/// send's outcome (WeCom tells only when asked). The reply is committed, kept by the run, and
/// taken by `wait_reply_1` once the outcome is in: no reply is lost.
#[tokio::test]
async fn reactivation_reply_before_the_outcome_check_is_not_lost() {
    let mut h = Harness::new();
    h.deploy(vec![bundled("reactivation.yaml")]);
    h.put_contact(dormant_candidate("wm_hal"));
    h.serve().await;
    let run = reactivate(&h, "wm_hal").await;
    assert_eq!(h.state(run).status, RunStatus::WaitingOutcome);
    assert!(
        h.plugins.checks.lock().unwrap().is_empty(),
        "not checked yet"
    );
    let reply = h.event(
        "wecom.message_received",
        "wm_hal",
        "r-early",
        json!({"text": "收到，谢谢"}),
    );
    let receipt = h.ingest(vec![reply]).await;
    assert_eq!(receipt.resumed, vec![run], "the run took the event");
    assert_eq!(h.state(run).kept_events.len(), 1);
    h.run_for(TimeDelta::minutes(10)).await;
    assert_eq!(h.plugins.checks.lock().unwrap().len(), 1);
    assert!(h.tags("wm_hal").contains(&"reactivated".to_string()));
    let state = h.state(run);
    assert_eq!(state.status, RunStatus::WaitingEvent, "hand-off waits");
    assert_eq!(state.step.as_ref().unwrap().as_str(), "to_owner");
    assert!(state.kept_events.is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn group_nurture_sends_weekday_content_to_tagged_groups() {
    let mut h = Harness::new();
    h.deploy(vec![bundled("group-nurture.yaml")]);
    for (id, tag) in [("g_fans", "nurture"), ("g_other", "vip")] {
        let mut group = sop_store::Group::new(sop_store::GroupKey::new(TENANT, id), ACCOUNT, t0());
        group.owner = Some("staff_wang".into());
        group.tags.insert(tag.into());
        group
            .attributes
            .insert("materials".into(), json!(["今日推荐 A"]));
        h.store
            .commit(sop_store::Batch::new().op(sop_store::Op::PutGroup(group)))
            .unwrap();
    }
    h.serve().await;
    // Deployed at Monday 10:00 exactly: the first fire is Tuesday 10:00.
    h.run_for(TimeDelta::days(1) + TimeDelta::minutes(5)).await;
    let sends = h.plugins.calls_of("wecom.mass_send_groups");
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(sends[0].input["groups"], json!(["g_fans"]));
    assert_eq!(sends[0].input["sender"], "staff_wang");
    assert_eq!(sends[0].input["text"], "今日推荐 A");
    let subject = Subject::Group {
        tenant: TENANT.into(),
        id: "g_fans".into(),
    };
    let runs = h.store.runs_of_subject(&subject).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].state, RunState::Completed);
    // A member joining updates the group's count.
    let mut joined = h.event("wecom.group_member_joined", "wm_new", "j1", json!({}));
    joined.group = Some("g_fans".into());
    h.ingest(vec![joined]).await;
    let group = h
        .store
        .group(&sop_store::GroupKey::new(TENANT, "g_fans"))
        .unwrap()
        .unwrap();
    assert_eq!(group.member_count, 1);

    // The platform's reading of the group (owner, name, size) replaces what sop counted.
    let mut read = h.event(
        "wecom.group_updated",
        "",
        "u1",
        json!({"change": "change_owner", "owner": "staff_li", "name": "铁粉群", "member_count": 40}),
    );
    read.contact = None;
    read.group = Some("g_fans".into());
    h.ingest(vec![read]).await;
    let key = sop_store::GroupKey::new(TENANT, "g_fans");
    let group = h.store.group(&key).unwrap().unwrap();
    assert_eq!(
        (
            group.owner.as_deref(),
            group.name.as_str(),
            group.member_count
        ),
        (Some("staff_li"), "铁粉群", 40)
    );
    assert!(
        group.tags.contains("nurture"),
        "tags are the operator's: {group:?}"
    );

    // A dismissed group is never enrolled again.
    let mut gone = h.event("wecom.group_dismissed", "", "d1", json!({}));
    gone.contact = None;
    gone.group = Some("g_fans".into());
    h.ingest(vec![gone]).await;
    h.run_for(TimeDelta::days(1)).await;
    assert_eq!(
        h.plugins.calls_of("wecom.mass_send_groups").len(),
        1,
        "no content for a dismissed group"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn dedupe_ids_are_forgotten_after_the_retention() {
    let mut h = Harness::new();
    h.serve().await;
    let message = h.event(
        "wecom.message_received",
        "wm_k",
        "m9",
        json!({"text": "hi"}),
    );
    assert_eq!(h.ingest(vec![message.clone()]).await.accepted, 1);
    h.run_for(TimeDelta::days(6)).await;
    assert!(
        h.store
            .event_seen("wecom:demo-corp", "m9")
            .unwrap()
            .is_some()
    );
    h.run_for(TimeDelta::days(1) + TimeDelta::hours(1)).await;
    assert!(
        h.store
            .event_seen("wecom:demo-corp", "m9")
            .unwrap()
            .is_none()
    );
    h.shutdown().await;
}
