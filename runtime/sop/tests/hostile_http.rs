//! Hostile HTTP: the webhook ingress (with the real WeCom and Douyin plugins) and the admin API
//! JSON bodies, given arbitrary methods, query strings, headers and bodies, answer with a
//! client error and change nothing, never a panic or a 5xx; oversized, deeply nested and
//! non-UTF-8 bodies each get a clear refusal.
//!
//! Cases per property: 48 (each webhook case runs a plugin in a fresh sandbox), or
//! `PROPTEST_CASES` for longer runs by hand.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use sop::admin::ROUTES;
use sop::config::Account;
use sop::plugins::HostPlugins;
use sop::state::Shared;
use sop_plugin_host::{HostConfig, HostServices, PluginHost};
use sop_store::Store;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    ProptestConfig::with_cases(cases)
}

/// One tokio runtime for every case (plugins are loaded once).
fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Both bundled plugins: WeCom account `acme`, Douyin account `shop`.
async fn both_plugins() -> Arc<HostPlugins> {
    let host = PluginHost::new(HostConfig::default(), HostServices::default()).unwrap();
    let mut plugins = BTreeMap::new();
    for name in ["wecom", "douyin"] {
        let file = support::plugin_dir().join(format!("sop_plugin_{name}.wasm"));
        plugins.insert(
            name.to_owned(),
            host.load_file(&file, &BTreeMap::new()).await.unwrap(),
        );
    }
    let wecom = Account {
        tenant: "demo-brand".into(),
        plugin: "wecom".into(),
        id: "acme".into(),
        config: serde_json::json!({"corp_id": support::WECOM_CORP, "secret": support::WECOM_SECRET,
            "agent_id": 1000002, "token": support::WECOM_TOKEN,
            "encoding_aes_key": support::WECOM_AES_KEY}),
    };
    let douyin = Account {
        tenant: "demo-brand".into(),
        plugin: "douyin".into(),
        id: "shop".into(),
        config: serde_json::json!({"client_key": "ck1", "client_secret": "dy-secret",
            "open_id": "ent-1", "auth_code": "code-1"}),
    };
    Arc::new(
        HostPlugins::from_parts(
            plugins,
            sop_dsl::Catalog::default(),
            BTreeMap::from([("acme".to_owned(), wecom), ("shop".to_owned(), douyin)]),
        )
        .unwrap(),
    )
}

struct World {
    ingress: axum::Router,
    admin: axum::Router,
    store: Arc<dyn Store>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let (shared, store): (Shared, _) =
            rt().block_on(async { support::shared(both_plugins().await) });
        shared.set_ready(true);
        World {
            ingress: sop::ingress::router(shared.clone(), 64 * 1024),
            admin: sop::admin::router(shared, 64 * 1024),
            store,
        }
    })
}

fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, String) {
    rt().block_on(support::send(app, req))
}

/// Percent-encodes every byte: the query string reaches the ingress as given.
fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

fn query() -> impl Strategy<Value = String> {
    let pair = (
        prop_oneof![
            Just("msg_signature".to_owned()),
            Just("timestamp".to_owned()),
            Just("nonce".to_owned()),
            Just("echostr".to_owned()),
            "[a-z_]{0,10}",
        ],
        prop::collection::vec(any::<u8>(), 0..60),
    )
        .prop_map(|(k, v)| format!("{k}={}", encode(&v)));
    prop_oneof![
        prop::collection::vec(pair, 0..6).prop_map(|p| p.join("&")),
        // Raw junk, including bad escapes like `%zz`.
        "[ -~]{0,80}".prop_map(|s| s.replace([' ', '#'], "")),
    ]
}

fn header() -> impl Strategy<Value = (String, Vec<u8>)> {
    (
        prop_oneof![
            Just("x-douyin-signature".to_owned()),
            Just("msg-id".to_owned()),
            Just("content-type".to_owned()),
            "[a-z][a-z-]{0,15}",
        ],
        prop::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff], 0..60),
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..1024),
        ".{0,200}"
            .prop_map(|s| format!("<xml><Encrypt><![CDATA[{s}]]></Encrypt></xml>").into_bytes()),
        ".{0,200}".prop_map(
            |s| serde_json::json!({"event": "im_receive_msg", "content": s})
                .to_string()
                .into_bytes()
        ),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn webhooks_of_any_shape_are_refused_without_a_commit(
        target in prop_oneof![
            Just("wecom/acme".to_owned()),
            Just("douyin/shop".to_owned()),
            Just("wecom/shop".to_owned()),
            "[a-z]{1,8}/[a-z]{1,8}",
        ],
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("OPTIONS")],
        query in query(),
        headers in prop::collection::vec(header(), 0..4),
        body in body(),
    ) {
        let w = world();
        let mut req = Request::builder().method(method).uri(format!("/hooks/{target}?{query}"));
        for (name, value) in &headers {
            if let Ok(value) = axum::http::HeaderValue::from_bytes(value) {
                req = req.header(name.as_str(), value);
            }
        }
        // A target no client could send (not a valid URI) is not a request.
        let Ok(req) = req.body(Body::from(body)) else {
            return Ok(());
        };
        let (status, text) = send(&w.ingress, req);
        // Only a Douyin `verify_webhook` challenge is answered 200 without a signature.
        prop_assert!(
            status.is_client_error() || (status == StatusCode::OK && target == "douyin/shop"),
            "{method} /hooks/{target}?{query}: {status} {text}"
        );
        prop_assert!(w.store.events(None, 1).unwrap().is_empty(), "an unsigned webhook committed an event");
    }

    #[test]
    fn admin_json_bodies_of_any_shape_are_refused_or_applied_never_a_5xx(
        route in any::<prop::sample::Index>(),
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            ".{0,200}".prop_map(|s| serde_json::json!({"source": s, "account": "acme"}).to_string().into_bytes()),
            prop::collection::vec(".{0,20}", 0..5).prop_map(|c| serde_json::json!({"contacts": c}).to_string().into_bytes()),
            ".{0,40}".prop_map(|s| serde_json::json!({"reason": s, "extra": [1, {"a": null}]}).to_string().into_bytes()),
            "[\\[\\]{}\",:0-9a-z ]{0,120}".prop_map(String::into_bytes),
        ],
    ) {
        let w = world();
        let posts: Vec<_> = ROUTES.iter().filter(|(m, p, _)| *m == "POST" && *p != "/api/reload").collect();
        let (_, path, _) = posts[route.index(posts.len())];
        let path = path.replace("{id}", "x1").replace("{tenant}", "demo-brand");
        let req = Request::builder()
            .method("POST")
            .uri(&path)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", support::ADMIN))
            .body(Body::from(body))
            .unwrap();
        let (status, text) = send(&w.admin, req);
        prop_assert!(!status.is_server_error(), "POST {path}: {status} {text}");
        if !status.is_success() {
            prop_assert!(!text.is_empty(), "POST {path}: {status} without a reason");
        }
    }
}

fn admin_post(path: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", support::ADMIN))
        .body(Body::from(body))
        .unwrap()
}

#[test]
fn admin_bodies_over_the_limit_are_413() {
    let w = world();
    let source = "#".repeat(70 * 1024);
    let body = serde_json::json!({"source": source})
        .to_string()
        .into_bytes();
    let (status, _) = send(&w.admin, admin_post("/api/playbooks", body));
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(w.store.playbook_ids().unwrap().is_empty());
}

#[test]
fn deeply_nested_and_non_utf8_admin_json_is_a_client_error() {
    let w = world();
    for body in [
        "[".repeat(60_000).into_bytes(),
        format!("{}{}", "{\"a\":".repeat(20_000), "}".repeat(20_000)).into_bytes(),
        b"{\"source\": \"id: x\xff\xfe\"}".to_vec(),
    ] {
        for path in [
            "/api/playbooks",
            "/api/playbooks/validate",
            "/api/playbooks/x1/start",
        ] {
            let (status, text) = send(&w.admin, admin_post(path, body.clone()));
            assert!(status.is_client_error(), "{path}: {status} {text}");
        }
    }
}

#[test]
fn deeply_nested_webhook_bodies_are_refused_without_a_commit() {
    let w = world();
    for (target, body) in [
        ("douyin/shop", "[".repeat(60_000)),
        ("wecom/acme", "<a>".repeat(20_000)),
    ] {
        let req = Request::builder()
            .method("POST")
            .uri(format!(
                "/hooks/{target}?msg_signature=x&timestamp=1&nonce=n"
            ))
            .body(Body::from(body))
            .unwrap();
        let (status, text) = send(&w.ingress, req);
        assert!(status.is_client_error(), "{target}: {status} {text}");
    }
    assert!(w.store.events(None, 1).unwrap().is_empty());
}
