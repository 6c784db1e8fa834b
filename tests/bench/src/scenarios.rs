//! The scenarios: each starts what it needs, measures, and returns its rows.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::Args;
use crate::machine;
use crate::report::{Row, ScenarioReport};
use crate::setup;
use crate::stats::fmt_ms;
use crate::welcome::{self, WelcomeRun};

/// Runs scenario `name`.
pub async fn run(name: &str, args: &Args) -> Result<ScenarioReport> {
    match name {
        "welcome" => welcome_at_rate(args).await,
        "ramp" => ramp(args).await,
        "idle" => idle(args).await,
        "invoke" => invoke().await,
        "accounts" => crate::broadcast::accounts(args).await,
        "broadcast" => crate::broadcast::unlimited(args).await,
        "soak" => soak(args).await,
        other => bail!("unknown scenario {other}"),
    }
}

/// The flags that size scenario `name`, as given, for the reproduce command.
pub fn flags(name: &str, a: &Args) -> String {
    let join = |v: &[f64]| {
        v.iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut env: String = a
        .daemon_env
        .iter()
        .map(|(k, v)| format!(" --daemon-env {k}={v}"))
        .collect();
    if let Some(mib) = a.store_cache_mib {
        env += &format!(" --store-cache-mib {mib}");
    }
    env + &match name {
        "welcome" => format!(
            " --welcome-rate {} --welcome-seconds {} --welcome-accounts {}",
            a.welcome_rate, a.welcome_seconds, a.welcome_accounts
        ),
        "ramp" => format!(
            " --ramp-rates {} --ramp-seconds {} --welcome-accounts {}",
            join(&a.ramp_rates),
            a.ramp_seconds,
            a.welcome_accounts
        ),
        "idle" => format!(" --idle-seconds {}", a.idle_seconds),
        "soak" => format!(
            " --soak-rate {} --soak-seconds {} --welcome-accounts {}",
            a.soak_rate, a.soak_seconds, a.welcome_accounts
        ),
        "accounts" => format!(
            " --accounts {} --account-limit-per-min {} --accounts-contacts {} --accounts-welcome-rate {}",
            a.accounts, a.account_limit_per_min, a.accounts_contacts, a.accounts_welcome_rate
        ),
        "broadcast" => format!(
            " --broadcast-contacts {} --broadcast-accounts {}",
            a.broadcast_contacts, a.broadcast_accounts
        ),
        _ => String::new(),
    }
}

/// `--welcome-accounts`, or enough accounts for `rate` (see [`welcome::accounts_for`]).
fn welcome_accounts(a: &Args, rate: f64) -> u32 {
    if a.welcome_accounts > 0 {
        a.welcome_accounts
    } else {
        welcome::accounts_for(rate)
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn welcome_rows(r: &WelcomeRun, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    rows.push(Row::info(
        "callbacks offered",
        format!("{} at {}/s", thousands(r.injected as u64), r.rate),
    ));
    match r.latency {
        Some(l) => {
            rows.push(Row::info("callback → welcome p50", fmt_ms(l.p50)));
            rows.push(Row::target(
                "callback → welcome p99",
                fmt_ms(l.p99),
                "< 50 ms",
                l.p99 < 50.0,
            ));
            rows.push(Row::info("callback → welcome max", fmt_ms(l.max)));
        }
        None => rows.push(Row::target(
            "callback → welcome",
            "none delivered",
            "< 50 ms",
            false,
        )),
    }
    rows.push(Row::target(
        "welcomes over 20 s or never sent",
        thousands(r.over_20s as u64),
        "0",
        r.over_20s == 0,
    ));
    rows.push(Row::info(
        "send_welcome_msg errors (expired code, …)",
        thousands(r.welcome_errors),
    ));
    rows.push(Row::info(
        "callback retries / given up",
        format!(
            "{} / {}",
            thousands(r.callback_retries),
            thousands(r.callbacks_failed)
        ),
    ));
    rows.push(Row::info(
        "daemon CPU (cores busy)",
        format!("{:.2}", r.daemon_cpu),
    ));
    rows.push(Row::info(
        "daemon peak RSS",
        format!("{:.0} MiB", r.daemon_peak_mib),
    ));
    if r.inject_errors > 0 || r.late > 0 {
        notes.push(format!(
            "the generator failed {} injections and started {} more than 100 ms late",
            r.inject_errors, r.late
        ));
    }
}

async fn welcome_at_rate(a: &Args) -> Result<ScenarioReport> {
    let accounts = welcome_accounts(a, a.welcome_rate);
    let (world, _dir) = welcome::world(a, accounts).await?;
    let r = welcome::run(&world, accounts, a.welcome_rate, a.welcome_seconds).await?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    welcome_rows(&r, &mut rows, &mut notes);
    Ok(ScenarioReport {
        name: "welcome".into(),
        setup: format!(
            "new-contact callbacks at {}/s for {} s through the welcome playbook, spread over {} WeCom accounts (one tenant and emulated corp each)",
            a.welcome_rate, a.welcome_seconds, r.accounts
        ),
        rows,
        notes,
    })
}

/// Memory may grow this much (a fraction) from the second minute to the last and still count
/// as flat: caches and pools fill in the first minute, sled's page cache is bounded.
const FLAT: f64 = 0.05;

async fn soak(a: &Args) -> Result<ScenarioReport> {
    let accounts = welcome_accounts(a, a.soak_rate);
    let run = crate::soak::run(
        a,
        accounts,
        a.soak_rate,
        a.soak_seconds,
        Duration::from_secs(5),
    )
    .await?;
    let r = &run.welcome;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    rows.push(Row::target(
        "callbacks answered late (> 5 s) or not 2xx / given up",
        format!(
            "{} / {}",
            thousands(r.callback_retries),
            thousands(r.callbacks_failed)
        ),
        "0 / 0",
        r.callback_retries == 0 && r.callbacks_failed == 0,
    ));
    match crate::soak::growth(&run.rss, a.soak_seconds) {
        Some(g) => {
            rows.push(Row::info(
                "daemon RSS, 2nd minute → last minute",
                format!("{:.0} MiB → {:.0} MiB", g.settled_mib, g.final_mib),
            ));
            rows.push(Row::target(
                "RSS growth after the first minute",
                format!(
                    "{:+.1} % ({:+.2} MiB/min)",
                    (g.final_mib / g.settled_mib - 1.0) * 100.0,
                    g.slope_mib_per_min
                ),
                "flat (< 5 %)",
                g.is_flat(FLAT),
            ));
        }
        None => notes.push(format!(
            "{} s is too short to judge memory growth (at least 180 s)",
            a.soak_seconds
        )),
    }
    let first = run.rss.first().map(|(_, m)| *m);
    rows.push(Row::info(
        "store on disk after the load",
        format!("{:.0} MiB", run.after.store_mib),
    ));
    rows.push(Row::info(
        "RSS of the daemon restarted on that store, idle 30 s (fresh, empty store: at the start)",
        match first {
            Some(m) => format!("{:.0} MiB ({m:.0} MiB)", run.after.rss_mib),
            None => format!("{:.0} MiB", run.after.rss_mib),
        },
    ));
    welcome_rows(r, &mut rows, &mut notes);
    let samples: Vec<String> = run
        .rss
        .iter()
        .filter(|(t, _)| (*t as u64) % 60 < 5)
        .map(|(t, m)| format!("{:.0} s {m:.0} MiB", t))
        .collect();
    notes.push(format!("RSS each minute: {}", samples.join(", ")));
    Ok(ScenarioReport {
        name: "soak".into(),
        setup: format!(
            "new-contact callbacks at {}/s for {} s through the welcome playbook over {} WeCom accounts, the daemon's RSS sampled every 5 s",
            a.soak_rate, a.soak_seconds, r.accounts
        ),
        rows,
        notes,
    })
}

async fn ramp(a: &Args) -> Result<ScenarioReport> {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut best: Option<f64> = None;
    for &rate in &a.ramp_rates {
        // A fresh daemon and store per step: a missed step's backlog must not slow the next.
        let accounts = welcome_accounts(a, rate);
        let (world, dir) = welcome::world(a, accounts).await?;
        let r = welcome::run(&world, accounts, rate, a.ramp_seconds).await?;
        drop((world, dir));
        let pass = r.undelivered == 0 && r.latency.is_some_and(|l| l.p99 < 1000.0);
        let what = match r.latency {
            Some(l) => format!(
                "p50 {}, p99 {}, max {}; {} not welcomed in time; CPU {:.2}",
                fmt_ms(l.p50),
                fmt_ms(l.p99),
                fmt_ms(l.max),
                r.over_20s,
                r.daemon_cpu
            ),
            None => "nothing delivered".into(),
        };
        rows.push(Row::info(
            format!("{rate}/s for {} s, {accounts} accounts", a.ramp_seconds),
            what,
        ));
        if r.late > 0 {
            notes.push(format!(
                "at {rate}/s the generator started {} injections late",
                r.late
            ));
        }
        if !pass {
            break;
        }
        best = Some(rate);
    }
    let value = best.map_or_else(|| "below the first step".into(), |b| format!("{b}/s"));
    rows.push(Row::target(
        "highest rate with p99 < 1 s (steps above)",
        value,
        "≥ 5,000/s",
        best.is_some_and(|b| b >= 5000.0),
    ));
    Ok(ScenarioReport {
        name: "ramp".into(),
        setup: format!(
            "the welcome load at rising rates, {} s each, a fresh daemon per step",
            a.ramp_seconds
        ),
        rows,
        notes,
    })
}

async fn idle(a: &Args) -> Result<ScenarioReport> {
    let world = sop_harness::World::start(setup::demo_spec(a))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let pid = world.daemon.pid().context("the daemon is not running")?;
    let deployed = world
        .admin
        .get("/api/playbooks")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let playbooks = deployed
        .as_array()
        .or_else(|| deployed["playbooks"].as_array())
        .map_or(0, Vec::len);
    // Let start-up work (deploy, first token fetches, cron planning) finish.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cpu0 = machine::cpu_seconds(pid).context("cannot read the daemon's CPU time")?;
    let t0 = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(a.idle_seconds)).await;
    let cpu = machine::cpu_seconds(pid).context("cannot read the daemon's CPU time")? - cpu0;
    let share = cpu / t0.elapsed().as_secs_f64() * 100.0;
    let mem = machine::memory(pid).context("cannot read the daemon's memory")?;
    let mib = |k: u64| k as f64 / 1024.0;
    Ok(ScenarioReport {
        name: "idle".into(),
        setup: format!(
            "the daemon with the {playbooks} bundled playbooks deployed, no traffic, {} s",
            a.idle_seconds
        ),
        rows: vec![
            Row::info("playbooks deployed", playbooks.to_string()),
            Row::target(
                "RSS (VmRSS)",
                format!("{:.1} MiB", mib(mem.rss_kib)),
                "< 64 MiB",
                mib(mem.rss_kib) < 64.0,
            ),
            Row::info(
                "peak RSS since start (VmHWM)",
                format!("{:.1} MiB", mib(mem.hwm_kib)),
            ),
            Row::target(
                "CPU (of one core)",
                format!("{share:.2} %"),
                "~0 % (< 1 %)",
                share < 1.0,
            ),
        ],
        notes: Vec::new(),
    })
}

/// Parses the plugin-host bench's line `… median 15.8 µs, p99 64.1 µs, mean 56.3 µs`.
pub fn parse_invoke(out: &str) -> Option<(f64, f64)> {
    let line = out.lines().find(|l| l.contains("plugin invoke"))?;
    let after = |key: &str| -> Option<f64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split_whitespace().next()?.parse().ok()
    };
    Some((after("median")?, after("p99")?))
}

async fn invoke() -> Result<ScenarioReport> {
    // The plugin host's own bench measures exactly this; run it rather than duplicate it.
    let root = sop_harness::workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = tokio::process::Command::new(cargo)
        .current_dir(&root)
        .args([
            "bench",
            "--locked",
            "-p",
            "sop-plugin-host",
            "--bench",
            "invoke",
        ])
        .output()
        .await
        .context("cannot run cargo bench")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "cargo bench failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (median, p99) = parse_invoke(&text).with_context(|| format!("no figures in: {text}"))?;
    Ok(ScenarioReport {
        name: "invoke".into(),
        setup: "trivial plugin invoke (`cargo bench -p sop-plugin-host --bench invoke`: fresh store, instantiate, echo, drop; 20,000 calls)".into(),
        rows: vec![
            Row::target("median", format!("{median:.1} µs"), "< 25 µs", median < 25.0),
            Row::info("p99", format!("{p99:.1} µs")),
        ],
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_plugin_host_bench_line() {
        let out = "plugin invoke (instantiate + call + drop), 20000 iterations, keep_resident 2048 KiB: \
                   median 15.8 µs, p99 64.1 µs, mean 56.3 µs\n";
        assert_eq!(parse_invoke(out), Some((15.8, 64.1)));
        assert_eq!(parse_invoke("nothing here"), None);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(60_000), "60,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn reproduce_command_names_the_sizes() {
        use clap::Parser;
        let a = Args::parse_from(["sop-bench", "welcome", "--welcome-rate", "500"]);
        assert_eq!(
            flags("welcome", &a),
            " --welcome-rate 500 --welcome-seconds 60 --welcome-accounts 0"
        );
        assert_eq!(flags("invoke", &a), "");
    }
}
