//! Start the real `sop` daemon and the platform emulator (`sop-emulator`) as processes on this
//! machine, wired to each other, for end-to-end tests and benchmarks.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sop_harness::Error> {
//! use sop_harness::{World, WorldSpec};
//! let world = World::start(WorldSpec::demo()).await?;
//! world.emulator.post("/_emulator/events", &serde_json::json!({"kind": "add_contact"})).await?;
//! let deliveries = world.emulator.deliveries().await?;
//! # let _ = deliveries; Ok(()) }
//! ```
//!
//! - [`build`] compiles the binaries and the bundled WASM plugins once per test process
//!   (`cargo build`, into the caller's `CARGO_TARGET_DIR`);
//! - [`World`] picks free ports, renders the daemon's config from a template (the demo's
//!   `runtime/sop/demo/sop.toml.in` by default), starts the daemon, waits until `/readyz`
//!   answers, then starts the emulator pointed at the daemon's webhooks;
//! - [`Daemon`] can be killed with SIGKILL, stopped with SIGTERM and started again on the same
//!   data dir; [`Http`] talks JSON to the admin API and to the emulator's `/_emulator/*` routes.
//!
//! Every wait polls a condition against a generous deadline: nothing here measures time, so
//! the tests stay correct on a loaded machine.

pub mod build;
mod http;
mod process;
mod world;

pub use build::{Binaries, Profile, binaries, plugin_dir, workspace_root};
pub use http::{Http, Reply};
pub use process::{Daemon, Emulator, free_port};
pub use world::{DEMO_ADMIN_TOKEN, World, WorldSpec, advance_clocks, wait_for};

/// Whatever went wrong starting or talking to the processes, in words for a test failure.
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Shorthand for `Err(Error(format!(...)))`.
macro_rules! fail {
    ($($arg:tt)*) => { Err($crate::Error(format!($($arg)*))) };
}
pub(crate) use fail;
