//! `GET|POST /api/clock`: the daemon's manual clock (`sop run --manual-clock`), moved only
//! forward, refused on the system clock, and what it wakes really runs.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use sop_clock::{Clock, VirtualClock};
use sop_runtime::{ManualAudience, PlaybookSource};
use sop_store::RunState;
use tower::ServiceExt;

use support::{ADMIN, READ};

const START_MS: i64 = 1_772_416_800_000; // 2026-03-02T02:00:00Z

async fn call(app: &axum::Router, method: &str, token: &str, body: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri("/api/clock")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body.to_owned()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn manual() -> VirtualClock {
    VirtualClock::new(chrono::DateTime::from_timestamp_millis(START_MS).unwrap())
}

#[tokio::test]
async fn on_the_system_clock_the_clock_reads_but_does_not_move() {
    let (shared, _) = support::shared(support::manifest_plugins());
    let app = sop::admin::router(shared, 1 << 20);
    let (status, body) = call(&app, "GET", READ, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["manual"], false);
    let wall = chrono::Utc::now().timestamp_millis();
    let now = body["now_ms"].as_i64().unwrap();
    assert!(
        (now - wall).abs() < 60_000,
        "{now} is not the wall clock {wall}"
    );
    let (status, body) = call(&app, "POST", ADMIN, r#"{"advance_ms": 1000}"#).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("--manual-clock"));
}

#[tokio::test]
async fn the_manual_clock_moves_forward_only_and_a_refused_move_changes_nothing() {
    let clock = manual();
    let (shared, _) = support::shared_on(support::manifest_plugins(), Some(clock.clone()));
    let app = sop::admin::router(shared, 1 << 20);
    let (status, body) = call(&app, "GET", READ, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["now_ms"].as_i64(), &body["manual"]),
        (Some(START_MS), &json!(true))
    );

    let (status, body) = call(&app, "POST", ADMIN, r#"{"advance_ms": 90000}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["now_ms"].as_i64(), Some(START_MS + 90_000));
    assert_eq!(clock.now_ms(), START_MS + 90_000);

    let set = START_MS + 86_400_000;
    let (status, body) = call(&app, "POST", ADMIN, &format!(r#"{{"set_ms": {set}}}"#)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(clock.now_ms(), set);
    // set then advance, as the emulator does.
    let (status, _) = call(
        &app,
        "POST",
        ADMIN,
        &format!(r#"{{"set_ms": {set}, "advance_ms": 5}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(clock.now_ms(), set + 5);

    // Refused, each with a clear error, and the clock stays where it was.
    for bad in [
        format!(r#"{{"set_ms": {START_MS}}}"#),
        "{}".to_owned(),
        format!(r#"{{"advance_ms": {}}}"#, u64::MAX),
        format!(r#"{{"set_ms": {}}}"#, u64::MAX),
    ] {
        let (status, body) = call(&app, "POST", ADMIN, &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].is_string(), "{bad}: {body}");
        assert_eq!(clock.now_ms(), set + 5, "{bad} moved the clock");
    }
    let (status, _) = call(&app, "POST", ADMIN, r#"{"advance_ms": -1}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = call(&app, "POST", ADMIN, r#"{"rewind_ms": 1}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // The read-only token cannot move time.
    let (status, _) = call(&app, "POST", READ, r#"{"advance_ms": 1000}"#).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(clock.now_ms(), set + 5);
}

#[tokio::test]
async fn moving_the_clock_over_the_api_fires_the_runtimes_timers() {
    let clock = manual();
    let (shared, store) = support::shared_on(support::manifest_plugins(), Some(clock.clone()));
    let runtime = shared.runtime().clone();
    runtime
        .deploy(vec![PlaybookSource {
            origin: "test".into(),
            source: "id: later\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: pause\n    wait: 1h\n  - id: mark\n    add_tags: woke\n".into(),
            tenant: "demo-brand".into(),
            account: "acct".into(),
        }])
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn({
        let runtime = runtime.clone();
        async move {
            runtime
                .serve(async {
                    let _ = stop_rx.await;
                })
                .await
        }
    });
    let receipt = runtime
        .start_manual("later", ManualAudience::Contacts(vec!["c1".into()]), "test")
        .await
        .unwrap();
    let run = receipt.enrolled[0];
    let state = || store.run(run).unwrap().unwrap().state;
    assert_eq!(state(), RunState::Waiting);

    let app = sop::admin::router(shared, 1 << 20);
    // Two moves: the timer is due only after the second.
    let (status, _) = call(&app, "POST", ADMIN, r#"{"advance_ms": 3599000}"#).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(&app, "POST", ADMIN, r#"{"advance_ms": 1000}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The runtime reacts on its own task: wait for it (bounded), never a fixed sleep.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while state() != RunState::Completed {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run did not finish after the clock passed its timer: {:?}",
            state()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let contact = store
        .contact(&sop_store::ContactKey::new("demo-brand", "c1"))
        .unwrap()
        .unwrap();
    assert!(contact.tags.contains("woke"), "{contact:?}");
    stop_tx.send(()).unwrap();
    serving.await.unwrap().unwrap();
}
