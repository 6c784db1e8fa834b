//! `sop simulate`: a playbook on the virtual clock against the emulator's synthetic world,
//! with a report per step (see `docs/simulate.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use sop_simulate::{SimulateOptions, simulate};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Playbook to simulate (YAML).
    file: PathBuf,
    /// Further playbooks deployed beside it; they share frequency caps, as in production.
    #[arg(long = "with", value_name = "FILE")]
    with: Vec<PathBuf>,
    /// Contacts in the synthetic world.
    #[arg(long, default_value_t = 1_000)]
    contacts: u32,
    /// Simulated days.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Seed of the world and of the customers' behaviour: same seed, same report.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory of plugin manifests (`*.json`).
    #[arg(long, value_name = "DIR", default_value = "playbooks/plugins")]
    plugins: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> ExitCode {
    let mut options = SimulateOptions::new(args.file);
    options.playbooks.extend(args.with);
    options.contacts = args.contacts;
    options.days = args.days;
    options.seed = args.seed;
    options.plugins_dir = args.plugins;
    let report = match simulate(options) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{report}");
    }
    ExitCode::SUCCESS
}
