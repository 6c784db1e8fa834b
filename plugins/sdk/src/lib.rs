//! SDK for writing sop platform plugins as WASM components.
//!
//! A plugin implements [`Plugin`] and exports it with [`export_plugin!`]. Its platform logic
//! talks to the runtime only through the [`Host`] trait, so every unit test runs natively
//! against [`testing::FakeHost`]; inside the component the same code uses [`WasmHost`].
//!
//! - [`action`]: typed action registration (name + serde input type + handler), with the
//!   input schema derived from the type and bad input answered as `invalid-input`.
//! - [`http`]: JSON requests over `http.fetch`, with failures mapped by delivery semantics.
//! - [`manifest`]: the manifest as JSON for `sop validate --plugins`.
//! - [`kv`]: JSON values in the plugin's store; [`webhook`]: request accessors, answers and
//!   de-duplication ids.
//!
//! See `docs/plugins.md` for the walk-through and `examples/echo.rs` for a complete plugin.
//!
//! ```
//! use sop_plugin_sdk::action::{ActionDef, Actions};
//! use sop_plugin_sdk::{InvokeOutcome, json};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Ping { text: String }
//!
//! let actions: Actions<()> = Actions::new().action(
//!     ActionDef::new("ping", "Answers with its input"),
//!     |_: &(), input: Ping| Ok(InvokeOutcome::Done(json::to_json(&input.text))),
//! );
//! let out = actions.dispatch(&(), "ping", r#"{"text":"hi"}"#).unwrap();
//! assert_eq!(out, InvokeOutcome::Done(r#""hi""#.to_owned()));
//! ```

pub mod action;
pub mod bindings;
mod error;
mod host;
pub mod http;
pub mod json;
pub mod kv;
pub mod manifest;
mod plugin;
pub mod testing;
pub mod webhook;

pub use bindings::sop::plugin::http::{
    ConnectionFailure, Error as FetchError, Request as HttpRequest, Response as HttpResponse,
};
pub use bindings::sop::plugin::logging::Level;
pub use bindings::sop::plugin::types::*;
pub use host::{Host, HostLog, WasmHost};
pub use plugin::Plugin;
// Re-exported so plugin crates derive input schemas with the same version the SDK reads.
pub use schemars;
