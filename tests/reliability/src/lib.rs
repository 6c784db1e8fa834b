//! Reliability tests through real processes (issue #9): the daemon killed with SIGKILL in a
//! loop while it works, and platform faults injected by the emulator. The tests live in
//! `tests/`; this library holds what they share: the world they start ([`spec`]), seeded
//! randomness ([`Rng`]), and the [`Audit`] that reads the outcome back from the emulator's
//! delivery log and the daemon's admin API.

mod audit;

use std::path::PathBuf;

pub use audit::{Audit, OutboxEntry, RunSummary, deliveries, step_of};
use sop_harness::{Profile, WorldSpec};

/// The broadcast playbook (manual start, one mass send per contact, step `promo`).
pub const BROADCAST: &str = "crashloop-broadcast";
/// The welcome playbook (`wecom.contact_added`, one welcome message, step `welcome`).
pub const WELCOME: &str = "crashloop-welcome";

/// This crate's directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The daemon with this crate's config (`sop.toml.in`: the demo's accounts, mass-send
/// outcomes checked every second) and playbooks, and an emulator (`emulator.json`) that
/// confirms mass sends at once, retries callbacks for a long while, has `contacts` people and
/// no receive or API limits of its own (the daemon's gate paces the calls). Its welcome codes
/// live a day instead of 20 seconds, so a code never expires while the daemon restarts: a
/// welcome that is not sent is then the daemon's doing, never the clock's.
pub fn spec(profile: Profile, seed: u64, contacts: usize) -> WorldSpec {
    let dir = crate_dir();
    let template = dir.join("sop.toml.in");
    let mut spec = WorldSpec::demo();
    spec.profile = profile;
    spec.config_template = std::fs::read_to_string(&template)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", template.display()));
    spec.playbooks = dir.join("playbooks");
    spec.daemon_env.retain(|(k, _)| k != "RUST_LOG");
    spec.daemon_env.push(("RUST_LOG".into(), "warn".into()));
    spec.emulator_args = [
        "--seed",
        &seed.to_string(),
        "--contacts",
        &contacts.to_string(),
        "--rate",
        "0",
        "--confirm-after-ms",
        "0",
        "--receive-limit",
        "unlimited",
        "--api-limit-per-min",
        "0",
        "--callback-retries",
        "1000",
    ]
    .map(str::to_owned)
    .to_vec();
    spec.emulator_args.extend([
        "--config".to_owned(),
        dir.join("emulator.json").display().to_string(),
    ]);
    spec
}

/// An environment variable parsed as `T`, or `default` when unset; a value that does not
/// parse is an error naming the variable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        Err(_) => default,
    }
}

/// splitmix64: reproducible kill moments and fault choices from a seed.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }
}

/// The emulator's id of its `i`-th contact (`wmEmu` and ten digits).
pub fn contact_id(i: usize) -> String {
    format!("wmEmu{i:010}")
}

/// True when every callback the emulator generated was answered by the daemon or given up
/// (`/_emulator/counters`; cheap at any size); `None` if the emulator cannot be read.
pub async fn callbacks_settled(emulator: &sop_harness::Http) -> Option<bool> {
    let c = emulator.get("/_emulator/counters").await.ok()?;
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    Some(n("callbacks_acked") + n("callbacks_failed") >= n("events_generated"))
}

/// True when the work is done: every callback settled ([`callbacks_settled`]) and no run of
/// `playbooks` is still live; `None` while it is not or cannot be read (for `wait_for`).
pub async fn work_finished(
    admin: &sop_harness::Http,
    emulator: &sop_harness::Http,
    playbooks: &[&str],
) -> Option<()> {
    if !callbacks_settled(emulator).await? {
        return None;
    }
    for playbook in playbooks {
        let live = admin
            .get(&format!("/api/runs?playbook={playbook}&limit=1"))
            .await
            .ok()?;
        if !live["runs"].as_array()?.is_empty() {
            return None;
        }
    }
    Some(())
}
