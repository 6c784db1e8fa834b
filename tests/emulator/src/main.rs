//! `sop-emulator`: run the WeCom, Douyin and shop emulator as a process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sop_emulator::config::ReceiveLimit;
use sop_emulator::{ClockChoice, Config, VirtualClock, start};

/// Local WeCom and Douyin platform emulator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8900")]
    listen: SocketAddr,
    /// JSON configuration file (see docs/emulator.md); flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seed of the world and the traffic.
    #[arg(long)]
    seed: Option<u64>,
    /// Staff members.
    #[arg(long)]
    staff: Option<u32>,
    /// External contacts at start.
    #[arg(long)]
    contacts: Option<u32>,
    /// Customer groups.
    #[arg(long)]
    groups: Option<u32>,
    /// Members per group at start.
    #[arg(long)]
    group_size: Option<u32>,
    /// WeCom callback URL of the daemon.
    #[arg(long)]
    wecom_callback: Option<String>,
    /// Douyin webhook URL of the daemon.
    #[arg(long)]
    douyin_webhook: Option<String>,
    /// Shop (order) webhook URL of the daemon.
    #[arg(long)]
    shop_webhook: Option<String>,
    /// Milliseconds the receiver has to answer a callback.
    #[arg(long)]
    callback_timeout_ms: Option<u64>,
    /// Retries after a failed callback attempt.
    #[arg(long)]
    callback_retries: Option<u32>,
    /// Synthetic events per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Stop the generator after this many events.
    #[arg(long)]
    max_events: Option<u64>,
    /// Staff confirm mass-send tasks after this many milliseconds.
    #[arg(long, conflicts_with = "never_confirm")]
    confirm_after_ms: Option<u64>,
    /// Staff never confirm mass-send tasks.
    #[arg(long)]
    never_confirm: bool,
    /// Receive limit: days-in-month, per-month:N, per-day:N or unlimited.
    #[arg(long, value_parser = parse_limit)]
    receive_limit: Option<ReceiveLimit>,
    /// WeCom calls per API per minute.
    #[arg(long)]
    api_limit_per_min: Option<u32>,
    /// Corps served (each with its own tokens and API limits; ids `{corp_id}_{n}` from 2).
    #[arg(long)]
    corps: Option<u32>,
    /// Probability of a platform "system busy" error, every endpoint.
    #[arg(long)]
    error_rate: Option<f64>,
    /// Probability of HTTP 503, every endpoint.
    #[arg(long)]
    status_5xx_rate: Option<f64>,
    /// Probability of a request that hangs and is dropped, every endpoint.
    #[arg(long)]
    timeout_rate: Option<f64>,
    /// Probability of a connection reset, every endpoint.
    #[arg(long)]
    reset_rate: Option<f64>,
    /// Added latency, `MIN-MAX` milliseconds.
    #[arg(long, value_parser = parse_range)]
    latency_ms: Option<(u64, u64)>,
    /// Run on a manual clock starting at this Unix time in ms (moved via /_emulator/clock).
    #[arg(long)]
    manual_clock: Option<u64>,
    /// Callback records kept (the most recent), for runs that read every callback's time.
    #[arg(long)]
    keep_records: Option<usize>,
}

fn parse_limit(s: &str) -> Result<ReceiveLimit, String> {
    let n = |v: &str| v.parse::<u16>().map_err(|e| format!("{v:?}: {e}"));
    match s.split_once(':') {
        None if s == "days-in-month" => Ok(ReceiveLimit::DaysInMonth),
        None if s == "unlimited" => Ok(ReceiveLimit::Unlimited),
        Some(("per-month", v)) => Ok(ReceiveLimit::PerMonth(n(v)?)),
        Some(("per-day", v)) => Ok(ReceiveLimit::PerDay(n(v)?)),
        _ => Err(format!(
            "{s:?}: expected days-in-month, per-month:N, per-day:N or unlimited"
        )),
    }
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u64 = a.parse().map_err(|e| format!("{a:?}: {e}"))?;
    let b: u64 = b.parse().map_err(|e| format!("{b:?}: {e}"))?;
    if a > b {
        return Err(format!("{s:?}: MIN is above MAX"));
    }
    Ok((a, b))
}

fn build_config(cli: &Cli) -> Result<Config, String> {
    let mut c = match &cli.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => Config::default(),
    };
    macro_rules! set {
        ($field:expr, $value:expr) => {
            if let Some(v) = $value {
                $field = v;
            }
        };
    }
    set!(c.seed, cli.seed);
    set!(c.world.staff, cli.staff);
    set!(c.world.contacts, cli.contacts);
    set!(c.world.groups, cli.groups);
    set!(c.world.group_size, cli.group_size);
    if cli.wecom_callback.is_some() {
        c.delivery.wecom_url = cli.wecom_callback.clone();
    }
    if cli.douyin_webhook.is_some() {
        c.delivery.douyin_url = cli.douyin_webhook.clone();
    }
    if cli.shop_webhook.is_some() {
        c.delivery.shop_url = cli.shop_webhook.clone();
    }
    set!(c.delivery.timeout_ms, cli.callback_timeout_ms);
    set!(c.delivery.retries, cli.callback_retries);
    set!(c.delivery.keep_records, cli.keep_records);
    set!(c.traffic.rate_per_s, cli.rate);
    set!(c.traffic.max_events, cli.max_events);
    if cli.never_confirm {
        c.wecom.confirm_after_ms = None;
    } else if cli.confirm_after_ms.is_some() {
        c.wecom.confirm_after_ms = cli.confirm_after_ms;
    }
    if let Some(l) = cli.receive_limit {
        c.wecom.customer_receive_limit = l;
        c.wecom.group_receive_limit = l;
    }
    set!(c.wecom.api_limit_per_min, cli.api_limit_per_min);
    set!(c.wecom.corps, cli.corps);
    if c.wecom.corps == 0 {
        return Err("--corps must be at least 1".into());
    }
    let f = &mut c.faults.default;
    set!(f.error_rate, cli.error_rate);
    set!(f.status_5xx_rate, cli.status_5xx_rate);
    set!(f.timeout_rate, cli.timeout_rate);
    set!(f.reset_rate, cli.reset_rate);
    if let Some((lo, hi)) = cli.latency_ms {
        f.latency_min_ms = lo;
        f.latency_max_ms = hi;
    }
    Ok(c)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match build_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sop-emulator: {e}");
            return ExitCode::from(2);
        }
    };
    let clock = match cli.manual_clock {
        Some(start_ms) => match i64::try_from(start_ms)
            .ok()
            .and_then(sop_clock::DateTime::from_timestamp_millis)
        {
            Some(start) => ClockChoice::Manual(VirtualClock::new(start)),
            None => {
                eprintln!("sop-emulator: --manual-clock {start_ms} is out of range");
                return ExitCode::from(2);
            }
        },
        None => ClockChoice::System,
    };
    let emu = match start(config, clock, cli.listen).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sop-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("sop-emulator listening on {}", emu.url());
    let _ = tokio::signal::ctrl_c().await;
    emu.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_ranges_parse() {
        assert_eq!(parse_limit("per-day:1"), Ok(ReceiveLimit::PerDay(1)));
        assert_eq!(parse_limit("days-in-month"), Ok(ReceiveLimit::DaysInMonth));
        assert!(parse_limit("per-week:2").is_err());
        assert_eq!(parse_range("5-10"), Ok((5, 10)));
        assert_eq!(parse_range("7"), Ok((7, 7)));
        assert!(parse_range("10-5").is_err());
    }

    #[test]
    fn flags_override_defaults() {
        let cli = Cli::parse_from([
            "sop-emulator",
            "--contacts",
            "5",
            "--never-confirm",
            "--reset-rate",
            "0.5",
            "--wecom-callback",
            "http://127.0.0.1:1/cb",
        ]);
        let c = build_config(&cli).unwrap();
        assert_eq!(c.world.contacts, 5);
        assert_eq!(c.wecom.confirm_after_ms, None);
        assert_eq!(c.faults.default.reset_rate, 0.5);
        assert_eq!(
            c.delivery.wecom_url.as_deref(),
            Some("http://127.0.0.1:1/cb")
        );
    }
}
