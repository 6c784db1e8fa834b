//! Tests on `MemoryStore` with explicit timestamps: no clock, no sleeps.

mod audience;
mod cron;
mod inactivity;
mod manual;

use sop_clock::Timestamp;
use sop_dsl::Playbook;
use sop_store::{Batch, Contact, ContactKey, MemoryStore, Op, Store};

use crate::Deployed;

/// Parses an RFC 3339 instant.
pub(crate) fn at(text: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("bad instant `{text}`: {e}"))
        .to_utc()
}

/// A playbook from YAML that must load without errors.
pub(crate) fn playbook(src: &str) -> Playbook {
    let loaded = sop_dsl::load(src, None);
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == sop_dsl::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "playbook has errors: {errors:?}");
    loaded.playbook
}

pub(crate) fn deployed<'a>(playbook: &'a Playbook, deployed_at: Timestamp) -> Deployed<'a> {
    Deployed {
        id: &playbook.id,
        version: playbook.version,
        playbook,
        tenant: "acme",
        account: "wecom:acme",
        deployed_at,
    }
}

pub(crate) fn commit(store: &MemoryStore, ops: Vec<Op>) {
    let mut batch = Batch::new();
    for op in ops {
        batch.push(op);
    }
    store.commit(batch).expect("commit");
}

/// A contact of tenant `acme`.
pub(crate) fn contact(id: &str, tags: &[&str], last: Option<Timestamp>) -> Contact {
    let mut c = Contact::new(ContactKey::new("acme", id), at("2026-01-01T00:00:00Z"));
    c.tags = tags.iter().map(|t| (*t).to_owned()).collect();
    c.last_interaction = last;
    c
}
