//! Contacts: the people (and their platform identities) runs are about.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sop_clock::Timestamp;

use crate::serde_time::{json_map, ms, opt_ms};

/// A contact is identified by its tenant and a sop-wide contact id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContactKey {
    pub tenant: String,
    pub id: String,
}

impl ContactKey {
    pub fn new(tenant: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            id: id.into(),
        }
    }
}

/// One contact as sop knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub key: ContactKey,
    /// Platform identity per platform account, e.g. `"wecom:acme"` → external user id.
    pub platform_ids: BTreeMap<String, String>,
    /// Free attributes set by playbooks (`set`) and plugins.
    #[serde(with = "json_map")]
    pub attributes: Map<String, Value>,
    pub tags: BTreeSet<String>,
    /// The staff member who owns the relationship.
    pub owner: Option<String>,
    /// IANA zone name for quiet hours and calendar caps; none: the tenant default.
    pub time_zone: Option<String>,
    /// Last message either way, join or order. Drives the inactivity trigger.
    #[serde(with = "opt_ms")]
    pub last_interaction: Option<Timestamp>,
    pub consent: Consent,
    pub friend: FriendStatus,
    #[serde(with = "ms")]
    pub created_at: Timestamp,
    #[serde(with = "ms")]
    pub updated_at: Timestamp,
}

impl Contact {
    /// A contact with nothing known about it yet.
    pub fn new(key: ContactKey, now: Timestamp) -> Self {
        Self {
            key,
            platform_ids: BTreeMap::new(),
            attributes: Map::new(),
            tags: BTreeSet::new(),
            owner: None,
            time_zone: None,
            last_interaction: None,
            consent: Consent::default(),
            friend: FriendStatus::Unknown,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Marketing consent (PIPL). Absent opt-out: marketing allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub opted_out: Option<OptOut>,
}

/// When, by whom and how a contact opted out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOut {
    #[serde(with = "ms")]
    pub at: Timestamp,
    /// Who recorded it: the contact itself, or an operator / API caller.
    pub by: String,
    /// How: the keyword received, or the API endpoint.
    pub source: String,
}

/// Whether the contact can be messaged 1:1 at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FriendStatus {
    Unknown,
    Friend,
    /// The contact deleted the staff member: never message.
    DeletedByContact,
    /// The staff member deleted the contact.
    DeletedByStaff,
}
