//! The WeCom (企业微信) platform plugin.
//!
//! Actions over the WeCom server API (welcome messages, mass-send tasks and their outcome,
//! app messages to staff, tags, remarks, contacts, customer groups), the contact and group
//! callbacks, verified and decrypted with [`wecom_crypto`], and customers' messages read through
//! 微信客服 (`kf_msg_or_event` + `kf/sync_msg`). All platform logic talks to the
//! runtime through [`sop_plugin_sdk::Host`], so the tests run natively against a fake host.

pub mod actions;
mod callback;
mod client;
pub mod config;
mod errcode;
mod groupchat;
mod kf;
mod manifest;
mod tags;
mod token;
mod webhook;

use sop_plugin_sdk::{
    Account, Host, Invocation, InvokeOutcome, Manifest, OutcomeStatus, Plugin, PluginError,
    WebhookError, WebhookOutcome, WebhookRequest, json,
};

use crate::client::Client;

/// The plugin.
#[derive(Debug)]
pub struct WeCom;

impl Plugin for WeCom {
    fn describe() -> Manifest {
        manifest::manifest()
    }

    fn invoke(host: &dyn Host, call: Invocation) -> Result<InvokeOutcome, PluginError> {
        let config = json::parse_config(&call.account.config)?;
        let client = Client::new(host, config, Some(call.idempotency_key));
        actions::all().dispatch(&client, &call.action, &call.input)
    }

    fn check_outcome(
        host: &dyn Host,
        account: Account,
        action: String,
        idempotency_key: String,
        handle: Option<String>,
    ) -> Result<OutcomeStatus, PluginError> {
        match actions::mass_send::Target::of(&action) {
            Some(target) => {
                let client = Client::new(host, json::parse_config(&account.config)?, None);
                actions::mass_send::check(&client, target, &idempotency_key, handle)
            }
            None => Err(PluginError::permanent(format!(
                "`{action}` completes synchronously; WeCom offers no way to look it up"
            ))),
        }
    }

    fn parse_webhook(
        host: &dyn Host,
        account: Account,
        request: WebhookRequest,
    ) -> Result<WebhookOutcome, WebhookError> {
        webhook::parse(host, &account, &request)
    }
}

sop_plugin_sdk::export_plugin!(WeCom);

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_groups;
#[cfg(test)]
mod tests_hostile;
#[cfg(test)]
mod tests_kf;
#[cfg(test)]
mod tests_mass_send;
#[cfg(test)]
mod tests_tags;
