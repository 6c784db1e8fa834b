//! Customer groups: what the platform's group events say about them (owner, name, size,
//! dismissal), and the operator's changes: tags (which group playbooks select on) and
//! attributes (what their templates read, e.g. a material list).

use serde::Deserialize;
use serde_json::{Map, Value};
use sop_engine::Event;
use sop_store::{Group, GroupKey, Subject};

use crate::error::RuntimeError;
use crate::runtime::Runtime;
use crate::tx::Tx;

/// Longest tag accepted, in characters.
const MAX_TAG_CHARS: usize = 64;

/// What a group event says about the group. `group_created`/`group_updated` carry the group
/// as the platform answered it (owner, name, size); member events move the count until then.
pub(crate) fn apply_event(record: &mut Group, kind: &str, event: &Event) {
    match kind {
        "group_member_joined" => record.member_count += 1,
        "group_member_left" => record.member_count = record.member_count.saturating_sub(1),
        "group_created" | "group_updated" => {
            let text = |name: &str| {
                event
                    .attributes
                    .get(name)
                    .and_then(|v| v.as_str())
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
            };
            if let Some(owner) = text("owner").or_else(|| event.staff.clone()) {
                record.owner = Some(owner);
            }
            if let Some(name) = text("name") {
                record.name = name;
            }
            if let Some(count) = event
                .attributes
                .get("member_count")
                .and_then(|v| v.as_u64())
            {
                record.member_count = u32::try_from(count).unwrap_or(u32::MAX);
            }
            record.attributes.remove(DISMISSED);
        }
        "group_dismissed" => {
            record.attributes.insert(DISMISSED.into(), true.into());
        }
        _ => {}
    }
}

/// The group attribute that marks a dismissed group: it is never enrolled again.
const DISMISSED: &str = "dismissed";

/// Whether a group (as templates see it) is marked dismissed.
pub(crate) fn is_dismissed(view: &sop_engine::ContactView) -> bool {
    view.attributes.get(DISMISSED) == Some(&Value::Bool(true))
}

/// Tags to add and remove, attributes to set (`null` removes one).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupEdit {
    pub add_tags: Vec<String>,
    pub remove_tags: Vec<String>,
    pub attributes: Map<String, Value>,
}

impl GroupEdit {
    fn check(&self) -> Result<(), RuntimeError> {
        for tag in self.add_tags.iter().chain(&self.remove_tags) {
            if tag.trim().is_empty()
                || tag.chars().count() > MAX_TAG_CHARS
                || tag.chars().any(char::is_control)
            {
                return Err(RuntimeError::BadRequest(format!(
                    "tag {tag:?}: 1 to {MAX_TAG_CHARS} characters, no control characters"
                )));
            }
        }
        if let Some(both) = self.add_tags.iter().find(|t| self.remove_tags.contains(t)) {
            return Err(RuntimeError::BadRequest(format!(
                "tag {both:?} is both added and removed"
            )));
        }
        if let Some(empty) = self.attributes.keys().find(|k| k.trim().is_empty()) {
            return Err(RuntimeError::BadRequest(format!(
                "attribute name {empty:?} is empty"
            )));
        }
        Ok(())
    }
}

impl Runtime {
    /// Applies `edit` to a group sop already knows (from the platform's group events);
    /// answers the group as stored.
    pub async fn edit_group(
        &self,
        key: &GroupKey,
        edit: &GroupEdit,
    ) -> Result<Group, RuntimeError> {
        edit.check()?;
        let inner = &self.inner;
        let subject = Subject::Group {
            tenant: key.tenant.clone(),
            id: key.id.clone(),
        };
        let _lane = inner.lane(&subject).await;
        let Some(stored) = inner.store.group(key)? else {
            return Err(RuntimeError::UnknownGroup(format!(
                "{}/{}",
                key.tenant, key.id
            )));
        };
        let now = inner.clock.now();
        let mut tx = Tx::new();
        let group = tx.group_mut(&*inner.store, key, &stored.account, now)?;
        for tag in &edit.add_tags {
            group.tags.insert(tag.clone());
        }
        for tag in &edit.remove_tags {
            group.tags.remove(tag);
        }
        for (name, value) in &edit.attributes {
            if value.is_null() {
                group.attributes.remove(name);
            } else {
                group.attributes.insert(name.clone(), value.clone());
            }
        }
        let changed = group.clone();
        inner.store.commit_durable(tx.into_batch().batch)?;
        metrics::counter!("sop_runtime_group_edits_total").increment(1);
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_are_checked_before_anything_changes() {
        let edit = |add: &[&str], remove: &[&str]| GroupEdit {
            add_tags: add.iter().map(|t| t.to_string()).collect(),
            remove_tags: remove.iter().map(|t| t.to_string()).collect(),
            attributes: Map::new(),
        };
        assert!(edit(&["nurture"], &["vip"]).check().is_ok());
        for (bad, why) in [
            (edit(&[" "], &[]), "tag"),
            (edit(&[&"长".repeat(65)], &[]), "1 to 64"),
            (edit(&["a\nb"], &[]), "control"),
            (edit(&["x"], &["x"]), "both added and removed"),
        ] {
            let e = bad.check().unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        let mut attributes = Map::new();
        attributes.insert(String::new(), Value::Null);
        let e = GroupEdit {
            attributes,
            ..GroupEdit::default()
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(e.contains("attribute name"), "{e}");
    }
}
