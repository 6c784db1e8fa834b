//! Hostile plugins: each misbehaviour fails only its own call, while a well-behaved plugin keeps
//! being served, concurrently, by the same host.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use sop_plugin_host::{CallError, HostError, InvokeOutcome, Plugin, PluginLimits, WebhookRequest};

use support::common::*;
use support::server::TestServer;

async fn host_error(plugin: &Plugin, action: &str) -> HostError {
    match plugin.invoke(&call(action, json!({}))).await {
        Err(CallError::Host(e)) => e,
        other => panic!("{action}: expected a host error, got {other:?}"),
    }
}

/// The well-behaved plugin still answers.
async fn good_still_serves(good: &Plugin, n: u32) {
    let out = good.invoke(&call("echo", json!({"n": n}))).await;
    assert_eq!(out.unwrap(), InvokeOutcome::Done(json!({"n": n})));
}

#[tokio::test]
async fn each_misbehaviour_fails_only_its_own_call() {
    let f = fixture();
    let good = load(&f, "good", None).await;
    let limits = PluginLimits {
        fuel: 50_000_000,
        ..PluginLimits::default()
    };
    let hostile = load(
        &f,
        "hostile",
        Some(sop_plugin_host::PluginSettings {
            limits,
            ..Default::default()
        }),
    )
    .await;

    let (spin, alloc, panic, oversized, bad_json, _, _) = tokio::join!(
        host_error(&hostile, "spin"),
        host_error(&hostile, "alloc_4g"),
        host_error(&hostile, "panic"),
        host_error(&hostile, "oversized"),
        host_error(&hostile, "bad_json"),
        good_still_serves(&good, 1),
        good_still_serves(&good, 2),
    );
    assert!(
        matches!(spin, HostError::OutOfFuel { fuel: 50_000_000 }),
        "{spin}"
    );
    assert!(
        matches!(alloc, HostError::MemoryLimit { limit_bytes } if limit_bytes == 64 << 20),
        "{alloc}"
    );
    assert!(
        matches!(&panic, HostError::Trap(m) if m.contains("unreachable")),
        "{panic}"
    );
    assert!(
        matches!(oversized, HostError::OutputTooLarge { limit, .. } if limit == 1 << 20),
        "{oversized}"
    );
    assert!(
        matches!(&bad_json, HostError::InvalidOutput(m) if m.contains("not valid JSON")),
        "{bad_json}"
    );

    // The same plugin instance-pre keeps working after its traps: every call had its own store.
    assert_eq!(
        hostile.invoke(&call("echo", json!([1, 2]))).await.unwrap(),
        InvokeOutcome::Done(json!([1, 2]))
    );
    good_still_serves(&good, 3).await;
}

#[tokio::test]
async fn a_spinning_guest_is_cut_off_by_its_timeout_and_blocks_nobody() {
    // A single-threaded runtime: if the spinning guest held the thread, nothing else could run.
    let f = fixture();
    let good = load(&f, "good", None).await;
    let limits = PluginLimits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_millis(1_500),
        ..PluginLimits::default()
    };
    let hostile = load(
        &f,
        "hostile",
        Some(sop_plugin_host::PluginSettings {
            limits,
            ..Default::default()
        }),
    )
    .await;

    let spinner = tokio::spawn(async move { hostile.invoke(&call("spin", json!({}))).await });
    for n in 0..20 {
        good_still_serves(&good, n).await;
    }
    assert!(
        !spinner.is_finished(),
        "the spinning call must still be running while others are served"
    );
    match spinner.await.unwrap() {
        Err(CallError::Host(HostError::Timeout { timeout_ms: 1_500 })) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    good_still_serves(&good, 99).await;
}

#[tokio::test]
async fn kv_is_private_to_each_plugin() {
    let f = fixture();
    let good = load(&f, "good", None).await;
    let hostile = load(&f, "hostile", None).await;
    good.invoke(&call("kv_put", json!({"key": "token", "value": "secret"})))
        .await
        .unwrap();
    let peek = hostile.invoke(&call("kv_peek", json!({}))).await.unwrap();
    assert_eq!(peek, InvokeOutcome::Done(json!({"found": []})));
    let own = good
        .invoke(&call("kv_get", json!({"key": "token"})))
        .await
        .unwrap();
    assert_eq!(own, InvokeOutcome::Done(json!({"value": "secret"})));
}

#[tokio::test]
async fn wasi_grants_no_files_sockets_or_environment() {
    let f = fixture();
    let hostile = load(&f, "hostile", None).await;
    let out = hostile
        .invoke(&call("wasi_escape", json!({})))
        .await
        .unwrap();
    assert_eq!(
        out,
        InvokeOutcome::Done(
            json!({"dir": "denied", "file": "denied", "env_vars": 0, "tcp": "denied"})
        )
    );
}

#[tokio::test]
async fn undeclared_webhook_events_are_invalid_output() {
    let f = fixture();
    let hostile = load(&f, "hostile", None).await;
    let request = WebhookRequest {
        method: "POST".into(),
        query: vec![],
        headers: vec![],
        body: vec![],
    };
    match hostile.parse_webhook(&account(), &request).await {
        Err(CallError::Host(HostError::InvalidOutput(m))) => assert!(m.contains("forged"), "{m}"),
        other => panic!("expected invalid output, got {other:?}"),
    }
}

async fn fetch(plugin: &Plugin, url: &str, timeout_ms: u32) -> Value {
    match plugin
        .invoke(&call(
            "fetch",
            json!({"url": url, "timeout_ms": timeout_ms}),
        ))
        .await
    {
        Ok(InvokeOutcome::Done(v)) => v,
        other => panic!("fetch {url}: {other:?}"),
    }
}

fn error_of(v: &Value) -> &str {
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error, got {v}"))
}

#[tokio::test]
async fn forbidden_destinations_are_refused_before_connecting() {
    let f = fixture();
    let server = TestServer::start().await;
    let good = load(&f, "good", None).await;
    let hostile = load_repointed(&f, "hostile", &server.base_url()).await;

    let cases = [
        ("https://evil.example.com/", "not allowed"),
        ("http://127.0.0.1/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.1/", "private"),
        ("https://metadata.hostile.example/", "link-local"),
        ("https://intranet.hostile.example/", "private"),
        ("https://loop6.hostile.example/", "::1 is loopback"),
        (
            "https://mapped.hostile.example/",
            "IPv6 form of a non-public IPv4",
        ),
        ("http://[::1]/", "not allowed"),
        (
            "https://api.hostile.example/redirect-metadata",
            "169.254.169.254 is link-local",
        ),
        (
            "https://api.hostile.example/redirect-unlisted",
            "redirect refused",
        ),
    ];
    for (url, why) in cases {
        let (out, ()) = tokio::join!(fetch(&hostile, url, 5_000), good_still_serves(&good, 7));
        let err = error_of(&out);
        assert!(
            err.starts_with("Error::Denied") && err.contains(why),
            "{url}: {err}"
        );
    }
    // Only the two redirecting requests reached the (allowed, loopback) test server.
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn oversized_and_silent_responses_are_cut_off() {
    let f = fixture();
    let server = TestServer::start().await;
    let hostile = load_repointed(&f, "hostile", &server.base_url()).await;
    let big = fetch(&hostile, "https://api.hostile.example/big", 5_000).await;
    assert_eq!(error_of(&big), "Error::TooLarge");
    let silent = fetch(&hostile, "https://api.hostile.example/silent", 200).await;
    assert_eq!(error_of(&silent), "Error::Timeout");
}

#[tokio::test]
async fn http_request_budget_is_enforced() {
    let f = fixture();
    let server = TestServer::start().await;
    let limits = PluginLimits {
        max_http_requests: 1,
        ..quick_limits()
    };
    let settings = repointed("api.hostile.example", &server.base_url(), limits);
    let hostile = load(&f, "hostile", Some(settings)).await;
    // One request is spent on the redirect itself; following it needs a second.
    let out = fetch(
        &hostile,
        "https://api.hostile.example/redirect-unlisted",
        5_000,
    )
    .await;
    assert!(error_of(&out).contains("budget"), "{out}");
}
