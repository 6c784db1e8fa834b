//! The virtual clock wakes exactly the sleepers whose deadline passed, in order, without
//! any real waiting.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use chrono::{TimeDelta, TimeZone, Utc};
use sop_clock::{Clock, Timestamp, VirtualClock};

fn start() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

type Log = Arc<Mutex<Vec<(usize, Timestamp)>>>;

fn spawn_sleeper(clock: &VirtualClock, log: &Log, id: usize, deadline: Timestamp) {
    let clock = clock.clone();
    let log = Arc::clone(log);
    tokio::spawn(async move {
        clock.sleep_until(deadline).await;
        log.lock().unwrap().push((id, clock.now()));
    });
}

#[tokio::test]
async fn sleepers_wake_in_deadline_order_each_at_its_deadline() {
    let clock = VirtualClock::new(start());
    let log: Log = Arc::default();
    // Registered out of order on purpose.
    let minutes = [50, 10, 40, 20, 30];
    for (id, m) in minutes.iter().enumerate() {
        spawn_sleeper(&clock, &log, id, start() + TimeDelta::minutes(*m));
    }
    clock.settle().await;
    assert_eq!(clock.sleepers(), 5);
    let woken = clock.run_until(start() + TimeDelta::hours(1)).await;
    assert_eq!(woken, 5);
    let log = log.lock().unwrap().clone();
    let expect: Vec<(usize, Timestamp)> = [1, 3, 4, 2, 0]
        .into_iter()
        .map(|id| (id, start() + TimeDelta::minutes(minutes[id])))
        .collect();
    assert_eq!(log, expect);
    assert_eq!(clock.now(), start() + TimeDelta::hours(1));
}

#[tokio::test]
async fn advance_to_wakes_only_passed_deadlines() {
    let clock = VirtualClock::new(start());
    let log: Log = Arc::default();
    for id in 0..1000 {
        spawn_sleeper(
            &clock,
            &log,
            id,
            start() + TimeDelta::seconds(id as i64 + 1),
        );
    }
    clock.settle().await;
    assert_eq!(clock.next_deadline(), Some(start() + TimeDelta::seconds(1)));
    // One jump past 600 deadlines.
    assert_eq!(clock.advance_to(start() + TimeDelta::seconds(600)), 600);
    clock.settle().await;
    assert_eq!(log.lock().unwrap().len(), 600);
    assert_eq!(clock.sleepers(), 400);
    assert_eq!(
        clock.next_deadline(),
        Some(start() + TimeDelta::seconds(601))
    );
    // All woken ones saw the jump target, and the earlier deadlines were woken first.
    let ids: Vec<usize> = log.lock().unwrap().iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (0..600).collect::<Vec<_>>());
    assert_eq!(clock.advance_to(start() + TimeDelta::days(1)), 400);
    clock.settle().await;
    assert_eq!(log.lock().unwrap().len(), 1000);
    assert_eq!(clock.sleepers(), 0);
}

#[tokio::test]
async fn equal_deadlines_wake_in_registration_order() {
    let clock = VirtualClock::new(start());
    let log: Log = Arc::default();
    let deadline = start() + TimeDelta::minutes(5);
    for id in 0..10 {
        spawn_sleeper(&clock, &log, id, deadline);
        // Make each task register before the next is spawned.
        clock.settle().await;
    }
    clock.run_for(TimeDelta::minutes(5)).await;
    let ids: Vec<usize> = log.lock().unwrap().iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_dropped_sleeper_is_unregistered_and_never_woken() {
    let clock = VirtualClock::new(start());
    {
        let mut sleep = pin!(clock.sleep(start() + TimeDelta::hours(1)));
        assert!(poll_once(sleep.as_mut()).is_pending());
        assert_eq!(clock.sleepers(), 1);
    }
    assert_eq!(clock.sleepers(), 0);
    assert_eq!(clock.advance_to(start() + TimeDelta::hours(2)), 0);
}

#[tokio::test]
async fn a_sleeper_cancelled_by_a_select_is_unregistered() {
    let clock = VirtualClock::new(start());
    let long = clock.sleep(start() + TimeDelta::days(7));
    let short = clock.sleep(start() + TimeDelta::hours(1));
    let c = clock.clone();
    let task = tokio::spawn(async move {
        tokio::select! {
            _ = long => "long",
            _ = short => "short",
        }
    });
    clock.settle().await;
    assert_eq!(clock.sleepers(), 2);
    c.run_for(TimeDelta::hours(1)).await;
    assert_eq!(task.await.unwrap(), "short");
    assert_eq!(
        clock.sleepers(),
        0,
        "the losing branch unregistered on drop"
    );
}

#[tokio::test]
async fn past_and_present_deadlines_complete_without_registering() {
    let clock = VirtualClock::new(start());
    let mut past = pin!(clock.sleep(start() - TimeDelta::days(1)));
    assert!(poll_once(past.as_mut()).is_ready());
    let mut now = pin!(clock.sleep(start()));
    assert!(poll_once(now.as_mut()).is_ready());
    assert_eq!(clock.sleepers(), 0);
}

#[tokio::test]
async fn woken_tasks_may_sleep_again_within_the_same_run() {
    // A 30-day story: a task that wakes once a day, run in no real time.
    let clock = VirtualClock::new(start());
    let days = Arc::new(Mutex::new(Vec::new()));
    let (c, d) = (clock.clone(), Arc::clone(&days));
    tokio::spawn(async move {
        for day in 1..=30 {
            c.sleep_until(start() + TimeDelta::days(day)).await;
            d.lock().unwrap().push(c.now());
        }
    });
    let woken = clock.run_for(TimeDelta::days(30)).await;
    assert_eq!(woken, 30);
    let days = days.lock().unwrap().clone();
    let expect: Vec<Timestamp> = (1..=30).map(|d| start() + TimeDelta::days(d)).collect();
    assert_eq!(days, expect);
}

#[tokio::test]
async fn setting_time_backwards_keeps_sleepers_waiting() {
    let clock = VirtualClock::new(start());
    let mut sleep = pin!(clock.sleep(start() + TimeDelta::hours(1)));
    assert!(poll_once(sleep.as_mut()).is_pending());
    assert_eq!(clock.set(start() - TimeDelta::hours(3)), 0);
    assert!(poll_once(sleep.as_mut()).is_pending());
    assert_eq!(clock.now(), start() - TimeDelta::hours(3));
    // advance_to never moves backwards.
    clock.advance_to(start() - TimeDelta::hours(5));
    assert_eq!(clock.now(), start() - TimeDelta::hours(3));
    assert_eq!(clock.set(start() + TimeDelta::hours(1)), 1);
    assert!(poll_once(sleep.as_mut()).is_ready());
}

#[tokio::test]
async fn negative_advance_is_ignored_and_clones_share_time() {
    let clock = VirtualClock::new(start());
    let other = clock.clone();
    clock.advance(TimeDelta::minutes(-5));
    assert_eq!(other.now(), start());
    other.advance(TimeDelta::minutes(5));
    assert_eq!(clock.now(), start() + TimeDelta::minutes(5));
    assert_eq!(
        clock.now_ms(),
        (start() + TimeDelta::minutes(5)).timestamp_millis()
    );
}

#[tokio::test]
async fn usable_as_a_shared_trait_object() {
    let virt = VirtualClock::new(start());
    let clock: Arc<dyn Clock> = Arc::new(virt.clone());
    let c = Arc::clone(&clock);
    let task = tokio::spawn(async move {
        c.sleep_until(start() + TimeDelta::seconds(20)).await;
        c.now()
    });
    virt.run_for(TimeDelta::seconds(20)).await;
    assert_eq!(task.await.unwrap(), start() + TimeDelta::seconds(20));
}
