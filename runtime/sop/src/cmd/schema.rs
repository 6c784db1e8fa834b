//! `sop schema`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("sop schema: not implemented yet");
    ExitCode::FAILURE
}
