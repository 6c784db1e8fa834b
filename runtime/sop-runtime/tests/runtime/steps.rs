//! Every step kind, retries, cancel and versions through the runtime.

use serde_json::json;
use sop_clock::TimeDelta;
use sop_engine::{PluginError, RunStatus};
use sop_runtime::{ManualAudience, RuntimeError};
use sop_store::{ContactKey, OutboxStateKind, Store};

use crate::harness::*;

const EVERY_STEP: &str = r#"
id: every-step
version: 1
triggers: [{manual: true}]
steps:
  - id: hello
    action: wecom.notify_staff
    params: {touser: staff_li, text: "hi {{ contact.id }}"}
  - id: remember
    set: {stage: greeted}
  - id: tag
    add_tags: [vip, temp]
  - id: untag
    remove_tags: temp
  - id: pause
    wait: 1h
  - id: morning
    wait_until: "09:00"
  - id: choose
    split:
      - {name: a, percent: 50, then: [{id: arm_a, add_tags: arm_a}]}
      - {name: b, percent: 50, then: [{id: arm_b, add_tags: arm_b}]}
  - id: reply
    wait_for: {event: wecom.message_received, timeout: 1d}
  - id: check
    if: "event.attributes.text == 'yes'"
    then: [{id: said_yes, add_tags: said_yes}]
  - id: human
    handoff: {to: staff_li, note: "call back", deadline: 1h}
  - id: jump
    goto: finish
  - id: never
    add_tags: never
  - id: finish
    end: converted
"#;

#[tokio::test]
async fn every_step_kind_runs_through_the_runtime() {
    let mut h = Harness::new();
    h.deploy(vec![inline(EVERY_STEP)]);
    h.serve().await;
    let receipt =
        h.rt.start_manual(
            "every-step",
            ManualAudience::Contacts(vec!["wm_1".into()]),
            "ops",
        )
        .await
        .unwrap();
    h.settle().await;
    let run = receipt.enrolled[0];
    assert_eq!(
        h.plugins.calls_of("wecom.notify_staff")[0].input["text"],
        "hi wm_1"
    );
    let contact = h
        .store
        .contact(&ContactKey::new(TENANT, "wm_1"))
        .unwrap()
        .unwrap();
    assert_eq!(contact.attributes["stage"], json!("greeted"));
    assert_eq!(h.tags("wm_1"), ["vip"]);
    assert_eq!(h.state(run).status, RunStatus::WaitingTimer);
    // wait 1h, then wait_until 09:00 Shanghai (next day, 01:00 UTC), then split and wait_for.
    h.run_for(TimeDelta::hours(1)).await;
    assert_eq!(h.state(run).step.unwrap().0, "morning");
    h.run_for(TimeDelta::hours(22)).await;
    assert_eq!(
        h.clock_now(),
        "2026-01-06T01:00:00Z"
            .parse::<sop_clock::Timestamp>()
            .unwrap()
    );
    let state = h.state(run);
    assert_eq!(state.status, RunStatus::WaitingEvent);
    let arm = state.variables["split.choose"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(h.tags("wm_1").contains(&format!("arm_{arm}")));
    let reply = h.event(
        "wecom.message_received",
        "wm_1",
        "x1",
        json!({"text": "yes"}),
    );
    h.ingest(vec![reply]).await;
    assert!(h.tags("wm_1").contains(&"said_yes".to_string()));
    assert_eq!(h.state(run).status, RunStatus::WaitingEvent, "hand-off");
    // The deadline passes without an answer: no on_missed, so the run goes on: goto, end.
    h.run_for(TimeDelta::hours(1)).await;
    let state = h.state(run);
    assert_eq!(state.status, RunStatus::Converted);
    assert!(!h.tags("wm_1").contains(&"never".to_string()));
    let outcomes: Vec<String> = h.history(run).into_iter().map(|e| e.outcome).collect();
    assert!(
        outcomes.contains(&"hand-off missed".to_string()),
        "{outcomes:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn transient_errors_are_retried_with_the_same_key() {
    let mut h = Harness::new();
    h.deploy(vec![inline(
        "id: retry\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: tag\n    action: wecom.mark_tag\n    params: {userid: s, external_userid: c, add_tag: [x]}\n",
    )]);
    h.plugins.behave(
        "wecom.mark_tag",
        Behaviour::FailsThen(
            2,
            PluginError::Transient {
                message: "503".into(),
            },
        ),
    );
    h.serve().await;
    let run =
        h.rt.start_manual("retry", ManualAudience::Contacts(vec!["c".into()]), "ops")
            .await
            .unwrap()
            .enrolled[0];
    h.settle().await;
    h.run_for(TimeDelta::minutes(5)).await;
    assert_eq!(h.state(run).status, RunStatus::Completed);
    let calls = h.plugins.calls_of("wecom.mark_tag");
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| c.key == calls[0].key));
    let sent = h
        .store
        .outbox_in_state(OutboxStateKind::Sent, None, 10)
        .unwrap();
    assert_eq!(sent[0].attempts, 3);
    h.shutdown().await;
}

/// A manual playbook with one asynchronous send (a WeCom mass send) to contact `c`.
const MASS_PROMO: &str = "id: mass\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: promo\n    action: wecom.mass_send_contacts\n    params: {contacts: [c], text: hi}\n";

/// An outcome check the plugin cannot answer (a platform error) is asked again after
/// `outcome_recheck_seconds`, not earlier, and the run completes on the next answer.
#[tokio::test]
async fn an_unanswered_outcome_check_is_asked_again_after_the_configured_wait() {
    let config = sop_runtime::RuntimeConfig {
        outcome_recheck_seconds: 20,
        ..Default::default()
    };
    let mut h = Harness::with_config(
        std::sync::Arc::new(sop_store::MemoryStore::new()),
        sop_clock::VirtualClock::new(t0()),
        FakePlugins::new(),
        std::sync::Arc::new(sop_runtime::PassThrough),
        config,
    );
    h.deploy(vec![inline(MASS_PROMO)]);
    *h.plugins.unanswered_checks.lock().unwrap() = 1;
    h.serve().await;
    let run =
        h.rt.start_manual("mass", ManualAudience::Contacts(vec!["c".into()]), "ops")
            .await
            .unwrap()
            .enrolled[0];
    h.settle().await;
    // The fake accepts with a first check after a minute; that check gets no answer.
    h.run_for(TimeDelta::seconds(61)).await;
    assert_eq!(h.plugins.checks.lock().unwrap().len(), 1);
    assert_eq!(h.state(run).status, RunStatus::WaitingOutcome);
    h.run_for(TimeDelta::seconds(18)).await;
    assert_eq!(
        h.plugins.checks.lock().unwrap().len(),
        1,
        "asked again too early"
    );
    h.run_for(TimeDelta::seconds(3)).await;
    assert_eq!(h.plugins.checks.lock().unwrap().len(), 2);
    assert_eq!(h.state(run).status, RunStatus::Completed);
    h.shutdown().await;
}

#[tokio::test]
async fn cancel_disarms_the_wait_and_later_inputs_are_ignored() {
    let mut h = Harness::new();
    h.deploy(vec![bundled("welcome.yaml")]);
    h.serve().await;
    let added = h.event(
        "wecom.contact_added",
        "wm_x",
        "m1",
        json!({"state": "s", "welcome_code": "w"}),
    );
    let run = h.ingest(vec![added]).await.enrolled[0];
    h.rt.cancel_run(run, "operator").await.unwrap();
    assert_eq!(h.state(run).status, RunStatus::Cancelled);
    assert_eq!(h.store.waits_of_run(run).unwrap(), (vec![], vec![]));
    let calls = h.plugins.called().len();
    h.run_for(TimeDelta::days(2)).await;
    assert_eq!(h.plugins.called().len(), calls);
    let unknown = h.rt.cancel_run(sop_store::RunId(9_999), "x").await;
    assert!(matches!(unknown, Err(RuntimeError::UnknownRun(_))));
    h.shutdown().await;
}

#[tokio::test]
async fn a_new_version_leaves_waiting_runs_on_theirs() {
    let mut h = Harness::new();
    let v1 = "id: flow\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: pause\n    wait: 1h\n  - id: old_tag\n    add_tags: v1\n";
    let v2 = "id: flow\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: pause\n    wait: 1h\n  - id: new_tag\n    add_tags: v2\n";
    assert_eq!(h.deploy(vec![inline(v1)]).playbooks[0].version, 1);
    h.serve().await;
    let old =
        h.rt.start_manual("flow", ManualAudience::Contacts(vec!["a".into()]), "ops")
            .await
            .unwrap()
            .enrolled[0];
    let report = h.deploy(vec![inline(v2)]);
    assert_eq!(report.playbooks[0].version, 2);
    assert_eq!(report.playbooks[0].removed_steps, ["old_tag"]);
    // Redeploying the same source keeps the version.
    let same = h.deploy(vec![inline(v2)]);
    assert!(!same.playbooks[0].changed);
    assert_eq!(same.playbooks[0].version, 2);
    let new =
        h.rt.start_manual("flow", ManualAudience::Contacts(vec!["b".into()]), "ops")
            .await
            .unwrap()
            .enrolled[0];
    h.run_for(TimeDelta::hours(1)).await;
    assert_eq!((h.run(old).version, h.run(new).version), (1, 2));
    assert_eq!(h.tags("a"), ["v1"]);
    assert_eq!(h.tags("b"), ["v2"]);
    // A bad playbook refuses the whole deploy with a located diagnostic.
    let bad =
        h.rt.deploy(vec![inline(v1), inline("id: x\nversion: 1\nsteps: []\n")]);
    let Err(RuntimeError::Invalid(errors)) = bad else {
        panic!("deploy should fail")
    };
    assert!(errors[0].starts_with("inline.yaml:"), "{errors:?}");
    assert_eq!(h.rt.deployment("flow").unwrap().version, 2);
    h.shutdown().await;
}

#[tokio::test]
async fn cron_fires_enrol_the_audience_once_per_fire() {
    let mut h = Harness::new();
    h.deploy(vec![inline(
        "id: morning\nversion: 1\naudience: {tags_any: [vip]}\ntriggers: [{cron: '0 11 * * *'}]\nentry: {repeat: always}\nsteps:\n  - id: hi\n    action: wecom.notify_staff\n    params: {touser: s, text: \"{{ contact.id }}\"}\n",
    )]);
    for (id, vip) in [("v1", true), ("p1", false)] {
        let mut contact = sop_store::Contact::new(ContactKey::new(TENANT, id), t0());
        if vip {
            contact.tags.insert("vip".into());
        }
        h.put_contact(contact);
    }
    h.serve().await;
    // t0 is 10:00 Shanghai: fires at 11:00 today and tomorrow.
    h.run_for(TimeDelta::hours(26)).await;
    let texts: Vec<_> = h
        .plugins
        .calls_of("wecom.notify_staff")
        .into_iter()
        .map(|c| c.input["text"].clone())
        .collect();
    assert_eq!(texts, [json!("v1"), json!("v1")]);
    h.shutdown().await;
}

/// Enrolment commits subjects in groups: a long audience is enrolled in full and in order, a
/// subject listed twice is refused the second time (`repeat: once` sees the first run), and a
/// playbook with flow control still counts every start.
#[tokio::test]
async fn a_manual_start_enrols_a_long_audience_in_groups_with_entry_rules_per_subject() {
    let mut h = Harness::new();
    h.deploy(vec![
        inline(
            "id: once\nversion: 1\ntriggers: [{manual: true}]\nentry: {repeat: once}\nsteps:\n  - id: hold\n    wait: 1h\n",
        ),
        inline(
            "id: flowed\nversion: 1\ntriggers: [{manual: true}]\nflow: {key: all, rate_limit: {limit: 3, per: 1h}}\nsteps:\n  - id: hold\n    wait: 1h\n",
        ),
    ]);
    h.serve().await;
    let mut ids: Vec<String> = (0..100).map(|i| format!("c{i:03}")).collect();
    // Twice within what would be one group of enrolments.
    ids.insert(10, "c007".into());
    let receipt =
        h.rt.start_manual("once", ManualAudience::Contacts(ids), "ops")
            .await
            .unwrap();
    assert_eq!(receipt.enrolled.len(), 100);
    assert_eq!(receipt.skipped.len(), 1, "{:?}", receipt.skipped);
    assert!(
        receipt.skipped[0].0.contains("c007"),
        "{:?}",
        receipt.skipped
    );
    let subjects: Vec<String> = receipt
        .enrolled
        .iter()
        .map(|run| match h.run(*run).subject {
            sop_store::Subject::Contact(key) => key.id,
            other => panic!("{other:?}"),
        })
        .collect();
    let expected: Vec<String> = (0..100).map(|i| format!("c{i:03}")).collect();
    assert_eq!(subjects, expected, "enrolled in the order asked");

    // One flow key for every start: the limit of 3 holds across what would be one group.
    let receipt =
        h.rt.start_manual(
            "flowed",
            ManualAudience::Contacts((0..10).map(|i| format!("f{i}")).collect()),
            "ops",
        )
        .await
        .unwrap();
    assert_eq!(receipt.enrolled.len(), 3, "{receipt:?}");
    assert_eq!(receipt.skipped.len(), 7);
    h.shutdown().await;
}

#[tokio::test]
async fn migrating_a_waiting_run_maps_its_step_and_reports_a_removed_one() {
    let mut h = Harness::new();
    let v1 = "id: mig\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: pause\n    wait: 1h\n  - id: old_tag\n    add_tags: v1\n";
    let v2 = "id: mig\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: hold\n    wait: 1h\n  - id: new_tag\n    add_tags: v2\n";
    h.deploy(vec![inline(v1)]);
    h.serve().await;
    let start = |id: &str| ManualAudience::Contacts(vec![id.into()]);
    let a =
        h.rt.start_manual("mig", start("a"), "ops")
            .await
            .unwrap()
            .enrolled[0];
    let b =
        h.rt.start_manual("mig", start("b"), "ops")
            .await
            .unwrap()
            .enrolled[0];
    h.deploy(vec![inline(v2)]);
    // Without a mapping the waiting step does not exist in v2: reported, run untouched.
    let refused = h.rt.migrate_run(a, 2, &Default::default()).await;
    assert!(
        matches!(&refused, Err(RuntimeError::BadRequest(m)) if m.contains("`pause`")),
        "{refused:?}"
    );
    assert_eq!(h.run(a).version, 1);
    let mapping = [("pause".to_string(), "hold".to_string())].into();
    let report = h.rt.migrate_run(a, 2, &mapping).await.unwrap();
    assert_eq!(report.step, ("pause".into(), "hold".into()));
    assert_eq!(report.removed_steps, ["old_tag"]);
    h.run_for(TimeDelta::hours(1)).await;
    assert_eq!(h.tags("a"), ["v2"], "migrated run continues on v2");
    assert_eq!(h.tags("b"), ["v1"], "the other stays on v1");
    assert_eq!((h.run(a).version, h.run(b).version), (2, 1));
    h.shutdown().await;
}

#[tokio::test]
async fn a_hanging_call_for_one_contact_blocks_no_other() {
    let mut h = Harness::new();
    h.deploy(vec![inline(
        "id: ping\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: hi\n    action: wecom.notify_staff\n    params: {touser: s, text: \"{{ contact.id }}\"}\n  - id: done\n    add_tags: pinged\n",
    )]);
    *h.plugins.hang_on_text.lock().unwrap() = Some("slow".into());
    h.serve().await;
    let ids = ["slow", "f1", "f2", "f3"].map(String::from).to_vec();
    let runs =
        h.rt.start_manual("ping", ManualAudience::Contacts(ids), "ops")
            .await
            .unwrap()
            .enrolled;
    h.settle().await;
    assert_eq!(
        h.state(runs[0]).status,
        RunStatus::Running,
        "still in its call"
    );
    for run in &runs[1..] {
        assert_eq!(h.state(*run).status, RunStatus::Completed);
    }
    assert_eq!(h.plugins.called().len(), 4);
    h.shutdown().await;
}

/// After downtime (or one jump of a manual clock) an asynchronous send's outcome check and its
/// outcome deadline fall due together. The deadline asks once more before giving up, so a
/// send the platform delivered completes instead of failing "no outcome"; one the platform
/// still cannot account for fails as before.
#[tokio::test]
async fn an_outcome_deadline_checks_once_more_before_giving_up() {
    for answered in [true, false] {
        let mut h = Harness::new();
        h.deploy(vec![inline(MASS_PROMO)]);
        if !answered {
            *h.plugins.unanswered_checks.lock().unwrap() = u32::MAX;
        }
        h.serve().await;
        let run =
            h.rt.start_manual("mass", ManualAudience::Contacts(vec!["c".into()]), "ops")
                .await
                .unwrap()
                .enrolled[0];
        h.settle().await;
        assert_eq!(h.state(run).status, RunStatus::WaitingOutcome);
        // Two days in one step: the check (due after a minute) and the deadline (a day) at once.
        h.clock.advance(TimeDelta::days(2));
        for _ in 0..50 {
            h.settle().await;
            if h.state(run).status != RunStatus::WaitingOutcome {
                break;
            }
            tokio::task::yield_now().await;
        }
        let state = h.state(run);
        if answered {
            assert_eq!(state.status, RunStatus::Completed, "{state:?}");
            let sent = h
                .store
                .outbox_in_state(OutboxStateKind::Sent, None, 10)
                .unwrap();
            assert_eq!(sent.len(), 1, "the send is recorded as delivered");
        } else {
            assert_eq!(state.status, RunStatus::Failed, "{state:?}");
        }
        assert!(
            !h.plugins.checks.lock().unwrap().is_empty(),
            "the platform was asked"
        );
        h.shutdown().await;
    }
}
