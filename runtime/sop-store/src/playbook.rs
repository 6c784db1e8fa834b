//! Deployed playbook versions: runs finish on the version they started on, so every deployed
//! source is kept.

use serde::{Deserialize, Serialize};
use sop_clock::Timestamp;

use crate::serde_time::ms;

/// One deployed version of a playbook, as its operator wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybookVersion {
    /// The playbook's `id`.
    pub id: String,
    /// 1, 2, ...: a new number for every changed source.
    pub version: u32,
    /// The YAML source.
    pub source: String,
    /// Where it came from (a file path, `api`).
    pub origin: String,
    /// A digest of `source`, to tell an unchanged redeploy from a change.
    pub digest: String,
    #[serde(with = "ms")]
    pub deployed_at: Timestamp,
}
