//! The real WeCom and Douyin plugins (`plugins/wecom`, `plugins/douyin`, built from source for
//! wasm32-wasip2) running in the host against the in-process platform emulator: token caching
//! and refresh, welcome messages from a real add-contact callback, mass sends and their
//! results, Douyin replies, and signed/encrypted callbacks parsed into normalized events while
//! forged ones are refused.
//!
//! The emulator and the host share one `VirtualClock`; the only real waiting is for the
//! emulator's callback delivery over loopback.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use sop_clock::{DateTime, VirtualClock};
use sop_emulator::{ClockChoice, Config, Running};
use sop_plugin_host::{
    Account, CallError, HostConfig, HostServices, Invocation, InvokeOutcome, MemoryKv,
    NetworkConfig, OutcomeStatus, Plugin, PluginHost, PluginSettings, StaticResolver, WebhookError,
    WebhookRequest, describe_file,
};
use support::guests::platform_wasm;
use support::web::{Captured, Receiver, call};

const START_MS: i64 = 1_709_604_000_000;

struct World {
    emu: Running,
    receiver: Receiver,
    wecom: Plugin,
    douyin: Plugin,
}

fn settings(platform_host: &str, base: &str) -> PluginSettings {
    PluginSettings {
        network: NetworkConfig {
            allow_hosts: None,
            repoint: [(platform_host.to_owned(), base.to_owned())].into(),
            allow_private: vec!["127.0.0.1/32".parse().expect("cidr")],
        },
        ..PluginSettings::default()
    }
}

async fn world() -> World {
    let clock = VirtualClock::new(DateTime::from_timestamp_millis(START_MS).expect("start"));
    let receiver = Receiver::start().await;
    let mut config = Config::default();
    config.world.staff = 3;
    config.world.contacts = 30;
    config.world.groups = 2;
    config.world.group_size = 5;
    config.delivery.wecom_url = Some(format!("{}/ingress/wecom", receiver.url));
    config.delivery.douyin_url = Some(format!("{}/ingress/douyin", receiver.url));
    let emu = sop_emulator::start(
        config,
        ClockChoice::Manual(clock.clone()),
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("emulator starts");

    let services = HostServices {
        kv: Arc::new(MemoryKv::new()),
        clock: Arc::new(clock),
        resolver: Arc::new(StaticResolver::new()),
    };
    let host = PluginHost::new(HostConfig::default(), services).expect("engine");
    let mut all = BTreeMap::new();
    all.insert(
        "wecom".to_owned(),
        settings("qyapi.weixin.qq.com", &emu.url()),
    );
    all.insert("douyin".to_owned(), settings("open.douyin.com", &emu.url()));
    let load = |name: &'static str| {
        let (host, all) = (&host, &all);
        async move {
            host.load_file(&platform_wasm(name), all)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let wecom = load("wecom").await;
    let douyin = load("douyin").await;
    World {
        emu,
        receiver,
        wecom,
        douyin,
    }
}

fn wecom_account() -> Account {
    Account {
        id: "corp-emu".into(),
        config: json!({
            "corp_id": "ww0emulator000001",
            "secret": "emu-secret",
            "agent_id": 1000002,
            "token": "emuToken",
            "encoding_aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        }),
    }
}

fn douyin_account() -> Account {
    Account {
        id: "dy-emu".into(),
        config: json!({
            "client_key": "awemuclientkey01",
            "client_secret": "emu-douyin-secret",
            "open_id": "dy-enterprise-0001",
            "auth_code": "any-code",
        }),
    }
}

fn invocation(account: Account, action: &str, input: Value, key: &str) -> Invocation {
    Invocation {
        action: action.into(),
        account,
        input,
        idempotency_key: key.into(),
    }
}

fn webhook(c: &Captured) -> WebhookRequest {
    WebhookRequest {
        method: "POST".into(),
        query: c.query(),
        headers: c.headers.clone(),
        body: c.body.clone(),
    }
}

/// Calls the emulator's `api` has answered so far.
async fn api_calls(emu: &Running, api: &str) -> u64 {
    let (_, counters) = call(&emu.url(), "GET", "/_emulator/counters", None).await;
    counters["endpoints"][api]["calls"].as_u64().unwrap_or(0)
}

async fn inject(emu: &Running, event: Value) -> Value {
    let (status, answer) = call(&emu.url(), "POST", "/_emulator/events", Some(event)).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn deliveries(emu: &Running, channel: &str) -> Vec<Value> {
    let path = format!("/_emulator/deliveries?channel={channel}");
    let (_, list) = call(&emu.url(), "GET", &path, None).await;
    list.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecom_plugin_against_the_emulator() {
    let w = world().await;
    let account = wecom_account();

    // The cheap manifest read (for `sop validate --plugins`) agrees with the full load.
    let described = describe_file(&platform_wasm("wecom")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&described, w.wecom.manifest());

    // A customer adds a staff member through a channel code: the emulator sends the signed,
    // encrypted callback to our receiver, exactly as WeCom would.
    let added = inject(
        &w.emu,
        json!({"kind": "add_contact", "staff": "emu_staff_1", "channel": 1}),
    )
    .await;
    let contact = added["external_userid"].as_str().expect("contact id");
    let callbacks = w.receiver.wait_for("/ingress/wecom", 1).await;
    let outcome = w
        .wecom
        .parse_webhook(&account, &webhook(&callbacks[0]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.response.status, 200);
    assert_eq!(outcome.events.len(), 1, "{:?}", outcome.events);
    let event = &outcome.events[0];
    assert_eq!(event.kind, "contact_added");
    assert_eq!(event.contact.as_deref(), Some(contact));
    assert_eq!(event.staff.as_deref(), Some("emu_staff_1"));
    assert_eq!(event.attributes["welcome_code"], added["welcome_code"]);
    assert_eq!(event.attributes["state"], added["state"]);

    // The same callback with one byte of the ciphertext changed fails its signature.
    let mut forged = webhook(&callbacks[0]);
    let at = forged
        .body
        .iter()
        .position(|&b| b == b'A' || b == b'B')
        .expect("a letter to flip");
    forged.body[at] = if forged.body[at] == b'A' { b'B' } else { b'A' };
    let refused = w.wecom.parse_webhook(&account, &forged).await.unwrap_err();
    assert!(
        matches!(
            refused,
            CallError::Plugin(WebhookError::VerificationFailed(_))
        ),
        "{refused:?}"
    );

    // send_welcome with the code from the event: one token fetched for it.
    let welcome_code = event.attributes["welcome_code"].as_str().expect("code");
    let sent = w
        .wecom
        .invoke(&invocation(
            account.clone(),
            "send_welcome",
            json!({"welcome_code": welcome_code, "text": "欢迎!"}),
            "run-1/welcome",
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(sent, InvokeOutcome::Done(_)), "{sent:?}");
    let welcomes = deliveries(&w.emu, "welcome").await;
    assert_eq!(welcomes.len(), 1, "{welcomes:?}");
    assert_eq!(welcomes[0]["to"], contact);
    assert_eq!(api_calls(&w.emu, "gettoken").await, 1);

    // Token cached in the plugin's key-value store: more calls, no more gettoken.
    let get_contact = |key: &str| {
        invocation(
            account.clone(),
            "get_contact",
            json!({"external_userid": contact}),
            key,
        )
    };
    for i in 0..2 {
        let got = w.wecom.invoke(&get_contact(&format!("get-{i}"))).await;
        assert!(matches!(got, Ok(InvokeOutcome::Done(_))), "{got:?}");
    }
    assert_eq!(api_calls(&w.emu, "gettoken").await, 1);

    // Expired (42001) and revoked (40014) tokens: the plugin refreshes once and succeeds.
    for (lever, expected) in [("expire", 2), ("revoke", 3)] {
        let path = format!("/_emulator/tokens/{lever}");
        let (status, _) = call(
            &w.emu.url(),
            "POST",
            &path,
            Some(json!({"platform": "wecom"})),
        )
        .await;
        assert_eq!(status, 200);
        let got = w
            .wecom
            .invoke(&get_contact(&format!("after-{lever}")))
            .await;
        assert!(
            matches!(got, Ok(InvokeOutcome::Done(_))),
            "{lever}: {got:?}"
        );
        assert_eq!(api_calls(&w.emu, "gettoken").await, expected, "{lever}");
    }

    // Mass send: accepted as a task; pending until the staff member confirms; then done.
    let key = "run-2/mass";
    let accepted = w
        .wecom
        .invoke(&invocation(
            account.clone(),
            "mass_send_contacts",
            json!({"sender": "emu_staff_1", "contacts": [contact], "text": "新品上架"}),
            key,
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let InvokeOutcome::Accepted(pending) = accepted else {
        panic!("mass send should be accepted, got {accepted:?}");
    };
    let status = w
        .wecom
        .check_outcome(&account, "mass_send_contacts", key, Some(&pending.handle))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(status, OutcomeStatus::Pending(_)), "{status:?}");
    let confirm = format!("/_emulator/wecom/tasks/{}/confirm", pending.handle);
    let (code, answer) = call(&w.emu.url(), "POST", &confirm, Some(json!({}))).await;
    assert_eq!(code, 200, "{answer}");
    let status = w
        .wecom
        .check_outcome(&account, "mass_send_contacts", key, Some(&pending.handle))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(status, OutcomeStatus::Done(_)), "{status:?}");
    let mass = deliveries(&w.emu, "mass_send").await;
    assert_eq!(mass.len(), 1, "{mass:?}");
    assert_eq!(mass[0]["to"], contact);

    w.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn douyin_plugin_against_the_emulator() {
    let w = world().await;
    let account = douyin_account();

    // A user writes to the enterprise account: a signed webhook with a `Msg-Id`.
    let open_id = "dyu-0000000007";
    inject(
        &w.emu,
        json!({"kind": "douyin_message", "open_id": open_id, "text": "在吗"}),
    )
    .await;
    let webhooks = w.receiver.wait_for("/ingress/douyin", 1).await;
    let outcome = w
        .douyin
        .parse_webhook(&account, &webhook(&webhooks[0]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.events.len(), 1, "{:?}", outcome.events);
    let event = &outcome.events[0];
    assert_eq!(event.kind, "message_received");
    assert_eq!(event.contact.as_deref(), Some(open_id));
    assert_eq!(event.attributes["text"], "在吗");
    let conversation = event.attributes["conversation_id"]
        .as_str()
        .expect("conversation id")
        .to_owned();

    // Forged: the body changed after signing.
    let mut forged = webhook(&webhooks[0]);
    let text = String::from_utf8(forged.body.clone())
        .expect("utf-8 body")
        .replace(open_id, "dyu-0000000008");
    forged.body = text.into_bytes();
    let refused = w.douyin.parse_webhook(&account, &forged).await.unwrap_err();
    assert!(
        matches!(
            refused,
            CallError::Plugin(WebhookError::VerificationFailed(_))
        ),
        "{refused:?}"
    );

    // Reply inside the window: the first call exchanges the auth code for a user token.
    let replied = w
        .douyin
        .invoke(&invocation(
            account.clone(),
            "reply",
            json!({"open_id": open_id, "conversation_id": conversation, "text": "您好，在的"}),
            "run-3/reply",
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(replied, InvokeOutcome::Done(_)), "{replied:?}");
    let direct = deliveries(&w.emu, "direct_message").await;
    assert_eq!(direct.len(), 1, "{direct:?}");
    assert_eq!(direct[0]["to"], open_id);

    // A revoked token is refreshed with the stored refresh token and the reply goes through.
    let (status, _) = call(
        &w.emu.url(),
        "POST",
        "/_emulator/tokens/revoke",
        Some(json!({"platform": "douyin"})),
    )
    .await;
    assert_eq!(status, 200);
    let again = w
        .douyin
        .invoke(&invocation(
            account,
            "reply",
            json!({"open_id": open_id, "conversation_id": conversation, "text": "还有问题吗"}),
            "run-3/reply-2",
        ))
        .await;
    assert!(matches!(again, Ok(InvokeOutcome::Done(_))), "{again:?}");
    assert_eq!(deliveries(&w.emu, "direct_message").await.len(), 2);

    w.emu.shutdown().await;
}
