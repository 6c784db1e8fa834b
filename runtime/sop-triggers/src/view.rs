//! Store records as templates and conditions see them (`sop_engine::ContactView`).
//!
//! The runtime should build the view it passes to `sop_engine::decide_enrollment` with these
//! same functions, so that the audience a trigger lists and the audience the entry decision
//! checks agree.

use serde_json::Value;
use sop_dsl::model::Zone;
use sop_engine::ContactView;
use sop_store::{Contact, Group};

/// A contact as `contact.*` sees it: id, owner, tags, attributes (also flattened, as the
/// engine does), `name` from the `name` attribute, and the contact's zone if it is valid.
pub fn contact_view(contact: &Contact) -> ContactView {
    ContactView {
        id: contact.key.id.clone(),
        name: contact
            .attributes
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        owner: contact.owner.clone(),
        tags: contact.tags.clone(),
        attributes: contact
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        timezone: contact
            .time_zone
            .as_deref()
            .and_then(|z| z.parse::<Zone>().ok()),
    }
}

/// A customer group as `group.*` (and `contact.*`, as in a group run) sees it: id, name,
/// owner, tags, attributes, plus `member_count` and `account` as attributes unless an
/// attribute of that name already exists.
pub fn group_view(group: &Group) -> ContactView {
    let mut attributes: std::collections::BTreeMap<String, Value> = group
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    attributes
        .entry("member_count".into())
        .or_insert_with(|| Value::from(group.member_count));
    attributes
        .entry("account".into())
        .or_insert_with(|| Value::from(group.account.clone()));
    ContactView {
        id: group.key.id.clone(),
        name: (!group.name.is_empty()).then(|| group.name.clone()),
        owner: group.owner.clone(),
        tags: group.tags.clone(),
        attributes,
        timezone: None,
    }
}
