//! Flow control (`flow:`) through the runtime on a virtual clock: concurrency serializes,
//! throttle releases queued starts on time, rate_limit drops with a reason, debounce keeps
//! the last trigger (capped by max_delay), and held starts survive a restart.

use std::sync::Arc;

use serde_json::json;
use sop_clock::{TimeDelta, Timestamp, VirtualClock};
use sop_store::{ContactKey, MemoryStore, Store, Subject};

use crate::harness::*;

/// A playbook started by every message, with `flow` as given; the run notifies the staff
/// with the message's text, then waits `wait` (if any) before it ends.
fn playbook(flow: &str, wait: Option<&str>) -> sop_runtime::PlaybookSource {
    let wait = wait
        .map(|w| format!("  - id: pause\n    wait: {w}\n"))
        .unwrap_or_default();
    inline(&format!(
        "id: flowed\nversion: 1\ntriggers: [{{event: wecom.message_received}}]\n\
         entry: {{one_active_run: false}}\nflow: {flow}\nsteps:\n  - id: note\n    \
         action: wecom.notify_staff\n    params: {{touser: s, text: \"{{{{ event.attributes.text }}}}\"}}\n{wait}"
    ))
}

async fn message(h: &Harness, dedupe: &str, text: &str) -> sop_runtime::IngestReceipt {
    message_from(h, "wm_1", dedupe, json!({ "text": text })).await
}

async fn message_from(
    h: &Harness,
    contact: &str,
    dedupe: &str,
    attributes: serde_json::Value,
) -> sop_runtime::IngestReceipt {
    let event = h.event("wecom.message_received", contact, dedupe, attributes);
    h.ingest(vec![event]).await
}

/// The texts the runs sent, in call order.
fn texts(h: &Harness) -> Vec<String> {
    h.plugins
        .calls_of("wecom.notify_staff")
        .iter()
        .map(|c| c.input["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Every run of the contact as (minutes after t0 it was created, live).
fn runs(h: &Harness) -> Vec<(i64, bool)> {
    let subject = Subject::Contact(ContactKey::new(TENANT, "wm_1"));
    let mut runs: Vec<(i64, bool)> = h
        .store
        .runs_of_subject(&subject)
        .unwrap()
        .into_iter()
        .map(|s| {
            let run = h.run(s.id);
            (
                (run.created_at - t0()).num_seconds() / 60,
                run.state.is_live(),
            )
        })
        .collect();
    runs.sort();
    runs
}

fn minutes(m: i64) -> Timestamp {
    t0() + TimeDelta::minutes(m)
}

#[tokio::test]
async fn concurrency_one_serializes_the_runs_of_a_key() {
    let mut h = Harness::new();
    h.deploy(vec![playbook("{concurrency: 1}", Some("10m"))]);
    h.serve().await;
    let first = message(&h, "m1", "a").await;
    assert_eq!(first.enrolled.len(), 1, "the first trigger starts at once");
    assert!(message(&h, "m2", "b").await.enrolled.is_empty());
    assert!(message(&h, "m3", "c").await.enrolled.is_empty());
    assert_eq!(texts(&h), ["a"]);
    assert_eq!(runs(&h), [(0, true)]);
    h.run_for(TimeDelta::minutes(9)).await;
    assert_eq!(texts(&h), ["a"], "the second waits while the first is live");
    h.run_for(TimeDelta::minutes(1)).await;
    assert_eq!(texts(&h), ["a", "b"]);
    assert_eq!(runs(&h), [(0, false), (10, true)]);
    h.run_for(TimeDelta::minutes(10)).await;
    assert_eq!(texts(&h), ["a", "b", "c"]);
    assert_eq!(runs(&h), [(0, false), (10, false), (20, true)]);
    h.run_for(TimeDelta::minutes(10)).await;
    assert_eq!(runs(&h), [(0, false), (10, false), (20, false)]);
    assert!(h.store.flows(None, 10).unwrap().is_empty(), "nothing held");
    h.shutdown().await;
}

#[tokio::test]
async fn the_key_template_counts_across_contacts() {
    let mut h = Harness::new();
    h.deploy(vec![playbook(
        "{key: \"{{ event.attributes.shop }}\", concurrency: 1}",
        Some("10m"),
    )]);
    h.serve().await;
    let shop = |s: &str, t: &str| json!({ "shop": s, "text": t });
    let started = [
        message_from(&h, "wm_1", "m1", shop("north", "n1")).await,
        message_from(&h, "wm_2", "m2", shop("north", "n2")).await,
        message_from(&h, "wm_3", "m3", shop("south", "s1")).await,
    ]
    .map(|r| r.enrolled.len());
    // wm_2 shares wm_1's key and waits; wm_3 has its own key.
    assert_eq!(started, [1, 0, 1]);
    assert_eq!(texts(&h), ["n1", "s1"]);
    h.run_for(TimeDelta::minutes(10)).await;
    assert_eq!(texts(&h), ["n1", "s1", "n2"]);
    h.shutdown().await;
}

#[tokio::test]
async fn throttle_releases_queued_starts_when_the_window_moves() {
    let mut h = Harness::new();
    h.deploy(vec![playbook("{throttle: {limit: 2, per: 1m}}", None)]);
    h.serve().await;
    for (i, text) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        message(&h, &format!("m{i}"), text).await;
    }
    assert_eq!(texts(&h), ["a", "b"]);
    h.run_for(TimeDelta::seconds(59)).await;
    assert_eq!(texts(&h).len(), 2);
    h.run_for(TimeDelta::seconds(1)).await;
    assert_eq!(texts(&h), ["a", "b", "c", "d"], "FIFO, two per minute");
    h.run_for(TimeDelta::minutes(1)).await;
    assert_eq!(texts(&h), ["a", "b", "c", "d", "e"]);
    let created: Vec<i64> = runs(&h).into_iter().map(|(m, _)| m).collect();
    assert_eq!(created, [0, 0, 1, 1, 2]);
    // The record is forgotten once the last start leaves its window.
    h.run_for(TimeDelta::minutes(1)).await;
    assert!(h.store.flows(None, 10).unwrap().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn rate_limit_drops_the_excess_and_records_why() {
    let mut h = Harness::new();
    h.deploy(vec![playbook("{rate_limit: {limit: 2, per: 1h}}", None)]);
    h.serve().await;
    let mut enrolled = 0;
    for (i, text) in ["a", "b", "c", "d"].iter().enumerate() {
        enrolled += message(&h, &format!("m{i}"), text).await.enrolled.len();
    }
    assert_eq!(enrolled, 2);
    assert_eq!(texts(&h), ["a", "b"]);
    let dropped: Vec<_> = h
        .store
        .events(None, 100)
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| e.kind == "sop.flow_dropped")
        .collect();
    assert_eq!(dropped.len(), 2);
    let reason = dropped[0].payload["reason"].as_str().unwrap();
    assert!(reason.contains("rate_limit (2 per 1h"), "{reason}");
    assert_eq!(dropped[0].payload["playbook"], "flowed");
    // Dropped means dropped: nothing starts later.
    h.run_for(TimeDelta::minutes(59)).await;
    assert_eq!(texts(&h), ["a", "b"]);
    h.run_for(TimeDelta::minutes(1)).await;
    assert_eq!(message(&h, "m9", "z").await.enrolled.len(), 1);
    assert_eq!(texts(&h), ["a", "b", "z"]);
    h.shutdown().await;
}

#[tokio::test]
async fn debounce_starts_once_with_the_last_event() {
    let mut h = Harness::new();
    h.deploy(vec![playbook("{debounce: {period: 5m}}", None)]);
    h.serve().await;
    for (i, text) in ["a", "b", "c"].iter().enumerate() {
        assert!(
            message(&h, &format!("m{i}"), text)
                .await
                .enrolled
                .is_empty()
        );
        h.run_for(TimeDelta::minutes(1)).await;
    }
    // The last event came at t0+2m: quiet until t0+7m.
    h.run_for(TimeDelta::minutes(3)).await;
    assert!(texts(&h).is_empty());
    assert_eq!(h.clock_now(), minutes(6));
    h.run_for(TimeDelta::minutes(1)).await;
    assert_eq!(texts(&h), ["c"]);
    assert_eq!(runs(&h), [(7, false)]);
    h.run_for(TimeDelta::hours(1)).await;
    assert_eq!(texts(&h), ["c"], "exactly one run");
    h.shutdown().await;
}

#[tokio::test]
async fn debounce_max_delay_caps_a_steady_stream() {
    let mut h = Harness::new();
    h.deploy(vec![playbook(
        "{debounce: {period: 5m, max_delay: 12m}}",
        None,
    )]);
    h.serve().await;
    // A message every 3 minutes never leaves 5 minutes of quiet.
    for i in 0..6 {
        message(&h, &format!("m{i}"), &format!("e{i}")).await;
        h.run_for(TimeDelta::minutes(3)).await;
    }
    // The burst began at t0: it went at t0+12m with the latest event then (e4 came at
    // t0+12m, after the start: it opens a new burst with e5 at t0+15m).
    assert_eq!(texts(&h), ["e3"]);
    assert_eq!(runs(&h), [(12, false)]);
    h.run_for(TimeDelta::minutes(2)).await;
    assert_eq!(texts(&h), ["e3", "e5"], "quiet 5m after e5 (t0+20m)");
    assert_eq!(runs(&h), [(12, false), (20, false)]);
    h.shutdown().await;
}

/// A runtime on the sled store in `dir`, serving the playbook of the restart test.
async fn on_sled(dir: &std::path::Path, clock: &VirtualClock) -> Harness {
    let store: Arc<dyn Store> =
        Arc::new(sop_store_sled::open(dir, &Default::default()).expect("sled store"));
    let mut h = Harness::with(
        store,
        clock.clone(),
        FakePlugins::new(),
        Arc::new(sop_runtime::PassThrough),
    );
    h.deploy(vec![playbook(
        "{throttle: {limit: 1, per: 1h}, debounce: {period: 5m}}",
        None,
    )]);
    h.serve().await;
    h
}

#[tokio::test]
async fn held_starts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = VirtualClock::new(t0());
    let mut first = on_sled(dir.path(), &clock).await;
    message(&first, "m1", "a").await;
    first.run_for(TimeDelta::minutes(5)).await;
    assert_eq!(texts(&first), ["a"], "debounced, then started");
    // Debounced, then queued behind the throttle: the process stops while it waits.
    message(&first, "m2", "b").await;
    first.run_for(TimeDelta::minutes(5)).await;
    assert_eq!(texts(&first), ["a"]);
    message(&first, "m3", "c").await;
    let held = first.store.flows(None, 10).unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].queue.len(), 1);
    assert!(held[0].debounced.is_some());
    first.shutdown().await;
    drop(first);
    // Nothing is kept in memory: the second process reopens the sled files.
    let mut second = on_sled(dir.path(), &clock).await;
    // c is still debounced (quiet until t0+15m), b still queued (until t0+1h05m, one hour
    // after a's start).
    second.run_for(TimeDelta::minutes(5)).await;
    assert!(texts(&second).is_empty());
    second.run_for(TimeDelta::minutes(50)).await;
    assert_eq!(second.clock_now(), minutes(65));
    assert_eq!(texts(&second), ["b"]);
    second.run_for(TimeDelta::hours(1)).await;
    assert_eq!(texts(&second), ["b", "c"]);
    assert_eq!(
        runs(&second)
            .into_iter()
            .map(|(m, _)| m)
            .collect::<Vec<_>>(),
        [5, 65, 125]
    );
    second.shutdown().await;
}

#[tokio::test]
async fn held_starts_of_a_playbook_not_deployed_wait_for_it() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = VirtualClock::new(t0());
    let debounced = || playbook("{debounce: {period: 5m}}", None);
    let mut first = Harness::with(
        store.clone(),
        clock.clone(),
        FakePlugins::new(),
        Arc::new(sop_runtime::PassThrough),
    );
    first.deploy(vec![debounced()]);
    first.serve().await;
    message(&first, "m1", "a").await;
    first.shutdown().await;
    drop(first);
    // Restarted without the playbook: its debounced start is kept, and the loop neither
    // starts it nor spins on it (the runtime still answers events and timers).
    let mut second = Harness::with(
        store.clone(),
        clock.clone(),
        FakePlugins::new(),
        Arc::new(sop_runtime::PassThrough),
    );
    second.deploy(vec![bundled("welcome.yaml")]);
    second.serve().await;
    second.run_for(TimeDelta::minutes(10)).await;
    let welcome = second.event(
        "wecom.contact_added",
        "wm_2",
        "w1",
        json!({"state": "qr", "welcome_code": "W"}),
    );
    assert_eq!(second.ingest(vec![welcome]).await.enrolled.len(), 1);
    assert!(texts(&second).is_empty());
    assert_eq!(store.flows(None, 10).unwrap().len(), 1);
    // Deployed again: the start that was due goes at once, with its event's data.
    second.deploy(vec![bundled("welcome.yaml"), debounced()]);
    second.settle().await;
    assert_eq!(texts(&second), ["a"]);
    assert_eq!(runs(&second), [(10, false)]);
    assert!(store.flows(None, 10).unwrap().is_empty());
    second.shutdown().await;
}

/// Once armed with `n`, the `n`-th write from then fails with a conflict (a trigger racing
/// the flow loop).
#[derive(Debug, Default)]
struct ConflictOnce(std::sync::atomic::AtomicU32);

impl sop_store::WriteHook for ConflictOnce {
    fn before_write(&self) -> Result<(), sop_store::StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let left = self.0.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
        if left == Ok(1) {
            return Err(sop_store::StoreError::Conflict("injected".into()));
        }
        Ok(())
    }
}

/// The process-wide metrics recorder (installed once for this test binary).
fn metrics() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).expect("no other recorder in this binary");
        handle
    })
}

/// `sop_flow_starts_total{playbook, outcome}` as rendered now.
fn flow_starts(playbook: &str, outcome: &str) -> u64 {
    let text = metrics().render();
    let (outcome, playbook) = (
        format!("outcome=\"{outcome}\""),
        format!("playbook=\"{playbook}\""),
    );
    text.lines()
        .filter(|l| l.starts_with("sop_flow_starts_total{"))
        .filter(|l| l.contains(&outcome) && l.contains(&playbook))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A release whose commit conflicts is decided again and committed once: it is counted
/// once, not once per attempt.
#[tokio::test]
async fn a_retried_release_is_counted_once() {
    metrics();
    let hooked = Arc::new(sop_store::HookedStore::with_hook(
        MemoryStore::new(),
        ConflictOnce::default(),
    ));
    let store: Arc<dyn Store> = hooked.clone();
    let mut h = Harness::with(
        store,
        VirtualClock::new(t0()),
        FakePlugins::new(),
        Arc::new(sop_runtime::PassThrough),
    );
    // Its own playbook id: the recorder is shared by the tests running alongside.
    let source = inline(
        "id: flowed_retry\nversion: 1\ntriggers: [{event: wecom.message_received}]\n\
         entry: {one_active_run: false}\nflow: {throttle: {limit: 1, per: 10m}}\nsteps:\n  \
         - id: note\n    action: wecom.notify_staff\n    params: {touser: s, text: \"{{ event.attributes.text }}\"}\n",
    );
    h.deploy(vec![source]);
    h.serve().await;
    message(&h, "m1", "a").await;
    message(&h, "m2", "b").await;
    assert_eq!(texts(&h), ["a"]);
    assert_eq!(flow_starts("flowed_retry", "queued"), 1);
    // The flow loop's release at 10 min: the run's id is taken (the first write), then its
    // commit (the second) conflicts once, and the release is decided and committed again.
    hooked
        .hook()
        .0
        .store(2, std::sync::atomic::Ordering::SeqCst);
    h.run_for(TimeDelta::minutes(10)).await;
    assert_eq!(texts(&h), ["a", "b"]);
    assert_eq!(
        hooked.hook().0.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "injected"
    );
    // It went through the flow loop's retry (the only conflicts in this binary are injected).
    let conflicts: u64 = metrics()
        .render()
        .lines()
        .filter(|l| l.starts_with("sop_runtime_commit_conflicts_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(conflicts >= 1, "no retried commit");
    assert_eq!(flow_starts("flowed_retry", "released"), 1);
    assert_eq!(flow_starts("flowed_retry", "started"), 2);
    h.shutdown().await;
}
