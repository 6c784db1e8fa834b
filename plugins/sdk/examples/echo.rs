//! The template plugin: one action that calls an HTTP API, one webhook, and their tests.
//!
//! Build it as a component:
//! `cargo build -p sop-plugin-sdk --example echo --target wasm32-wasip2 --release`
//! (the file is `target/wasm32-wasip2/release/examples/echo.wasm`). Copy this file into a new
//! crate with `crate-type = ["cdylib", "rlib"]` to start a real plugin.

use serde::{Deserialize, Serialize};
use sop_plugin_sdk::action::{ActionDef, Actions};
use sop_plugin_sdk::http::Fetch;
use sop_plugin_sdk::schemars::{self, JsonSchema};
use sop_plugin_sdk::{
    Account, Audience, Delivery, EventSpec, Host, HostLog, Invocation, InvokeOutcome, LimitScope,
    Manifest, NormalizedEvent, Plugin, PluginError, RateLimit, WebhookError, WebhookOutcome,
    WebhookRequest, WebhookResponse, json, webhook,
};

const API: &str = "https://echo.example.com";

/// Per-account configuration, as declared by the manifest's account schema.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Sent as a bearer token.
    api_key: String,
}

/// What an action handler gets: the host and the parsed account.
struct Ctx<'a> {
    host: &'a dyn Host,
    config: Config,
}

/// Input of `say`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Say {
    /// The contact to message.
    to: String,
    /// The text.
    text: String,
}

#[derive(Serialize, Deserialize)]
struct Said {
    id: String,
}

fn say(ctx: &Ctx<'_>, input: Say) -> Result<InvokeOutcome, PluginError> {
    if input.text.is_empty() {
        return Err(PluginError::invalid_input("`text` is empty"));
    }
    let said: Said = Fetch::post_json(
        &format!("{API}/v1/say"),
        &serde_json::json!({"to": input.to, "text": input.text}),
    )
    .header("authorization", &format!("Bearer {}", ctx.config.api_key))
    .send_json(ctx.host, Delivery::AtMostOnce)?;
    ctx.host.info(&format!("said {}", said.id));
    Ok(InvokeOutcome::Done(json::to_json(&said)))
}

fn actions<'a>() -> Actions<Ctx<'a>> {
    Actions::new().action(
        ActionDef::new("say", "Sends a text to a contact")
            .at_most_once()
            .audience(Audience::Contact)
            .rate_limits(&["api"]),
        say,
    )
}

/// The plugin.
#[derive(Debug)]
pub struct Echo;

impl Plugin for Echo {
    fn describe() -> Manifest {
        Manifest {
            name: "echo".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "Template plugin: says things and echoes webhooks".to_owned(),
            actions: actions().specs(),
            events: vec![EventSpec {
                kind: "message_received".to_owned(),
                description: "A contact sent a text".to_owned(),
                attributes_schema: r#"{"type":"object","properties":{"text":{"type":"string"}}}"#
                    .to_owned(),
            }],
            rate_limits: vec![RateLimit {
                name: "api".to_owned(),
                scope: LimitScope::Account,
                max: 60,
                per_seconds: 60,
                error_code: None,
            }],
            touch_limits: vec![],
            hosts: vec!["echo.example.com".to_owned()],
            account_schema: json::schema_of::<Config>(),
        }
    }

    fn invoke(host: &dyn Host, call: Invocation) -> Result<InvokeOutcome, PluginError> {
        let ctx = Ctx {
            host,
            config: json::parse_config(&call.account.config)?,
        };
        actions().dispatch(&ctx, &call.action, &call.input)
    }

    fn parse_webhook(
        _host: &dyn Host,
        _account: Account,
        request: WebhookRequest,
    ) -> Result<WebhookOutcome, WebhookError> {
        #[derive(Deserialize)]
        struct Message {
            from: String,
            text: String,
            at_ms: i64,
        }
        let message: Message = serde_json::from_slice(&request.body)
            .map_err(|e| WebhookError::malformed(format!("body: {e}")))?;
        let event = NormalizedEvent {
            kind: "message_received".to_owned(),
            dedupe_id: webhook::dedupe_id(&[&message.from, &message.at_ms.to_string()]),
            occurred_at_ms: message.at_ms,
            contact: Some(message.from),
            staff: None,
            group: None,
            attributes: serde_json::json!({ "text": message.text }).to_string(),
        };
        Ok(WebhookOutcome {
            response: WebhookResponse::text("ok"),
            events: vec![event],
        })
    }
}

sop_plugin_sdk::export_plugin!(Echo);

#[cfg(test)]
mod tests {
    use super::*;
    use sop_plugin_sdk::testing::{FakeHost, json_response};
    use sop_plugin_sdk::{FetchError, InvokeOutcome};

    fn call(input: &str) -> Invocation {
        Invocation {
            action: "say".to_owned(),
            account: Account {
                id: "main".to_owned(),
                config: r#"{"api_key":"k1"}"#.to_owned(),
            },
            input: input.to_owned(),
            idempotency_key: "run-1/step-1/0".to_owned(),
        }
    }

    #[test]
    fn say_posts_and_returns_the_id() {
        let host = FakeHost::new(0);
        host.respond(
            "POST",
            "/v1/say",
            json_response(200, &serde_json::json!({"id": "m1"})),
        );
        let out = Echo::invoke(&host, call(r#"{"to":"c1","text":"hi"}"#)).unwrap();
        assert_eq!(out, InvokeOutcome::Done(r#"{"id":"m1"}"#.to_owned()));
        let sent = &host.requests()[0];
        assert!(
            sent.headers
                .contains(&("authorization".to_owned(), "Bearer k1".to_owned()))
        );
    }

    #[test]
    fn a_timeout_leaves_the_outcome_unknown() {
        let host = FakeHost::new(0);
        host.respond("POST", "/v1/say", Err(FetchError::Timeout));
        let err = Echo::invoke(&host, call(r#"{"to":"c1","text":"hi"}"#)).unwrap_err();
        assert_eq!(err.kind(), "outcome-unknown");
    }

    #[test]
    fn missing_fields_are_invalid_input() {
        let err = Echo::invoke(&FakeHost::new(0), call(r#"{"to":"c1"}"#)).unwrap_err();
        assert_eq!(err.kind(), "invalid-input");
    }

    #[test]
    fn webhook_becomes_an_event() {
        let request = WebhookRequest {
            method: "POST".to_owned(),
            query: vec![],
            headers: vec![],
            body: br#"{"from":"c1","text":"hello","at_ms":5}"#.to_vec(),
        };
        let outcome = Echo::parse_webhook(&FakeHost::new(0), call("{}").account, request).unwrap();
        assert_eq!(outcome.events[0].contact.as_deref(), Some("c1"));
        assert_eq!(outcome.response.body, b"ok");
    }
}
