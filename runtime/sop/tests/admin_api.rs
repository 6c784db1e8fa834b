//! The admin API: every route refuses a missing or wrong token, the read-only token cannot
//! change anything, and every route is in the OpenAPI document.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use sop::admin::ROUTES;
use sop::auth::Scope;
use sop_store::{ContactKey, Store};
use tower::ServiceExt;

use support::{ADMIN, READ};

fn concrete(path: &str) -> String {
    path.replace("{id}", "x1")
        .replace("{version}", "1")
        .replace("{tenant}", "demo-brand")
}

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A body each POST route accepts, so that a refusal is the token's doing, not the body's.
fn body_for(path: &str) -> &'static str {
    match path {
        "/api/playbooks" | "/api/playbooks/validate" => {
            r#"{"source": "id: hello\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: pause\n    wait: 1h\n", "account": "acct"}"#
        }
        p if p.ends_with("/start") => r#"{"contacts": ["c1"]}"#,
        "/api/clock" => r#"{"advance_ms": 1000}"#,
        _ => "{}",
    }
}

#[tokio::test]
async fn every_route_refuses_a_missing_or_wrong_token() {
    let (shared, _) = support::shared(support::manifest_plugins());
    let app = sop::admin::router(shared, 1 << 20);
    for (method, path, _) in ROUTES {
        let path = concrete(path);
        for token in [None, Some("wrong"), Some(""), Some("read-token-for-test")] {
            let (status, body) = call(&app, method, &path, token, body_for(&path)).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
            assert!(body["error"].is_string(), "{method} {path}: {body}");
        }
        // A token of the right value but the wrong scheme is refused too.
        let req = Request::builder()
            .method(*method)
            .uri(&path)
            .header("authorization", format!("Basic {ADMIN}"))
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} basic"
        );
    }
}

#[tokio::test]
async fn the_read_only_token_reads_but_cannot_change_anything() {
    // On a manual clock, so that `POST /api/clock` could move it.
    let clock = sop_clock::VirtualClock::new("2026-03-02T02:00:00Z".parse().unwrap());
    let start = sop_clock::Clock::now(&clock);
    let (shared, store) = support::shared_on(support::manifest_plugins(), Some(clock.clone()));
    let app = sop::admin::router(shared, 1 << 20);
    for (method, path, scope) in ROUTES {
        let path = concrete(path);
        let (status, _) = call(&app, method, &path, Some(READ), body_for(&path)).await;
        match scope {
            Scope::Admin => assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}"),
            Scope::Read => assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "{method} {path}: {status}"
            ),
        }
    }
    assert!(
        store.playbook_ids().unwrap().is_empty(),
        "a read-only deploy went through"
    );
    assert!(
        store
            .contact(&ContactKey::new("demo-brand", "x1"))
            .unwrap()
            .is_none()
    );
    assert!(store.events(None, 10).unwrap().is_empty());
    assert_eq!(
        sop_clock::Clock::now(&clock),
        start,
        "a read-only token moved the clock"
    );
    // The admin token passes every route's gate (the route itself may still say 404 etc.).
    for (method, path, _) in ROUTES {
        let path = concrete(path);
        let (status, _) = call(&app, method, &path, Some(ADMIN), body_for(&path)).await;
        assert!(
            status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
            "{method} {path} with the admin token: {status}"
        );
    }
    assert!(
        store
            .contact(&ContactKey::new("demo-brand", "x1"))
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn admin_routes_change_state_and_reads_show_it() {
    let (shared, store) = support::shared(support::manifest_plugins());
    let app = sop::admin::router(shared, 1 << 20);
    let (status, body) = call(
        &app,
        "POST",
        "/api/contacts/demo-brand/wm1/opt-out",
        Some(ADMIN),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let contact = store
        .contact(&ContactKey::new("demo-brand", "wm1"))
        .unwrap()
        .unwrap();
    assert_eq!(contact.consent.opted_out.as_ref().unwrap().source, "api");
    let (status, body) = call(&app, "GET", "/api/contacts/demo-brand/wm1", Some(READ), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["contact"]["key"]["id"], "wm1");
    let (_, _) = call(
        &app,
        "POST",
        "/api/contacts/demo-brand/wm1/opt-in",
        Some(ADMIN),
        "",
    )
    .await;
    let contact = store
        .contact(&ContactKey::new("demo-brand", "wm1"))
        .unwrap()
        .unwrap();
    assert!(contact.consent.opted_out.is_none());
    let (status, body) = call(&app, "GET", "/api/outbox?state=lost", Some(READ), "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = call(&app, "GET", "/api/outbox", Some(READ), "").await;
    assert_eq!(
        (status, body["entries"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let (status, body) = call(
        &app,
        "POST",
        "/api/playbooks/validate",
        Some(READ),
        r#"{"source": "id: x\nsteps: 3\n"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ok"], false, "{body}");
    assert!(!body["diagnostics"].as_array().unwrap().is_empty());
}

#[test]
fn every_route_is_in_the_openapi_document() {
    let doc: Value = serde_json::from_str(include_str!("../openapi.json")).unwrap();
    for (method, path, scope) in ROUTES {
        let op = &doc["paths"][path][method.to_lowercase()];
        assert!(
            op.is_object(),
            "{method} {path} is missing from openapi.json"
        );
        let expected = match scope {
            Scope::Read => "read",
            Scope::Admin => "admin",
        };
        assert_eq!(op["x-scope"], expected, "{method} {path}");
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(p, _)| p.starts_with("/api"))
        .map(|(_, ops)| ops.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        ROUTES.len(),
        "openapi.json documents routes that do not exist"
    );
}

#[tokio::test]
async fn groups_are_listed_read_and_tagged() {
    let (shared, store) = support::shared(support::manifest_plugins());
    let app = sop::admin::router(shared, 1 << 20);
    let at = sop_clock::Timestamp::from_timestamp_millis(1_772_413_200_000).unwrap();
    for id in ["wrA", "wrB"] {
        let mut group =
            sop_store::Group::new(sop_store::GroupKey::new("demo-brand", id), "acct", at);
        group.owner = Some("zhangsan".into());
        group.tags.insert("vip".into());
        store
            .commit(sop_store::Batch::new().op(sop_store::Op::PutGroup(group)))
            .unwrap();
    }
    let (status, body) = call(
        &app,
        "GET",
        "/api/groups/demo-brand?limit=1",
        Some(READ),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["groups"][0]["key"]["id"], "wrA");
    assert_eq!(body["next"], "wrA");
    let (_, body) = call(
        &app,
        "GET",
        "/api/groups/demo-brand?after=wrA",
        Some(READ),
        "",
    )
    .await;
    assert_eq!(body["groups"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["next"], Value::Null);

    let edit = r#"{"add_tags": ["nurture"], "remove_tags": ["vip"],
                   "attributes": {"materials": ["早安好物", "午间秒杀"], "live_days": [3]}}"#;
    let (status, body) = call(
        &app,
        "PATCH",
        "/api/groups/demo-brand/wrA",
        Some(ADMIN),
        edit,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["group"]["tags"], serde_json::json!(["nurture"]));
    let stored = store
        .group(&sop_store::GroupKey::new("demo-brand", "wrA"))
        .unwrap()
        .unwrap();
    assert!(stored.tags.contains("nurture") && !stored.tags.contains("vip"));
    assert_eq!(stored.attributes["materials"][1], "午间秒杀");
    assert_eq!(
        stored.owner.as_deref(),
        Some("zhangsan"),
        "platform facts stay"
    );
    let remove = r#"{"attributes": {"live_days": null}}"#;
    call(
        &app,
        "PATCH",
        "/api/groups/demo-brand/wrA",
        Some(ADMIN),
        remove,
    )
    .await;
    let (status, body) = call(&app, "GET", "/api/groups/demo-brand/wrA", Some(READ), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["group"]["attributes"],
        serde_json::json!({"materials": ["早安好物", "午间秒杀"]}),
        "{body}"
    );
    assert_eq!(body["runs"], serde_json::json!([]));

    // Unknown groups, bad tags and unknown fields are refused and change nothing.
    let (status, body) = call(
        &app,
        "PATCH",
        "/api/groups/demo-brand/wrZ",
        Some(ADMIN),
        edit,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("group events"),
        "{body}"
    );
    assert!(
        store
            .group(&sop_store::GroupKey::new("demo-brand", "wrZ"))
            .unwrap()
            .is_none()
    );
    let (status, body) = call(&app, "GET", "/api/groups/demo-brand/wrZ", Some(READ), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = call(
        &app,
        "PATCH",
        "/api/groups/demo-brand/wrB",
        Some(ADMIN),
        r#"{"add_tags": [""]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = call(
        &app,
        "PATCH",
        "/api/groups/demo-brand/wrB",
        Some(ADMIN),
        r#"{"add_tag": ["x"]}"#,
    )
    .await;
    assert!(status.is_client_error(), "{status}");
    let untouched = store
        .group(&sop_store::GroupKey::new("demo-brand", "wrB"))
        .unwrap()
        .unwrap();
    assert_eq!(untouched.tags.iter().collect::<Vec<_>>(), ["vip"]);
}
