//! Tag names to corp tag ids.
//!
//! WeCom's `mark_tag` takes corp tag ids (`et…`), while playbooks speak of tags by name
//! (`channel:spring_fair`). Names live in one tag group per account (`tag_group`, default
//! `sop`): a name is looked up with `get_corp_tag_list` and, when missing, created with
//! `add_corp_tag`. Ids are cached in the plugin's key-value store; when WeCom refuses a cached
//! id (40068: an operator deleted the tag), the caller forgets it and resolves again.

use std::collections::BTreeMap;

use serde::Deserialize;
use sop_plugin_sdk::{Delivery, HostLog, PluginError, kv, webhook};

use crate::client::Client;

/// The tag group used when the account names none.
pub const DEFAULT_GROUP: &str = "sop";
/// WeCom's cap on a tag name, in characters.
pub const MAX_NAME_CHARS: usize = 30;
/// How long a name's id is trusted without looking again: bounds how long a tag renamed in
/// the admin console keeps being used under its old name.
const CACHE_TTL_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tag_group: Vec<Group>,
}

#[derive(Deserialize)]
struct Added {
    tag_group: Group,
}

#[derive(Deserialize)]
struct Group {
    group_name: String,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    tag: Vec<Tag>,
}

#[derive(Deserialize)]
struct Tag {
    id: String,
    name: String,
    #[serde(default)]
    deleted: bool,
}

/// Tag ids for names, and whether any came from the cache (and so may be stale).
#[derive(Debug, Default)]
pub struct Resolved {
    /// Name → id, for every name that has one.
    pub ids: BTreeMap<String, String>,
    /// At least one id was read from the cache rather than from WeCom.
    pub from_cache: bool,
}

impl Resolved {
    /// The ids of `names`, in their order, skipping names without one.
    pub fn ids_of(&self, names: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(names.len());
        for id in names.iter().filter_map(|n| self.ids.get(n)) {
            if !out.contains(id) {
                out.push(id.clone());
            }
        }
        out
    }
}

/// Refuses names WeCom would refuse, before any call.
pub fn check_names(field: &str, names: &[String]) -> Result<(), PluginError> {
    for name in names {
        let chars = name.chars().count();
        if name.trim().is_empty() || chars > MAX_NAME_CHARS {
            return Err(PluginError::invalid_input(format!(
                "`{field}`: tag name `{name}` has {chars} characters; WeCom takes 1 to \
                 {MAX_NAME_CHARS}"
            )));
        }
    }
    Ok(())
}

/// The cache key of `name` in the account's group: per corp, since ids are per corp; the
/// name digested, since it may hold any character.
fn cache_key(client: &Client<'_>, name: &str) -> String {
    let digest = webhook::dedupe_id(&[client.config.tag_group(), name]);
    format!("tagid/{}/{}", client.config.corp_id, &digest[..24])
}

/// The ids of `names` in the account's tag group. With `create`, missing tags are created;
/// without, names that have no tag are left out of the answer.
pub fn resolve(
    client: &Client<'_>,
    names: &[String],
    create: bool,
) -> Result<Resolved, PluginError> {
    let mut resolved = Resolved::default();
    let mut missing: Vec<String> = Vec::new();
    for name in names {
        if resolved.ids.contains_key(name) || missing.contains(name) {
            continue;
        }
        match kv::get_json::<String>(client.host, &cache_key(client, name)) {
            Some(id) => {
                resolved.ids.insert(name.clone(), id);
                resolved.from_cache = true;
            }
            None => missing.push(name.clone()),
        }
    }
    if missing.is_empty() {
        return Ok(resolved);
    }
    let mut found = BTreeMap::new();
    take(client, &list(client)?.tag_group, &mut missing, &mut found);
    if create && !missing.is_empty() {
        match add(client, &missing) {
            Ok(group) => take(client, &[group], &mut missing, &mut found),
            // Another run may have created some of them since we looked (WeCom refuses a
            // name taken in the group): look once more before giving up.
            Err(refused) => {
                take(client, &list(client)?.tag_group, &mut missing, &mut found);
                if !missing.is_empty() {
                    return Err(refused);
                }
            }
        }
        if !missing.is_empty() {
            return Err(PluginError::transient(format!(
                "externalcontact/add_corp_tag: the answer lacks tags {missing:?}"
            )));
        }
    }
    for (name, id) in found {
        kv::set_json(
            client.host,
            &cache_key(client, &name),
            &id,
            Some(CACHE_TTL_MS),
        );
        resolved.ids.insert(name, id);
    }
    Ok(resolved)
}

/// Drops the cached ids of `names` (WeCom no longer knows one of them).
pub fn forget(client: &Client<'_>, names: &[String]) {
    for name in names {
        client.host.kv_delete(&cache_key(client, name));
    }
}

/// Moves the live tags of the account's group named in `missing` into `found`.
fn take(
    client: &Client<'_>,
    groups: &[Group],
    missing: &mut Vec<String>,
    found: &mut BTreeMap<String, String>,
) {
    let wanted = client.config.tag_group();
    for group in groups
        .iter()
        .filter(|g| !g.deleted && g.group_name == wanted)
    {
        for tag in group.tag.iter().filter(|t| !t.deleted) {
            if let Some(i) = missing.iter().position(|m| *m == tag.name) {
                missing.swap_remove(i);
                found.insert(tag.name.clone(), tag.id.clone());
            }
        }
    }
}

/// The whole tag library (`get_corp_tag_list` without filters: the group's id is not known
/// before the group exists, and a group is listed only with its tags).
fn list(client: &Client<'_>) -> Result<TagList, PluginError> {
    let answer = client.post(
        "externalcontact/get_corp_tag_list",
        &serde_json::json!({}),
        Delivery::Idempotent,
    )?;
    serde_json::from_value(answer).map_err(|e| {
        PluginError::transient(format!(
            "externalcontact/get_corp_tag_list: unexpected answer: {e}"
        ))
    })
}

/// Creates `names` in the account's group, by group name: WeCom adds them to the group of
/// that name, or creates the group with them.
fn add(client: &Client<'_>, names: &[String]) -> Result<Group, PluginError> {
    let tags: Vec<_> = names
        .iter()
        .map(|name| serde_json::json!({ "name": name }))
        .collect();
    let body = serde_json::json!({ "group_name": client.config.tag_group(), "tag": tags });
    // Idempotent: a repeat finds the tags taken and looks them up instead.
    let answer = client.post("externalcontact/add_corp_tag", &body, Delivery::Idempotent)?;
    let added: Added = serde_json::from_value(answer).map_err(|e| {
        PluginError::transient(format!(
            "externalcontact/add_corp_tag: unexpected answer: {e}"
        ))
    })?;
    client.host.debug(&format!(
        "created {} customer tag(s) in group `{}`",
        names.len(),
        client.config.tag_group()
    ));
    Ok(added.tag_group)
}
