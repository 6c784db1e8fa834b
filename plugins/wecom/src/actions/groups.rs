//! Customer group reads: `list_groups`, `get_group`.

use serde::{Deserialize, Serialize};
use sop_plugin_sdk::action::{ActionDef, Actions};
use sop_plugin_sdk::schemars::{self, JsonSchema};
use sop_plugin_sdk::{Delivery, InvokeOutcome, PluginError};

use crate::client::Client;

const RATE_LIMITS: [&str; 2] = ["api_per_corp_minute", "api_per_corp_hour"];

/// Input of `list_groups`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListGroups {
    /// 0 all groups, 1 handed-over groups awaiting their new owner, 2 done, 3 pending.
    #[serde(default)]
    pub status_filter: Option<u8>,
    /// Only groups owned by these staff members (at most 100).
    #[serde(default)]
    pub owner_userids: Vec<String>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size, 1 to 1,000 (default 100).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Serialize)]
struct ListBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    status_filter: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_filter: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    limit: u32,
}

fn list_groups(client: &Client<'_>, input: ListGroups) -> Result<InvokeOutcome, PluginError> {
    let limit = input.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(PluginError::invalid_input(format!(
            "`limit` must be 1 to 1000, got {limit}"
        )));
    }
    if input.owner_userids.len() > 100 {
        return Err(PluginError::invalid_input(
            "`owner_userids` holds at most 100 staff members",
        ));
    }
    let body = ListBody {
        status_filter: input.status_filter,
        owner_filter: (!input.owner_userids.is_empty())
            .then(|| serde_json::json!({ "userid_list": input.owner_userids })),
        cursor: input.cursor,
        limit,
    };
    let answer = client.post(
        "externalcontact/groupchat/list",
        &body,
        Delivery::Idempotent,
    )?;
    Ok(super::done(answer))
}

/// Input of `get_group`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetGroup {
    /// The group's `chat_id`.
    pub chat_id: String,
    /// Include member names.
    #[serde(default)]
    pub need_name: bool,
}

fn get_group(client: &Client<'_>, input: GetGroup) -> Result<InvokeOutcome, PluginError> {
    let body = serde_json::json!({
        "chat_id": input.chat_id,
        "need_name": u8::from(input.need_name),
    });
    let answer = client.post("externalcontact/groupchat/get", &body, Delivery::Idempotent)?;
    Ok(super::done(answer))
}

/// Registers the group reads.
pub fn register<'a>(actions: Actions<Client<'a>>) -> Actions<Client<'a>> {
    actions
        .action(
            ActionDef::new(
                "list_groups",
                "Lists customer groups (`group_chat_list` of `chat_id` and status, `next_cursor`).",
            )
            .rate_limits(&RATE_LIMITS),
            list_groups,
        )
        .action(
            ActionDef::new(
                "get_group",
                "Reads a customer group: name, owner, notice, members and admins.",
            )
            .rate_limits(&RATE_LIMITS),
            get_group,
        )
}
