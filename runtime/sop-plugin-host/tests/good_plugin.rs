//! A well-behaved plugin through every export and import.

mod support;

use std::collections::BTreeMap;

use serde_json::json;
use sop_plugin_host::{
    CallError, HostError, InvokeOutcome, LoadError, OutcomeStatus, Plugin, PluginError,
    PluginLimits, WebhookError, WebhookRequest,
};

use support::common::*;
use support::server::TestServer;

#[tokio::test]
async fn manifest_is_checked_and_exposed_as_snake_case_json() {
    let f = fixture();
    let good = load(&f, "good", None).await;
    let m = serde_json::to_value(good.manifest()).unwrap();
    assert_eq!(m["name"], "good");
    assert_eq!(m["hosts"], json!(["api.good.example"]));
    assert_eq!(m["actions"][0]["input_schema"], json!({"type": "object"}));
    assert_eq!(m["actions"][0]["delivery"], "idempotent");
    assert_eq!(m["rate_limits"][0]["per_seconds"], 1);
    assert_eq!(m["events"][0]["attributes_schema"], json!(true));
}

#[tokio::test]
async fn load_dir_loads_good_plugins_and_reports_broken_ones() {
    let f = fixture();
    let dir = std::env::temp_dir().join(format!("sop-plugin-host-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(support::guests::guest_wasm("good"), dir.join("a-good.wasm")).unwrap();
    std::fs::copy(
        support::guests::guest_wasm("good"),
        dir.join("b-again.wasm"),
    )
    .unwrap();
    std::fs::write(dir.join("c-broken.wasm"), b"\0asm garbage").unwrap();
    std::fs::write(dir.join("notes.txt"), b"ignored").unwrap();
    let (plugins, errors) = f.host.load_dir(&dir, &BTreeMap::new()).await;
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        plugins.iter().map(|p| p.name()).collect::<Vec<_>>(),
        ["good"]
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(matches!(&errors[0], LoadError::Duplicate { name, .. } if name == "good"));
    assert!(
        matches!(&errors[1], LoadError::Compile { path, .. } if path.ends_with("c-broken.wasm"))
    );
}

#[tokio::test]
async fn echo_kv_clock_and_typed_errors() {
    let f = fixture();
    let good = load(&f, "good", None).await;

    let out = good
        .invoke(&call("echo", json!({"hello": "世界"})))
        .await
        .unwrap();
    assert_eq!(out, InvokeOutcome::Done(json!({"hello": "世界"})));

    let now = good.invoke(&call("now", json!({}))).await.unwrap();
    assert_eq!(now, InvokeOutcome::Done(json!({"now_ms": START_MS})));

    let put = json!({"key": "token", "value": "abc", "ttl_ms": 7_200_000});
    good.invoke(&call("kv_put", put)).await.unwrap();
    let get = call("kv_get", json!({"key": "token"}));
    assert_eq!(
        good.invoke(&get).await.unwrap(),
        InvokeOutcome::Done(json!({"value": "abc"}))
    );
    f.clock
        .advance(sop_clock::TimeDelta::milliseconds(7_200_000));
    assert_eq!(
        good.invoke(&get).await.unwrap(),
        InvokeOutcome::Done(json!({"value": null}))
    );

    let accepted = good.invoke(&call("accept", json!({}))).await.unwrap();
    assert!(
        matches!(accepted, InvokeOutcome::Accepted(p) if p.handle == "task-1" && p.check_after_ms == 60_000)
    );

    match good.invoke(&call("refuse", json!({}))).await {
        Err(CallError::Plugin(PluginError::RateLimited {
            retry_after_ms: 1_500,
            ..
        })) => {}
        other => panic!("expected the plugin's own rate-limited error, got {other:?}"),
    }
    match good.invoke(&call("no_such_action", json!({}))).await {
        Err(CallError::Host(HostError::UnknownAction { action, .. })) => {
            assert_eq!(action, "no_such_action")
        }
        other => panic!("expected unknown action, got {other:?}"),
    }
}

#[tokio::test]
async fn inputs_over_the_cap_never_reach_the_plugin() {
    let f = fixture();
    let limits = PluginLimits {
        max_input_bytes: 1_000,
        ..PluginLimits::default()
    };
    let good = load(
        &f,
        "good",
        Some(repointed("api.good.example", "http://127.0.0.1:9", limits)),
    )
    .await;
    let big = json!({"blob": "x".repeat(2_000)});
    match good.invoke(&call("echo", big)).await {
        Err(CallError::Host(HostError::InputTooLarge { limit: 1_000, .. })) => {}
        other => panic!("expected input too large, got {other:?}"),
    }
}

#[tokio::test]
async fn check_outcome_and_webhooks() {
    let f = fixture();
    let good = load(&f, "good", None).await;
    let status = good
        .check_outcome(&account(), "accept", "run-1/accept", Some("task-1"))
        .await
        .unwrap();
    assert_eq!(status, OutcomeStatus::Done(json!({"handle": "task-1"})));
    let unknown = good
        .check_outcome(&account(), "accept", "run-1/accept", None)
        .await;
    assert!(matches!(
        unknown,
        Err(CallError::Plugin(PluginError::Permanent(_)))
    ));

    let request = WebhookRequest {
        method: "POST".into(),
        query: vec![("msg_signature".into(), "abc".into())],
        headers: vec![("content-type".into(), "text/xml".into())],
        body: b"<xml/>".to_vec(),
    };
    let outcome = good.parse_webhook(&account(), &request).await.unwrap();
    assert_eq!(outcome.response.body, b"success");
    assert_eq!(outcome.events[0].kind, "ping");
    assert_eq!(outcome.events[0].attributes, json!({"body": "<xml/>"}));
    let get = WebhookRequest {
        method: "GET".into(),
        ..request
    };
    assert!(matches!(
        good.parse_webhook(&account(), &get).await,
        Err(CallError::Plugin(WebhookError::VerificationFailed(_)))
    ));
}

/// The good guest's `fetch` action on `https://api.good.example{path}`.
async fn fetch(good: &Plugin, path: &str) -> InvokeOutcome {
    let url = format!("https://api.good.example{path}");
    good.invoke(&call("fetch", json!({ "url": url })))
        .await
        .unwrap()
}

#[tokio::test]
async fn fetch_goes_to_the_repointed_emulator_and_follows_checked_redirects() {
    let f = fixture();
    let server = TestServer::start().await;
    let good = load_repointed(&f, "good", &server.base_url()).await;

    let out = fetch(&good, "/hello?x=1").await;
    let expected_body = format!("hello /hello?x=1 via {}", server.addr);
    assert_eq!(
        out,
        InvokeOutcome::Done(json!({"status": 200, "body": expected_body}))
    );

    let out = fetch(&good, "/redirect-ok").await;
    let expected_body = format!("hello /hello?redirected=1 via {}", server.addr);
    assert_eq!(
        out,
        InvokeOutcome::Done(json!({"status": 200, "body": expected_body}))
    );
}

#[tokio::test]
async fn a_plugin_reuses_its_keep_alive_connections_and_survives_a_closed_one() {
    let f = fixture();
    let server = TestServer::start().await;
    let good = load_repointed(&f, "good", &server.base_url()).await;
    for i in 0..3 {
        let path = format!("/keep-alive?i={i}");
        let out = fetch(&good, &path).await;
        let body = format!("kept {path}");
        assert_eq!(
            out,
            InvokeOutcome::Done(json!({"status": 200, "body": body}))
        );
    }
    assert_eq!(server.hits(), 1, "three calls, one connection");

    // The server answers, then closes the connection without a word (an idle timeout).
    let out = fetch(&good, "/keep-alive-then-close").await;
    assert!(matches!(out, InvokeOutcome::Done(_)), "{out:?}");
    // The next call must not fail on the closed connection: it takes a new one.
    let out = fetch(&good, "/keep-alive?after=close").await;
    let body = "kept /keep-alive?after=close";
    assert_eq!(
        out,
        InvokeOutcome::Done(json!({"status": 200, "body": body}))
    );
    assert_eq!(server.hits(), 2);

    // A second plugin never gets the first one's connections.
    let other = load_repointed(&f, "good", &server.base_url()).await;
    let out = fetch(&other, "/keep-alive?other=1").await;
    assert!(matches!(out, InvokeOutcome::Done(_)), "{out:?}");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_repointed_loopback_host_needs_an_explicit_allowance() {
    let f = fixture();
    let server = TestServer::start().await;
    let mut settings = repointed("api.good.example", &server.base_url(), quick_limits());
    settings.network.allow_private.clear();
    let good = load(&f, "good", Some(settings)).await;
    match good
        .invoke(&call(
            "fetch",
            json!({"url": "https://api.good.example/hello"}),
        ))
        .await
    {
        Err(CallError::Plugin(PluginError::Transient(m))) => {
            assert!(m.contains("Denied") && m.contains("loopback"), "{m}");
        }
        other => panic!("expected a denied fetch, got {other:?}"),
    }
    assert_eq!(server.hits(), 0, "the refused request must never connect");
}
