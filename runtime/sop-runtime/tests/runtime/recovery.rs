//! Crashes and restarts: a send recorded but never answered is reconciled or marked unknown,
//! never repeated; a send never recorded goes out once; an idempotent call in flight is made
//! again; waiting timers survive a restart.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;
use sop_clock::{TimeDelta, VirtualClock};
use sop_engine::{OutcomeStatus, RunStatus};
use sop_runtime::ManualAudience;
use sop_store::{MemoryStore, OutboxState, OutboxStateKind, Store};

use crate::harness::*;

fn welcome_event(h: &Harness) -> sop_engine::Event {
    h.event(
        "wecom.contact_added",
        "wm_z",
        "m1",
        json!({"state": "s", "welcome_code": "w"}),
    )
}

/// A daemon process with the welcome playbook on `store`, serving.
async fn welcome_process(
    store: &Arc<dyn Store>,
    clock: &VirtualClock,
    plugins: Arc<FakePlugins>,
) -> Harness {
    let mut h = Harness::with(
        store.clone(),
        clock.clone(),
        plugins,
        Arc::new(sop_runtime::PassThrough),
    );
    h.deploy(vec![bundled("welcome.yaml")]);
    h.serve().await;
    h
}

/// A first process whose call of `action` hangs, with one contact welcomed into it.
async fn hanging_in(
    action: &str,
    store: &Arc<dyn Store>,
    clock: &VirtualClock,
) -> (Harness, sop_store::RunId) {
    let plugins = FakePlugins::new();
    plugins.behave(action, Behaviour::Hangs);
    let first = welcome_process(store, clock, plugins).await;
    let run = first.ingest(vec![welcome_event(&first)]).await.enrolled[0];
    (first, run)
}

/// The first process records the welcome send and "dies" inside the call; a second process
/// on the same store recovers with `reconcile` as the plugin's answer to a key-only check.
async fn crash_inside_the_call(reconcile: Option<OutcomeStatus>) -> (Harness, sop_store::RunId) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = VirtualClock::new(t0());
    let (mut first, run) = hanging_in("wecom.send_welcome", &store, &clock).await;
    assert_eq!(first.plugins.calls_of("wecom.send_welcome").len(), 1);
    let pending = store
        .outbox_in_state(OutboxStateKind::Pending, None, 10)
        .unwrap();
    assert_eq!(pending.len(), 1, "the intent is committed before the call");
    first.shutdown().await;
    drop(first);

    let plugins = FakePlugins::new();
    *plugins.reconcile.lock().unwrap() = reconcile;
    (welcome_process(&store, &clock, plugins).await, run)
}

#[tokio::test]
async fn a_send_without_a_result_is_marked_unknown_and_never_repeated() {
    let (mut h, run) = crash_inside_the_call(None).await;
    assert!(
        h.plugins.calls_of("wecom.send_welcome").is_empty(),
        "never re-sent"
    );
    let checks = h.plugins.checks.lock().unwrap().clone();
    assert_eq!(checks, [(format!("{run}.send_welcome.1"), None)]);
    let key = sop_store::IdempotencyKey::new(run, "send_welcome", 1);
    let entry = h.store.outbox(&key).unwrap().unwrap();
    assert!(
        matches!(entry.state, OutboxState::Unknown { .. }),
        "{entry:?}"
    );
    // on_unknown: continue: the run went on to tag and wait for the reply.
    assert_eq!(h.plugins.called(), ["wecom.mark_tag"]);
    assert_eq!(h.state(run).status, RunStatus::WaitingEvent);
    let history = h.history(run);
    assert!(
        history
            .iter()
            .any(|e| e.outcome.contains("outcome unknown"))
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_send_the_plugin_can_reconcile_is_recorded_as_sent() {
    let done = OutcomeStatus::Done {
        output: json!({"msgid": "abc"}),
    };
    let (mut h, run) = crash_inside_the_call(Some(done)).await;
    assert!(h.plugins.calls_of("wecom.send_welcome").is_empty());
    let key = sop_store::IdempotencyKey::new(run, "send_welcome", 1);
    let entry = h.store.outbox(&key).unwrap().unwrap();
    assert!(matches!(entry.state, OutboxState::Sent { .. }), "{entry:?}");
    assert_eq!(h.state(run).outputs["send_welcome"]["msgid"], "abc");
    h.shutdown().await;
}

#[tokio::test]
async fn a_send_never_recorded_goes_out_once_after_restart() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = VirtualClock::new(t0());
    let gate = Arc::new(ScriptedGate::default());
    gate.hang.store(true, Ordering::SeqCst);
    let mut first = Harness::with(store.clone(), clock.clone(), FakePlugins::new(), gate);
    first.deploy(vec![bundled("welcome.yaml")]);
    first.serve().await;
    let run = first.ingest(vec![welcome_event(&first)]).await.enrolled[0];
    assert!(first.plugins.called().is_empty());
    assert!(
        store
            .outbox_in_state(OutboxStateKind::Pending, None, 10)
            .unwrap()
            .is_empty()
    );
    first.shutdown().await;
    drop(first);

    let mut second = Harness::with(
        store,
        clock,
        FakePlugins::new(),
        Arc::new(ScriptedGate::default()),
    );
    second.deploy(vec![bundled("welcome.yaml")]);
    second.serve().await;
    assert_eq!(
        second.plugins.called(),
        ["wecom.send_welcome", "wecom.mark_tag"]
    );
    assert_eq!(second.state(run).status, RunStatus::WaitingEvent);
    second.shutdown().await;
}

/// An idempotent call that counts against no cap (the welcome's tag) is recorded with its
/// result in one commit: in flight it has no record, and a crash then makes the next start
/// call it again (never a reconciliation, never `unknown`).
#[tokio::test]
async fn an_idempotent_call_is_recorded_with_its_result_and_made_again_after_a_crash() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = VirtualClock::new(t0());
    let (mut first, run) = hanging_in("wecom.mark_tag", &store, &clock).await;
    assert_eq!(
        first.plugins.called(),
        ["wecom.send_welcome", "wecom.mark_tag"]
    );
    let tag = sop_store::IdempotencyKey::new(run, "tag_channel", 1);
    assert_eq!(
        store.outbox(&tag).unwrap(),
        None,
        "no record while in flight"
    );
    assert!(
        store
            .outbox_in_state(OutboxStateKind::Pending, None, 10)
            .unwrap()
            .is_empty()
    );
    first.shutdown().await;
    drop(first);

    let mut second = welcome_process(&store, &clock, FakePlugins::new()).await;
    assert_eq!(second.plugins.called(), ["wecom.mark_tag"], "made again");
    assert!(second.plugins.checks.lock().unwrap().is_empty());
    let entry = store
        .outbox(&tag)
        .unwrap()
        .expect("recorded with its result");
    assert!(matches!(entry.state, OutboxState::Sent { .. }), "{entry:?}");
    assert_eq!(entry.attempts, 1);
    assert_eq!(second.state(run).status, RunStatus::WaitingEvent);
    // The gate's line comes before the result's, as when the intent had its own commit.
    let history = second.history(run);
    let tag_lines: Vec<&str> = history
        .iter()
        .filter(|e| e.step.as_deref() == Some("tag_channel"))
        .map(|e| e.input.as_str())
        .collect();
    assert_eq!(
        tag_lines,
        [
            "wecom.mark_tag attempt 1",
            "policy gate: wecom.mark_tag attempt 1",
            "result"
        ]
    );
    second.shutdown().await;
}

#[tokio::test]
async fn a_restart_on_sled_resumes_waiting_timers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = VirtualClock::new(t0());
    let playbook = "id: later\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: pause\n    wait: 3d\n  - id: done_tag\n    add_tags: resumed\n";
    let runs = {
        let store: Arc<dyn Store> =
            Arc::new(sop_store_sled::open(dir.path(), &Default::default()).unwrap());
        let mut h = Harness::with(
            store,
            clock.clone(),
            FakePlugins::new(),
            Arc::new(sop_runtime::PassThrough),
        );
        h.deploy(vec![inline(playbook)]);
        h.serve().await;
        let ids = (0..20).map(|i| format!("c{i}")).collect();
        let receipt =
            h.rt.start_manual("later", ManualAudience::Contacts(ids), "ops")
                .await
                .unwrap();
        h.shutdown().await;
        receipt.enrolled
    };
    assert_eq!(runs.len(), 20);
    // Down for a day, then up again: nothing was kept in memory, the timers are in the store.
    clock.advance(TimeDelta::days(1));
    let store: Arc<dyn Store> =
        Arc::new(sop_store_sled::open(dir.path(), &Default::default()).unwrap());
    let mut h = Harness::with(
        store,
        clock.clone(),
        FakePlugins::new(),
        Arc::new(sop_runtime::PassThrough),
    );
    assert!(!h.deploy(vec![inline(playbook)]).playbooks[0].changed);
    h.serve().await;
    assert!(
        runs.iter()
            .all(|r| h.state(*r).status == RunStatus::WaitingTimer)
    );
    // Two days later they resume.
    h.run_for(TimeDelta::days(2)).await;
    assert!(
        runs.iter()
            .all(|r| h.state(*r).status == RunStatus::Completed)
    );
    assert!(h.tags("c7").contains(&"resumed".to_string()));
    h.shutdown().await;
}
