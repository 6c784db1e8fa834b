//! Bulk sends wait their turn: a broadcast has at most `bulk_in_flight` dispatches at once,
//! every send is still made once, and event-driven sends (a welcome) never wait behind it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;
use sop_clock::VirtualClock;
use sop_runtime::{ManualAudience, RuntimeConfig};
use sop_store::MemoryStore;

use crate::harness::*;

/// A text per contact, so that no two sends ride in one call (`batch.rs` covers merging).
const PROMO: &str = "id: promo\nversion: 1\ntriggers: [{manual: true}]\npolicy: {category: marketing, quiet_hours: 'off'}\nsteps:\n  - id: offer\n    action: wecom.mass_send_contacts\n    params: {sender: s, contacts: ['{{ contact.id }}'], text: 'sale {{ contact.id }}'}\n";

async fn harness(bulk_in_flight: usize) -> (Harness, Arc<ScriptedGate>) {
    let gate = Arc::new(ScriptedGate::default());
    let config = RuntimeConfig {
        bulk_in_flight,
        ..RuntimeConfig::default()
    };
    let mut h = Harness::with_config(
        Arc::new(MemoryStore::new()),
        VirtualClock::new(t0()),
        FakePlugins::new(),
        gate.clone(),
        config,
    );
    h.deploy(vec![inline(PROMO), bundled("welcome.yaml")]);
    h.serve().await;
    (h, gate)
}

fn contacts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("c{i:03}")).collect()
}

fn asked(gate: &ScriptedGate, action: &str) -> usize {
    gate.asked
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.starts_with(action))
        .count()
}

#[tokio::test]
async fn a_broadcast_dispatches_at_most_bulk_in_flight_sends_at_once() {
    let (h, gate) = harness(3).await;
    // The rate limiter never grants a slot: every dispatched send stays in flight.
    gate.hang.store(true, Ordering::SeqCst);
    let receipt =
        h.rt.start_manual("promo", ManualAudience::Contacts(contacts(10)), "ops")
            .await
            .unwrap();
    assert_eq!(receipt.enrolled.len(), 10);
    h.settle().await;
    assert_eq!(asked(&gate, "wecom.mass_send_contacts"), 3);

    // A welcome is not bulk: it is dispatched at once, the broadcast's queue notwithstanding.
    let added = h.event(
        "wecom.contact_added",
        "wm_new",
        "m1",
        json!({"state": "qr_mall", "welcome_code": "WC-1"}),
    );
    assert_eq!(h.ingest(vec![added]).await.enrolled.len(), 1);
    h.settle().await;
    assert_eq!(asked(&gate, "wecom.send_welcome"), 1);
    assert_eq!(asked(&gate, "wecom.mass_send_contacts"), 3);
}

#[tokio::test]
async fn every_queued_send_is_made_once() {
    let (h, gate) = harness(2).await;
    let ids = contacts(25);
    h.rt.start_manual("promo", ManualAudience::Contacts(ids.clone()), "ops")
        .await
        .unwrap();
    h.settle().await;
    let calls = h.plugins.calls_of("wecom.mass_send_contacts");
    assert_eq!(calls.len(), 25, "one call per contact");
    let reached: BTreeSet<String> = calls
        .iter()
        .map(|c| c.input["contacts"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reached, ids.into_iter().collect());
    assert_eq!(asked(&gate, "wecom.mass_send_contacts"), 25);
}
