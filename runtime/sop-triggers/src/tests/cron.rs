//! Cron fires: daylight saving, missed-fire policies, no double fire across restarts.

use sop_clock::Timestamp;
use sop_store::{MemoryStore, Op, Store};

use super::{at, commit, deployed, playbook};
use crate::{
    CronPolicy, Deployed, FireSource, InactivityCursor, MissedFire, due_cron_fires, next_cron_fire,
};

fn cron_playbook(cron: &str, zone: &str) -> sop_dsl::Playbook {
    playbook(&format!(
        "id: morning\nversion: 1\ntimezone: {zone}\naudience:\n  tags_any: [vip]\n\
         triggers:\n  - cron: \"{cron}\"\nsteps:\n  - id: pause\n    wait: 1h\n"
    ))
}

/// The scheduler loop: sleep until `next_cron_fire`, take the due fires, commit their
/// watermarks. Returns the fired instants up to `until`.
fn schedule(store: &MemoryStore, d: &Deployed<'_>, until: Timestamp) -> Vec<Timestamp> {
    let mut fired = Vec::new();
    while let Some(now) = next_cron_fire(std::slice::from_ref(d), store).unwrap() {
        if now > until {
            break;
        }
        let fires =
            due_cron_fires(store, std::slice::from_ref(d), now, &CronPolicy::default()).unwrap();
        assert_eq!(fires.len(), 1, "one fire per wake-up at {now}");
        let fire = &fires[0];
        assert_eq!((fire.missed, fire.late), (0, false), "on time at {now}");
        fired.push(fire.fire_at.expect("an on-time fire enrolls"));
        commit(store, vec![fire.commit.clone()]);
        // Waking again at the same instant (or a second later) finds nothing more.
        for again in [now, now + chrono::TimeDelta::seconds(1)] {
            let twice = due_cron_fires(
                store,
                std::slice::from_ref(d),
                again,
                &CronPolicy::default(),
            );
            assert_eq!(twice.unwrap(), vec![], "fired twice at {again}");
        }
    }
    fired
}

#[test]
fn new_york_spring_forward_fires_the_skipped_time_at_the_jump() {
    let p = cron_playbook("30 2 * * *", "America/New_York");
    let d = deployed(&p, at("2026-03-07T12:00:00-05:00"));
    let store = MemoryStore::new();
    let fired = schedule(&store, &d, at("2026-03-10T12:00:00-04:00"));
    assert_eq!(
        fired,
        [
            at("2026-03-08T03:00:00-04:00"),
            at("2026-03-09T02:30:00-04:00"),
            at("2026-03-10T02:30:00-04:00"),
        ]
    );
}

#[test]
fn new_york_fall_back_fires_a_repeated_time_once() {
    let p = cron_playbook("30 1 * * *", "America/New_York");
    let d = deployed(&p, at("2026-10-31T12:00:00-04:00"));
    let store = MemoryStore::new();
    let fired = schedule(&store, &d, at("2026-11-02T12:00:00-05:00"));
    // 01:30 EDT only; the repeated 01:30 EST an hour later does not fire again.
    assert_eq!(
        fired,
        [
            at("2026-11-01T01:30:00-04:00"),
            at("2026-11-02T01:30:00-05:00")
        ]
    );
    let repeated = at("2026-11-01T01:30:00-05:00");
    assert_eq!(
        due_cron_fires(&store, &[d], repeated, &CronPolicy::default()).unwrap(),
        vec![]
    );
}

#[test]
fn new_york_fall_back_half_hourly_pauses_in_the_repeated_hour() {
    let p = cron_playbook("*/30 * * * *", "America/New_York");
    let d = deployed(&p, at("2026-11-01T00:00:00-04:00"));
    let store = MemoryStore::new();
    let fired = schedule(&store, &d, at("2026-11-01T03:00:00-05:00"));
    assert_eq!(
        fired,
        [
            at("2026-11-01T00:30:00-04:00"),
            at("2026-11-01T01:00:00-04:00"),
            at("2026-11-01T01:30:00-04:00"),
            at("2026-11-01T02:00:00-05:00"),
            at("2026-11-01T02:30:00-05:00"),
            at("2026-11-01T03:00:00-05:00"),
        ]
    );
}

#[test]
fn shanghai_weekdays_and_a_trigger_zone_overriding_the_playbook_zone() {
    let p = cron_playbook("0 9 * * MON-FRI", "Asia/Shanghai");
    let d = deployed(&p, at("2026-03-06T00:00:00+08:00"));
    let store = MemoryStore::new();
    let fired = schedule(&store, &d, at("2026-03-10T23:00:00+08:00"));
    // Friday, then Monday and Tuesday: the weekend and New York's DST change (03-08) do not
    // matter in Shanghai.
    assert_eq!(
        fired,
        [
            at("2026-03-06T09:00:00+08:00"),
            at("2026-03-09T09:00:00+08:00"),
            at("2026-03-10T09:00:00+08:00"),
        ]
    );

    let p = playbook(
        "id: mixed\nversion: 1\ntimezone: America/New_York\ntriggers:\n  - cron: \"0 9 * * *\"\n    \
         timezone: Asia/Shanghai\nsteps:\n  - id: pause\n    wait: 1h\n",
    );
    let d = deployed(&p, at("2026-03-07T12:00:00Z"));
    let fired = schedule(&MemoryStore::new(), &d, at("2026-03-09T12:00:00Z"));
    assert_eq!(
        fired,
        [
            at("2026-03-08T09:00:00+08:00"),
            at("2026-03-09T09:00:00+08:00")
        ]
    );
}

/// Daily 09:00 in Shanghai, last fired 2026-03-02, down until `back`.
fn after_downtime(back: &str, missed_fire: MissedFire) -> (MemoryStore, crate::CronFire) {
    let p = cron_playbook("0 9 * * *", "Asia/Shanghai");
    let d = deployed(&p, at("2026-03-01T00:00:00+08:00"));
    let store = MemoryStore::new();
    let key = crate::trigger_key(&p, &p.triggers[0]).unwrap();
    commit(
        &store,
        vec![Op::SetCronLastFire {
            playbook: "morning".into(),
            trigger: key,
            at: at("2026-03-02T09:00:00+08:00"),
        }],
    );
    let fires = due_cron_fires(&store, &[d], at(back), &missed_fire.into()).unwrap();
    assert_eq!(fires.len(), 1);
    (store, fires.into_iter().next().unwrap())
}

#[test]
fn three_day_downtime_with_skip_fires_nothing_and_moves_the_watermark() {
    let (store, fire) = after_downtime("2026-03-05T15:00:00+08:00", MissedFire::Skip);
    assert_eq!(fire.fire_at, None);
    assert_eq!(fire.cause(), None);
    assert_eq!(fire.missed, 3, "03-03, 03-04 and 03-05 were missed");
    let latest = at("2026-03-05T09:00:00+08:00");
    assert!(matches!(fire.commit, Op::SetCronLastFire { at, .. } if at == latest));
    let p = cron_playbook("0 9 * * *", "Asia/Shanghai");
    let d = deployed(&p, at("2026-03-01T00:00:00+08:00"));
    // Before the watermark is committed the decision repeats (nothing is lost) ...
    let again = due_cron_fires(
        &store,
        &[d],
        at("2026-03-05T15:00:01+08:00"),
        &CronPolicy::default(),
    );
    assert_eq!(again.unwrap().len(), 1);
    // ... after it, nothing is due until tomorrow.
    commit(&store, vec![fire.commit]);
    let now = at("2026-03-05T15:00:01+08:00");
    assert_eq!(
        due_cron_fires(&store, &[d], now, &CronPolicy::default()).unwrap(),
        vec![]
    );
    assert_eq!(
        next_cron_fire(&[d], &store).unwrap(),
        Some(at("2026-03-06T09:00:00+08:00"))
    );
}

#[test]
fn three_day_downtime_with_catch_up_once_fires_once_as_the_latest_instant() {
    let (store, fire) = after_downtime("2026-03-05T15:00:00+08:00", MissedFire::CatchUpOnce);
    let latest = at("2026-03-05T09:00:00+08:00");
    assert_eq!(fire.fire_at, Some(latest));
    assert_eq!(
        fire.cause(),
        Some(sop_engine::StartCause::Schedule { fired_at: latest })
    );
    assert_eq!((fire.missed, fire.late), (2, true));
    assert_eq!(fire.source, FireSource::Schedule);
    commit(&store, vec![fire.commit]);

    // A restart: the playbook loaded afresh, a fresh call on the same store.
    let p = cron_playbook("0 9 * * *", "Asia/Shanghai");
    let d = deployed(&p, at("2026-03-01T00:00:00+08:00"));
    let policy = CronPolicy::from(MissedFire::CatchUpOnce);
    for now in ["2026-03-05T15:00:00+08:00", "2026-03-06T08:59:59+08:00"] {
        assert_eq!(
            due_cron_fires(&store, &[d], at(now), &policy).unwrap(),
            vec![]
        );
    }
    let next = due_cron_fires(&store, &[d], at("2026-03-06T09:00:00+08:00"), &policy).unwrap();
    assert_eq!(next[0].fire_at, Some(at("2026-03-06T09:00:00+08:00")));
    assert_eq!((next[0].missed, next[0].late), (0, false));
}

#[test]
fn back_within_the_grace_period_fires_on_time_under_either_policy() {
    for policy in [MissedFire::Skip, MissedFire::CatchUpOnce] {
        let (_, fire) = after_downtime("2026-03-05T09:05:00+08:00", policy);
        assert_eq!(fire.fire_at, Some(at("2026-03-05T09:00:00+08:00")));
        assert_eq!((fire.missed, fire.late), (2, false), "{policy:?}");
    }
}

#[test]
fn a_new_playbook_does_not_replay_the_past_and_a_redeploy_keeps_the_watermark() {
    let p = cron_playbook("0 9 * * *", "Asia/Shanghai");
    let store = MemoryStore::new();
    // Deployed exactly at a fire time: that instant is not after the deployment.
    let d = deployed(&p, at("2026-03-02T09:00:00+08:00"));
    assert_eq!(
        due_cron_fires(
            &store,
            &[d],
            at("2026-03-02T09:00:00+08:00"),
            &CronPolicy::default()
        )
        .unwrap(),
        vec![]
    );
    let fires = due_cron_fires(
        &store,
        &[d],
        at("2026-03-03T09:00:00+08:00"),
        &CronPolicy::default(),
    )
    .unwrap();
    commit(&store, vec![fires[0].commit.clone()]);

    // Version 2 keeps the schedule (written differently) and is deployed a minute later: the
    // 09:00 instant is not fired again.
    let v2 = playbook(
        "id: morning\nversion: 2\ntimezone: Asia/Shanghai\ntriggers:\n  - cron: \"0  9 * * *\"\n\
         steps:\n  - id: pause\n    wait: 2h\n",
    );
    let d2 = deployed(&v2, at("2026-03-03T09:01:00+08:00"));
    let now = at("2026-03-03T09:02:00+08:00");
    // Both versions listed: only the highest counts.
    assert_eq!(
        due_cron_fires(&store, &[d, d2], now, &CronPolicy::default()).unwrap(),
        vec![]
    );
    assert_eq!(
        next_cron_fire(&[d, d2], &store).unwrap(),
        Some(at("2026-03-04T09:00:00+08:00"))
    );
}

#[test]
fn an_every_second_schedule_after_three_days_counts_without_walking_every_second() {
    let p = cron_playbook("* * * * * *", "Asia/Shanghai");
    let d = deployed(&p, at("2026-03-02T00:00:00Z"));
    let store = MemoryStore::new();
    let now = at("2026-03-05T00:00:00.500Z");
    let fires = due_cron_fires(&store, &[d], now, &MissedFire::Skip.into()).unwrap();
    // The latest second is on time; the others are folded into it.
    assert_eq!(fires[0].fire_at, Some(at("2026-03-05T00:00:00Z")));
    assert!(
        fires[0].missed >= 999,
        "a lower bound past 1,000: {}",
        fires[0].missed
    );
}

#[test]
fn an_inactivity_check_is_a_schedule_with_its_threshold() {
    let p = playbook(
        "id: winback\nversion: 1\naudience:\n  tags_none: [unsubscribed]\ntriggers:\n  \
         - inactive_for: 30d\n    check: \"0 10 * * *\"\nsteps:\n  - id: pause\n    wait: 1h\n",
    );
    let d = deployed(&p, at("2026-03-01T00:00:00+08:00"));
    let store = MemoryStore::new();
    assert_eq!(
        next_cron_fire(&[d], &store).unwrap(),
        Some(at("2026-03-01T10:00:00+08:00"))
    );
    let fires = due_cron_fires(
        &store,
        &[d],
        at("2026-03-01T10:00:00+08:00"),
        &CronPolicy::default(),
    )
    .unwrap();
    let fire = &fires[0];
    assert_eq!(
        fire.source,
        FireSource::Inactivity {
            inactive_for: "30d".parse().unwrap()
        }
    );
    assert_eq!(
        fire.cause(),
        None,
        "inactivity candidates carry their own cause"
    );
    assert!(fire.audience(&store, d).unwrap().is_none());
    let cursor = InactivityCursor::for_fire(fire).unwrap();
    assert_eq!(cursor.before, at("2026-01-30T10:00:00+08:00"));
    assert_eq!(
        store.cron_last_fire("winback", &fire.trigger).unwrap(),
        None
    );
}

#[test]
fn policy_reads_from_configuration() {
    #[derive(serde::Deserialize)]
    struct Config {
        triggers: CronPolicy,
    }
    let config: Config =
        serde_json::from_str(r#"{"triggers": {"missed_fire": "catch_up_once"}}"#).unwrap();
    assert_eq!(config.triggers.missed_fire, MissedFire::CatchUpOnce);
    assert_eq!(config.triggers.grace_seconds, crate::DEFAULT_GRACE_SECONDS);
    assert!(serde_json::from_str::<CronPolicy>(r#"{"missed": "skip"}"#).is_err());
    assert_eq!(CronPolicy::default().missed_fire, MissedFire::Skip);
}

#[test]
fn irregular_wakeups_and_crashes_never_fire_an_instant_twice() {
    // Half-hourly in New York across the fall-back night, woken at irregular times (early,
    // on time, hours late), sometimes "crashing" before the watermark is committed; each
    // restart is a fresh call on the same store.
    let p = cron_playbook("*/30 * * * *", "America/New_York");
    let d = deployed(&p, at("2026-10-31T20:00:00-04:00"));
    for policy in [MissedFire::Skip, MissedFire::CatchUpOnce] {
        let store = MemoryStore::new();
        let mut now = at("2026-10-31T20:00:00-04:00");
        let end = at("2026-11-01T12:00:00-05:00");
        let mut seed: u64 = 7;
        let mut committed: Vec<Timestamp> = Vec::new();
        while now < end {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            // Half the wake-ups are when the scheduler asked for, the others random.
            let asked = next_cron_fire(std::slice::from_ref(&d), &store)
                .unwrap()
                .unwrap();
            now = if (seed >> 40).is_multiple_of(2) && asked > now {
                asked
            } else {
                now + chrono::TimeDelta::seconds(i64::try_from(seed >> 33).unwrap() % 7_200)
            };
            let crash = (seed >> 20).is_multiple_of(4);
            for fire in
                due_cron_fires(&store, std::slice::from_ref(&d), now, &policy.into()).unwrap()
            {
                if crash {
                    continue;
                }
                if let Some(t) = fire.fire_at {
                    assert!(t <= now && committed.last().is_none_or(|last| *last < t));
                    committed.push(t);
                }
                commit(&store, vec![fire.commit]);
            }
        }
        assert!(committed.len() > 5, "{policy:?}: {committed:?}");
        // Every fired instant is one of the schedule's (never the repeated 01:00-01:30 EST).
        let schedule = sop_dsl::cron::Schedule::parse("*/30 * * * *").unwrap();
        let zone = chrono_tz::America::New_York;
        let all: Vec<Timestamp> = schedule
            .iter_after(at("2026-10-31T20:00:00-04:00").with_timezone(&zone))
            .take_while(|t| t.to_utc() <= end)
            .map(|t| t.to_utc())
            .collect();
        assert!(committed.iter().all(|t| all.contains(t)), "{policy:?}");
        assert!(!all.contains(&at("2026-11-01T01:30:00-05:00")));
    }
}
