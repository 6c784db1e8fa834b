//! The durable scheduler: runs the pure engine (`sop-engine`) against the store, the clock,
//! the policy gate and the plugins. See `docs/engine.md`, section "Runtime".
//!
//! Every run transition is one atomic store commit (run state, timers, subscriptions,
//! contact changes, history); effects are performed only after it. A send's outbox intent is
//! committed durably before the plugin is called, so a crash never makes a message go out
//! twice. Waits are timers in the store, not sleeping tasks.

mod batch;
mod bulk;
mod config;
mod dispatch;
mod durability;
mod error;
mod feeds;
mod flow;
mod gate;
mod groups;
mod ingest;
mod mapping;
mod migrate;
mod plugins;
mod registry;
mod runtime;
mod schedule;
mod timers;
mod tx;

pub use config::RuntimeConfig;
pub use error::RuntimeError;
pub use gate::{Admission, ConsentChange, GateRequest, PassThrough, PolicyGate, Priority, Slot};
pub use groups::GroupEdit;
pub use ingest::{EventSource, IngestReceipt};
pub use mapping::{DETAIL_FORMAT, decode_state, engine_run_id, store_run_id};
pub use migrate::MigrationReport;
pub use plugins::{BoxFuture, PluginCall, Plugins};
pub use registry::{DeployReport, DeployedPlaybook, Deployment, PlaybookSource, step_ids};
pub use runtime::{EnrollRequest, ManualAudience, ManualReceipt, Runtime, RuntimeDeps};
