//! `sop simulate`: runs a playbook with the real engine, gate and triggers on a virtual clock
//! against a synthetic world, and reports what each step would do.
//!
//! The runtime (`sop_runtime::Runtime`), the in-memory store, the policy gate
//! (`sop_policy::Gate`) and the engine are the production ones; the population is the
//! emulator's deterministic generator (`sop_emulator::world::World`); a seeded behaviour model
//! makes customers arrive, reply, order, opt out and leave; platform calls are **modelled**
//! from that world (not sent through the wasm plugins). The report is read back from the
//! store (run records, histories with the gate's decisions, the outbox). See
//! `docs/simulate.md`.
//!
//! ```no_run
//! let mut options = sop_simulate::SimulateOptions::new("playbooks/reactivation.yaml");
//! options.contacts = 1_000;
//! options.days = 30;
//! options.seed = 7;
//! let report = sop_simulate::simulate(options)?;
//! println!("{report}");                                   // the table
//! println!("{}", serde_json::to_string(&report).unwrap()); // JSON
//! # Ok::<(), sop_simulate::SimulateError>(())
//! ```

mod behaviour;
mod drive;
mod options;
mod platform;
mod report;
mod world;

pub use behaviour::Traffic;
pub use drive::simulate;
pub use options::{Behaviour, SimulateError, SimulateOptions, default_start};
pub use report::{Header, MODELLED_NOTE, PlaybookReport, Report, RunCounts, StepReport};
