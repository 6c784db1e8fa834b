//! The world as `advance` may see it: the time, the subject, the plugin catalog, settings.

use chrono::{DateTime, Utc};
use sop_dsl::Catalog;

use crate::config::EngineConfig;
use crate::contact::ContactView;

/// Read-only inputs to a transition besides the run and the input. The engine reads no clock:
/// `now` is the only time it knows.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    pub contact: &'a ContactView,
    /// Action delivery, audience and asynchrony come from the manifests. Without a catalog
    /// (or for an unknown action) actions are treated as at-most-once, the safe side.
    pub catalog: Option<&'a Catalog>,
    pub config: &'a EngineConfig,
}
