//! `sop run`: the daemon. See `docs/operations.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use sop::observability::{LogFormat, init_logging};
use sop_clock::VirtualClock;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file (TOML); see runtime/sop/sop.example.toml.
    #[arg(long, short, value_name = "FILE", default_value = "sop.toml")]
    config: PathBuf,
    /// How log lines are written to stderr (`RUST_LOG` filters them; default `info`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Check the configuration, plugins and playbooks, then exit without serving.
    #[arg(long)]
    check: bool,
    /// For tests and simulations only: run on a manual clock standing at this Unix time in
    /// milliseconds, moved only by `POST /api/clock` (never by the wall clock).
    #[arg(long, value_name = "START_MS")]
    manual_clock: Option<u64>,
}

pub fn run(args: Args) -> ExitCode {
    init_logging(args.log_format);
    let manual_clock = match args.manual_clock.map(manual_clock) {
        None => None,
        Some(Ok(clock)) => Some(clock),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        if args.check {
            let config = sop::config::Config::load(&args.config).map_err(|e| e.to_string())?;
            let daemon = sop::daemon::Daemon::build(config, None, manual_clock).await?;
            drop(daemon);
            println!("configuration, plugins and playbooks are valid");
            Ok(())
        } else {
            sop::daemon::run(&args.config, manual_clock).await
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A manual clock standing at `start_ms` (Unix ms).
fn manual_clock(start_ms: u64) -> Result<VirtualClock, String> {
    i64::try_from(start_ms)
        .ok()
        .and_then(sop_clock::DateTime::from_timestamp_millis)
        .map(VirtualClock::new)
        .ok_or_else(|| format!("--manual-clock {start_ms} is out of range"))
}
