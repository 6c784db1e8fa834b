//! Touch counters for frequency caps: timestamps per (contact, account, category).

use serde::{Deserialize, Serialize};

use crate::contact::ContactKey;

/// Which bucket a touch counts in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TouchKey {
    pub contact: ContactKey,
    /// The platform account that touched the contact.
    pub account: String,
    /// Message category, e.g. `marketing`, `service`.
    pub category: String,
}

impl TouchKey {
    pub fn new(
        contact: ContactKey,
        account: impl Into<String>,
        category: impl Into<String>,
    ) -> Self {
        Self {
            contact,
            account: account.into(),
            category: category.into(),
        }
    }
}
