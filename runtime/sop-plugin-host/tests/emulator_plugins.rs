//! The real WeCom and Douyin plugins (`plugins/wecom`, `plugins/douyin`, built from source for
//! wasm32-wasip2) running in the host against the in-process platform emulator, with the
//! plugins' platform hosts re-pointed to the emulator by operator settings and loopback
//! explicitly allowed.
//!
//! The emulator delivers its signed (and, for WeCom, encrypted) callbacks to a stand-in for the
//! daemon's ingress, which answers with whatever the plugin's `parse-webhook` says; everything
//! the plugins send is checked in the emulator's delivery log, counters and state, not only by
//! the absence of errors. The emulator and the host share one `VirtualClock`: token expiry and
//! welcome-code expiry are reached by moving it, never by sleeping. The only real waiting is
//! for the emulator's callback deliveries over loopback.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};
use sop_clock::{DateTime, TimeDelta, VirtualClock};
use sop_emulator::{ClockChoice, Config, Running, ids};
use sop_plugin_host::{
    Account, CallError, HostConfig, HostServices, Invocation, InvokeOutcome, MemoryKv,
    NetworkConfig, NormalizedEvent, OutcomeStatus, Plugin, PluginError, PluginHost, PluginSettings,
    StaticResolver, WebhookError, WebhookRequest, describe_file,
};
use support::guests::platform_wasm;
use support::web::{Captured, Handler, Ingress, call, handler};

/// 2024-03-05 10:00 (UTC+8), a Tuesday.
const START_MS: i64 = 1_709_604_000_000;

/// One plugin in a host, the emulator, and the ingress between them.
struct World {
    emu: Running,
    ingress: Ingress,
    plugin: Plugin,
    clock: VirtualClock,
    /// Events the plugin produced from the callbacks the ingress received, in order.
    events: Arc<Mutex<Vec<NormalizedEvent>>>,
}

impl World {
    /// Starts the emulator (small world, callbacks to the ingress) and loads `platform`'s
    /// plugin with its API host re-pointed to the emulator.
    async fn start(platform: &str, api_host: &str, account: Account) -> Self {
        let clock = VirtualClock::new(DateTime::from_timestamp_millis(START_MS).expect("start"));
        let events = Arc::new(Mutex::new(Vec::new()));
        // The ingress needs the plugin and the plugin needs the emulator's address, which needs
        // the ingress's: the plugin is filled in once loaded, before any callback is sent.
        let slot: Arc<OnceLock<Plugin>> = Arc::new(OnceLock::new());
        let ingress = Ingress::start(webhook_handler(slot.clone(), account, events.clone())).await;

        let mut config = Config::default();
        config.world.staff = 3;
        config.world.contacts = 30;
        config.world.groups = 2;
        config.world.group_size = 5;
        config.delivery.wecom_url = Some(format!("{}/ingress/wecom", ingress.url));
        config.delivery.douyin_url = Some(format!("{}/ingress/douyin", ingress.url));
        let emu = sop_emulator::start(
            config,
            ClockChoice::Manual(clock.clone()),
            "127.0.0.1:0".parse().expect("addr"),
        )
        .await
        .expect("emulator starts");

        let services = HostServices {
            kv: Arc::new(MemoryKv::new()),
            clock: Arc::new(clock.clone()),
            // Nothing is resolved: the re-pointed base is an IP literal.
            resolver: Arc::new(StaticResolver::new()),
        };
        let host = PluginHost::new(HostConfig::default(), services).expect("engine");
        let settings = PluginSettings {
            network: NetworkConfig {
                allow_hosts: None,
                repoint: [(api_host.to_owned(), emu.url())].into(),
                allow_private: vec!["127.0.0.1/32".parse().expect("cidr")],
            },
            ..PluginSettings::default()
        };
        let all = BTreeMap::from([(platform.to_owned(), settings)]);
        let plugin = host
            .load_file(&platform_wasm(platform), &all)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(slot.set(plugin.clone()).is_ok(), "plugin loaded twice");
        Self {
            emu,
            ingress,
            plugin,
            clock,
            events,
        }
    }

    /// Events of `kind` produced so far.
    fn events(&self, kind: &str) -> Vec<NormalizedEvent> {
        let all = self.events.lock().expect("events lock");
        all.iter().filter(|e| e.kind == kind).cloned().collect()
    }

    async fn control(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = call(&self.emu.url(), method, path, body).await;
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer
    }

    async fn inject(&self, event: Value) -> Value {
        self.control("POST", "/_emulator/events", Some(event)).await
    }

    /// The emulator's delivery log for `channel` (`welcome`, `mass_send`, ...).
    async fn deliveries(&self, channel: &str) -> Vec<Value> {
        let path = format!("/_emulator/deliveries?channel={channel}");
        let list = self.control("GET", &path, None).await;
        list.as_array().cloned().expect("a list of deliveries")
    }

    /// The emulator's counters for `api`: calls, errors, rate-limited.
    async fn counted(&self, api: &str) -> (u64, u64, u64) {
        let counters = self.control("GET", "/_emulator/counters", None).await;
        let at = |field: &str| counters["endpoints"][api][field].as_u64().unwrap_or(0);
        (at("calls"), at("errors"), at("rate_limited"))
    }

    async fn invoke(
        &self,
        account: &Account,
        action: &str,
        input: Value,
        key: &str,
    ) -> Result<InvokeOutcome, CallError<PluginError>> {
        let invocation = Invocation {
            action: action.into(),
            account: account.clone(),
            input,
            idempotency_key: key.into(),
        };
        self.plugin.invoke(&invocation).await
    }

    /// [`World::invoke`] that must answer `done`; its output.
    async fn done(&self, account: &Account, action: &str, input: Value, key: &str) -> Value {
        match self.invoke(account, action, input, key).await {
            Ok(InvokeOutcome::Done(output)) => output,
            other => panic!("{action} should be done, got {other:?}"),
        }
    }
}

/// What the daemon's ingress does with a callback: the plugin verifies and translates it, the
/// events are kept, and the platform gets the plugin's exact answer (400 when refused).
fn webhook_handler(
    slot: Arc<OnceLock<Plugin>>,
    account: Account,
    events: Arc<Mutex<Vec<NormalizedEvent>>>,
) -> Handler {
    handler(move |captured: Captured| {
        let (slot, account, events) = (slot.clone(), account.clone(), events.clone());
        async move {
            let Some(plugin) = slot.get() else {
                return (503, "text/plain".into(), b"plugin not loaded".to_vec());
            };
            match plugin.parse_webhook(&account, &webhook(&captured)).await {
                Ok(outcome) => {
                    events.lock().expect("events lock").extend(outcome.events);
                    let r = outcome.response;
                    (r.status, r.content_type, r.body)
                }
                Err(e) => (400, "text/plain".into(), e.to_string().into_bytes()),
            }
        }
    })
}

fn webhook(c: &Captured) -> WebhookRequest {
    WebhookRequest {
        method: c.method.clone(),
        query: c.query(),
        headers: c.headers.clone(),
        body: c.body.clone(),
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

fn plugin_error(result: Result<InvokeOutcome, CallError<PluginError>>) -> PluginError {
    match result {
        Err(CallError::Plugin(e)) => e,
        other => panic!("expected the plugin's typed error, got {other:?}"),
    }
}

fn permanent_with(result: Result<InvokeOutcome, CallError<PluginError>>, code: &str) {
    match plugin_error(result) {
        PluginError::Permanent(m) => assert!(m.contains(code), "{m}"),
        other => panic!("expected permanent ({code}), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecom_plugin_against_the_emulator() {
    let account = wecom_account();
    let w = World::start("wecom", "qyapi.weixin.qq.com", account.clone()).await;

    // The cheap manifest read (for `sop validate --plugins`) agrees with the full load.
    let described = describe_file(&platform_wasm("wecom")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&described, w.plugin.manifest());

    // URL verification: the emulator's signed GET with an encrypted echostr; it accepts only
    // the exact plaintext back, which the plugin decrypted.
    let verified = w.control("POST", "/_emulator/wecom/verify_url", None).await;
    assert_eq!(verified["ok"], true, "{verified}");
    let gets = w.ingress.wait_for("/ingress/wecom", "GET", 1).await;
    assert_eq!(gets[0].answered, 200);

    // A customer adds a staff member through channel code 1: the signed, encrypted callback
    // becomes one contact_added event with the welcome code.
    let added = w
        .inject(json!({"kind": "add_contact", "staff": "emu_staff_1", "channel": 1}))
        .await;
    let contact = added["external_userid"].as_str().expect("contact id");
    let posts = w.ingress.wait_for("/ingress/wecom", "POST", 1).await;
    assert_eq!(posts[0].answered, 200);
    let added_events = w.events("contact_added");
    assert_eq!(added_events.len(), 1, "{added_events:?}");
    let event = &added_events[0];
    assert_eq!(event.contact.as_deref(), Some(contact));
    assert_eq!(event.staff.as_deref(), Some("emu_staff_1"));
    assert_eq!(event.attributes["welcome_code"], added["welcome_code"]);
    assert_eq!(event.attributes["state"], "channel_1");
    assert_eq!(event.occurred_at_ms, START_MS);

    // The same callback with one byte of the ciphertext changed fails its signature.
    let mut forged = webhook(&posts[0]);
    let body = String::from_utf8(forged.body.clone()).expect("utf-8 body");
    let start = "<Encrypt><![CDATA[";
    let at = body.find(start).expect("the ciphertext") + start.len();
    forged.body[at] = if forged.body[at] == b'A' { b'B' } else { b'A' };
    let refused = w.plugin.parse_webhook(&account, &forged).await.unwrap_err();
    assert!(
        matches!(
            refused,
            CallError::Plugin(WebhookError::VerificationFailed(_))
        ),
        "{refused:?}"
    );

    // send_welcome with the event's code reaches the customer: one token fetched for it.
    let welcome_code = event.attributes["welcome_code"].as_str().expect("code");
    let welcome = json!({"welcome_code": welcome_code, "text": "欢迎!"});
    w.done(&account, "send_welcome", welcome.clone(), "run-1/welcome")
        .await;
    let welcomes = w.deliveries("welcome").await;
    assert_eq!(welcomes.len(), 1, "{welcomes:?}");
    assert_eq!(welcomes[0]["to"], contact);
    assert_eq!(welcomes[0]["from"], "emu_staff_1");
    assert!(welcomes[0]["content"].to_string().contains("欢迎!"));
    assert_eq!(w.counted("gettoken").await.0, 1);
    // A code is good once (41051): permanent, and nothing more is delivered.
    let again = w
        .invoke(&account, "send_welcome", welcome, "run-1/welcome-again")
        .await;
    permanent_with(again, "41051");
    assert_eq!(w.deliveries("welcome").await.len(), 1);

    // The token is cached in the plugin's store: more calls, no more gettoken.
    let get_contact = json!({"external_userid": contact});
    let got = w
        .done(&account, "get_contact", get_contact.clone(), "get-1")
        .await;
    assert_eq!(got["external_contact"]["external_userid"], contact);
    assert_eq!(got["follow_user"][0]["userid"], "emu_staff_1");
    assert_eq!(got["follow_user"][0]["state"], "channel_1");
    assert_eq!(w.counted("gettoken").await.0, 1);

    // mark_tag: the tag shows on the contact as WeCom reports it.
    let tag = ids::tag_id(3);
    let tagged = json!({"userid": "emu_staff_1", "external_userid": contact, "add_tag": [&tag]});
    w.done(&account, "mark_tag", tagged, "tag-1").await;
    let got = w
        .done(&account, "get_contact", get_contact.clone(), "get-2")
        .await;
    let tags = got["follow_user"][0]["tags"].as_array().expect("tags");
    assert!(tags.iter().any(|t| t["tag_id"] == tag.as_str()), "{tags:?}");
    // An unknown tag is WeCom's 40068: bad input, never retried.
    let unknown =
        json!({"userid": "emu_staff_1", "external_userid": contact, "add_tag": ["etNope"]});
    let refused = w.invoke(&account, "mark_tag", unknown, "tag-2").await;
    assert!(
        matches!(plugin_error(refused), PluginError::InvalidInput(ref m) if m.contains("40068"))
    );
    assert_eq!(w.counted("gettoken").await.0, 1);

    // Expired (42001) and revoked (40014) tokens: the plugin refreshes once and succeeds; the
    // emulator saw the refused call and the new gettoken.
    for (lever, fetched) in [("expire", 2), ("revoke", 3)] {
        let refused_before = w.counted("externalcontact/get").await.1;
        w.control(
            "POST",
            &format!("/_emulator/tokens/{lever}"),
            Some(json!({"platform": "wecom"})),
        )
        .await;
        let got = w
            .done(&account, "get_contact", get_contact.clone(), lever)
            .await;
        assert_eq!(got["external_contact"]["external_userid"], contact);
        assert_eq!(w.counted("gettoken").await.0, fetched, "{lever}");
        let refused_after = w.counted("externalcontact/get").await.1;
        assert_eq!(refused_after, refused_before + 1, "{lever}");
    }

    // A token near its end is replaced before use (no refused call): the shared clock moves
    // past the plugin's safety margin of WeCom's 7,200 s.
    w.clock.advance(TimeDelta::seconds(7_200 - 299));
    let refused_before = w.counted("externalcontact/get").await.1;
    w.done(&account, "get_contact", get_contact.clone(), "get-3")
        .await;
    assert_eq!(w.counted("gettoken").await.0, 4);
    assert_eq!(w.counted("externalcontact/get").await.1, refused_before);

    // The per-API frequency limit (45009) is rate-limited with WeCom's one-minute back-off.
    w.control(
        "POST",
        "/_emulator/rate_limit/burst",
        Some(json!({"platform": "wecom", "api": "externalcontact/get", "calls": 1})),
    )
    .await;
    let limited = w
        .invoke(&account, "get_contact", get_contact.clone(), "get-4")
        .await;
    match plugin_error(limited) {
        PluginError::RateLimited {
            retry_after_ms,
            message,
        } => {
            assert_eq!(retry_after_ms, 60_000);
            assert!(message.contains("45009"), "{message}");
        }
        other => panic!("expected rate-limited, got {other:?}"),
    }
    assert_eq!(w.counted("externalcontact/get").await.2, 1);
    w.done(&account, "get_contact", get_contact, "get-5").await;

    // An app message to staff: delivered to the valid member, the unknown one reported.
    let sent = w
        .done(
            &account,
            "notify_staff",
            json!({"touser": "emu_staff_2|ghost", "text": "客户需要人工服务"}),
            "notify-1",
        )
        .await;
    assert_eq!(sent["invaliduser"], "ghost", "{sent}");
    let app_messages = w.deliveries("app_message").await;
    assert_eq!(app_messages.len(), 1, "{app_messages:?}");
    assert_eq!(app_messages[0]["to"], "emu_staff_2");
    assert!(
        app_messages[0]["content"]
            .to_string()
            .contains("客户需要人工服务")
    );

    // Mass send: a task; pending and undelivered until the staff member confirms; then done,
    // with the result per recipient, also found again by idempotency key alone (after a crash).
    let key = "run-2/mass";
    let accepted = w
        .invoke(
            &account,
            "mass_send_contacts",
            json!({"sender": "emu_staff_1", "contacts": [contact], "text": "新品上架"}),
            key,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let InvokeOutcome::Accepted(pending) = accepted else {
        panic!("mass send should be accepted, got {accepted:?}");
    };
    let handle = pending.handle.clone();
    let status = w
        .plugin
        .check_outcome(&account, "mass_send_contacts", key, Some(&handle))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(status, OutcomeStatus::Pending(_)), "{status:?}");
    assert!(w.deliveries("mass_send").await.is_empty());
    let confirm = format!("/_emulator/wecom/tasks/{handle}/confirm");
    w.control("POST", &confirm, Some(json!({}))).await;
    for looked_up_by in [Some(handle.as_str()), None] {
        let status = w
            .plugin
            .check_outcome(&account, "mass_send_contacts", key, looked_up_by)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let OutcomeStatus::Done(result) = status else {
            panic!("the confirmed task should be done, got {status:?}");
        };
        assert_eq!(result["msgid"], handle.as_str());
        assert_eq!(result["sent"], 1, "{result}");
        assert_eq!(result["recipients"]["sent"], json!([contact]));
    }
    let mass = w.deliveries("mass_send").await;
    assert_eq!(mass.len(), 1, "{mass:?}");
    assert_eq!(mass[0]["to"], contact);
    assert_eq!(mass[0]["task"], handle.as_str());

    // Groups: listed, read (owner and members), and a mass send to one of them confirmed by
    // its owner, reported per group.
    let listed = w.done(&account, "list_groups", json!({}), "groups-1").await;
    let chats = listed["group_chat_list"]
        .as_array()
        .expect("group_chat_list");
    assert_eq!(chats.len(), 2, "{listed}");
    let chat_id = chats[0]["chat_id"].as_str().expect("chat_id").to_owned();
    let group = w
        .done(
            &account,
            "get_group",
            json!({"chat_id": chat_id}),
            "group-1",
        )
        .await;
    let owner = group["group_chat"]["owner"]
        .as_str()
        .expect("owner")
        .to_owned();
    let members = group["group_chat"]["member_list"]
        .as_array()
        .expect("members");
    assert!(members.iter().any(|m| m["type"] == 2), "{group}");
    let key = "run-2/group-mass";
    let accepted = w
        .invoke(
            &account,
            "mass_send_groups",
            json!({"sender": owner, "groups": [chat_id], "text": "群活动"}),
            key,
        )
        .await;
    let Ok(InvokeOutcome::Accepted(pending)) = accepted else {
        panic!("group mass send should be accepted, got {accepted:?}");
    };
    let confirm = format!("/_emulator/wecom/tasks/{}/confirm", pending.handle);
    w.control("POST", &confirm, Some(json!({"userid": owner})))
        .await;
    let status = w
        .plugin
        .check_outcome(&account, "mass_send_groups", key, Some(&pending.handle))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let OutcomeStatus::Done(result) = status else {
        panic!("the confirmed group task should be done, got {status:?}");
    };
    assert_eq!(result["recipients"]["sent"], json!([chat_id]), "{result}");
    let group_mass = w.deliveries("group_mass_send").await;
    assert_eq!(group_mass.len(), 1, "{group_mass:?}");
    assert_eq!(group_mass[0]["to"], chat_id.as_str());

    // A remark within WeCom's limits is stored on the relationship; a longer one never leaves
    // the plugin.
    let remark = json!({"userid": "emu_staff_1", "external_userid": contact, "remark": "老客户"});
    w.done(&account, "remark", remark, "remark-1").await;
    let got = w
        .done(
            &account,
            "get_contact",
            json!({"external_userid": contact}),
            "get-6",
        )
        .await;
    assert_eq!(got["follow_user"][0]["remark"], "老客户", "{got}");
    let calls_before = w.counted("externalcontact/remark").await.0;
    let long =
        json!({"userid": "emu_staff_1", "external_userid": contact, "remark": "长".repeat(21)});
    let refused = w.invoke(&account, "remark", long, "remark-2").await;
    assert!(matches!(
        plugin_error(refused),
        PluginError::InvalidInput(_)
    ));
    assert_eq!(w.counted("externalcontact/remark").await.0, calls_before);

    // A customer writes to the kf account: the callback carries no text, so the plugin reads
    // it with kf/sync_msg through the host, while parsing the webhook.
    w.inject(json!({"kind": "customer_message", "external_userid": contact, "text": "优惠券"}))
        .await;
    w.ingress.wait_for("/ingress/wecom", "POST", 2).await;
    let messages = w.events("message_received");
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].contact.as_deref(), Some(contact));
    assert_eq!(messages[0].attributes["text"], "优惠券");
    assert!(w.counted("kf/sync_msg").await.0 >= 1);

    // A welcome code dies 20 s after its callback (41050): permanent, nothing delivered.
    let late = w
        .inject(json!({"kind": "add_contact", "staff": "emu_staff_2"}))
        .await;
    w.ingress.wait_for("/ingress/wecom", "POST", 3).await;
    assert_eq!(w.events("contact_added").len(), 2);
    w.clock.advance(TimeDelta::seconds(21));
    let expired = w
        .invoke(
            &account,
            "send_welcome",
            json!({"welcome_code": late["welcome_code"], "text": "欢迎!"}),
            "run-3/welcome",
        )
        .await;
    permanent_with(expired, "41050");
    assert_eq!(w.deliveries("welcome").await.len(), 1);

    w.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn douyin_plugin_against_the_emulator() {
    let account = douyin_account();
    let w = World::start("douyin", "open.douyin.com", account.clone()).await;

    let described = describe_file(&platform_wasm("douyin")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&described, w.plugin.manifest());

    // URL check: the plugin echoes the signed challenge.
    let verified = w
        .control("POST", "/_emulator/douyin/verify_url", None)
        .await;
    assert_eq!(verified["ok"], true, "{verified}");

    // A user writes to the enterprise account: a signed webhook with a `Msg-Id`.
    let open_id = ids::open_id(7);
    let wrote = w
        .inject(json!({"kind": "douyin_message", "open_id": open_id, "text": "在吗"}))
        .await;
    let posts = w.ingress.wait_for("/ingress/douyin", "POST", 2).await;
    let message = posts
        .iter()
        .find(|c| String::from_utf8_lossy(&c.body).contains("im_receive_msg"))
        .expect("the message webhook");
    assert_eq!(message.answered, 200);
    let received_events = w.events("message_received");
    assert_eq!(received_events.len(), 1, "{received_events:?}");
    let event = &received_events[0];
    assert_eq!(event.contact.as_deref(), Some(open_id.as_str()));
    assert_eq!(event.staff.as_deref(), Some("dy-enterprise-0001"));
    assert_eq!(event.attributes["text"], "在吗");
    assert_eq!(
        event.attributes["conversation_id"],
        wrote["conversation_id"]
    );
    let msg_id = message
        .headers
        .iter()
        .find(|(k, _)| k == "msg-id")
        .map(|(_, v)| v.clone())
        .expect("Msg-Id");
    assert_eq!(event.dedupe_id, msg_id);
    let conversation = wrote["conversation_id"].as_str().expect("conversation");

    // Forged: the body changed after signing.
    let mut forged = webhook(message);
    let text = String::from_utf8(forged.body.clone())
        .expect("utf-8 body")
        .replace(&open_id, &ids::open_id(8));
    forged.body = text.into_bytes();
    let refused = w.plugin.parse_webhook(&account, &forged).await.unwrap_err();
    assert!(
        matches!(
            refused,
            CallError::Plugin(WebhookError::VerificationFailed(_))
        ),
        "{refused:?}"
    );

    // Reply inside the window: the first call exchanges the auth code for a user token.
    let reply =
        |text: &str| json!({"open_id": open_id, "conversation_id": conversation, "text": text});
    let sent = w
        .done(&account, "reply", reply("您好，在的"), "run-1/reply")
        .await;
    assert!(sent["msg_id"].is_string(), "{sent}");
    let direct = w.deliveries("direct_message").await;
    assert_eq!(direct.len(), 1, "{direct:?}");
    assert_eq!(direct[0]["to"], open_id.as_str());
    assert!(direct[0]["content"].to_string().contains("您好，在的"));
    assert_eq!(w.counted("oauth/access_token").await.0, 1);
    // The platform echoes the app's own message as `im_send_msg`: answered, no event.
    w.ingress.wait_for("/ingress/douyin", "POST", 3).await;
    assert_eq!(w.events.lock().expect("events").len(), 1);

    // Cached: a second reply fetches no token.
    w.done(&account, "reply", reply("有什么可以帮您"), "run-1/reply-2")
        .await;
    assert_eq!(w.counted("oauth/access_token").await.0, 1);
    assert_eq!(w.counted("oauth/refresh_token").await.0, 0);

    // Revoked (2190002), then expired (2190008): each time the plugin refreshes with the
    // refresh token it stored, which Douyin rotates (a reused one would be refused, 10010).
    for (lever, refreshed) in [("revoke", 1), ("expire", 2)] {
        w.control(
            "POST",
            &format!("/_emulator/tokens/{lever}"),
            Some(json!({"platform": "douyin"})),
        )
        .await;
        w.done(&account, "reply", reply("还有问题吗"), lever).await;
        let (calls, errors, _) = w.counted("oauth/refresh_token").await;
        assert_eq!((calls, errors), (refreshed, 0), "{lever}");
    }
    assert_eq!(w.deliveries("direct_message").await.len(), 4);

    // Too fast (28003018): rate-limited with a minute's back-off, nothing delivered.
    w.control(
        "POST",
        "/_emulator/rate_limit/burst",
        Some(json!({"platform": "douyin", "api": "im/send/msg", "calls": 1})),
    )
    .await;
    let limited = w
        .invoke(&account, "reply", reply("稍等"), "run-1/limited")
        .await;
    match plugin_error(limited) {
        PluginError::RateLimited {
            retry_after_ms,
            message,
        } => {
            assert_eq!(retry_after_ms, 60_000);
            assert!(message.contains("28003018"), "{message}");
        }
        other => panic!("expected rate-limited, got {other:?}"),
    }
    assert_eq!(w.deliveries("direct_message").await.len(), 4);

    // A fan-group message, and the list of users who authorised proactive messages.
    let group = "dyg-00000001";
    w.done(
        &account,
        "send_group",
        json!({"group_id": group, "text": "群公告"}),
        "run-2/group",
    )
    .await;
    let groups = w.deliveries("group_message").await;
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["to"], group);
    let fan = ids::open_id(9);
    w.inject(json!({"kind": "douyin_authorize", "open_id": fan}))
        .await;
    let listed = w
        .done(&account, "list_authorized", json!({}), "list-1")
        .await;
    let users = listed["user_list"].as_array().expect("user_list");
    assert!(
        users.iter().any(|u| u["open_id"] == fan.as_str()),
        "{listed}"
    );

    // A day later the reply window is closed (28003017): permanent. The user token expired
    // meanwhile too, and was renewed before use rather than after a refusal.
    w.clock.advance(TimeDelta::hours(25));
    let closed = w
        .invoke(&account, "reply", reply("明天见"), "run-3/reply")
        .await;
    permanent_with(closed, "28003017");
    assert_eq!(w.counted("oauth/refresh_token").await.0, 3);
    assert_eq!(w.deliveries("direct_message").await.len(), 4);

    w.emu.shutdown().await;
}
