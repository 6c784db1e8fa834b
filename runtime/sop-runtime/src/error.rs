//! Why a runtime operation failed.

use sop_store::StoreError;

/// A runtime failure. Store failures keep their type; playbook problems carry every
/// diagnostic so operators see all their mistakes at once.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The store refused or failed (disk full, read-only, corrupt, conflict after retries).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// One or more playbooks of a deploy did not check; nothing was deployed.
    #[error("deploy refused, nothing deployed:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// No deployed playbook has this id.
    #[error("no playbook `{0}` is deployed")]
    UnknownPlaybook(String),
    /// No run has this id.
    #[error("no run {0}")]
    UnknownRun(String),
    /// sop has heard of no such group (groups are learnt from the platform's group events).
    #[error("no group {0}: sop learns groups from the platform's group events")]
    UnknownGroup(String),
    /// A stored record the runtime owns cannot be read (detail bytes, a stored source).
    #[error("run {run}: {reason}")]
    Corrupt { run: String, reason: String },
    /// The request itself is wrong (an empty audience, a bad mapping).
    #[error("bad request: {0}")]
    BadRequest(String),
}
