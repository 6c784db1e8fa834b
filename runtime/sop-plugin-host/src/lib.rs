//! Sandboxed wasmtime host for sop platform plugins.
//!
//! A plugin is a WASM component of the `sop:plugin` world (`plugins/wit/plugin.wit`). The host
//! compiles each one once, checks its manifest, and runs every call in a fresh store under a
//! memory cap, a fuel budget and a wall-clock timeout. Its only ways out are the imports:
//! `http.fetch` (allow-listed, re-pointable, address-vetted), `logging.log` (to `tracing`),
//! `kv` (namespaced per plugin) and `clock.now-ms`, whose time comes from the runtime's one
//! [`sop_clock::Clock`]. See `docs/plugin-sandbox.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::collections::BTreeMap;
//! use sop_plugin_host::{HostConfig, HostServices, PluginHost};
//!
//! let host = PluginHost::new(HostConfig::default(), HostServices::default())?;
//! let (plugins, errors) = host.load_dir("plugins".as_ref(), &BTreeMap::new()).await;
//! for e in &errors {
//!     eprintln!("{e}");
//! }
//! for p in &plugins {
//!     println!("{} {}", p.name(), serde_json::to_string(p.manifest())?);
//! }
//! # Ok(()) }
//! ```

mod address;
mod bindings;
mod call;
mod call_state;
mod describe;
mod egress;
mod error;
mod fetch;
mod host;
mod kv;
mod limits;
mod manifest;
mod resolver;

pub use address::{Cidr, CidrError, non_public_reason};
pub use call::{
    Account, Invocation, InvokeOutcome, NormalizedEvent, OutcomeStatus, Pending, PluginError,
    WebhookError, WebhookOutcome, WebhookRequest, WebhookResponse,
};
pub use describe::{describe_bytes, describe_file};
pub use egress::NetworkConfig;
pub use error::{CallError, HostError, LoadError};
pub use host::{HostConfig, HostServices, Plugin, PluginHost, PluginSettings};
pub use kv::{KvError, KvStore, MemoryKv};
pub use limits::PluginLimits;
pub use manifest::{
    ActionSpec, Audience, BatchSpec, Delivery, EventSpec, LimitScope, Manifest, RateLimit,
    TouchLimit, TouchPeriod,
};
pub use resolver::{Lookup, Resolver, StaticResolver, SystemResolver};
