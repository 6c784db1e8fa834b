//! `sop cron ...`: try cron expressions the way playbooks will evaluate them.

use std::io::Write;
use std::process::ExitCode;

use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use sop_dsl::cron::Schedule;

/// Playbooks default to this zone; so does the preview.
const DEFAULT_ZONE: &str = "Asia/Shanghai";

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the next fire times of a cron expression, one RFC 3339 time per line.
    ///
    /// EXPR is a crontab expression: `minute hour day-of-month month day-of-week`, with an
    /// optional leading seconds field, or a macro such as `@daily`. Quote it in the shell.
    Next(NextArgs),
}

#[derive(Debug, clap::Args)]
pub struct NextArgs {
    /// The cron expression, e.g. "30 9 * * MON-FRI".
    expr: String,
    /// IANA time zone the schedule's wall-clock times are read in.
    #[arg(long, value_name = "ZONE", default_value = DEFAULT_ZONE)]
    tz: String,
    /// Start after this instant instead of now: RFC 3339 (2026-03-08T00:00:00+08:00), or a wall-clock
    /// time in the zone (2026-03-08T01:30; in a repeated hour, the first one).
    #[arg(long, value_name = "RFC3339")]
    after: Option<String>,
    /// How many fire times to print.
    #[arg(long, value_name = "N", default_value_t = 5)]
    count: usize,
    /// Also describe the schedule in English and annotate each time (weekday, DST shifts).
    #[arg(long)]
    explain: bool,
}

pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Next(args) => match next(&args, Utc::now()) {
            Ok(lines) => {
                // A closed pipe (`sop cron next ... | head -1`) just ends the output.
                let mut out = std::io::stdout().lock();
                for line in lines {
                    if writeln!(out, "{line}").is_err() {
                        break;
                    }
                }
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("{message}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The lines `sop cron next` prints, or the error it reports; `now` is injected for tests.
fn next(args: &NextArgs, now: DateTime<Utc>) -> Result<Vec<String>, String> {
    let schedule = Schedule::parse(&args.expr).map_err(|e| {
        format!(
            "error: invalid cron expression\n{}",
            indent(&e.render(&args.expr))
        )
    })?;
    let tz = zone(&args.tz)?;
    let after = match &args.after {
        None => now.with_timezone(&tz),
        Some(text) => start(text, tz)?,
    };
    if !schedule.is_satisfiable() {
        return Err(format!(
            "error: `{}` never fires: no allowed month has the allowed day(s) of the month",
            args.expr
        ));
    }
    let mut lines = Vec::with_capacity(args.count + 1);
    if args.explain {
        lines.push(format!("# {} ({tz})", schedule.describe()));
    }
    for fire in schedule.iter_after(after).take(args.count) {
        let time = fire.to_rfc3339_opts(SecondsFormat::Secs, false);
        lines.push(if args.explain {
            annotate(&schedule, time, fire)
        } else {
            time
        });
    }
    Ok(lines)
}

/// `2026-03-08T03:00:00-04:00  Sun  (clock jumped over the scheduled time)`.
fn annotate(schedule: &Schedule, time: String, fire: DateTime<Tz>) -> String {
    let weekday = fire.weekday().to_string();
    if schedule.matches(fire.naive_local()) {
        format!("{time}  {weekday}")
    } else {
        format!(
            "{time}  {weekday}  (daylight saving: the scheduled time was skipped, fired when the clock jumped)"
        )
    }
}

/// `--after`: an RFC 3339 instant, or a wall-clock time read in the zone.
fn start(text: &str, tz: Tz) -> Result<DateTime<Tz>, String> {
    let rfc3339 = match DateTime::parse_from_rfc3339(text) {
        Ok(t) => return Ok(t.with_timezone(&tz)),
        Err(e) => e,
    };
    let local = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok());
    match local {
        Some(local) => tz.from_local_datetime(&local).earliest().ok_or_else(|| {
            format!("error: --after `{text}` does not exist in {tz}: the clock skips it (daylight saving)")
        }),
        None => Err(format!(
            "error: invalid --after `{text}`: {rfc3339} (expected RFC 3339 like 2026-03-08T09:00:00+08:00, or a local time like 2026-03-08T09:00)"
        )),
    }
}

fn zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        let hint = chrono_tz::TZ_VARIANTS
            .iter()
            .find(|tz| tz.name().eq_ignore_ascii_case(name))
            .map(|tz| format!("; did you mean `{}`?", tz.name()))
            .unwrap_or_else(|| format!("; use an IANA name like {DEFAULT_ZONE} or Europe/Berlin"));
        format!("error: unknown time zone `{name}`{hint}")
    })
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(expr: &str) -> NextArgs {
        NextArgs {
            expr: expr.to_owned(),
            tz: DEFAULT_ZONE.to_owned(),
            after: None,
            count: 3,
            explain: false,
        }
    }

    #[test]
    fn now_is_injected_and_read_in_the_zone() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        // 00:00 UTC is 08:00 in Shanghai: today's 09:30 is still ahead.
        assert_eq!(
            next(&args("30 9 * * *"), now).unwrap(),
            [
                "2026-01-01T09:30:00+08:00",
                "2026-01-02T09:30:00+08:00",
                "2026-01-03T09:30:00+08:00"
            ]
        );
    }

    #[test]
    fn explain_describes_and_flags_dst_shifts() {
        let now = DateTime::parse_from_rfc3339("2026-03-07T12:00:00Z")
            .unwrap()
            .to_utc();
        let mut a = args("30 2 * * *");
        a.tz = "America/New_York".to_owned();
        a.explain = true;
        let lines = next(&a, now).unwrap();
        assert_eq!(lines[0], "# at 02:30 (America/New_York)");
        assert!(lines[1].starts_with("2026-03-08T03:00:00-04:00  Sun  (daylight saving"));
        assert_eq!(lines[2], "2026-03-09T02:30:00-04:00  Mon");
    }

    #[test]
    fn after_may_be_a_local_time_in_the_zone() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let first = start("2026-11-01T01:30", ny).unwrap();
        assert_eq!(first.to_rfc3339(), "2026-11-01T01:30:00-04:00");
        assert_eq!(
            start("2026-01-01 09:00:05", ny).unwrap().to_rfc3339(),
            "2026-01-01T09:00:05-05:00"
        );
        assert!(
            start("2026-03-08T02:30", ny)
                .unwrap_err()
                .contains("the clock skips it")
        );
        assert!(
            start("tomorrow", ny)
                .unwrap_err()
                .contains("invalid --after `tomorrow`")
        );
    }

    #[test]
    fn zone_names_get_a_case_hint() {
        assert_eq!(
            zone("asia/shanghai").unwrap_err(),
            "error: unknown time zone `asia/shanghai`; did you mean `Asia/Shanghai`?"
        );
    }
}
