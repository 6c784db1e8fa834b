//! What the runtime needs from the plugin host: the catalog, `invoke` and `check-outcome`.

use std::future::Future;
use std::pin::Pin;

use sop_engine::{ActionResult, OutcomeStatus};

/// A boxed, sendable future (keeps [`Plugins`] object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One plugin call, as recorded in the outbox before it is made.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginCall {
    pub plugin: String,
    /// The action's name within the plugin, e.g. `send_welcome`.
    pub action: String,
    /// The platform account the call acts through.
    pub account: String,
    pub input: serde_json::Value,
    /// The idempotency key handed to the platform (`r<run>.<step>.<iteration>`).
    pub key: String,
}

/// The plugin host as the runtime sees it.
pub trait Plugins: Send + Sync + std::fmt::Debug {
    /// Every plugin's manifest: delivery class, audience and asynchrony of actions.
    fn catalog(&self) -> &sop_dsl::Catalog;
    /// Every failure (host or plugin) mapped to an engine ActionResult (host errors:
    /// Transient or OutcomeUnknown).
    fn invoke<'a>(&'a self, call: &'a PluginCall) -> BoxFuture<'a, ActionResult>;
    /// Reconcile: `handle` from an Accepted result, or None after a crash (key only).
    /// None: cannot reconcile.
    fn check_outcome<'a>(
        &'a self,
        call: &'a PluginCall,
        handle: Option<&'a str>,
    ) -> BoxFuture<'a, Option<OutcomeStatus>>;
}
