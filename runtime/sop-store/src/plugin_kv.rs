//! The plugins' private key-value store (token caches), with expiry.

use serde::{Deserialize, Serialize};
use sop_clock::Timestamp;

use crate::serde_time::opt_ms;

/// A stored plugin value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
    pub value: Vec<u8>,
    /// Absent: kept until deleted. Reads at or after this instant see nothing.
    #[serde(with = "opt_ms")]
    pub expires_at: Option<Timestamp>,
}

impl KvEntry {
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}
