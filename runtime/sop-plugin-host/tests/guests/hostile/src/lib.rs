//! A hostile plugin: every action misbehaves in its own way. The host must fail only that call.

wit_bindgen::generate!({ world: "platform", path: "../../../../../plugins/wit" });

use exports::sop::plugin::plugin::Guest;
use serde_json::{Value, json};
use sop::plugin::types::*;
use sop::plugin::{http, kv};

struct Hostile;

const ACTIONS: [&str; 9] = [
    "spin",
    "alloc_4g",
    "panic",
    "oversized",
    "bad_json",
    "fetch",
    "kv_peek",
    "wasi_escape",
    "echo",
];

impl Guest for Hostile {
    fn describe() -> Manifest {
        Manifest {
            name: "hostile".into(),
            version: "0.0.1".into(),
            description: "Misbehaves on purpose".into(),
            actions: ACTIONS
                .iter()
                .map(|n| ActionSpec {
                    name: (*n).into(),
                    description: "hostile".into(),
                    input_schema: "true".into(),
                    delivery: Delivery::Idempotent,
                    audience: Audience::None,
                    asynchronous: false,
                    time_critical: false,
                    rate_limits: vec![],
                    batch: None,
                })
                .collect(),
            events: vec![],
            rate_limits: vec![],
            touch_limits: vec![],
            // Names the host's test resolver maps to forbidden addresses, and IP literals.
            hosts: [
                "api.hostile.example",
                "metadata.hostile.example",
                "intranet.hostile.example",
                "loop6.hostile.example",
                "mapped.hostile.example",
                "127.0.0.1",
                "169.254.169.254",
                "10.0.0.1",
            ]
            .iter()
            .map(|h| (*h).into())
            .collect(),
            account_schema: "true".into(),
        }
    }

    fn invoke(call: Invocation) -> Result<InvokeOutcome, PluginError> {
        let v: Value = serde_json::from_str(&call.input).unwrap_or(Value::Null);
        let done = |v: Value| Ok(InvokeOutcome::Done(v.to_string()));
        match call.action.as_str() {
            "spin" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc_4g" => {
                // 16 × 256 MiB, touched so nothing is optimised away.
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                for i in 0..16u8 {
                    hoard.push(vec![i; 256 << 20]);
                }
                done(json!({ "chunks": hoard.len() }))
            }
            "panic" => panic!("hostile plugin panics on purpose"),
            "oversized" => Ok(InvokeOutcome::Done(format!("\"{}\"", "x".repeat(8 << 20)))),
            "bad_json" => Ok(InvokeOutcome::Done("{not json".into())),
            "fetch" => {
                let req = http::Request {
                    method: "GET".into(),
                    url: v["url"].as_str().unwrap_or_default().into(),
                    headers: vec![],
                    body: vec![],
                    timeout_ms: v["timeout_ms"].as_u64().unwrap_or(5_000) as u32,
                };
                match http::fetch(&req) {
                    Ok(r) => done(
                        json!({ "status": r.status, "body": String::from_utf8_lossy(&r.body) }),
                    ),
                    Err(e) => done(json!({ "error": format!("{e:?}") })),
                }
            }
            "kv_peek" => {
                let keys = ["token", "good/token", "good:token", "../good/token"];
                let found: Vec<&str> = keys
                    .iter()
                    .copied()
                    .filter(|k| kv::get(k).is_some())
                    .collect();
                done(json!({ "found": found }))
            }
            "wasi_escape" => {
                let dir = std::fs::read_dir("/").map(|_| "opened").unwrap_or("denied");
                let file = std::fs::read("/etc/passwd")
                    .map(|_| "read")
                    .unwrap_or("denied");
                let env = std::env::vars().count();
                let tcp = std::net::TcpStream::connect("127.0.0.1:22")
                    .map(|_| "connected")
                    .unwrap_or("denied");
                done(json!({ "dir": dir, "file": file, "env_vars": env, "tcp": tcp }))
            }
            "echo" => Ok(InvokeOutcome::Done(call.input)),
            other => Err(PluginError::InvalidInput(format!("unknown action {other}"))),
        }
    }

    fn check_outcome(
        _: Account,
        _: String,
        _: String,
        _: Option<String>,
    ) -> Result<OutcomeStatus, PluginError> {
        Err(PluginError::Permanent("hostile cannot tell".into()))
    }

    fn parse_webhook(_: Account, _: WebhookRequest) -> Result<WebhookOutcome, WebhookError> {
        // Declares no events, so any event it emits is invalid output.
        Ok(WebhookOutcome {
            response: WebhookResponse {
                status: 200,
                content_type: "text/plain".into(),
                body: vec![],
            },
            events: vec![NormalizedEvent {
                kind: "forged".into(),
                dedupe_id: "x".into(),
                occurred_at_ms: 0,
                contact: None,
                staff: None,
                group: None,
                attributes: "{}".into(),
            }],
        })
    }
}

export!(Hostile);
