//! Broadcasts: `accounts` WeCom accounts (one emulated corp each), a broadcast playbook per
//! account started through the admin API for its share of the contacts, one
//! `wecom.mass_send_contacts` invocation per contact (the runtime may merge them into tasks of
//! up to 10,000 contacts). Progress is read from the emulator's counters twice a second:
//! sends are the recipients of the mass-send tasks created (messages to contacts), counted
//! apart from the tasks and from the `add_msg_template` calls that created them.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use sop_harness::{Http, World};

use crate::Args;
use crate::emu;
use crate::load::paced;
use crate::machine;
use crate::report::{Row, ScenarioReport};
use crate::setup;
use crate::stats::{fmt_ms, summarize};
use crate::welcome;

const SEND_API: &str = "externalcontact/add_msg_template";
/// The calls the gate paces on an account in these scenarios (the outcome checks start
/// 5 minutes after a task and are not paced by the gate).
const GATED: [&str; 3] = [
    SEND_API,
    "externalcontact/send_welcome_msg",
    "externalcontact/mark_tag",
];
/// Ids per start request (the admin API takes at most 100,000; smaller bodies are kinder).
const START_CHUNK: usize = 10_000;

/// The interpolated time at which a monotone series of `(seconds, count)` samples reached
/// `level`, if it did.
pub fn crossing(samples: &[(f64, u64)], level: f64) -> Option<f64> {
    let mut prev: Option<(f64, u64)> = None;
    for &(t, n) in samples {
        if n as f64 >= level {
            return Some(match prev {
                Some((t0, n0)) if (n as f64) > n0 as f64 => {
                    t0 + (t - t0) * (level - n0 as f64) / (n as f64 - n0 as f64)
                }
                _ => t,
            });
        }
        prev = Some((t, n));
    }
    None
}

/// The rate (per second) between the moments the series reached `lo` and `hi` of `total`,
/// with those moments: the steady state, without the start-up ramp and the tail.
pub fn window_rate(
    samples: &[(f64, u64)],
    total: u64,
    lo: f64,
    hi: f64,
) -> Option<(f64, f64, f64)> {
    let (a, b) = (lo * total as f64, hi * total as f64);
    let (ta, tb) = (crossing(samples, a)?, crossing(samples, b)?);
    (tb > ta).then(|| ((b - a) / (tb - ta), ta, tb))
}

/// What one broadcast measured.
#[derive(Debug)]
struct Driven {
    contacts: u32,
    /// Seconds the start requests took (enrolment of every run).
    enrol_s: f64,
    /// Seconds from the first start request to the last send.
    total_s: f64,
    /// Sends (recipients of created tasks) per second between 5 % and 95 % of the sends.
    send_rate: Option<f64>,
    /// `add_msg_template` calls per second in the same window.
    send_call_rate: Option<f64>,
    /// Gated calls per second between 5 % and 95 % of the `add_msg_template` calls: the
    /// pacing measured in calls, whatever each task carries.
    gated_rate: Option<f64>,
    /// The counters' change over the broadcast: `recipients` are the sends.
    done: Counts,
    rate_limited: u64,
    welcome: Vec<f64>,
    welcome_missing: usize,
    daemon_cpu: f64,
    daemon_peak_mib: f64,
    /// The outcome checks after the sends, when followed.
    outcomes: Option<Outcomes>,
}

/// The phase after the sends: each task's outcome asked of WeCom (5 minutes after it was
/// created) and fed to its members' runs, which then finish.
#[derive(Debug)]
struct Outcomes {
    /// Runs finished (any status) of the broadcast.
    finished: u64,
    /// Seconds from the last send to the first finished run.
    first_after_s: f64,
    /// Seconds from the first to the last finished run.
    span_s: f64,
    /// Runs finished per second between 5 % and 95 % of them.
    rate: Option<f64>,
    daemon_cpu: f64,
}

/// What the emulator's counters say, or the change between two readings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    /// Recipients of the mass-send tasks created (`mass_recipients`): the sends.
    recipients: u64,
    /// Ids the created tasks answered in `fail_list` (`mass_fail_list`): never sent.
    refused: u64,
    /// Mass-send tasks created (`mass_tasks`).
    tasks: u64,
    /// `add_msg_template` calls, refused ones included.
    send_calls: u64,
    /// Calls the gate paces ([`GATED`]).
    gated: u64,
    /// 45009 answers over all WeCom APIs.
    rate_limited: u64,
}

impl Counts {
    /// Contacts the broadcast has dealt with: sent to, or refused by WeCom.
    fn handled(&self) -> u64 {
        self.recipients + self.refused
    }

    fn since(&self, base: &Self) -> Self {
        Self {
            recipients: self.recipients.saturating_sub(base.recipients),
            refused: self.refused.saturating_sub(base.refused),
            tasks: self.tasks.saturating_sub(base.tasks),
            send_calls: self.send_calls.saturating_sub(base.send_calls),
            gated: self.gated.saturating_sub(base.gated),
            rate_limited: self.rate_limited.saturating_sub(base.rate_limited),
        }
    }
}

async fn counts(http: &Http) -> Result<Counts> {
    let c = emu::counters(http).await?;
    Ok(Counts {
        recipients: emu::counter(&c, "mass_recipients")?,
        refused: emu::counter(&c, "mass_fail_list")?,
        tasks: emu::counter(&c, "mass_tasks")?,
        send_calls: emu::endpoint(&c, SEND_API).0,
        gated: GATED.iter().map(|a| emu::endpoint(&c, a).0).sum(),
        rate_limited: emu::rate_limited_total(&c),
    })
}

/// The value of a monotone series of `(seconds, count)` samples at `t`, interpolated; `None`
/// after its last sample.
pub fn value_at(samples: &[(f64, u64)], t: f64) -> Option<f64> {
    let i = samples.iter().position(|s| s.0 >= t)?;
    let (t1, n1) = samples[i];
    let (t0, n0) = if i > 0 { samples[i - 1] } else { samples[i] };
    Some(if t1 > t0 {
        n0 as f64 + (n1 as f64 - n0 as f64) * (t - t0) / (t1 - t0)
    } else {
        n1 as f64
    })
}

/// The series' rate (per second) between the moments `a` and `b`.
pub fn rate_between(samples: &[(f64, u64)], a: f64, b: f64) -> Option<f64> {
    if b <= a {
        return None;
    }
    Some((value_at(samples, b)? - value_at(samples, a)?) / (b - a))
}

async fn start(world: &World, accounts: u32, contacts: u32) -> Result<()> {
    for i in 0..accounts {
        let ids: Vec<String> = setup::share(contacts, accounts, i)
            .map(setup::contact_id)
            .collect();
        for chunk in ids.chunks(START_CHUNK) {
            let path = format!("/api/playbooks/{}/start", setup::broadcast_id(i));
            let v = world
                .admin
                .post(&path, &json!({ "contacts": chunk }))
                .await
                .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
            let enrolled = v["enrolled"].as_array().map_or(0, Vec::len);
            if enrolled != chunk.len() {
                bail!("{path}: enrolled {enrolled} of {}: {v}", chunk.len());
            }
        }
    }
    Ok(())
}

/// Starts the world, runs the broadcast (and `welcome_rate` new contacts a second on the
/// first account while it lasts), and measures.
async fn drive(
    a: &Args,
    accounts: u32,
    limit_per_min: u32,
    contacts: u32,
    welcome_rate: f64,
    texts: setup::Texts,
    follow_outcomes: bool,
) -> Result<Driven> {
    let (spec, _playbooks) = setup::accounts_spec(
        a,
        accounts,
        limit_per_min,
        contacts,
        welcome_rate > 0.0,
        Some(texts),
    )?;
    let world = World::start(spec)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let emu = world.emulator.http().clone();
    let pid = world.daemon.pid().context("the daemon is not running")?;
    let base = counts(&emu).await?;
    let cpu0 = machine::cpu_seconds(pid).unwrap_or(0.0);
    let t0 = Instant::now();

    let starting = start(&world, accounts, contacts);
    // Welcomes on the first account while the broadcast saturates it: for about as long as
    // the backlog lasts (when paced), else for the first 30 s.
    let expected_s = if limit_per_min > 0 {
        f64::from(contacts) / (f64::from(accounts) * f64::from(limit_per_min) * 0.98 / 60.0)
    } else {
        30.0
    };
    let welcomes = async {
        if welcome_rate <= 0.0 {
            return Vec::new();
        }
        // Let the backlog build first.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let event = json!({
            "kind": "add_contact",
            "corp": setup::corp_id(0),
            "callback_url": world.daemon.hook_url("wecom", &setup::account_id(0)),
        });
        paced(
            welcome_rate,
            Duration::from_secs_f64((expected_s * 0.8 - 5.0).max(5.0)),
            64,
            |_| {
                let (emu, event) = (emu.clone(), event.clone());
                async move { emu::add_contact(&emu, &event).await }
            },
        )
        .await
        .results
    };
    // Sends (recipients), `add_msg_template` calls and gated calls over time.
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut calls: Vec<(f64, u64)> = Vec::new();
    let mut gated: Vec<(f64, u64)> = Vec::new();
    let mut done = Counts::default();
    let sampling = async {
        // Unpaced, `expected_s` is only the welcomes' window: allow at least 100 sends/s
        // (a million contacts would otherwise be cut off at 690 s). A stall still ends it.
        let budget_s = expected_s.max(f64::from(contacts) / 100.0);
        let deadline = Duration::from_secs_f64(budget_s * 3.0 + 600.0);
        let mut last_move = Instant::now();
        let mut last = (0, 0);
        loop {
            let c = counts(&emu).await?.since(&base);
            let t = t0.elapsed().as_secs_f64();
            samples.push((t, c.recipients));
            calls.push((t, c.send_calls));
            gated.push((t, c.gated));
            done = c;
            // Every contact sent to or refused (a refused one never becomes a send). The
            // CPU is read here: the welcomes may go on after the broadcast.
            if c.handled() >= u64::from(contacts) {
                return Ok::<_, anyhow::Error>(machine::cpu_seconds(pid).unwrap_or(0.0));
            }
            if (c.handled(), c.send_calls) != last {
                (last, last_move) = ((c.handled(), c.send_calls), Instant::now());
            }
            if last_move.elapsed() > Duration::from_secs(120) || t0.elapsed() > deadline {
                bail!(
                    "the broadcast stalled at {} of {contacts} sends ({} refused, {} tasks) after {:.0} s",
                    c.recipients,
                    c.refused,
                    c.tasks,
                    t
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let ((started, enrol_s), sampled, sent) = tokio::join!(
        async {
            let r = starting.await;
            (r, t0.elapsed().as_secs_f64())
        },
        sampling,
        welcomes
    );
    started?;
    let cpu = sampled? - cpu0;
    let total_s = samples.last().map_or(0.0, |s| s.0);
    let mem = machine::memory(pid);
    // Let the last welcomes land before reading them.
    let sent: Vec<(u64, String)> = sent.into_iter().filter_map(Result::ok).collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (welcome, welcome_missing) = welcome::latencies(&emu, &sent).await?;
    let rate_limited = counts(&emu).await?.rate_limited;
    let outcomes = if follow_outcomes {
        Some(follow(&world, pid, contacts, t0.elapsed().as_secs_f64() - total_s).await?)
    } else {
        None
    };
    // Sends are recipients; the pacing is in calls, whatever each task carries.
    let send_window = window_rate(&samples, done.recipients, 0.05, 0.95);
    let call_window = window_rate(&calls, done.send_calls, 0.05, 0.95);
    Ok(Driven {
        contacts,
        enrol_s,
        total_s,
        send_rate: send_window.map(|w| w.0),
        send_call_rate: send_window.and_then(|(_, a, b)| rate_between(&calls, a, b)),
        gated_rate: call_window.and_then(|(_, a, b)| rate_between(&gated, a, b)),
        done,
        rate_limited,
        welcome,
        welcome_missing,
        daemon_cpu: cpu / total_s.max(1e-9),
        daemon_peak_mib: mem.map_or(0.0, |m| m.hwm_kib as f64 / 1024.0),
        outcomes,
    })
}

/// Follows the outcome phase: the daemon's finished runs, twice a second, until every
/// contact's run has finished. `since_last_send_s`: how long ago the last send was.
async fn follow(
    world: &World,
    pid: u32,
    contacts: u32,
    since_last_send_s: f64,
) -> Result<Outcomes> {
    const FINISHED: &str = "sop_runtime_runs_finished_total";
    let finished = || async {
        world
            .daemon
            .metric(FINISHED)
            .await
            .map(|v| v as u64)
            .map_err(|e| anyhow::anyhow!("{FINISHED}: {e}"))
    };
    let base = finished().await?;
    let t0 = Instant::now();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut first: Option<(f64, f64)> = None;
    let mut last_move = Instant::now();
    let mut last = 0;
    loop {
        let n = finished().await?.saturating_sub(base);
        let t = t0.elapsed().as_secs_f64();
        samples.push((t, n));
        if n > 0 && first.is_none() {
            first = Some((t, machine::cpu_seconds(pid).unwrap_or(0.0)));
        }
        if n >= u64::from(contacts) {
            break;
        }
        if n != last {
            (last, last_move) = (n, Instant::now());
        }
        // The first checks are due 5 minutes after their tasks (the first of which was
        // created before the last send); after that, a stall.
        let stalled = match first {
            Some(_) => last_move.elapsed() > Duration::from_secs(120),
            None => t > 420.0,
        };
        if stalled || t > 600.0 + f64::from(contacts) / 200.0 {
            bail!("the outcome phase stalled at {n} of {contacts} runs finished after {t:.0} s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let cpu = machine::cpu_seconds(pid).unwrap_or(0.0);
    let (t_first, cpu_first) = first.unwrap_or_default();
    let t_last = samples.last().map_or(0.0, |s| s.0);
    let finished = samples.last().map_or(0, |s| s.1);
    Ok(Outcomes {
        finished,
        first_after_s: since_last_send_s + t_first,
        span_s: t_last - t_first,
        rate: window_rate(&samples, finished, 0.05, 0.95).map(|w| w.0),
        daemon_cpu: (cpu - cpu_first) / (t_last - t_first).max(1e-9),
    })
}

/// The rows every broadcast shows about its tasks: how many, how full, how many ids refused.
fn task_rows(d: &Driven) -> Vec<Row> {
    let c = &d.done;
    let mut rows = vec![Row::info(
        "mass-send tasks (`add_msg_template` calls)",
        format!(
            "{} tasks, {:.1} recipients per task ({} calls)",
            c.tasks,
            c.recipients as f64 / c.tasks.max(1) as f64,
            c.send_calls
        ),
    )];
    if c.refused > 0 {
        rows.push(Row::info(
            "contacts refused in `fail_list` (never sent)",
            c.refused.to_string(),
        ));
    }
    rows
}

/// Issue #6's check: many accounts at a low limit, a broadcast that saturates them all, and
/// new contacts welcomed on one of them meanwhile.
pub async fn accounts(a: &Args) -> Result<ScenarioReport> {
    let d = drive(
        a,
        a.accounts,
        a.account_limit_per_min,
        a.accounts_contacts,
        a.accounts_welcome_rate,
        // Personalised, so that every contact is its own task and the pacing binds.
        setup::Texts::PerContact,
        false,
    )
    .await?;
    let allowed = f64::from(a.accounts) * f64::from(a.account_limit_per_min) / 60.0;
    let mut rows = vec![Row::info(
        "sends (recipients of mass-send tasks)",
        format!(
            "{} in {:.0} s (enrolment {:.1} s)",
            d.done.recipients, d.total_s, d.enrol_s
        ),
    )];
    rows.extend(task_rows(&d));
    rows.push(Row::info(
        "allowed rate",
        format!(
            "{allowed:.2}/s ({} × {}/min)",
            a.accounts, a.account_limit_per_min
        ),
    ));
    // Calls, not recipients: the limit is on calls, whatever each task carries.
    match d.gated_rate {
        Some(r) => {
            let share = r / allowed * 100.0;
            rows.push(Row::target(
                "share of the allowed rate used while a backlog exists (5–95 % of the mass-send calls)",
                format!("{share:.1} % ({r:.2} calls/s)"),
                "≥ 95 %",
                share >= 95.0,
            ));
        }
        None => rows.push(Row::target(
            "share of the allowed rate used",
            "not measured",
            "≥ 95 %",
            false,
        )),
    }
    rows.push(Row::target(
        "45009 answers from the emulator",
        d.rate_limited.to_string(),
        "0",
        d.rate_limited == 0,
    ));
    match summarize(&d.welcome) {
        Some(w) => {
            let worst_ok = d.welcome_missing == 0 && w.max < 2000.0;
            rows.push(Row::target(
                format!("welcomes during the broadcast ({}): p50 / p99 / max", w.n),
                format!("{} / {} / {}", fmt_ms(w.p50), fmt_ms(w.p99), fmt_ms(w.max)),
                "every one < 2 s",
                worst_ok,
            ));
        }
        None if a.accounts_welcome_rate > 0.0 => rows.push(Row::target(
            "welcomes during the broadcast",
            "none delivered",
            "every one < 2 s",
            false,
        )),
        None => {}
    }
    if d.welcome_missing > 0 {
        rows.push(Row::target(
            "welcomes never sent",
            d.welcome_missing.to_string(),
            "0",
            false,
        ));
    }
    rows.push(Row::info(
        "daemon CPU (cores busy)",
        format!("{:.2}", d.daemon_cpu),
    ));
    rows.push(Row::info(
        "daemon peak RSS",
        format!("{:.0} MiB", d.daemon_peak_mib),
    ));
    Ok(ScenarioReport {
        name: "accounts".into(),
        setup: format!(
            "{} WeCom accounts (one emulated corp each) at {}/min, a {}-contact personalised broadcast over them (one task per contact), {} new contacts/s welcomed on the first meanwhile",
            a.accounts, a.account_limit_per_min, d.contacts, a.accounts_welcome_rate
        ),
        rows,
        notes: Vec::new(),
    })
}

/// Issue #8's broadcast without a platform limit: how fast the daemon makes durable sends.
pub async fn unlimited(a: &Args) -> Result<ScenarioReport> {
    let d = drive(
        a,
        a.broadcast_accounts,
        0,
        a.broadcast_contacts,
        0.0,
        setup::Texts::Shared,
        !a.broadcast_skip_outcomes,
    )
    .await?;
    // No limit at the emulator, but the daemon still paces each account on the manifest's.
    let cap = f64::from(a.broadcast_accounts) * setup::WECOM_PACED_CALLS_PER_S;
    let mut rows = vec![Row::info(
        "sends (recipients of mass-send tasks)",
        format!("{} in {:.1} s", d.done.recipients, d.total_s),
    )];
    rows.extend(task_rows(&d));
    rows.push(Row::info(
        "enrolment (start requests)",
        format!(
            "{:.1} s ({:.0} runs/s)",
            d.enrol_s,
            f64::from(d.contacts) / d.enrol_s.max(1e-9)
        ),
    ));
    let rate = d.send_rate.unwrap_or(0.0);
    rows.push(Row::target(
        "durable sends/s: recipients of created tasks (5–95 % of sends)",
        format!("{rate:.0}/s"),
        "≥ 20,000/s",
        rate >= 20_000.0,
    ));
    let call_rate = d.send_call_rate.unwrap_or(0.0);
    rows.push(Row::info(
        "`add_msg_template` calls/s in the same window",
        format!("{call_rate:.1}/s"),
    ));
    rows.push(Row::info(
        "end-to-end sends/s (first request to last send)",
        format!("{:.0}/s", d.done.recipients as f64 / d.total_s.max(1e-9)),
    ));
    rows.push(Row::info(
        "pacing ceiling of the accounts, calls (manifest 150,000/h each, less 2 %)",
        format!("{cap:.0}/s"),
    ));
    rows.push(Row::info(
        "daemon CPU (cores busy)",
        format!("{:.2}", d.daemon_cpu),
    ));
    rows.push(Row::info(
        "daemon peak RSS",
        format!("{:.0} MiB", d.daemon_peak_mib),
    ));
    if let Some(o) = &d.outcomes {
        rows.push(Row::info(
            "outcome phase: runs finished after their task's check (5 min after it)",
            format!(
                "{} in {:.1} s, first {:.0} s after the last send",
                o.finished, o.span_s, o.first_after_s
            ),
        ));
        rows.push(Row::info(
            "outcomes fed/s (runs finished, 5–95 %)",
            format!("{:.0}/s", o.rate.unwrap_or(0.0)),
        ));
        rows.push(Row::info(
            "daemon CPU during the outcome phase (cores busy)",
            format!("{:.2}", o.daemon_cpu),
        ));
    }
    let mut notes = Vec::new();
    // The ceiling is on calls: with many recipients per task, sends/s can pass it.
    if call_rate > cap * 0.9 {
        notes.push("the mass-send call rate is near the accounts' pacing ceiling: run with more --broadcast-accounts".into());
    }
    Ok(ScenarioReport {
        name: "broadcast".into(),
        setup: format!(
            "a {}-contact broadcast over {} WeCom accounts, no emulator limit",
            d.contacts, a.broadcast_accounts
        ),
        rows,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_interpolates_between_samples() {
        let s = [(0.0, 0), (1.0, 10), (2.0, 30), (3.0, 30), (4.0, 50)];
        assert_eq!(crossing(&s, 0.0), Some(0.0));
        assert_eq!(crossing(&s, 5.0), Some(0.5));
        assert_eq!(crossing(&s, 20.0), Some(1.5));
        assert_eq!(crossing(&s, 40.0), Some(3.5));
        assert_eq!(crossing(&s, 51.0), None);
    }

    #[test]
    fn value_at_and_rate_between_interpolate() {
        let s = [(0.0, 0), (1.0, 10), (3.0, 30)];
        assert_eq!(value_at(&s, 0.5), Some(5.0));
        assert_eq!(value_at(&s, 2.0), Some(20.0));
        assert_eq!(value_at(&s, 4.0), None);
        assert_eq!(rate_between(&s, 0.5, 2.5), Some(10.0));
        assert_eq!(rate_between(&s, 2.0, 2.0), None);
    }

    #[test]
    fn counts_since_a_reading_and_handled() {
        let base = Counts {
            recipients: 5,
            refused: 1,
            tasks: 2,
            send_calls: 3,
            gated: 4,
            rate_limited: 0,
        };
        let now = Counts {
            recipients: 20_005,
            refused: 3,
            tasks: 4,
            send_calls: 6,
            gated: 9,
            rate_limited: 1,
        };
        let d = now.since(&base);
        assert_eq!(
            (d.recipients, d.tasks, d.send_calls, d.gated),
            (20_000, 2, 3, 5)
        );
        assert_eq!(d.handled(), 20_002, "sent to or refused");
    }

    #[test]
    fn window_rate_ignores_ramp_and_tail() {
        // Slow start (1/s for 10 s), steady 10/s, slow tail.
        let mut s = vec![(0.0, 0)];
        for t in 1..=10 {
            s.push((f64::from(t), u64::from(t as u32)));
        }
        for t in 11..=29 {
            s.push((f64::from(t), 10 + 10 * u64::from((t - 10) as u32)));
        }
        s.push((40.0, 200));
        let (rate, a, b) = window_rate(&s, 200, 0.1, 0.9).unwrap();
        assert!((rate - 10.0).abs() < 1e-9, "{rate}");
        assert!(
            (a - 11.0).abs() < 1e-9 && (b - 27.0).abs() < 1e-9,
            "{a} {b}"
        );
        assert_eq!(window_rate(&[(0.0, 0), (1.0, 5)], 200, 0.1, 0.9), None);
    }
}
