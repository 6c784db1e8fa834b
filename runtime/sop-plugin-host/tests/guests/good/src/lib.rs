//! A well-behaved plugin: echo, key-value use, HTTP through the host, the clock, all three exports.

wit_bindgen::generate!({ world: "platform", path: "../../../../../plugins/wit" });

use exports::sop::plugin::plugin::Guest;
use serde_json::{Value, json};
use sop::plugin::types::*;
use sop::plugin::{clock, http, kv, logging};

struct Good;

fn action(name: &str, delivery: Delivery) -> ActionSpec {
    ActionSpec {
        name: name.into(),
        description: format!("test action {name}"),
        input_schema: r#"{"type":"object"}"#.into(),
        delivery,
        audience: Audience::None,
        asynchronous: name == "accept",
        time_critical: false,
        rate_limits: vec!["api".into()],
        batch: None,
    }
}

fn input(call: &Invocation) -> Result<Value, PluginError> {
    serde_json::from_str(&call.input).map_err(|e| PluginError::InvalidInput(e.to_string()))
}

fn field(v: &Value, name: &str) -> Result<String, PluginError> {
    v[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| PluginError::InvalidInput(format!("missing {name}")))
}

impl Guest for Good {
    fn describe() -> Manifest {
        Manifest {
            name: "good".into(),
            version: "1.0.0".into(),
            description: "A well-behaved test plugin".into(),
            actions: [
                "echo", "kv_put", "kv_get", "fetch", "now", "accept", "refuse",
            ]
            .iter()
            .map(|n| action(n, Delivery::Idempotent))
            .collect(),
            events: vec![EventSpec {
                kind: "ping".into(),
                description: "a test event".into(),
                attributes_schema: "true".into(),
            }],
            rate_limits: vec![RateLimit {
                name: "api".into(),
                scope: LimitScope::Account,
                max: 100,
                per_seconds: 1,
                error_code: None,
            }],
            touch_limits: vec![],
            hosts: vec!["api.good.example".into()],
            account_schema: r#"{"type":"object"}"#.into(),
        }
    }

    fn invoke(call: Invocation) -> Result<InvokeOutcome, PluginError> {
        let v = input(&call)?;
        let done = |v: Value| Ok(InvokeOutcome::Done(v.to_string()));
        match call.action.as_str() {
            "echo" => Ok(InvokeOutcome::Done(call.input)),
            "kv_put" => {
                kv::set(
                    &field(&v, "key")?,
                    field(&v, "value")?.as_bytes(),
                    v["ttl_ms"].as_u64(),
                );
                done(json!({"stored": true}))
            }
            "kv_get" => {
                let got =
                    kv::get(&field(&v, "key")?).map(|b| String::from_utf8_lossy(&b).into_owned());
                done(json!({ "value": got }))
            }
            "fetch" => {
                logging::log(
                    logging::Level::Info,
                    &format!("fetching for {}", call.account.id),
                );
                let req = http::Request {
                    method: "GET".into(),
                    url: field(&v, "url")?,
                    headers: vec![("accept".into(), "text/plain".into())],
                    body: vec![],
                    timeout_ms: 5_000,
                };
                match http::fetch(&req) {
                    Ok(r) => done(json!({
                        "status": r.status,
                        "body": String::from_utf8_lossy(&r.body),
                    })),
                    Err(e) => Err(PluginError::Transient(format!("{e:?}"))),
                }
            }
            "now" => done(json!({ "now_ms": clock::now_ms() })),
            "accept" => Ok(InvokeOutcome::Accepted(Pending {
                handle: "task-1".into(),
                check_after_ms: 60_000,
                output: "{}".into(),
            })),
            "refuse" => Err(PluginError::RateLimited(RateLimitedInfo {
                retry_after_ms: 1_500,
                message: "slow down".into(),
            })),
            other => Err(PluginError::InvalidInput(format!("unknown action {other}"))),
        }
    }

    fn check_outcome(
        _account: Account,
        _action: String,
        idempotency_key: String,
        handle: Option<String>,
    ) -> Result<OutcomeStatus, PluginError> {
        match handle {
            Some(h) => Ok(OutcomeStatus::Done(json!({ "handle": h }).to_string())),
            None => Err(PluginError::Permanent(format!(
                "cannot tell for {idempotency_key}"
            ))),
        }
    }

    fn parse_webhook(
        _account: Account,
        request: WebhookRequest,
    ) -> Result<WebhookOutcome, WebhookError> {
        if request.method != "POST" {
            return Err(WebhookError::VerificationFailed("POST only".into()));
        }
        let body =
            String::from_utf8(request.body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        Ok(WebhookOutcome {
            response: WebhookResponse {
                status: 200,
                content_type: "text/plain".into(),
                body: b"success".to_vec(),
            },
            events: vec![NormalizedEvent {
                kind: "ping".into(),
                dedupe_id: "ping-1".into(),
                occurred_at_ms: 1_700_000_000_000,
                contact: Some("wm-contact".into()),
                staff: None,
                group: None,
                attributes: json!({ "body": body }).to_string(),
            }],
        })
    }
}

export!(Good);
