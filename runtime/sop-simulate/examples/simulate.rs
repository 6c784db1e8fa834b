//! Prints a simulation report: `cargo run -p sop-simulate --example simulate -- PLAYBOOK
//! [CONTACTS] [DAYS] [SEED] [--json]` (from the repository root).

use sop_simulate::{SimulateOptions, simulate};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let args: Vec<&String> = args.iter().filter(|a| *a != "--json").collect();
    let Some(playbook) = args.first() else {
        eprintln!("usage: simulate PLAYBOOK [CONTACTS] [DAYS] [SEED] [--json]");
        std::process::exit(2);
    };
    let mut options = SimulateOptions::new(playbook.as_str());
    let number = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok());
    if let Some(n) = number(1) {
        options.contacts = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(n) = number(2) {
        options.days = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(n) = number(3) {
        options.seed = n;
    }
    match simulate(options) {
        Ok(report) if json => match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("{e}"),
        },
        Ok(report) => print!("{report}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
