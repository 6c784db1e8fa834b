//! `notify_staff`: an app message to staff members, for hand-offs and alerts.

use serde::Deserialize;
use sop_plugin_sdk::action::{ActionDef, Actions};
use sop_plugin_sdk::schemars::{self, JsonSchema};
use sop_plugin_sdk::{Audience, Delivery, InvokeOutcome, PluginError};

use crate::client::Client;

/// WeCom's cap on `touser` entries.
const MAX_RECIPIENTS: usize = 1000;

/// Input of `notify_staff`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyStaff {
    /// Staff `userid`s, `|`-separated as WeCom writes them (at most 1,000).
    pub touser: String,
    /// The message text.
    pub text: String,
    /// Render `text` as WeCom markdown instead of plain text.
    #[serde(default)]
    pub markdown: bool,
    /// Let WeCom drop an identical message sent within this many seconds (at most 4 h).
    #[serde(default)]
    pub duplicate_check_interval_s: Option<u32>,
}

fn notify_staff(client: &Client<'_>, input: NotifyStaff) -> Result<InvokeOutcome, PluginError> {
    let userids: Vec<&str> = input
        .touser
        .split('|')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    if userids.is_empty() || userids.len() > MAX_RECIPIENTS {
        return Err(PluginError::invalid_input(format!(
            "`touser` must name 1 to {MAX_RECIPIENTS} staff members, got {}",
            userids.len()
        )));
    }
    if input.text.is_empty() {
        return Err(PluginError::invalid_input("`text` is empty"));
    }
    let msgtype = if input.markdown { "markdown" } else { "text" };
    let mut body = serde_json::json!({
        "touser": userids.join("|"),
        "msgtype": msgtype,
        "agentid": client.config.agent_id,
        msgtype: { "content": input.text },
    });
    if let Some(interval) = input.duplicate_check_interval_s {
        body["enable_duplicate_check"] = 1.into();
        body["duplicate_check_interval"] = interval.min(14_400).into();
    }
    let answer = client.post("message/send", &body, Delivery::AtMostOnce)?;
    Ok(super::done(answer))
}

/// Registers `notify_staff`.
pub fn register<'a>(actions: Actions<Client<'a>>) -> Actions<Client<'a>> {
    actions.action(
        ActionDef::new(
            "notify_staff",
            "Sends an app message to staff members (hand-offs, alerts). The output lists \
             `invaliduser` ids WeCom could not reach.",
        )
        .at_most_once()
        .audience(Audience::Staff)
        .rate_limits(&[
            "api_per_corp_minute",
            "api_per_corp_hour",
            "app_message_per_member",
        ]),
        notify_staff,
    )
}
