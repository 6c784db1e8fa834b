//! The policy gate's decisions: defer parks the invocation on a runtime timer, skip skips the
//! step, end ends the run; each decision is in the run's history.

use std::sync::Arc;

use serde_json::json;
use sop_clock::{TimeDelta, VirtualClock};
use sop_engine::RunStatus;
use sop_runtime::{Admission, ManualAudience};
use sop_store::MemoryStore;

use crate::harness::*;

const TWO_SENDS: &str = "id: two\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: first\n    action: wecom.notify_staff\n    params: {touser: s, text: one}\n  - id: second\n    action: wecom.notify_staff\n    params: {touser: s, text: two}\n";

async fn gated(script: Vec<Admission>) -> (Harness, Arc<ScriptedGate>, sop_store::RunId) {
    let gate = Arc::new(ScriptedGate::default());
    gate.script.lock().unwrap().extend(script);
    let mut h = Harness::with(
        Arc::new(MemoryStore::new()),
        VirtualClock::new(t0()),
        FakePlugins::new(),
        gate.clone(),
    );
    h.deploy(vec![inline(TWO_SENDS)]);
    h.serve().await;
    let run =
        h.rt.start_manual("two", ManualAudience::Contacts(vec!["c".into()]), "ops")
            .await
            .unwrap()
            .enrolled[0];
    h.settle().await;
    (h, gate, run)
}

fn texts(h: &Harness) -> Vec<serde_json::Value> {
    h.plugins
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.input["text"].clone())
        .collect()
}

#[tokio::test]
async fn defer_parks_the_invocation_and_asks_again_when_due() {
    let until = t0() + TimeDelta::hours(2);
    let (mut h, gate, run) = gated(vec![Admission::Defer {
        until,
        reason: "quiet hours".into(),
    }])
    .await;
    assert!(texts(&h).is_empty());
    assert_eq!(h.state(run).status, RunStatus::Running);
    h.run_for(TimeDelta::minutes(119)).await;
    assert!(texts(&h).is_empty(), "still deferred");
    h.run_for(TimeDelta::minutes(1)).await;
    assert_eq!(texts(&h), [json!("one"), json!("two")]);
    assert_eq!(gate.asked.lock().unwrap().len(), 3, "asked again when due");
    assert_eq!(h.state(run).status, RunStatus::Completed);
    let gates: Vec<String> = h.history(run).into_iter().filter_map(|e| e.gate).collect();
    assert_eq!(gates, ["quiet hours", "pass", "pass"]);
    h.shutdown().await;
}

#[tokio::test]
async fn a_deferral_armed_behind_the_timer_loops_cursor_still_fires() {
    // Asked again at +2 h, the gate defers to +1 h: a time the loop has already scanned past.
    let (mut h, gate, run) = gated(vec![
        Admission::Defer {
            until: t0() + TimeDelta::hours(2),
            reason: "quiet hours".into(),
        },
        Admission::Defer {
            until: t0() + TimeDelta::hours(1),
            reason: "rate slot".into(),
        },
    ])
    .await;
    h.run_for(TimeDelta::hours(2)).await;
    h.settle().await;
    assert_eq!(texts(&h), [json!("one"), json!("two")]);
    assert_eq!(gate.asked.lock().unwrap().len(), 4);
    assert_eq!(h.state(run).status, RunStatus::Completed);
    h.shutdown().await;
}

#[tokio::test]
async fn skip_skips_the_step_and_end_ends_the_run() {
    let (mut h, _, run) = gated(vec![Admission::Skip {
        reason: "opted out".into(),
    }])
    .await;
    assert_eq!(texts(&h), [json!("two")]);
    assert_eq!(h.state(run).status, RunStatus::Completed);
    h.shutdown().await;

    let (mut h, _, run) = gated(vec![Admission::EndRun {
        reason: "cap reached".into(),
    }])
    .await;
    assert!(texts(&h).is_empty());
    let state = h.state(run);
    assert_eq!(state.status, RunStatus::Completed);
    assert!(state.finish.unwrap().reason.contains("cap reached"));
    h.shutdown().await;
}

#[tokio::test]
async fn an_opt_out_keyword_stops_marketing() {
    let mut h = Harness::new();
    h.deploy(vec![inline(
        "id: promo\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: offer\n    action: wecom.mass_send_contacts\n    params: {sender: s, contacts: [c], text: sale}\n",
    )]);
    h.serve().await;
    let td = h.event("wecom.message_received", "c", "k1", json!({"text": "TD"}));
    h.ingest(vec![td]).await;
    let contact = h
        .store
        .contact(&sop_store::ContactKey::new(TENANT, "c"))
        .unwrap()
        .unwrap();
    assert!(contact.consent.opted_out.is_some());
    let run =
        h.rt.start_manual("promo", ManualAudience::Contacts(vec!["c".into()]), "ops")
            .await
            .unwrap()
            .enrolled[0];
    h.settle().await;
    assert!(
        texts(&h).is_empty(),
        "pass-through gate skips opted-out contacts"
    );
    assert_eq!(h.state(run).status, RunStatus::Completed);
    h.shutdown().await;
}

/// The real `sop_policy::Gate` with its defaults: quiet hours defer the first marketing send
/// to the morning, the daily cap (1 a day) skips the second (`on_cap: skip`).
#[tokio::test]
async fn the_policy_gate_defers_in_quiet_hours_and_caps_the_second_touch() {
    let mut h = Harness::at_night_with_default_policy(); // 22:00 Shanghai
    h.deploy(vec![inline(
        "id: promo\nversion: 1\ntriggers: [{manual: true}]\npolicy: {category: marketing, quiet_hours: '21:00-09:00', on_cap: skip}\nsteps:\n  - id: offer\n    action: wecom.mass_send_contacts\n    params: {sender: s, contacts: [c], text: one}\n  - id: again\n    action: wecom.mass_send_contacts\n    params: {sender: s, contacts: [c], text: two}\n",
    )]);
    h.serve().await;
    let run =
        h.rt.start_manual("promo", ManualAudience::Contacts(vec!["c".into()]), "ops")
            .await
            .unwrap()
            .enrolled[0];
    h.settle().await;
    assert!(texts(&h).is_empty(), "quiet hours");
    // 09:00 Shanghai, and the moment a broadcast's sends deferred alike are gathered for.
    h.run_for(TimeDelta::hours(11) + TimeDelta::seconds(1))
        .await;
    assert_eq!(texts(&h), [json!("one")]);
    // The mass send is accepted and confirmed a minute later; then the cap skips the next.
    h.run_for(TimeDelta::minutes(2)).await;
    assert_eq!(texts(&h), [json!("one")]);
    assert_eq!(h.state(run).status, RunStatus::Completed);
    let history = h.history(run);
    let gates: Vec<&str> = history.iter().filter_map(|e| e.gate.as_deref()).collect();
    assert_eq!(gates.len(), 3, "{gates:?}");
    assert!(
        history
            .iter()
            .any(|e| e.outcome.starts_with("deferred until"))
    );
    assert!(
        history.iter().any(|e| e.outcome == "skipped"),
        "{history:?}"
    );
    h.shutdown().await;
}

/// A paced broadcast longer than the gate's parking threshold waits in the store, not in
/// memory: beyond 30 s of sends queued on the account, a send is parked on its deferral
/// timer and comes back when its turn nears. Every contact still gets exactly one message.
#[tokio::test]
async fn a_long_paced_broadcast_parks_its_tail_on_timers_and_sends_each_once() {
    let clock = VirtualClock::new(t0()); // 10:00 Shanghai
    let config = sop_policy::PolicyConfig {
        rate: sop_policy::RateConfig {
            headroom_percent: 0,
            ..sop_policy::RateConfig::default()
        },
        // One send each 10 s.
        rate_limits: vec![sop_policy::RateOverride {
            plugin: "wecom".into(),
            account: None,
            limit: Some("api_per_corp_minute".into()),
            name: None,
            actions: Vec::new(),
            max: 6,
            per_seconds: 60,
        }],
        ..sop_policy::PolicyConfig::default()
    };
    let gate = Arc::new(
        sop_policy::Gate::new(config, &catalog(), Arc::new(clock.clone())).expect("policy"),
    );
    let mut h = Harness::with(
        Arc::new(MemoryStore::new()),
        clock,
        FakePlugins::new(),
        gate.clone(),
    );
    h.deploy(vec![inline(
        // A text per contact: every send is its own call (`batch.rs` covers merged ones).
        "id: promo\nversion: 1\ntriggers: [{manual: true}]\npolicy: {category: marketing, quiet_hours: 'off'}\nsteps:\n  - id: offer\n    action: wecom.mass_send_contacts\n    params: {sender: s, contacts: ['{{ contact.id }}'], text: 'sale {{ contact.id }}'}\n",
    )]);
    h.serve().await;
    let contacts: Vec<String> = (0..20).map(|i| format!("c{i:02}")).collect();
    let runs =
        h.rt.start_manual("promo", ManualAudience::Contacts(contacts.clone()), "ops")
            .await
            .unwrap()
            .enrolled;
    h.settle().await;
    let lane = |g: &sop_policy::Gate| g.snapshot().accounts.remove(0);
    let first = lane(&gate);
    // 30 s of sends at one each 10 s queue (plus the one whose 31st second it would be);
    // the rest wait on timers.
    assert!(first.queued <= 4, "{first:?}");
    assert_eq!(first.queued as u64 + first.parked, 20, "{first:?}");
    let parked: Vec<_> = runs
        .iter()
        .filter(|r| {
            h.history(**r).iter().any(|e| {
                e.gate.as_deref() == Some("the account's queue of paced sends is long")
                    && e.outcome.starts_with("deferred until")
            })
        })
        .collect();
    assert_eq!(parked.len() as u64, first.parked);
    // 20 sends at one each 10 s, then the outcome checks.
    h.run_for(TimeDelta::minutes(6)).await;
    let mut sent: Vec<String> = h
        .plugins
        .calls_of("wecom.mass_send_contacts")
        .iter()
        .map(|c| c.input["contacts"][0].as_str().unwrap().to_string())
        .collect();
    sent.sort();
    assert_eq!(sent, contacts, "each contact exactly once");
    for run in &runs {
        assert_eq!(h.state(*run).status, RunStatus::Completed);
    }
    let last = lane(&gate);
    assert_eq!(last.queued, 0);
    // Each came back when its turn neared: none was parked a second time.
    assert_eq!(last.parked, first.parked);
    h.shutdown().await;
}
