//! The WeCom plugin against the emulator, natively: the emulator's signed `kf_msg_or_event`
//! callback reaches a test ingress, the plugin verifies it and reads the messages with
//! `kf/sync_msg` over real HTTP, keeping its cursor in its store. Checks that both sides agree
//! on the platform's shapes.

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::post;
use bytes::Bytes;
use common::Emu;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sop_clock::{Clock, VirtualClock};
use sop_emulator::Config;
use sop_plugin_sdk::{
    Account, ConnectionFailure, FetchError, Host, HttpRequest, HttpResponse, Level,
    NormalizedEvent, Plugin, WebhookRequest,
};
use sop_plugin_wecom::WeCom;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// A plugin host whose `qyapi.weixin.qq.com` is the emulator, with an in-memory store.
struct EmuHost {
    base: String,
    handle: Handle,
    client: Client<HttpConnector, Full<Bytes>>,
    clock: VirtualClock,
    kv: Mutex<HashMap<String, Vec<u8>>>,
}

impl Host for EmuHost {
    fn fetch(&self, request: &HttpRequest) -> Result<HttpResponse, FetchError> {
        let url = request
            .url
            .replace("https://qyapi.weixin.qq.com", &self.base);
        let mut builder = hyper::Request::builder()
            .method(request.method.as_str())
            .uri(url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let failure = |e: String| {
            FetchError::Connection(ConnectionFailure {
                message: e,
                sent: true,
            })
        };
        let req = builder
            .body(Full::new(Bytes::from(request.body.clone())))
            .map_err(|e| failure(e.to_string()))?;
        self.handle.block_on(async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| failure(e.to_string()))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| failure(e.to_string()))?
                .to_bytes()
                .to_vec();
            Ok(HttpResponse {
                status,
                headers: vec![],
                body,
            })
        })
    }

    fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.kv.lock().unwrap().get(key).cloned()
    }

    fn kv_set(&self, key: &str, value: &[u8], _ttl_ms: Option<u64>) {
        self.kv
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.to_vec());
    }

    fn kv_delete(&self, key: &str) {
        self.kv.lock().unwrap().remove(key);
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn log(&self, _level: Level, _message: &str) {}
}

/// What the emulator POSTed to the ingress.
type Delivered = (Vec<(String, String)>, Vec<u8>);

async fn receive(
    State(tx): State<mpsc::UnboundedSender<Delivered>>,
    Query(query): Query<Vec<(String, String)>>,
    body: Bytes,
) -> &'static str {
    let _ = tx.send((query, body.to_vec()));
    "success"
}

struct Fixture {
    emu: Emu,
    host: std::sync::Arc<EmuHost>,
    rx: mpsc::UnboundedReceiver<Delivered>,
    account: Account,
}

async fn fixture() -> Fixture {
    let (tx, rx) = mpsc::unbounded_channel();
    let ingress = Router::new().route("/wecom", post(receive)).with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, ingress).await });
    let mut config = Config::default();
    config.delivery.wecom_url = Some(format!("http://{addr}/wecom"));
    let w = config.wecom.clone();
    let emu = Emu::start(config).await;
    let host = std::sync::Arc::new(EmuHost {
        base: emu.running.url(),
        handle: Handle::current(),
        client: Client::builder(TokioExecutor::new()).build_http(),
        clock: emu.clock.0.clone(),
        kv: Mutex::new(HashMap::new()),
    });
    let account = Account {
        id: "emu".into(),
        config: json!({"corp_id": w.corp_id, "secret": w.secrets[0], "agent_id": w.agent_id,
                       "token": w.callback_token, "encoding_aes_key": w.encoding_aes_key})
        .to_string(),
    };
    Fixture {
        emu,
        host,
        rx,
        account,
    }
}

impl Fixture {
    async fn next_callback(&mut self) -> Delivered {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("a callback arrives")
            .expect("ingress open")
    }

    /// The plugin's parse-webhook on a delivered callback (blocking: the plugin's HTTP is
    /// synchronous, as inside the sandbox).
    async fn parse(&self, (query, body): Delivered) -> Vec<NormalizedEvent> {
        let host = self.host.clone();
        let account = self.account.clone();
        let request = WebhookRequest {
            method: "POST".into(),
            query,
            headers: vec![],
            body,
        };
        let outcome = tokio::task::spawn_blocking(move || {
            WeCom::parse_webhook(host.as_ref(), account, request)
        })
        .await
        .unwrap()
        .expect("the plugin accepts the emulator's callback");
        assert_eq!(outcome.response.body, b"success");
        outcome.events
    }

    async fn write(&self, who: &str, text: &str) -> Value {
        self.emu
            .event(json!({"kind": "customer_message", "external_userid": who, "text": text}))
            .await
    }
}

fn attributes(e: &NormalizedEvent) -> Value {
    serde_json::from_str(&e.attributes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_replies_reach_the_plugin_as_message_received() {
    let mut f = fixture().await;
    let written = f.write("wmEmu0000000007", "1").await;
    let callback = f.next_callback().await;
    let events = f.parse(callback.clone()).await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.kind, "message_received");
    assert_eq!(e.contact.as_deref(), Some("wmEmu0000000007"));
    assert_eq!(e.staff.as_deref(), written["servicer_userid"].as_str());
    assert_eq!(e.occurred_at_ms, common::START_MS as i64);
    let a = attributes(e);
    assert_eq!(a["text"], "1");
    assert_eq!(a["msg_id"], written["msgid"]);
    assert_eq!(a["open_kfid"], "wkEmu00000000001");

    // Two more messages, two callbacks: the first read takes both (cursor), the second
    // finds nothing new.
    f.emu.clock.advance(1_000);
    f.write("wmEmu0000000008", "优惠券").await;
    f.write("wmEmu0000000007", "在吗").await;
    let second = f.next_callback().await;
    let third = f.next_callback().await;
    let events = f.parse(second).await;
    let texts: Vec<_> = events
        .iter()
        .map(|e| attributes(e)["text"].clone())
        .collect();
    assert_eq!(texts, [json!("优惠券"), json!("在吗")]);
    assert!(f.parse(third.clone()).await.is_empty());

    // WeCom repeats a callback whose answer it did not get: the same read again, with the
    // same dedupe ids for the runtime to drop.
    let again = f.parse(third).await;
    assert!(
        again.is_empty(),
        "the repeated read started after the others"
    );
    let replay = f.parse(callback).await;
    assert!(
        replay.is_empty(),
        "an old callback reads from the current cursor"
    );

    // Past the token's ten minutes the callback cannot be read any more.
    f.write("wmEmu0000000009", "late").await;
    let late = f.next_callback().await;
    f.emu.clock.advance(600_000);
    let host = f.host.clone();
    let account = f.account.clone();
    let (query, body) = late;
    let err = tokio::task::spawn_blocking(move || {
        WeCom::parse_webhook(
            host.as_ref(),
            account,
            WebhookRequest {
                method: "POST".into(),
                query,
                headers: vec![],
                body,
            },
        )
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(format!("{err:?}").contains("95007"), "{err:?}");
}
