//! Batched sends: a broadcast's sends of one text ride in merged calls (`batch_max` members
//! at most), each member still its own run, outbox entry and result; one outcome check per
//! call; a crash inside a merged call is reconciled under the call's key.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use sop_clock::{TimeDelta, VirtualClock};
use sop_engine::{OutcomeStatus, RunStatus};
use sop_runtime::{ManualAudience, PassThrough, RuntimeConfig};
use sop_store::{MemoryStore, OutboxState, RunId, Store, Subject};

use crate::harness::*;

const PROMO: &str = "id: promo\nversion: 1\ntriggers: [{manual: true}]\npolicy: {category: marketing, quiet_hours: 'off'}\nsteps:\n  - id: offer\n    action: wecom.mass_send_contacts\n    params: {sender: s, contacts: ['{{ contact.id }}'], text: sale}\n";

/// The same broadcast with a text per contact: nothing to merge.
const PERSONAL: &str = "id: personal\nversion: 1\ntriggers: [{manual: true}]\npolicy: {category: marketing, quiet_hours: 'off'}\nsteps:\n  - id: offer\n    action: wecom.mass_send_contacts\n    params: {sender: s, contacts: ['{{ contact.id }}'], text: 'hi {{ contact.id }}'}\n";

async fn process(
    store: &Arc<dyn Store>,
    clock: &VirtualClock,
    plugins: Arc<FakePlugins>,
    batch_max: usize,
) -> Harness {
    let config = RuntimeConfig {
        batch_max,
        ..RuntimeConfig::default()
    };
    let mut h = Harness::with_config(
        store.clone(),
        clock.clone(),
        plugins,
        Arc::new(PassThrough),
        config,
    );
    h.deploy(vec![inline(PROMO), inline(PERSONAL)]);
    h.serve().await;
    h
}

fn contacts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("c{i:03}")).collect()
}

/// Contact id → the outbox entry of its send.
fn outbox_by_contact(h: &Harness, runs: &[RunId]) -> BTreeMap<String, sop_store::OutboxEntry> {
    runs.iter()
        .map(|run| {
            let Subject::Contact(contact) = h.run(*run).subject else {
                panic!("contact run");
            };
            let key = sop_store::IdempotencyKey::new(*run, "offer", 1);
            let entry = h.store.outbox(&key).unwrap().expect("outbox entry");
            (contact.id, entry)
        })
        .collect()
}

#[tokio::test]
async fn a_broadcast_of_one_text_goes_out_in_merged_calls_and_is_checked_once_a_call() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = VirtualClock::new(t0());
    let h = process(&store, &clock, FakePlugins::new(), 10).await;
    let ids = contacts(25);
    let receipt =
        h.rt.start_manual("promo", ManualAudience::Contacts(ids.clone()), "ops")
            .await
            .unwrap();
    h.settle().await;
    let calls = h.plugins.calls_of("wecom.mass_send_contacts");
    let sizes: Vec<usize> = calls
        .iter()
        .map(|c| c.input["contacts"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [10, 10, 5], "batch_max members a call");
    let mut reached: Vec<String> = calls
        .iter()
        .flat_map(|c| c.input["contacts"].as_array().unwrap().clone())
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    reached.sort();
    assert_eq!(reached, ids, "every contact once");
    for call in &calls {
        assert_eq!(call.input["text"], "sale");
        assert!(call.key.ends_with("/batch"), "{}", call.key);
    }
    // Each member has its own record of the shared task.
    let outbox = outbox_by_contact(&h, &receipt.enrolled);
    assert_eq!(outbox.len(), 25);
    for entry in outbox.values() {
        assert!(
            matches!(&entry.state, OutboxState::Accepted { handle, .. } if handle.starts_with("task-")),
            "{entry:?}"
        );
    }
    let history = h.history(receipt.enrolled[0]);
    assert!(
        history.iter().any(|e| e
            .gate
            .as_deref()
            .is_some_and(|g| g.contains("one call with 9 others"))),
        "{history:?}"
    );

    // The outcome: asked once per task, every member completes.
    h.run_for(TimeDelta::seconds(61)).await;
    let checks = h.plugins.checks.lock().unwrap().clone();
    assert_eq!(checks.len(), 3, "one check a call: {checks:?}");
    for run in &receipt.enrolled {
        assert_eq!(h.state(*run).status, RunStatus::Completed, "run {run}");
    }
}

#[tokio::test]
async fn personalised_texts_are_not_merged() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = VirtualClock::new(t0());
    let h = process(&store, &clock, FakePlugins::new(), 10).await;
    h.rt.start_manual("personal", ManualAudience::Contacts(contacts(5)), "ops")
        .await
        .unwrap();
    h.settle().await;
    let calls = h.plugins.calls_of("wecom.mass_send_contacts");
    assert_eq!(calls.len(), 5);
    assert!(
        calls
            .iter()
            .all(|c| c.input["contacts"].as_array().unwrap().len() == 1)
    );
}

#[tokio::test]
async fn a_batch_max_of_one_sends_every_invocation_alone() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = VirtualClock::new(t0());
    let h = process(&store, &clock, FakePlugins::new(), 1).await;
    h.rt.start_manual("promo", ManualAudience::Contacts(contacts(4)), "ops")
        .await
        .unwrap();
    h.settle().await;
    assert_eq!(h.plugins.calls_of("wecom.mass_send_contacts").len(), 4);
}

#[tokio::test]
async fn a_recipient_the_platform_rejected_fails_alone() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = VirtualClock::new(t0());
    let plugins = FakePlugins::new();
    plugins.behave(
        "wecom.mass_send_contacts",
        Behaviour::AcceptedRejecting(vec!["c001".into()]),
    );
    let h = process(&store, &clock, plugins, 10).await;
    let receipt =
        h.rt.start_manual("promo", ManualAudience::Contacts(contacts(3)), "ops")
            .await
            .unwrap();
    h.settle().await;
    assert_eq!(h.plugins.calls_of("wecom.mass_send_contacts").len(), 1);
    let outbox = outbox_by_contact(&h, &receipt.enrolled);
    match &outbox["c001"].state {
        OutboxState::Failed { reason } => {
            assert!(reason.contains("rejected recipient c001"), "{reason}")
        }
        other => panic!("c001: {other:?}"),
    }
    for id in ["c000", "c002"] {
        match &outbox[id].state {
            // The shared answer without the list of rejected recipients.
            OutboxState::Accepted { .. } => {}
            other => panic!("{id}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_crash_inside_a_merged_call_is_reconciled_under_the_calls_key_once() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = VirtualClock::new(t0());
    let (enrolled, call_key) = crash_inside_a_merged_call(&store, &clock).await;
    for run in &enrolled {
        let key = sop_store::IdempotencyKey::new(*run, "offer", 1);
        let entry = store.outbox(&key).unwrap().expect("intent recorded");
        assert_eq!(
            entry.state,
            OutboxState::PendingMember {
                call: call_key.clone()
            },
            "the member's entry names its call"
        );
    }
    reconciled_under(&store, &clock, &enrolled, call_key).await;
}

/// A binary before store format 3 left its members' entries plain `Pending` and their call
/// key in the key-value table (namespace `sop:batch`): recovery still finds it there.
#[tokio::test]
async fn a_merged_call_left_pending_by_an_older_binary_is_reconciled_under_its_recorded_key() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = VirtualClock::new(t0());
    let (enrolled, call_key) = crash_inside_a_merged_call(&store, &clock).await;
    let mut batch = sop_store::Batch::new();
    for run in &enrolled {
        let key = sop_store::IdempotencyKey::new(*run, "offer", 1);
        let mut entry = store.outbox(&key).unwrap().expect("intent recorded");
        entry.state = OutboxState::Pending;
        batch.push(sop_store::Op::PutOutbox(entry));
        batch.push(sop_store::Op::KvSet {
            plugin: "sop:batch".into(),
            key: key.to_string(),
            value: call_key.as_bytes().to_vec(),
            expires_at: Some(t0() + TimeDelta::days(8)),
        });
    }
    store.commit(batch).unwrap();
    reconciled_under(&store, &clock, &enrolled, call_key).await;
}

/// Three contacts' sends in one merged call that never answers, then a crash: the enrolled
/// runs and the call's key.
async fn crash_inside_a_merged_call(
    store: &Arc<dyn Store>,
    clock: &VirtualClock,
) -> (Vec<RunId>, String) {
    let plugins = FakePlugins::new();
    *plugins.hang_on_text.lock().unwrap() = Some("sale".into());
    let mut first = process(store, clock, plugins, 10).await;
    let receipt = first
        .rt
        .start_manual("promo", ManualAudience::Contacts(contacts(3)), "ops")
        .await
        .unwrap();
    first.settle().await;
    let calls = first.plugins.calls_of("wecom.mass_send_contacts");
    assert_eq!(calls.len(), 1, "one merged call, which never answers");
    let call_key = calls[0].key.clone();
    first.shutdown().await;
    (receipt.enrolled, call_key)
}

/// After the crash, the plugin is asked once, under the call's key, and each member gets
/// its recipient's status.
async fn reconciled_under(
    store: &Arc<dyn Store>,
    clock: &VirtualClock,
    enrolled: &[RunId],
    call_key: String,
) {
    let plugins = FakePlugins::new();
    *plugins.reconcile.lock().unwrap() = Some(OutcomeStatus::Done {
        output: json!({"msgid": "m1", "recipients": {"sent": ["c000", "c002"], "not_friend": ["c001"]}}),
    });
    let h = process(store, clock, plugins, 10).await;
    assert!(
        h.plugins.calls_of("wecom.mass_send_contacts").is_empty(),
        "never re-sent"
    );
    let checks = h.plugins.checks.lock().unwrap().clone();
    assert_eq!(
        checks,
        [(call_key, None)],
        "one check, under the call's key"
    );
    let outbox = outbox_by_contact(&h, enrolled);
    for (id, status) in [("c000", "sent"), ("c001", "not_friend"), ("c002", "sent")] {
        match &outbox[id].state {
            OutboxState::Sent { output } => {
                let output: serde_json::Value = serde_json::from_str(output).unwrap();
                assert_eq!(
                    output,
                    json!({"msgid": "m1", "recipient_status": status}),
                    "{id}"
                );
            }
            other => panic!("{id}: {other:?}"),
        }
    }
}

/// A broadcast started in quiet hours is deferred send by send; at 09:00 the sends come back
/// together and ride in one call again.
#[tokio::test]
async fn sends_deferred_by_quiet_hours_come_back_in_one_call() {
    let mut h = Harness::at_night_with_default_policy(); // 22:00 Shanghai
    h.deploy(vec![inline(
        "id: night\nversion: 1\ntriggers: [{manual: true}]\npolicy: {category: marketing, quiet_hours: '21:00-09:00'}\nsteps:\n  - id: offer\n    action: wecom.mass_send_contacts\n    params: {sender: s, contacts: ['{{ contact.id }}'], text: morning}\n",
    )]);
    h.serve().await;
    let ids = contacts(6);
    h.rt.start_manual("night", ManualAudience::Contacts(ids.clone()), "ops")
        .await
        .unwrap();
    h.settle().await;
    assert!(
        h.plugins.calls_of("wecom.mass_send_contacts").is_empty(),
        "quiet hours"
    );
    h.run_for(TimeDelta::hours(11) + TimeDelta::seconds(1))
        .await;
    let calls = h.plugins.calls_of("wecom.mass_send_contacts");
    assert_eq!(calls.len(), 1, "{calls:?}");
    let mut reached: Vec<String> =
        serde_json::from_value(calls[0].input["contacts"].clone()).unwrap();
    reached.sort();
    assert_eq!(reached, ids, "every contact, in the order the timers fired");
    h.shutdown().await;
}

/// Counts the store's writes (commits and flushes).
#[derive(Debug, Default)]
struct Writes(std::sync::atomic::AtomicUsize);

impl sop_store::WriteHook for Writes {
    fn after_write(&self, _outcome: Result<(), &sop_store::StoreError>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The members' shares of one outcome are fed together: a few commits, not one a member.
#[tokio::test]
async fn the_outcomes_of_a_calls_members_are_fed_in_a_few_commits() {
    let hooked = Arc::new(sop_store::HookedStore::with_hook(
        MemoryStore::new(),
        Writes::default(),
    ));
    let store: Arc<dyn Store> = hooked.clone();
    let clock = VirtualClock::new(t0());
    let h = process(&store, &clock, FakePlugins::new(), 100).await;
    let receipt =
        h.rt.start_manual("promo", ManualAudience::Contacts(contacts(100)), "ops")
            .await
            .unwrap();
    h.settle().await;
    assert_eq!(h.plugins.calls_of("wecom.mass_send_contacts").len(), 1);
    let writes = || hooked.hook().0.load(std::sync::atomic::Ordering::SeqCst);
    let before = writes();
    h.run_for(TimeDelta::seconds(61)).await;
    for run in &receipt.enrolled {
        assert_eq!(h.state(*run).status, RunStatus::Completed, "run {run}");
    }
    let outcome_writes = writes() - before;
    assert!(
        outcome_writes <= 10,
        "{outcome_writes} writes to feed 100 members their outcome"
    );
}
