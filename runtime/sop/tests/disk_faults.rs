//! A full or read-only disk: the daemon stops accepting work with a clear error and health
//! status, loses nothing already committed, and takes work up again once the store can be
//! written. The store's write failures are injected ([`FaultyStore`]): sled reports a full
//! or read-only disk the same way, as a typed error on a write while reads keep working.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sop::storage::{StorageHealth, WatchedStore};
use sop_store::{Batch, EventRecord, FaultyStore, MemoryStore, Op, Store, Subject, WriteFault};

type Faulty = Arc<FaultyStore<MemoryStore>>;

/// A store whose writes fail on demand, behind the daemon's watch, as `Daemon::build` wires it.
fn watched() -> (Faulty, Arc<dyn Store>, StorageHealth) {
    let faulty = Arc::new(FaultyStore::new(MemoryStore::new()));
    let health = StorageHealth::default();
    let store: Arc<dyn Store> = Arc::new(WatchedStore::with_hook(faulty.clone(), health.clone()));
    (faulty, store, health)
}

/// The external contact an event is about.
fn contact_of(event: &EventRecord) -> String {
    match &event.subject {
        Some(Subject::Contact(key)) => key.id.clone(),
        other => panic!("not a contact event: {other:?}"),
    }
}

fn get(path: &str) -> Request<Body> {
    Request::builder().uri(path).body(Body::empty()).unwrap()
}

fn admin_post(path: &str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(path)
        .header("authorization", format!("Bearer {}", support::ADMIN))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_stops_intake_with_503_and_not_ready_and_work_resumes_when_it_clears() {
    let (faulty, store, health) = watched();
    let shared = support::shared_over(support::wecom_plugins().await, store.clone(), health);
    shared.set_ready(true);
    let ingress = sop::ingress::router(shared.clone(), 1 << 20);
    let admin = sop::admin::router(shared.clone(), 1 << 20)
        .merge(sop::observability::router(shared.clone()));

    let (status, text) = support::send(
        &ingress,
        support::signed_wecom_callback(&support::add_contact_xml("wmBefore"), "n1"),
    )
    .await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "success"));
    assert_eq!(store.events(None, 10).unwrap().len(), 1);

    // The disk fills. The first callback finds out on its commit: 503, so WeCom retries.
    faulty.set_fault(Some(WriteFault::DiskFull));
    let during = support::add_contact_xml("wmDuring");
    let (status, _) = support::send(&ingress, support::signed_wecom_callback(&during, "n2")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!shared.storage().is_writable());
    let (status, text) = support::send(&admin, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        text.contains("the store cannot be written") && text.contains("out of disk space"),
        "{text}"
    );
    // Later callbacks are answered 503 without trying (the plugin is not even called).
    let refused_before = faulty.refused();
    let (status, _) = support::send(&ingress, support::signed_wecom_callback(&during, "n3")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(faulty.refused(), refused_before, "a write was attempted");
    // Admin changes say why (503, temporary); reads keep working.
    let (status, body) =
        support::send(&admin, admin_post("/api/contacts/demo-brand/wm1/opt-out")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("out of disk space"), "{body}");
    let mut read = get("/api/outbox");
    read.headers_mut().insert(
        "authorization",
        format!("Bearer {}", support::READ).parse().unwrap(),
    );
    assert_eq!(support::send(&admin, read).await.0, StatusCode::OK);
    // Nothing committed was lost, nothing half-committed appeared.
    let events = store.events(None, 10).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(contact_of(&events[0].1), "wmBefore");

    // Space returns: the probe's write succeeds and the daemon is ready again.
    faulty.set_fault(None);
    sop::storage::probe(&*store, "2026-03-02T02:00:00Z".parse().unwrap()).unwrap();
    assert!(shared.storage().is_writable());
    assert_eq!(
        support::send(&admin, get("/readyz")).await.0,
        StatusCode::OK
    );
    // WeCom's retry of the refused callback is committed now, once.
    for nonce in ["n4", "n5"] {
        let (status, text) =
            support::send(&ingress, support::signed_wecom_callback(&during, nonce)).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, "success"));
    }
    let contacts: Vec<_> = store
        .events(None, 10)
        .unwrap()
        .into_iter()
        .map(|(_, e)| contact_of(&e))
        .collect();
    assert_eq!(contacts, ["wmBefore", "wmDuring"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_store_is_reported_as_such() {
    let (faulty, store, health) = watched();
    let shared = support::shared_over(support::manifest_plugins(), store.clone(), health);
    shared.set_ready(true);
    let admin = sop::observability::router(shared.clone());
    faulty.set_fault(Some(WriteFault::ReadOnly));
    // Any write notices, here one like the runtime's housekeeping.
    let purge = Op::KvPurgeExpired {
        now: "2026-03-02T02:00:00Z".parse().unwrap(),
    };
    assert!(store.commit(Batch::new().op(purge)).is_err());
    let (status, text) = support::send(&admin, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(text.contains("read-only"), "{text}");
    faulty.set_fault(None);
    sop::storage::probe(&*store, "2026-03-02T02:00:00Z".parse().unwrap()).unwrap();
    assert_eq!(
        support::send(&admin, get("/readyz")).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runtime_pauses_on_a_write_fault_and_serves_again_once_the_store_takes_writes() {
    let (faulty, store, health) = watched();
    let now: sop_clock::Timestamp = "2026-03-02T02:00:00Z".parse().unwrap();
    let long_ago: sop_clock::Timestamp = "2020-01-01T00:00:00Z".parse().unwrap();
    // An old dedupe id: the runtime's housekeeping forgets it on its first pass.
    store
        .commit(Batch::new().op(Op::MarkEventSeen {
            source: "wecom:acme".into(),
            dedupe_id: "old".into(),
            at: long_ago,
        }))
        .unwrap();
    let shared = support::shared_over(support::manifest_plugins(), store.clone(), health.clone());
    faulty.set_fault(Some(WriteFault::DiskFull));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(sop::daemon::serve_runtime(
        shared.runtime().clone(),
        health.clone(),
        stopped,
    ));
    // Housekeeping's write fails: the runtime stops, the daemon does not.
    health.unwritable().await;
    assert!(!serving.is_finished());
    assert!(store.event_seen("wecom:acme", "old").unwrap().is_some());

    faulty.set_fault(None);
    sop::storage::probe(&*store, now).unwrap();
    // Serving again: the housekeeping pass that failed now goes through.
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while store.event_seen("wecom:acme", "old").unwrap().is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the runtime serves again once the store takes writes");
    stop.send(true).unwrap();
    serving.await.unwrap().unwrap();
}

/// Commits a pending call whose run does not exist: recovery marks such a call unknown.
fn orphaned_call(store: &dyn Store, run: u64) -> sop_store::IdempotencyKey {
    let now: sop_clock::Timestamp = support::START.parse().unwrap();
    let key = sop_store::IdempotencyKey::new(sop_store::RunId(run), "welcome", 0);
    store
        .commit(Batch::new().op(Op::PutOutbox(sop_store::OutboxEntry {
            key: key.clone(),
            action: "wecom.send_welcome_msg".into(),
            account: "acme".into(),
            input_digest: String::new(),
            delivery: sop_store::Delivery::AtMostOnce,
            state: sop_store::OutboxState::Pending,
            attempts: 1,
            created_at: now,
            updated_at: now,
        })))
        .unwrap();
    key
}

/// Waits until recovery has marked `key` unknown.
async fn recovered(store: &dyn Store, key: &sop_store::IdempotencyKey, what: &str) {
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while !matches!(
            store.outbox(key).unwrap().expect("the entry").state,
            sop_store::OutboxState::Unknown { .. }
        ) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}"));
}

/// A commit reported failed can still reach the disk (its flush failed, not its write), and
/// the store reopened after the outage holds it. Here the ingress's write fails, not the
/// runtime's, and the commit that "failed" left a pending call behind: the runtime restarts
/// from the store once it takes writes again, and its recovery finds the call.
#[tokio::test(flavor = "multi_thread")]
async fn the_runtime_restarts_from_the_store_after_an_outage_it_did_not_see_itself() {
    let (faulty, store, health) = watched();
    let now: sop_clock::Timestamp = support::START.parse().unwrap();
    let shared = support::shared_over(support::manifest_plugins(), store.clone(), health.clone());
    let before = orphaned_call(&*store, 76);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(sop::daemon::serve_runtime(
        shared.runtime().clone(),
        health.clone(),
        stopped,
    ));
    recovered(&*store, &before, "the first recovery").await;

    // Not the runtime's write fails: the ingress's, say.
    faulty.set_fault(Some(WriteFault::DiskFull));
    let event = Op::MarkEventSeen {
        source: "wecom:acme".into(),
        dedupe_id: "e1".into(),
        at: now,
    };
    assert!(store.commit(Batch::new().op(event)).is_err());
    assert!(!health.is_writable());
    // What that commit left on disk after all.
    let during = orphaned_call(faulty.inner(), 77);
    // The outage ends.
    faulty.set_fault(None);
    sop::storage::probe(&*store, now).unwrap();
    assert!(health.is_writable());
    recovered(
        &*store,
        &during,
        "recovery did not run again after the outage",
    )
    .await;
    assert!(!serving.is_finished());
    stop.send(true).unwrap();
    serving.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_watch_probes_until_a_write_succeeds() {
    let (faulty, store, health) = watched();
    let clock = Arc::new(sop_clock::VirtualClock::new(
        "2026-03-02T02:00:00Z".parse().unwrap(),
    ));
    let watch = tokio::spawn(sop::storage::watch(
        store.clone(),
        health.clone(),
        clock,
        std::time::Duration::from_secs(5),
    ));
    faulty.set_fault(Some(WriteFault::DiskFull));
    assert!(store.flush().is_err());
    assert!(!health.is_writable());
    // Paused time runs ahead while everything waits: several probes fail.
    while faulty.refused() < 4 {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    assert!(!health.is_writable());
    faulty.set_fault(None);
    health.writable().await;
    assert!(health.problem().is_none());
    watch.abort();
}
