//! The Douyin enterprise-account platform plugin.
//!
//! Private-message replies inside the reply window, proactive messages to users who
//! authorised them, fan-group messages and the authorised-user list over the Douyin open
//! API; webhooks checked against `X-Douyin-Signature`, the `verify_webhook` challenge
//! answered, and IM events normalized with the `Msg-Id` header as de-duplication id.

pub mod actions;
mod client;
pub mod config;
mod errcode;
mod manifest;
mod signature;
mod token;
mod webhook;

use sop_plugin_sdk::{
    Account, Host, Invocation, InvokeOutcome, Manifest, Plugin, PluginError, WebhookError,
    WebhookOutcome, WebhookRequest, json,
};

use crate::client::Client;

/// The plugin.
#[derive(Debug)]
pub struct Douyin;

impl Plugin for Douyin {
    fn describe() -> Manifest {
        manifest::manifest()
    }

    fn invoke(host: &dyn Host, call: Invocation) -> Result<InvokeOutcome, PluginError> {
        let client = Client::new(host, json::parse_config(&call.account.config)?);
        actions::all().dispatch(&client, &call.action, &call.input)
    }

    fn parse_webhook(
        host: &dyn Host,
        account: Account,
        request: WebhookRequest,
    ) -> Result<WebhookOutcome, WebhookError> {
        webhook::parse(host, &account, &request)
    }
}

sop_plugin_sdk::export_plugin!(Douyin);

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hostile;
