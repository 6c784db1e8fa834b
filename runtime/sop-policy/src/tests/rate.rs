//! Rate limits: pacing, priorities, isolation between accounts, slow-down.

use std::sync::Mutex;
use std::time::Duration;

use sop_clock::{Clock, TimeDelta};

use super::*;
use crate::{Priority, RateConfig, Slot};

const START: &str = "2026-03-02T02:00:00Z";

fn slow_gate() -> (Arc<Gate>, VirtualClock) {
    gate_with(PolicyConfig::default(), &slow_catalog(), START)
}

/// Spawns an acquire that logs `label` with the virtual time it was granted.
fn spawn_acquire(
    gate: &Arc<Gate>,
    clock: &VirtualClock,
    log: &Arc<Mutex<Vec<(String, Timestamp)>>>,
    account: &str,
    priority: Priority,
    label: &str,
) -> tokio::task::JoinHandle<Duration> {
    let (gate, clock, log) = (Arc::clone(gate), clock.clone(), Arc::clone(log));
    let (account, label) = (account.to_string(), label.to_string());
    tokio::spawn(async move {
        let waited = gate.acquire("p", &account, "send", priority).await;
        log.lock().unwrap().push((label, clock.now()));
        waited
    })
}

/// `bulk0` … `bulk{n-1}` on account acme, one after the other: the first takes the slot,
/// the others queue.
async fn queue_bulk(
    gate: &Arc<Gate>,
    clock: &VirtualClock,
    log: &Arc<Mutex<Vec<(String, Timestamp)>>>,
    n: usize,
) {
    for i in 0..n {
        spawn_acquire(
            gate,
            clock,
            log,
            "acme",
            Priority::Bulk,
            &format!("bulk{i}"),
        );
        clock.settle().await;
    }
}

fn labels(log: &Mutex<Vec<(String, Timestamp)>>) -> Vec<String> {
    log.lock().unwrap().iter().map(|(l, _)| l.clone()).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn time_critical_goes_before_normal_before_bulk() {
    let (gate, clock) = slow_gate();
    let log = Arc::new(Mutex::new(Vec::new()));
    queue_bulk(&gate, &clock, &log, 3).await;
    // bulk0 took the first slot; bulk1 and bulk2 wait for 10 s slots.
    assert_eq!(labels(&log), ["bulk0"]);
    spawn_acquire(&gate, &clock, &log, "acme", Priority::Normal, "normal");
    spawn_acquire(
        &gate,
        &clock,
        &log,
        "acme",
        Priority::TimeCritical,
        "welcome",
    );
    clock.settle().await;
    assert_eq!(gate.snapshot().accounts[0].queued, 4);
    clock.run_for(TimeDelta::seconds(60)).await;
    assert_eq!(
        labels(&log),
        ["bulk0", "welcome", "normal", "bulk1", "bulk2"]
    );
    let times: Vec<i64> = log
        .lock()
        .unwrap()
        .iter()
        .map(|(_, at)| (*at - t(START)).num_seconds())
        .collect();
    assert_eq!(times, [0, 10, 20, 30, 40]);
    let snap = &gate.snapshot().accounts[0];
    assert_eq!(snap.queued, 0);
    let granted: Vec<u64> = snap.priorities.iter().map(|p| p.granted).collect();
    assert_eq!(granted, [1, 1, 0, 3]);
    assert_eq!(snap.priorities[0].waited_ms, 10_000);
}

#[tokio::test(flavor = "current_thread")]
async fn a_busy_account_never_delays_another_accounts_welcome() {
    let (gate, clock) = slow_gate();
    let log = Arc::new(Mutex::new(Vec::new()));
    for i in 0..50 {
        spawn_acquire(
            &gate,
            &clock,
            &log,
            "busy",
            Priority::Bulk,
            &format!("b{i}"),
        );
    }
    clock.settle().await;
    let welcome = spawn_acquire(
        &gate,
        &clock,
        &log,
        "quiet",
        Priority::TimeCritical,
        "welcome",
    );
    clock.settle().await;
    assert!(welcome.is_finished());
    assert_eq!(welcome.await.unwrap(), Duration::ZERO);
    assert_eq!(clock.now(), t(START));
    // A time-critical send on the busy account itself waits one slot at most.
    let own = spawn_acquire(&gate, &clock, &log, "busy", Priority::TimeCritical, "own");
    clock.run_for(TimeDelta::seconds(10)).await;
    assert_eq!(own.await.unwrap(), Duration::from_secs(10));
}

#[tokio::test(flavor = "current_thread")]
async fn slow_down_backs_the_account_off_and_is_counted() {
    let (gate, clock) = slow_gate();
    assert_eq!(
        gate.acquire("p", "acme", "send", Priority::Normal).await,
        Duration::ZERO
    );
    clock.advance(TimeDelta::seconds(10));
    gate.slow_down("p", "acme", Duration::from_secs(30));
    let log = Arc::new(Mutex::new(Vec::new()));
    let waiting = spawn_acquire(&gate, &clock, &log, "acme", Priority::TimeCritical, "after");
    let other = spawn_acquire(&gate, &clock, &log, "other", Priority::Bulk, "other");
    clock.settle().await;
    assert!(other.is_finished(), "another account is not slowed down");
    let snap = gate.snapshot();
    let acme = snap.accounts.iter().find(|a| a.account == "acme").unwrap();
    assert_eq!((acme.slow_downs, acme.slowed_ms), (1, 30_000));
    assert_eq!(acme.backoff_until, Some(t(START) + TimeDelta::seconds(40)));
    clock.run_for(TimeDelta::seconds(29)).await;
    assert!(!waiting.is_finished());
    clock.run_for(TimeDelta::seconds(1)).await;
    assert_eq!(waiting.await.unwrap(), Duration::from_secs(30));
    // A shorter second slow-down never shortens the first.
    gate.slow_down("p", "acme", Duration::from_secs(60));
    gate.slow_down("p", "acme", Duration::from_secs(1));
    let acme = gate
        .snapshot()
        .accounts
        .into_iter()
        .find(|a| a.account == "acme")
        .unwrap();
    assert_eq!(
        acme.backoff_until,
        Some(clock.now() + TimeDelta::seconds(60))
    );
    assert_eq!(acme.slow_downs, 3);
}

#[tokio::test(flavor = "current_thread")]
async fn recipient_limits_pace_each_recipient_separately() {
    let (gate, clock) = slow_gate();
    let notify = |who: &'static str| {
        let (gate, clock) = (Arc::clone(&gate), clock.clone());
        tokio::spawn(async move {
            gate.acquire_for("p", "acme", "notify", Some(who), Priority::Normal)
                .await;
            clock.now()
        })
    };
    let a1 = notify("alice");
    clock.settle().await;
    let b1 = notify("bob");
    clock.settle().await;
    let a2 = notify("alice");
    clock.run_for(TimeDelta::seconds(120)).await;
    let s = |h: Timestamp| (h - t(START)).num_seconds();
    assert_eq!(s(a1.await.unwrap()), 0);
    assert_eq!(s(b1.await.unwrap()), 10); // the account limit, not bob's
    assert_eq!(s(a2.await.unwrap()), 60); // alice's own limit
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_waiter_does_not_block_the_queue() {
    let (gate, clock) = slow_gate();
    gate.acquire("p", "acme", "send", Priority::Normal).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let head = spawn_acquire(&gate, &clock, &log, "acme", Priority::TimeCritical, "head");
    let next = spawn_acquire(&gate, &clock, &log, "acme", Priority::Bulk, "next");
    clock.settle().await;
    head.abort();
    clock.run_for(TimeDelta::seconds(10)).await;
    assert_eq!(labels(&log), ["next"]);
    assert_eq!(next.await.unwrap(), Duration::from_secs(10));
}

/// The shipped WeCom manifest: 10,000 calls a minute per corp. Paced with the default 2 %
/// headroom, a backlog never exceeds the limit in any 60 s window and uses ≥ 95 % of it.
#[tokio::test(flavor = "current_thread")]
async fn a_backlog_uses_the_limit_without_exceeding_it() {
    let mut catalog = shipped_catalog();
    let wecom = catalog.plugins.get_mut("wecom").unwrap();
    // 100 a minute, as the emulator's accounts are configured, to keep the test small.
    wecom.rate_limits[0]["max"] = 100.into();
    let (gate, clock) = gate_with(PolicyConfig::default(), &catalog, START);
    let grants = Arc::new(Mutex::new(Vec::new()));
    let n = 400;
    for _ in 0..n {
        let (gate, clock, grants) = (Arc::clone(&gate), clock.clone(), Arc::clone(&grants));
        tokio::spawn(async move {
            gate.acquire("wecom", "acme", "mass_send_contacts", Priority::Bulk)
                .await;
            grants.lock().unwrap().push(clock.now());
        });
    }
    while gate.snapshot().accounts.first().map_or(0, |a| a.queued) < n - 1 {
        tokio::task::yield_now().await;
    }
    clock.run_for(TimeDelta::minutes(10)).await;
    let mut grants = grants.lock().unwrap().clone();
    grants.sort();
    assert_eq!(grants.len(), n);
    // Any 60 s window (fixed or sliding) holds at most 100 grants.
    for (i, at) in grants.iter().enumerate() {
        let in_window = grants[i..]
            .iter()
            .take_while(|g| **g < *at + TimeDelta::seconds(60))
            .count();
        assert!(
            in_window <= 100,
            "{in_window} grants in the minute from {at}"
        );
    }
    let span = (grants[n - 1] - grants[0]).num_milliseconds() as f64 / 60_000.0;
    let per_minute = (n - 1) as f64 / span;
    assert!(per_minute >= 95.0, "{per_minute:.1}/min used of 100/min");
}

#[tokio::test(flavor = "current_thread")]
async fn a_burst_is_allowed_without_exceeding_the_window() {
    let mut catalog = slow_catalog();
    let p = catalog.plugins.get_mut("p").unwrap();
    p.rate_limits[0]["max"] = 10.into();
    let config = PolicyConfig {
        rate: RateConfig {
            headroom_percent: 0,
            burst: 5,
            ..RateConfig::default()
        },
        ..PolicyConfig::default()
    };
    let (gate, clock) = gate_with(config, &catalog, START);
    let log = Arc::new(Mutex::new(Vec::new()));
    for i in 0..20 {
        spawn_acquire(
            &gate,
            &clock,
            &log,
            "acme",
            Priority::Normal,
            &i.to_string(),
        );
    }
    clock.run_for(TimeDelta::seconds(60)).await;
    let grants: Vec<Timestamp> = log.lock().unwrap().iter().map(|(_, at)| *at).collect();
    assert_eq!(grants.len(), 20);
    // Five at once, then one every 10 s / 6 (10 - 5 + 1 cells a period).
    assert!(grants[..5].iter().all(|g| *g == t(START)));
    assert_eq!(grants[5] - t(START), TimeDelta::nanoseconds(1_666_666_667));
    for (i, at) in grants.iter().enumerate() {
        let n = grants[i..]
            .iter()
            .take_while(|g| **g < *at + TimeDelta::seconds(10))
            .count();
        assert!(n <= 10, "{n} grants in the 10 s from {at}");
    }
    let snap = gate.snapshot();
    let limit = snap.accounts[0]
        .limits
        .iter()
        .find(|l| l.limit.name == "slow")
        .unwrap();
    assert_eq!(limit.burst, 5);
    assert!(
        (limit.interval_ms - 10_000.0 / 6.0).abs() < 0.01,
        "{}",
        limit.interval_ms
    );
}

#[test]
fn priority_of_an_invocation() {
    let mut inv = marketing("r");
    assert_eq!(Priority::of(&inv), Priority::Bulk);
    inv.policy.category = sop_dsl::model::Category::Service;
    assert_eq!(Priority::of(&inv), Priority::Normal);
    inv.time_critical = true;
    assert_eq!(Priority::of(&inv), Priority::TimeCritical);
}

/// The issue's scenario scaled down: many accounts saturated by a broadcast, with welcomes
/// arriving throughout. Per account, no 60 s window exceeds the limit, the backlog uses
/// ≥ 95 % of it, and every welcome waits at most one paced slot.
#[tokio::test(flavor = "current_thread")]
async fn welcomes_stay_fast_while_a_broadcast_saturates_every_account() {
    let mut catalog = shipped_catalog();
    catalog.plugins.get_mut("wecom").unwrap().rate_limits[0]["max"] = 100.into();
    let (gate, clock) = gate_with(PolicyConfig::default(), &catalog, START);
    let accounts: Vec<String> = (0..10).map(|i| format!("corp{i}")).collect();
    let bulk = Arc::new(Mutex::new(Vec::new()));
    for account in &accounts {
        for _ in 0..250 {
            let (gate, clock, bulk) = (Arc::clone(&gate), clock.clone(), Arc::clone(&bulk));
            let account = account.clone();
            tokio::spawn(async move {
                gate.acquire("wecom", &account, "mass_send_contacts", Priority::Bulk)
                    .await;
                bulk.lock().unwrap().push((account, clock.now()));
            });
        }
    }
    // Let every sender reach its queue before time moves (the virtual clock does not wait
    // for tasks that have not run yet).
    while gate
        .snapshot()
        .accounts
        .iter()
        .map(|a| a.queued)
        .sum::<usize>()
        < 2490
    {
        tokio::task::yield_now().await;
    }
    let welcomes = Arc::new(Mutex::new(Vec::new()));
    let ticker = {
        let (gate, clock, welcomes) = (Arc::clone(&gate), clock.clone(), Arc::clone(&welcomes));
        let accounts = accounts.clone();
        tokio::spawn(async move {
            // A new contact on some account every 7 s, for two minutes.
            for i in 0..17 {
                clock
                    .sleep_until(t(START) + TimeDelta::seconds(7 * (i + 1)))
                    .await;
                let (gate, welcomes) = (Arc::clone(&gate), Arc::clone(&welcomes));
                let (clock, account) =
                    (clock.clone(), accounts[i as usize % accounts.len()].clone());
                tokio::spawn(async move {
                    let waited = gate
                        .acquire("wecom", &account, "send_welcome", Priority::TimeCritical)
                        .await;
                    welcomes
                        .lock()
                        .unwrap()
                        .push((account, clock.now(), waited));
                });
            }
        })
    };
    clock.run_for(TimeDelta::minutes(5)).await;
    ticker.await.unwrap();
    let welcomes = welcomes.lock().unwrap().clone();
    assert_eq!(welcomes.len(), 17);
    let slot = Duration::from_secs(60) / 98;
    let worst = welcomes.iter().map(|w| w.2).max().unwrap();
    assert!(
        worst <= slot + Duration::from_millis(1),
        "a welcome waited {worst:?}"
    );
    let bulk = bulk.lock().unwrap().clone();
    assert_eq!(bulk.len(), 2500);
    for account in &accounts {
        // Welcomes and broadcast share the platform limit.
        let mut at: Vec<Timestamp> = bulk
            .iter()
            .map(|(a, t)| (a, *t))
            .chain(welcomes.iter().map(|(a, t, _)| (a, *t)))
            .filter(|(a, _)| *a == account)
            .map(|(_, t)| t)
            .collect();
        at.sort();
        for (i, start) in at.iter().enumerate() {
            let n = at[i..]
                .iter()
                .take_while(|g| **g < *start + TimeDelta::seconds(60))
                .count();
            assert!(n <= 100, "{account}: {n} sends in the minute from {start}");
        }
        let minutes = (at[at.len() - 1] - at[0]).num_milliseconds() as f64 / 60_000.0;
        let rate = (at.len() - 1) as f64 / minutes;
        assert!(rate >= 95.0, "{account}: {rate:.1}/min");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn plugins_without_limits_pass_at_once_but_honour_slow_down() {
    let (gate, clock) = slow_gate();
    for _ in 0..3 {
        assert_eq!(
            gate.acquire("shop", "s1", "credit_points", Priority::Normal)
                .await,
            Duration::ZERO
        );
    }
    gate.slow_down("shop", "s1", Duration::from_secs(5));
    let g = Arc::clone(&gate);
    let h = tokio::spawn(async move {
        g.acquire("shop", "s1", "credit_points", Priority::Normal)
            .await
    });
    clock.run_for(TimeDelta::seconds(5)).await;
    assert_eq!(h.await.unwrap(), Duration::from_secs(5));
}

/// Grant times of `n` acquires spawned at once, with `f` doing the acquire.
fn spawn_many<F, Fut>(
    n: usize,
    clock: &VirtualClock,
    f: F,
) -> (Arc<Mutex<Vec<Timestamp>>>, Vec<tokio::task::JoinHandle<()>>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Duration> + Send + 'static,
{
    let grants = Arc::new(Mutex::new(Vec::new()));
    let handles = (0..n)
        .map(|_| {
            let (clock, grants, fut) = (clock.clone(), Arc::clone(&grants), f());
            tokio::spawn(async move {
                fut.await;
                grants.lock().unwrap().push(clock.now());
            })
        })
        .collect();
    (grants, handles)
}

/// At most `max` grants in any window of `per` starting at a grant; returns the rate per
/// minute over the whole span.
fn check_windows(label: &str, grants: &[Timestamp], max: usize, per: TimeDelta) -> f64 {
    let mut at = grants.to_vec();
    at.sort();
    for (i, start) in at.iter().enumerate() {
        let n = at[i..].iter().take_while(|g| **g < *start + per).count();
        assert!(n <= max, "{label}: {n} grants in the window from {start}");
    }
    let minutes = (at[at.len() - 1] - at[0]).num_milliseconds() as f64 / 60_000.0;
    (at.len() - 1) as f64 / minutes
}

/// WeCom's mass-send outcome checks query other APIs than the send: they are paced on the
/// manifest's `outcome_` limits, never take the sends' cells, never wait behind the bulk
/// backlog, and welcomes still go first on the account.
#[tokio::test(flavor = "current_thread")]
async fn outcome_checks_are_paced_on_their_own_limits() {
    let mut catalog = shipped_catalog();
    for limit in &mut catalog.plugins.get_mut("wecom").unwrap().rate_limits {
        if limit["per_seconds"] == 60 && limit["scope"] == "account" {
            limit["max"] = 100.into(); // the send API and the query APIs alike
        }
    }
    let (gate, clock) = gate_with(PolicyConfig::default(), &catalog, START);
    let g = Arc::clone(&gate);
    let (sends, _) = spawn_many(300, &clock, move || {
        let g = Arc::clone(&g);
        async move {
            g.acquire("wecom", "acme", "mass_send_contacts", Priority::Bulk)
                .await
        }
    });
    let g = Arc::clone(&gate);
    let (checks, _) = spawn_many(300, &clock, move || {
        let g = Arc::clone(&g);
        async move {
            g.acquire_outcome_check("wecom", "acme", "mass_send_contacts")
                .await
        }
    });
    while gate.snapshot().accounts.first().map_or(0, |a| a.queued) < 598 {
        tokio::task::yield_now().await;
    }
    // Neither waited for the other: both took a cell at once.
    assert_eq!(sends.lock().unwrap().as_slice(), [t(START)]);
    assert_eq!(checks.lock().unwrap().as_slice(), [t(START)]);
    let welcomes = Arc::new(Mutex::new(Vec::new()));
    let ticker = {
        let (gate, clock, welcomes) = (Arc::clone(&gate), clock.clone(), Arc::clone(&welcomes));
        tokio::spawn(async move {
            for i in 0..10 {
                clock
                    .sleep_until(t(START) + TimeDelta::seconds(13 * (i + 1)))
                    .await;
                let waited = gate
                    .acquire("wecom", "acme", "send_welcome", Priority::TimeCritical)
                    .await;
                welcomes.lock().unwrap().push((clock.now(), waited));
            }
        })
    };
    clock.run_for(TimeDelta::minutes(5)).await;
    ticker.await.unwrap();
    let welcomes = welcomes.lock().unwrap().clone();
    assert_eq!(welcomes.len(), 10);
    let slot = Duration::from_secs(60) / 98;
    assert!(
        welcomes
            .iter()
            .all(|w| w.1 <= slot + Duration::from_millis(1)),
        "{welcomes:?}"
    );
    let sends = sends.lock().unwrap().clone();
    let checks = checks.lock().unwrap().clone();
    assert_eq!((sends.len(), checks.len()), (300, 300));
    let minute = TimeDelta::seconds(60);
    // The send API's budget holds the sends and the welcomes; the checks have their own.
    let api: Vec<Timestamp> = sends
        .iter()
        .copied()
        .chain(welcomes.iter().map(|w| w.0))
        .collect();
    assert!(check_windows("send API", &api, 100, minute) >= 95.0);
    assert!(check_windows("query APIs", &checks, 100, minute) >= 95.0);
    let snap = &gate.snapshot().accounts[0];
    let granted: Vec<u64> = snap.priorities.iter().map(|p| p.granted).collect();
    assert_eq!(granted, [10, 0, 300, 300]);
}

/// On a plugin whose checks share the action's limit: a check goes after time-critical and
/// normal sends, before the bulk backlog.
#[tokio::test(flavor = "current_thread")]
async fn a_check_on_a_shared_limit_goes_before_bulk_after_replies() {
    let (gate, clock) = slow_gate();
    let log = Arc::new(Mutex::new(Vec::new()));
    queue_bulk(&gate, &clock, &log, 3).await;
    let check = {
        let (gate, clock, log) = (Arc::clone(&gate), clock.clone(), Arc::clone(&log));
        tokio::spawn(async move {
            gate.acquire_outcome_check("p", "acme", "send").await;
            log.lock().unwrap().push(("check".to_string(), clock.now()));
        })
    };
    spawn_acquire(&gate, &clock, &log, "acme", Priority::Normal, "normal");
    spawn_acquire(
        &gate,
        &clock,
        &log,
        "acme",
        Priority::TimeCritical,
        "welcome",
    );
    clock.run_for(TimeDelta::seconds(60)).await;
    check.await.unwrap();
    assert_eq!(
        labels(&log),
        ["bulk0", "welcome", "normal", "check", "bulk1", "bulk2"]
    );
}

/// Limiters are in memory: a restarted gate must not spend a full burst on top of what the
/// previous process sent in the same window. It starts empty and refills at the paced rate,
/// so the old and the new process together stay within the limit; recipient limits too.
#[tokio::test(flavor = "current_thread")]
async fn a_restart_starts_the_limiters_empty() {
    let mut catalog = slow_catalog();
    catalog.plugins.get_mut("p").unwrap().rate_limits[0]["max"] = 10.into();
    let config = PolicyConfig {
        rate: RateConfig {
            headroom_percent: 0,
            burst: 5,
            ..RateConfig::default()
        },
        ..PolicyConfig::default()
    };
    let (old, clock) = gate_with(config.clone(), &catalog, START);
    let send = |gate: &Arc<Gate>| {
        let g = Arc::clone(gate);
        move || {
            let g = Arc::clone(&g);
            async move { g.acquire("p", "acme", "send", Priority::Bulk).await }
        }
    };
    let (before, handles) = spawn_many(30, &clock, send(&old));
    clock.settle().await;
    clock.run_for(TimeDelta::seconds(15)).await;
    // The process dies with sends still waiting; a new one starts at once.
    for h in handles {
        h.abort();
    }
    clock.settle().await;
    drop(old);
    let restarted = clock.now();
    let new = fresh_gate(config, &catalog, &clock);
    let (after, _) = spawn_many(30, &clock, send(&new));
    clock.run_for(TimeDelta::seconds(60)).await;
    let before = before.lock().unwrap().clone();
    let mut after = after.lock().unwrap().clone();
    after.sort();
    assert_eq!((before.len(), after.len()), (13, 30));
    // Nothing at the restart itself: the first cell refills one interval (10 s / 6) later.
    assert_eq!(after[0] - restarted, TimeDelta::nanoseconds(1_666_666_667));
    let all: Vec<Timestamp> = before.iter().chain(after.iter()).copied().collect();
    check_windows("across the restart", &all, 10, TimeDelta::seconds(10));

    // Recipient limits of a fresh gate start empty too (1 per minute per member).
    let fresh = fresh_gate(PolicyConfig::default(), &slow_catalog(), &clock);
    let started = clock.now();
    let g = Arc::clone(&fresh);
    let notify = tokio::spawn(async move {
        g.acquire_for("p", "acme", "notify", Some("alice"), Priority::Normal)
            .await
    });
    clock.run_for(TimeDelta::seconds(120)).await;
    // The account limit's first cell at 10 s; alice's limit, first seen then, one interval
    // (60 s) later: priming counts from first use, which errs on the safe side.
    assert_eq!(notify.await.unwrap(), Duration::from_secs(70));
    assert!(clock.now() >= started + TimeDelta::seconds(70));
}

/// A bulk send that would find more than `park_after_seconds` of paced sends ahead of it is
/// not queued: it is told when to come back, the parked ones one interval apart, while
/// other priorities always queue. A platform back-off counts as time ahead.
#[tokio::test(flavor = "current_thread")]
async fn bulk_sends_behind_a_long_queue_are_told_when_to_come_back() {
    let (gate, clock) = slow_gate(); // 1 per 10 s; parks past 30 s
    let log = Arc::new(Mutex::new(Vec::new()));
    // bulk0 takes the slot; bulk1..bulk4 queue: 40 s of sends ahead of the next one.
    queue_bulk(&gate, &clock, &log, 5).await;
    let now = clock.now();
    let park = |g: Arc<Gate>, priority| async move {
        g.acquire_or_park("p", "acme", "send", None, priority).await
    };
    let s = TimeDelta::seconds;
    // Back when 15 s (half the threshold) are left ahead; the next one an interval later.
    assert_eq!(
        park(gate.clone(), Priority::Bulk).await,
        Slot::Park(now + s(25))
    );
    assert_eq!(
        park(gate.clone(), Priority::Bulk).await,
        Slot::Park(now + s(35))
    );
    // A reply never parks: it queues (ahead of the broadcast).
    let reply = tokio::spawn(park(gate.clone(), Priority::Normal));
    clock.settle().await;
    let acme = gate.snapshot().accounts.remove(0);
    assert_eq!((acme.queued, acme.parked), (5, 2));
    assert_eq!(acme.park_horizon, Some(now + s(45)));
    clock.run_for(s(10)).await;
    assert_eq!(reply.await.unwrap(), Slot::Granted(Duration::from_secs(10)));
    // Drained to 10 s ahead: bulk sends queue again.
    clock.run_for(s(30)).await;
    let late = tokio::spawn(park(gate.clone(), Priority::Bulk));
    clock.run_for(s(30)).await;
    assert!(matches!(late.await.unwrap(), Slot::Granted(_)));
    assert_eq!(labels(&log), ["bulk0", "bulk1", "bulk2", "bulk3", "bulk4"]);

    // An account backed off by the platform for a minute parks even with nothing queued.
    gate.slow_down("p", "other", Duration::from_secs(60));
    let now = clock.now();
    assert_eq!(
        gate.acquire_or_park("p", "other", "send", None, Priority::Bulk)
            .await,
        Slot::Park(now + s(45))
    );

    // 0 never parks.
    let config = PolicyConfig {
        rate: RateConfig {
            park_after_seconds: 0,
            ..RateConfig::default()
        },
        ..PolicyConfig::default()
    };
    let (gate, clock) = gate_with(config, &slow_catalog(), START);
    queue_bulk(&gate, &clock, &Arc::new(Mutex::new(Vec::new())), 10).await;
    let queued = tokio::spawn(async move {
        gate.acquire_or_park("p", "acme", "send", None, Priority::Bulk)
            .await
    });
    clock.run_for(s(200)).await;
    assert!(matches!(queued.await.unwrap(), Slot::Granted(_)));
}
