//! `sop-bench`: the operator-facing benchmarks of issue #8 (and the process-level checks of
//! issue #6), each against the real daemon and the real emulator started as separate release
//! processes on this machine. Prints a table per scenario and keeps the figures in
//! `docs/performance.md` (one block per scenario, replaced by the next run of it).
//!
//! ```sh
//! cargo run --release -p sop-bench                      # every scenario, default sizes
//! cargo run --release -p sop-bench -- welcome idle      # some of them
//! cargo run --release -p sop-bench -- accounts --accounts-contacts 100000
//! ```

mod broadcast;
mod emu;
mod load;
mod machine;
mod report;
mod scenarios;
mod setup;
mod soak;
mod stats;
mod welcome;

use std::process::ExitCode;

use clap::Parser;

use report::{Context, ScenarioReport};

/// Every scenario, in the order `sop-bench` runs them.
pub const SCENARIOS: [&str; 7] = [
    "welcome",
    "ramp",
    "idle",
    "invoke",
    "accounts",
    "broadcast",
    "soak",
];

/// End-to-end benchmarks of the daemon against the emulator (release builds, separate processes).
#[derive(Debug, Clone, Parser)]
#[command(name = "sop-bench")]
pub struct Args {
    /// Scenarios to run (default: all): welcome, ramp, idle, invoke, accounts, broadcast, soak.
    pub scenarios: Vec<String>,
    /// welcome: new-contact callbacks per second.
    #[arg(long, default_value_t = 1000.0)]
    pub welcome_rate: f64,
    /// welcome: how long the load runs, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub welcome_seconds: f64,
    /// welcome, ramp: WeCom accounts the callbacks are spread over; 0 = enough that the
    /// daemon's pacing of WeCom's documented limits (40.8 calls/s per account) is not the limit.
    #[arg(long, default_value_t = 0)]
    pub welcome_accounts: u32,
    /// ramp: callback rates to try, in order; the ramp stops at the first that misses p99 < 1 s.
    #[arg(long, value_delimiter = ',', default_values_t = [200.0, 300.0, 400.0, 500.0, 700.0, 1000.0, 2000.0, 5000.0])]
    pub ramp_rates: Vec<f64>,
    /// ramp: seconds per step.
    #[arg(long, default_value_t = 20.0)]
    pub ramp_seconds: f64,
    /// idle: seconds of CPU measurement after the daemon settled.
    #[arg(long, default_value_t = 30.0)]
    pub idle_seconds: f64,
    /// accounts: WeCom accounts (one emulated corp each).
    #[arg(long, default_value_t = 100)]
    pub accounts: u32,
    /// accounts: each account's limit, calls per minute (emulator and daemon).
    #[arg(long, default_value_t = 100)]
    pub account_limit_per_min: u32,
    /// accounts: contacts in the broadcast, spread evenly over the accounts.
    #[arg(long, default_value_t = 10_000)]
    pub accounts_contacts: u32,
    /// accounts: new contacts per second welcomed through the first account meanwhile.
    #[arg(long, default_value_t = 0.5)]
    pub accounts_welcome_rate: f64,
    /// broadcast: contacts in the broadcast (no platform limit).
    #[arg(long, default_value_t = 20_000)]
    pub broadcast_contacts: u32,
    /// broadcast: accounts the contacts are spread over. The daemon still paces each on the
    /// manifest's 150,000 calls an hour (40.8/s); 500 of them allow 20,417 sends/s, so
    /// pacing does not keep the 20,000/s target out of reach.
    #[arg(long, default_value_t = 500)]
    pub broadcast_accounts: u32,
    /// broadcast: stop after the sends instead of following the outcome phase (the checks
    /// start 5 minutes after the first task).
    #[arg(long)]
    pub broadcast_skip_outcomes: bool,
    /// soak: new-contact callbacks per second, held for `--soak-seconds`.
    #[arg(long, default_value_t = 200.0)]
    pub soak_rate: f64,
    /// soak: how long the load runs, seconds (at least 180 to judge memory growth).
    #[arg(long, default_value_t = 600.0)]
    pub soak_seconds: f64,
    /// The daemon's `storage.cache_mib` (sled's page cache); unset keeps the default, 64.
    #[arg(long)]
    pub store_cache_mib: Option<u64>,
    /// Extra environment of the daemon, `KEY=VALUE` (repeatable), e.g. `TOKIO_WORKER_THREADS=8`.
    #[arg(long, value_parser = parse_env)]
    pub daemon_env: Vec<(String, String)>,
    /// Where to keep the figures; `-` for nowhere.
    #[arg(long, default_value = "docs/performance.md")]
    pub docs: String,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let chosen: Vec<String> = if args.scenarios.is_empty() {
        SCENARIOS.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenarios.clone()
    };
    if let Some(bad) = chosen.iter().find(|s| !SCENARIOS.contains(&s.as_str())) {
        eprintln!(
            "sop-bench: unknown scenario {bad:?}; choose from {}",
            SCENARIOS.join(", ")
        );
        return ExitCode::from(2);
    }
    let root = sop_harness::workspace_root();
    let machine = machine::describe();
    let commit = machine::commit(&root);
    let mut failed = false;
    for name in &chosen {
        let ctx = Context {
            when: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            commit: commit.clone(),
            machine: machine.clone(),
            load: machine::load(),
            command: format!(
                "cargo run --release -p sop-bench -- {name}{}",
                scenarios::flags(name, &args)
            ),
        };
        eprintln!("sop-bench: {name} (load {})…", ctx.load);
        let report: ScenarioReport = match scenarios::run(name, &args).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("sop-bench: {name} failed: {e:#}");
                failed = true;
                continue;
            }
        };
        println!(
            "\n## {name}: {}\n\n{}",
            report.setup,
            report::table(&report.rows)
        );
        for n in &report.notes {
            println!("- {n}");
        }
        if args.docs != "-" {
            let path = root.join(&args.docs);
            let block = report::block(&report, &ctx);
            let page = std::fs::read_to_string(&path).unwrap_or_default();
            match report::upsert(&page, name, &block) {
                Ok(page) => {
                    if let Err(e) = std::fs::write(&path, page) {
                        eprintln!("sop-bench: cannot write {}: {e}", path.display());
                        failed = true;
                    }
                }
                Err(e) => {
                    eprintln!("sop-bench: {}: {e}", path.display());
                    failed = true;
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
