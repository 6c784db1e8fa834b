//! `sop`: the command-line entry point. Each subcommand lives in its own module under `cmd/`.

mod cmd;

// jemalloc: glibc's malloc cost 10-15 % of the daemon's CPU under load (docs/performance.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "sop",
    version,
    about = "Digital employees for private-domain customer operations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check playbooks and report every problem at once.
    Validate(cmd::validate::Args),
    /// Show what a playbook will do: triggers, next fire times, steps and policies.
    Preview(cmd::preview::Args),
    /// Print the JSON Schema of the playbook format (for editor completion).
    Schema(cmd::schema::Args),
    /// Run a playbook on a virtual clock against a synthetic world and report each step.
    Simulate(cmd::simulate::Args),
    /// Run the daemon: webhooks in, playbooks running, admin API and metrics.
    Run(cmd::run::Args),
    /// Cron helpers.
    #[command(subcommand)]
    Cron(cmd::cron::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => cmd::validate::run(args),
        Command::Preview(args) => cmd::preview::run(args),
        Command::Schema(args) => cmd::schema::run(args),
        Command::Simulate(args) => cmd::simulate::run(args),
        Command::Cron(command) => cmd::cron::run(command),
        Command::Run(args) => cmd::run::run(args),
    }
}
