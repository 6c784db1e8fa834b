//! The read-only view of a run's subject that conditions and templates need.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sop_dsl::model::Zone;

/// A contact (or customer group) as templates see it: `contact.id`, `contact.tags`, ...
/// Absent fields stay undefined in templates, so `contact.name | default('亲')` works.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactView {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The staff member who owns the relationship.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default)]
    pub tags: BTreeSet<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, Value>,
    /// The contact's own zone; `wait_until` falls back to the playbook's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<Zone>,
}

impl ContactView {
    pub fn new(id: impl Into<String>) -> Self {
        ContactView {
            id: id.into(),
            ..ContactView::default()
        }
    }
}
