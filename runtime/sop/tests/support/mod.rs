//! Shared test wiring: a runtime over the in-memory store on a virtual clock, behind the
//! daemon's shared state.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use sop::config::{AdminConfig, IngressConfig};
use sop::plugins::HostPlugins;
use sop::secret::Secret;
use sop::state::{Live, Parts, Shared, Tokens};
use sop::storage::StorageHealth;
use sop_runtime::{PassThrough, Runtime, RuntimeConfig, RuntimeDeps};
use sop_store::{MemoryStore, Store};

pub const READ: &str = "read-token-for-tests";
pub const ADMIN: &str = "admin-token-for-tests";

/// The bundled manifests (`playbooks/plugins`) as a catalog.
pub fn bundled_catalog() -> sop_dsl::Catalog {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/plugins");
    sop_dsl::Catalog::load_dir(&dir).unwrap()
}

/// Plugins without components: the bundled manifests only.
pub fn manifest_plugins() -> Arc<HostPlugins> {
    Arc::new(HostPlugins::from_parts(BTreeMap::new(), bundled_catalog(), BTreeMap::new()).unwrap())
}

/// Where the tests' clocks stand (the runtime's and the plugins'); callbacks are signed
/// with it (`1772416800` in Unix seconds).
pub const START: &str = "2026-03-02T02:00:00Z";

/// Shared state over `plugins` and a fresh in-memory store, the runtime on a virtual clock
/// that the admin API does not know about (as if on the system clock).
pub fn shared(plugins: Arc<HostPlugins>) -> (Shared, Arc<dyn Store>) {
    shared_on(plugins, None)
}

/// [`shared`], the runtime on `manual` when given (the daemon's `--manual-clock`), moved by
/// `POST /api/clock`.
pub fn shared_on(
    plugins: Arc<HostPlugins>,
    manual: Option<sop_clock::VirtualClock>,
) -> (Shared, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    (
        shared_with(plugins, store.clone(), Default::default(), manual),
        store,
    )
}

/// Shared state over `plugins` and `store`, reporting the store's health to `storage`.
pub fn shared_over(
    plugins: Arc<HostPlugins>,
    store: Arc<dyn Store>,
    storage: StorageHealth,
) -> Shared {
    shared_with(plugins, store, storage, None)
}

fn shared_with(
    plugins: Arc<HostPlugins>,
    store: Arc<dyn Store>,
    storage: StorageHealth,
    manual: Option<sop_clock::VirtualClock>,
) -> Shared {
    let clock = manual
        .clone()
        .unwrap_or_else(|| sop_clock::VirtualClock::new(START.parse().unwrap()));
    let runtime = Runtime::new(RuntimeDeps {
        store: store.clone(),
        clock: Arc::new(clock),
        plugins: plugins.clone(),
        gate: Arc::new(PassThrough),
        config: RuntimeConfig::default(),
    })
    .unwrap();
    Shared::new(Parts {
        runtime,
        plugins,
        gate: None,
        live: Live {
            tokens: Tokens {
                read: Some(Secret::new(READ)),
                admin: Some(Secret::new(ADMIN)),
            },
            ingress: IngressConfig::default(),
            admin: AdminConfig::default(),
        },
        metrics: None,
        reload: None,
        storage,
        manual_clock: manual,
    })
}

/// The WeCom test account's credentials (the emulator's).
pub const WECOM_CORP: &str = "ww0emulator000001";
pub const WECOM_TOKEN: &str = "emuToken";
pub const WECOM_AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
/// The WeCom test account's app secret: must never show in logs, errors or metrics.
pub const WECOM_SECRET: &str = "emu-secret";

/// The bundled WeCom plugin with account `acme` (tenant `demo-brand`).
pub async fn wecom_plugins() -> Arc<HostPlugins> {
    Arc::new(wecom_host_plugins(sop_plugin_host::HostConfig::default()).await)
}

/// [`wecom_plugins`] in a plugin host configured by `config`, not yet shared.
pub async fn wecom_host_plugins(config: sop_plugin_host::HostConfig) -> HostPlugins {
    use sop_plugin_host::{HostServices, PluginHost};
    // The plugins read the tests' time: WeCom refuses callbacks signed too far from it.
    let services = HostServices {
        clock: Arc::new(sop_clock::VirtualClock::new(START.parse().unwrap())),
        ..HostServices::default()
    };
    let host = PluginHost::new(config, services).unwrap();
    let plugin = host
        .load_file(
            &plugin_dir().join("sop_plugin_wecom.wasm"),
            &BTreeMap::new(),
        )
        .await
        .unwrap();
    let account = sop::config::Account {
        tenant: "demo-brand".into(),
        plugin: "wecom".into(),
        id: "acme".into(),
        config: serde_json::json!({"corp_id": WECOM_CORP, "secret": WECOM_SECRET,
            "agent_id": 1000002, "token": WECOM_TOKEN, "encoding_aes_key": WECOM_AES_KEY}),
    };
    HostPlugins::from_parts(
        BTreeMap::from([("wecom".to_owned(), plugin)]),
        sop_dsl::Catalog::default(),
        BTreeMap::from([("acme".to_owned(), account)]),
    )
    .unwrap()
}

/// A WeCom "contact added" callback XML for external contact `contact`.
pub fn add_contact_xml(contact: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{WECOM_CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
         <CreateTime>1772416800</CreateTime><MsgType><![CDATA[event]]></MsgType>\
         <Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType>\
         <UserID><![CDATA[emu_staff_1]]></UserID><ExternalUserID><![CDATA[{contact}]]></ExternalUserID>\
         <State><![CDATA[channel_1]]></State><WelcomeCode><![CDATA[WELCOMECODE1]]></WelcomeCode></xml>"
    )
}

/// A signed, encrypted callback POST for `/hooks/wecom/acme` carrying `xml`.
pub fn signed_wecom_callback(xml: &str, nonce: &str) -> axum::http::Request<axum::body::Body> {
    let crypto = wecom_crypto::Crypto::new(WECOM_TOKEN, WECOM_AES_KEY, WECOM_CORP).unwrap();
    let ts = "1772416800";
    let (body, signature) = crypto.encrypt_callback(xml, [7; 16], ts, nonce, "1000002");
    axum::http::Request::builder()
        .method("POST")
        .uri(format!(
            "/hooks/wecom/acme?msg_signature={signature}&timestamp={ts}&nonce={nonce}"
        ))
        .header("content-type", "text/xml")
        .body(axum::body::Body::from(body))
        .unwrap()
}

/// Sends one request; the status and the body as text.
pub async fn send(
    app: &axum::Router,
    req: axum::http::Request<axum::body::Body>,
) -> (axum::http::StatusCode, String) {
    use tower::ServiceExt;
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The directory holding the bundled plugins built for wasm32-wasip2 (built once per test
/// process by the end-to-end harness, in the same dir as the plugin host's tests use).
pub fn plugin_dir() -> PathBuf {
    sop_harness::plugin_dir().to_owned()
}
