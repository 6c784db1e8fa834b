//! `sop preview`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("sop preview: not implemented yet");
    ExitCode::FAILURE
}
