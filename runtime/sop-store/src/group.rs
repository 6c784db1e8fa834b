//! Customer groups (客户群): audiences of group playbooks.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sop_clock::Timestamp;

use crate::serde_time::{json_map, ms};

/// A group by tenant and the platform's group id (e.g. a WeCom `chat_id`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupKey {
    pub tenant: String,
    pub id: String,
}

impl GroupKey {
    pub fn new(tenant: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            id: id.into(),
        }
    }
}

/// One customer group as sop knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub key: GroupKey,
    /// The platform account (plugin account) the group belongs to.
    pub account: String,
    pub name: String,
    /// The staff member who owns the group.
    pub owner: Option<String>,
    pub tags: BTreeSet<String>,
    #[serde(with = "json_map")]
    pub attributes: Map<String, Value>,
    pub member_count: u32,
    #[serde(with = "ms")]
    pub created_at: Timestamp,
    #[serde(with = "ms")]
    pub updated_at: Timestamp,
}

impl Group {
    /// A group with nothing known about it but its key and account.
    pub fn new(key: GroupKey, account: impl Into<String>, now: Timestamp) -> Self {
        Self {
            key,
            account: account.into(),
            name: String::new(),
            owner: None,
            tags: BTreeSet::new(),
            attributes: Map::new(),
            member_count: 0,
            created_at: now,
            updated_at: now,
        }
    }
}
