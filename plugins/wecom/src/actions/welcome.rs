//! `send_welcome`: the welcome message on a new contact, within the welcome code's 20 s.

use serde::Deserialize;
use sop_plugin_sdk::action::{ActionDef, Actions};
use sop_plugin_sdk::schemars::{self, JsonSchema};
use sop_plugin_sdk::{Audience, Delivery, InvokeOutcome, PluginError};

use super::Content;
use crate::client::Client;

/// Input of `send_welcome`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendWelcome {
    /// The `WelcomeCode` of the `contact_added` event.
    pub welcome_code: String,
    /// The text (`text.content`).
    #[serde(default)]
    pub text: Option<String>,
    /// Up to 9 attachments in WeCom's shape, e.g.
    /// `{"msgtype":"link","link":{"title":"…","url":"…"}}`.
    #[serde(default)]
    pub attachments: Vec<serde_json::Value>,
}

fn send_welcome(client: &Client<'_>, input: SendWelcome) -> Result<InvokeOutcome, PluginError> {
    if input.welcome_code.is_empty() {
        return Err(PluginError::invalid_input("`welcome_code` is empty"));
    }
    let mut body = serde_json::Map::new();
    body.insert("welcome_code".to_owned(), input.welcome_code.into());
    Content::new(input.text, input.attachments).write_into(&mut body)?;
    let answer = client.post(
        "externalcontact/send_welcome_msg",
        &body,
        Delivery::AtMostOnce,
    )?;
    Ok(super::done(answer))
}

/// Registers `send_welcome`.
pub fn register<'a>(actions: Actions<Client<'a>>) -> Actions<Client<'a>> {
    actions.action(
        ActionDef::new(
            "send_welcome",
            "Sends the welcome message (text and up to 9 attachments) with the welcome code of a \
             contact_added event. Valid once, within 20 seconds of the event.",
        )
        .at_most_once()
        .audience(Audience::Contact)
        .time_critical()
        .rate_limits(&["api_per_corp_minute", "api_per_corp_hour"]),
        send_welcome,
    )
}
