//! Contact actions: `get_contact`, `mark_tag`, `remark`.

use serde::{Deserialize, Serialize};
use sop_plugin_sdk::action::{ActionDef, Actions};
use sop_plugin_sdk::schemars::{self, JsonSchema};
use sop_plugin_sdk::{Delivery, HostLog, InvokeOutcome, PluginError, json};

use crate::client::{Client, check_errcode};
use crate::tags;

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
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkTag {
    /// The staff member who owns the relationship.
    pub userid: String,
    /// The contact.
    pub external_userid: String,
    /// Corp tag ids (`et…`) to add.
    #[serde(default)]
    pub add_tag: Vec<String>,
    /// Corp tag ids to remove.
    #[serde(default)]
    pub remove_tag: Vec<String>,
    /// Tag names to add, in the account's tag group (`tag_group`, default `sop`): looked up
    /// and created when missing (1 to 30 characters each).
    #[serde(default)]
    pub add_tag_names: Vec<String>,
    /// Tag names to remove from the account's tag group; names without a tag are ignored.
    #[serde(default)]
    pub remove_tag_names: Vec<String>,
}

/// WeCom's `mark_tag` body: ids only.
#[derive(Serialize)]
struct MarkTagBody<'a> {
    userid: &'a str,
    external_userid: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    add_tag: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    remove_tag: Vec<String>,
}

/// WeCom's answer to an unknown or deleted tag id.
const INVALID_TAG: i64 = 40068;

fn mark_tag(client: &Client<'_>, input: MarkTag) -> Result<InvokeOutcome, PluginError> {
    if input.add_tag.is_empty()
        && input.remove_tag.is_empty()
        && input.add_tag_names.is_empty()
        && input.remove_tag_names.is_empty()
    {
        return Err(PluginError::invalid_input(
            "no tag to add or remove (`add_tag`, `remove_tag`, `add_tag_names`, \
             `remove_tag_names` are all empty)",
        ));
    }
    tags::check_names("add_tag_names", &input.add_tag_names)?;
    tags::check_names("remove_tag_names", &input.remove_tag_names)?;
    let names: Vec<String> = input
        .add_tag_names
        .iter()
        .chain(&input.remove_tag_names)
        .cloned()
        .collect();
    // A second pass only after WeCom refused an id we had cached: the tag was deleted.
    for pass in 0..2 {
        let to_add = tags::resolve(client, &input.add_tag_names, true)?;
        let to_remove = tags::resolve(client, &input.remove_tag_names, false)?;
        let body = MarkTagBody {
            userid: &input.userid,
            external_userid: &input.external_userid,
            add_tag: merge(&input.add_tag, to_add.ids_of(&input.add_tag_names)),
            remove_tag: merge(&input.remove_tag, to_remove.ids_of(&input.remove_tag_names)),
        };
        let mut resolved = to_add.ids;
        resolved.extend(to_remove.ids);
        if body.add_tag.is_empty() && body.remove_tag.is_empty() {
            // Only names to remove, and none of them has a tag: nothing to do.
            return Ok(InvokeOutcome::Done(json::to_json(
                &serde_json::json!({ "tag_ids": resolved }),
            )));
        }
        let answer =
            client.post_unchecked("externalcontact/mark_tag", &body, Delivery::Idempotent)?;
        let code = answer.get("errcode").and_then(serde_json::Value::as_i64);
        if code == Some(INVALID_TAG) && pass == 0 && (to_add.from_cache || to_remove.from_cache) {
            client
                .host
                .info("a cached tag id was refused (deleted tag?): resolving the names again");
            tags::forget(client, &names);
            continue;
        }
        check_errcode("externalcontact/mark_tag", &answer, Delivery::Idempotent)?;
        let mut out = super::strip_envelope(answer);
        if !resolved.is_empty()
            && let Some(object) = out.as_object_mut()
        {
            object.insert("tag_ids".to_owned(), serde_json::json!(resolved));
        }
        return Ok(InvokeOutcome::Done(json::to_json(&out)));
    }
    unreachable!("the second pass always returns")
}

/// `ids` then `more`, without repeats.
fn merge(ids: &[String], more: Vec<String>) -> Vec<String> {
    let mut out = ids.to_vec();
    for id in more {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
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
            ActionDef::new(
                "mark_tag",
                "Adds and removes corp tags on a contact, by id or by name (names are \
                 looked up, and created when missing, in the account's tag group).",
            )
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
