//! `sop run`: the daemon. See `docs/operations.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use sop::observability::{LogFormat, init_logging};

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
}

pub fn run(args: Args) -> ExitCode {
    init_logging(args.log_format);
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
            let daemon = sop::daemon::Daemon::build(config, None).await?;
            drop(daemon);
            println!("configuration, plugins and playbooks are valid");
            Ok(())
        } else {
            sop::daemon::run(&args.config).await
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
