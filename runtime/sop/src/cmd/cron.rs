//! `sop cron ...`.

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the next fire times of a cron expression.
    Next {},
}

pub fn run(_command: Command) -> ExitCode {
    eprintln!("sop cron: not implemented yet");
    ExitCode::FAILURE
}
