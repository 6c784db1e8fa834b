//! What sop keeps of a customer group: `change_external_chat` carries only the `ChatId`, so
//! the group is read with `externalcontact/groupchat/get` for its owner (the sender of group
//! mass sends), name and size.

use sop_plugin_sdk::{Delivery, NormalizedEvent, PluginError};

use crate::callback::GroupChange;
use crate::client::Client;

/// The `group_created`/`group_updated` event of `change`, read from WeCom.
pub fn describe(client: &Client<'_>, change: &GroupChange) -> Result<NormalizedEvent, PluginError> {
    let body = serde_json::json!({ "chat_id": change.chat_id, "need_name": 0 });
    let answer = client.post("externalcontact/groupchat/get", &body, Delivery::Idempotent)?;
    let group = &answer["group_chat"];
    let owner = group["owner"].as_str().unwrap_or_default().to_owned();
    if owner.is_empty() {
        return Err(PluginError::permanent(format!(
            "groupchat/get answered no owner for {}",
            change.chat_id
        )));
    }
    let members = group["member_list"].as_array().map_or(0, Vec::len);
    let attributes = serde_json::json!({
        "change": change.change,
        "name": group["name"].as_str().unwrap_or_default(),
        "owner": owner,
        "member_count": members,
        "notice": group["notice"].as_str().unwrap_or_default(),
    });
    Ok(NormalizedEvent {
        kind: change.kind.to_owned(),
        dedupe_id: change.dedupe_id.clone(),
        occurred_at_ms: change.occurred_at_ms,
        contact: None,
        staff: Some(owner),
        group: Some(change.chat_id.clone()),
        attributes: attributes.to_string(),
    })
}
