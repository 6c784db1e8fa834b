//! The demo shop platform plugin.
//!
//! A generic shop in the style of Youzan's and Shopify's webhooks: order events POSTed as
//! JSON, signed with HMAC-SHA256 over `timestamp.body` with a shared secret, refused when the
//! signature is wrong or the timestamp is outside a freshness window; and a points ledger
//! behind a bearer-token API (`credit_points`, idempotent by order, and `get_balance`).

pub mod actions;
pub mod config;
mod manifest;
pub mod signature;
mod webhook;

use sop_plugin_sdk::{
    Account, Host, Invocation, InvokeOutcome, Manifest, Plugin, PluginError, WebhookError,
    WebhookOutcome, WebhookRequest, json,
};

use crate::actions::Client;

/// The plugin.
#[derive(Debug)]
pub struct Shop;

impl Plugin for Shop {
    fn describe() -> Manifest {
        manifest::manifest()
    }

    fn invoke(host: &dyn Host, call: Invocation) -> Result<InvokeOutcome, PluginError> {
        let client = Client {
            host,
            config: json::parse_config(&call.account.config)?,
            idempotency_key: call.idempotency_key.clone(),
        };
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

sop_plugin_sdk::export_plugin!(Shop);

#[cfg(test)]
mod tests;
