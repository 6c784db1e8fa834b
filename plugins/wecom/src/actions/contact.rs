//! Contact actions: `get_contact`, `mark_tag`, `remark`.

use serde::{Deserialize, Serialize};
use sop_plugin_sdk::action::{ActionDef, Actions};
use sop_plugin_sdk::schemars::{self, JsonSchema};
use sop_plugin_sdk::{Delivery, InvokeOutcome, PluginError};

use crate::client::Client;

const RATE_LIMITS: [&str; 2] = ["api_per_corp_minute", "api_per_corp_hour"];

/// Input of `get_contact`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetContact {
    /// The contact's `external_userid`.
    pub external_userid: String,
    /// Page cursor for contacts followed by more than 500 staff members.
    #[serde(default)]
    pub cursor: Option<String>,
}

fn get_contact(client: &Client<'_>, input: GetContact) -> Result<InvokeOutcome, PluginError> {
    let mut query = vec![("external_userid", input.external_userid.as_str())];
    if let Some(cursor) = input.cursor.as_deref() {
        query.push(("cursor", cursor));
    }
    let answer = client.get("externalcontact/get", &query, Delivery::Idempotent)?;
    Ok(super::done(answer))
}

/// Input of `mark_tag`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkTag {
    /// The staff member who owns the relationship.
    pub userid: String,
    /// The contact.
    pub external_userid: String,
    /// Tag ids to add.
    #[serde(default)]
    pub add_tag: Vec<String>,
    /// Tag ids to remove.
    #[serde(default)]
    pub remove_tag: Vec<String>,
}

fn mark_tag(client: &Client<'_>, input: MarkTag) -> Result<InvokeOutcome, PluginError> {
    if input.add_tag.is_empty() && input.remove_tag.is_empty() {
        return Err(PluginError::invalid_input(
            "`add_tag` and `remove_tag` are both empty",
        ));
    }
    let answer = client.post("externalcontact/mark_tag", &input, Delivery::Idempotent)?;
    Ok(super::done(answer))
}

/// Input of `remark`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Remark {
    /// The staff member who owns the relationship.
    pub userid: String,
    /// The contact.
    pub external_userid: String,
    /// The remark name (at most 20 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    /// The description (at most 150 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The contact's company.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark_company: Option<String>,
    /// Phone numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark_mobiles: Option<Vec<String>>,
}

fn remark(client: &Client<'_>, input: Remark) -> Result<InvokeOutcome, PluginError> {
    let too_long = |field: &str, value: &Option<String>, max: usize| match value {
        Some(v) if v.chars().count() > max => Err(PluginError::invalid_input(format!(
            "`{field}` has {} characters; WeCom accepts at most {max}",
            v.chars().count()
        ))),
        _ => Ok(()),
    };
    too_long("remark", &input.remark, 20)?;
    too_long("description", &input.description, 150)?;
    let answer = client.post("externalcontact/remark", &input, Delivery::Idempotent)?;
    Ok(super::done(answer))
}

/// Registers the contact actions.
pub fn register<'a>(actions: Actions<Client<'a>>) -> Actions<Client<'a>> {
    actions
        .action(
            ActionDef::new(
                "get_contact",
                "Reads a contact and the staff members who follow them (remarks, tags, state).",
            )
            .rate_limits(&RATE_LIMITS),
            get_contact,
        )
        .action(
            ActionDef::new("mark_tag", "Adds and removes enterprise tags on a contact.")
                .rate_limits(&RATE_LIMITS),
            mark_tag,
        )
        .action(
            ActionDef::new(
                "remark",
                "Sets a staff member's remark, description, company or phones for a contact.",
            )
            .rate_limits(&RATE_LIMITS),
            remark,
        )
}
