//! Local WeCom, Douyin and demo-shop platform emulator for runs, tests and benchmarks.
//!
//! A real HTTP server that answers at the platforms' real paths with their JSON shapes and
//! error codes, so a client written against the real APIs works unchanged with its base URL
//! pointed here. It models tokens, rate limits, welcome codes, confirmable mass-send tasks,
//! receive limits, friendships, groups, tags, remarks, app messages and Douyin reply windows;
//! generates a seeded population and traffic; delivers callbacks (encrypted, signed, retried)
//! to the daemon; and records everything delivered for tests to assert on.
//!
//! ```no_run
//! # async fn demo() -> Result<(), String> {
//! use sop_emulator::{ClockChoice, Config, start};
//!
//! let emu = start(Config::default(), ClockChoice::System, "127.0.0.1:0".parse().unwrap()).await?;
//! println!("WeCom base URL: {}/cgi-bin/", emu.url());
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! See `docs/emulator.md` for endpoints, the `/_emulator` API and what is modelled.

pub mod app;
pub mod calendar;
pub mod config;
pub mod counters;
pub mod delivery;
pub mod douyin;
pub mod events;
pub mod faults;
pub mod ids;
pub mod inspect;
pub mod ledger;
pub mod rate_limit;
pub mod rng;
pub mod server;
pub mod shop;
pub mod tags;
pub mod traffic;
pub mod wecom;
pub mod world;

pub use app::App;
pub use config::Config;
pub use server::{ClockChoice, Running, start};
pub use sop_clock::{Clock, SystemClock, VirtualClock};
