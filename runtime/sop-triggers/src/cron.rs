//! Cron and inactivity-check schedules: which fires are due, with the missed-fire policy.
//!
//! Each schedule trigger has a watermark in the store, `Store::cron_last_fire(playbook,
//! key)`: the last scheduled instant that was handled (fired, or passed over by the policy).
//! A fire is produced only for instants after it, and each [`CronFire`] carries the
//! `Op::SetCronLastFire` that moves it; committed with the fire's (last) enrolments it makes
//! the fire happen once, also across restarts. A schedule that never fired counts from the
//! version's `deployed_at`, so deploying does not replay the past.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sop_clock::Timestamp;
use sop_dsl::cron::Schedule;
use sop_dsl::model::{Duration, Trigger};
use sop_engine::StartCause;
use sop_store::{Op, Store, StoreError};

use crate::deployed::Deployed;

/// What happens to scheduled instants that passed while the daemon was down (or later than
/// the grace period). Written `skip` / `catch_up_once` in configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedFire {
    /// Drop them: the next fire is the next scheduled instant. The default: a customer
    /// message whose moment has passed ("the live starts in 10 minutes", "good morning") is
    /// worse late than absent.
    #[default]
    Skip,
    /// Fire once for all of them, as the latest missed instant (`fired_at` = that instant),
    /// as soon as the daemon is back. For digests and weekly nurture that must not lose a turn.
    CatchUpOnce,
}

/// Default [`CronPolicy::grace_seconds`]: a restart or a deploy of a few minutes loses no fire.
pub const DEFAULT_GRACE_SECONDS: u64 = 600;

/// How late a fire may be and still count as on time, and what happens to the others.
/// The daemon embeds it (e.g. `[triggers] missed_fire = "catch_up_once"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CronPolicy {
    pub missed_fire: MissedFire,
    /// A fire handled at most this long after its scheduled instant is on time, whatever the
    /// policy (a busy or restarting scheduler is not "downtime").
    pub grace_seconds: u64,
}

impl Default for CronPolicy {
    fn default() -> Self {
        CronPolicy {
            missed_fire: MissedFire::default(),
            grace_seconds: DEFAULT_GRACE_SECONDS,
        }
    }
}

impl From<MissedFire> for CronPolicy {
    fn from(missed_fire: MissedFire) -> Self {
        CronPolicy {
            missed_fire,
            ..CronPolicy::default()
        }
    }
}

/// What a fire starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireSource {
    /// A `cron:` trigger: the playbook's audience ([`CronFire::audience`]).
    Schedule,
    /// The `check:` schedule of an `inactive_for:` trigger: contacts silent longer than
    /// `inactive_for` at the fire's instant ([`crate::inactive_page`]).
    Inactivity { inactive_for: Duration },
}

/// One due fire of one schedule trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct CronFire {
    pub playbook: String,
    pub version: u32,
    pub tenant: String,
    pub account: String,
    /// The trigger's key in the cron table ([`trigger_key`]).
    pub trigger: String,
    pub source: FireSource,
    /// The scheduled instant to enroll for. `None`: the policy skipped every due instant;
    /// commit [`commit`](CronFire::commit) alone to move past them.
    pub fire_at: Option<Timestamp>,
    /// Scheduled instants that get no fire of their own (passed over, or folded into
    /// `fire_at`). Exact below 1,000; beyond that a lower bound.
    pub missed: u64,
    /// `fire_at` is a catch-up (later than the grace period).
    pub late: bool,
    /// `Op::SetCronLastFire`: commit it with the fire's last page of enrolments (or alone if
    /// there are none), so a crash in the middle repeats the fire rather than losing it.
    pub commit: Op,
}

impl CronFire {
    /// The start cause of this fire's enrolments, for a `cron:` fire that enrolls.
    pub fn cause(&self) -> Option<StartCause> {
        match (self.source, self.fire_at) {
            (FireSource::Schedule, Some(fired_at)) => Some(StartCause::Schedule { fired_at }),
            _ => None,
        }
    }
}

/// The cron-table key of a schedule trigger: its normalized expression and zone (and, for
/// inactivity, its threshold). Keyed by content rather than position, so a redeploy that keeps
/// the schedule keeps its watermark (no second fire for the same instant) and one that
/// changes it starts afresh from the new version's `deployed_at`. `None` for event and manual
/// triggers.
pub fn trigger_key(playbook: &sop_dsl::Playbook, trigger: &Trigger) -> Option<String> {
    let normalized =
        |expr: &str| Schedule::parse(expr).map_or_else(|_| expr.to_owned(), |s| s.to_string());
    match trigger {
        Trigger::Cron(t) => Some(format!(
            "cron {} @{}",
            normalized(&t.cron),
            t.timezone.unwrap_or(playbook.timezone)
        )),
        Trigger::Inactivity(t) => Some(format!(
            "inactive_for {} check {} @{}",
            t.inactive_for,
            normalized(&t.check),
            t.timezone.unwrap_or(playbook.timezone)
        )),
        Trigger::Event(_) | Trigger::Manual(_) => None,
    }
}

/// A schedule trigger of a deployed playbook, parsed.
struct Scheduled<'a> {
    deployed: &'a Deployed<'a>,
    key: String,
    schedule: Schedule,
    zone: Tz,
    source: FireSource,
}

/// Every schedule trigger of the current version of each playbook. A version listed twice
/// counts once (the highest); an expression that does not parse is logged and left out
/// (deploy refuses such playbooks, so this is a bug elsewhere, and it must not stop the
/// schedules of every other playbook).
fn scheduled<'a>(deployed: &'a [Deployed<'a>]) -> Vec<Scheduled<'a>> {
    let mut current: BTreeMap<&str, &Deployed<'_>> = BTreeMap::new();
    for d in deployed {
        let entry = current.entry(d.id).or_insert(d);
        if d.version > entry.version {
            *entry = d;
        }
    }
    let mut out = Vec::new();
    for d in current.into_values() {
        let mut seen = Vec::new();
        for trigger in &d.playbook.triggers {
            let (expr, zone, source) = match trigger {
                Trigger::Cron(t) => (&t.cron, t.timezone, FireSource::Schedule),
                Trigger::Inactivity(t) => (
                    &t.check,
                    t.timezone,
                    FireSource::Inactivity {
                        inactive_for: t.inactive_for,
                    },
                ),
                Trigger::Event(_) | Trigger::Manual(_) => continue,
            };
            let Some(key) = trigger_key(d.playbook, trigger) else {
                continue;
            };
            // Two identical triggers are one schedule: one fire per instant.
            if seen.contains(&key) {
                continue;
            }
            match Schedule::parse(expr) {
                Ok(schedule) => {
                    seen.push(key.clone());
                    out.push(Scheduled {
                        deployed: d,
                        key,
                        schedule,
                        zone: zone.unwrap_or(d.playbook.timezone).0,
                        source,
                    });
                }
                Err(e) => {
                    metrics::counter!("sop_trigger_invalid_schedules_total", "playbook" => d.id.to_owned())
                        .increment(1);
                    tracing::error!(playbook = d.id, expression = %expr, error = %e,
                        "cron expression does not parse; trigger ignored");
                }
            }
        }
    }
    out
}

/// How far back the first fire counts from: the watermark, or the deployment.
fn baseline(store: &dyn Store, s: &Scheduled<'_>) -> Result<Timestamp, StoreError> {
    Ok(store
        .cron_last_fire(s.deployed.id, &s.key)?
        .unwrap_or(s.deployed.deployed_at))
}

/// The fires due at `now`, one per schedule trigger at most, decided by `policy` from each
/// trigger's watermark. Call from one task and commit each fire's `commit` before the next
/// call; calling again before committing returns the same fires.
pub fn due_cron_fires(
    store: &dyn Store,
    deployed: &[Deployed<'_>],
    now: Timestamp,
    policy: &CronPolicy,
) -> Result<Vec<CronFire>, StoreError> {
    let grace = TimeDelta::seconds(i64::try_from(policy.grace_seconds).unwrap_or(i64::MAX / 1000));
    let mut fires = Vec::new();
    for s in scheduled(deployed) {
        let from = baseline(store, &s)?;
        let Some(due) = due_between(&s.schedule, s.zone, from, now) else {
            continue;
        };
        let on_time = now - due.latest <= grace;
        let (fire_at, missed, late, outcome) = match (on_time, policy.missed_fire) {
            (true, _) => (Some(due.latest), due.count - 1, false, "on_time"),
            (false, MissedFire::CatchUpOnce) => {
                (Some(due.latest), due.count - 1, true, "caught_up")
            }
            (false, MissedFire::Skip) => (None, due.count, false, "skipped"),
        };
        let kind = match s.source {
            FireSource::Schedule => "cron",
            FireSource::Inactivity { .. } => "inactivity",
        };
        metrics::counter!("sop_trigger_fires_total", "playbook" => s.deployed.id.to_owned(),
            "trigger" => kind, "outcome" => outcome)
        .increment(1);
        if missed > 0 {
            metrics::counter!("sop_trigger_missed_fires_total", "playbook" => s.deployed.id.to_owned(),
                "trigger" => kind)
            .increment(missed);
            tracing::warn!(playbook = s.deployed.id, trigger = %s.key, missed, outcome,
                latest = %due.latest, "scheduled fires were missed");
        }
        fires.push(CronFire {
            playbook: s.deployed.id.to_owned(),
            version: s.deployed.version,
            tenant: s.deployed.tenant.to_owned(),
            account: s.deployed.account.to_owned(),
            trigger: s.key.clone(),
            source: s.source,
            fire_at,
            missed,
            late,
            commit: Op::SetCronLastFire {
                playbook: s.deployed.id.to_owned(),
                trigger: s.key,
                at: due.latest,
            },
        });
    }
    Ok(fires)
}

/// When the scheduler should next call [`due_cron_fires`]: the earliest instant after a
/// trigger's watermark. At or before `now` when fires are already due (call at once); `None`
/// when no schedule fires again.
pub fn next_cron_fire(
    deployed: &[Deployed<'_>],
    store: &dyn Store,
) -> Result<Option<Timestamp>, StoreError> {
    let mut earliest: Option<Timestamp> = None;
    for s in scheduled(deployed) {
        let from = baseline(store, &s)?;
        // A watermark after `now` (the clock was set back) is kept: its fires were handled.
        if let Some(next) = s.schedule.next_after(from.with_timezone(&s.zone)) {
            let next = next.to_utc();
            earliest = Some(earliest.map_or(next, |e| e.min(next)));
        }
    }
    Ok(earliest)
}

/// The scheduled instants in `(from, now]`: the latest one and how many there are.
struct Due {
    latest: Timestamp,
    count: u64,
}

/// Counting stops being exact here; past it we jump to the end instead of walking every
/// instant of a long outage of an every-second schedule.
const COUNT_LIMIT: u64 = 1_000;

fn due_between(schedule: &Schedule, zone: Tz, from: Timestamp, now: Timestamp) -> Option<Due> {
    let next = |t: Timestamp| {
        schedule
            .next_after(t.with_timezone(&zone))
            .map(|n| n.to_utc())
            .filter(|n| *n <= now)
    };
    let mut latest = next(from)?;
    let mut count = 1;
    while count < COUNT_LIMIT {
        match next(latest) {
            Some(t) => {
                latest = t;
                count += 1;
            }
            None => return Some(Due { latest, count }),
        }
    }
    // Many instants: find the last one by looking back from `now` over growing windows, then
    // walk only that window.
    for window in [
        60,
        3_600,
        86_400,
        32 * 86_400,
        367 * 86_400,
        4 * 366 * 86_400,
    ] {
        let start = (now - TimeDelta::seconds(window)).max(latest);
        if let Some(mut t) = next(start) {
            while let Some(n) = next(t) {
                t = n;
                count += 1;
            }
            return Some(Due {
                latest: t,
                count: count + 1,
            });
        }
    }
    // The schedule stopped firing long before `now`: walk to its end.
    while let Some(t) = next(latest) {
        latest = t;
        count += 1;
    }
    Some(Due { latest, count })
}
