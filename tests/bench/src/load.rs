//! An open-loop load generator: starts requests on a schedule (not when earlier ones finish),
//! so a slow receiver shows up as latency, not as a lower offered rate.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How many requests should have started `elapsed` into a run at `rate` per second.
pub fn due(elapsed: Duration, rate: f64) -> u64 {
    (elapsed.as_secs_f64() * rate).floor() as u64
}

/// What a paced run did.
#[derive(Debug)]
pub struct Paced<T> {
    /// Each request's result, in completion order.
    pub results: Vec<T>,
    /// Requests started later than scheduled by more than 100 ms because `max_in_flight`
    /// were still open (the generator, not the target, was the limit).
    pub late: u64,
}

/// Starts `rate` requests per second for `duration` (`make(i)` for i = 0, 1, …), at most
/// `max_in_flight` at once, and waits for all of them.
pub async fn paced<T, F, Fut>(
    rate: f64,
    duration: Duration,
    max_in_flight: usize,
    mut make: F,
) -> Paced<T>
where
    T: Send + 'static,
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let total = due(duration, rate);
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let mut tasks = JoinSet::new();
    let mut results = Vec::with_capacity(total as usize);
    let start = Instant::now();
    let mut started = 0u64;
    let mut late = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while started < total {
        tick.tick().await;
        let target = due(start.elapsed(), rate).min(total);
        while started < target {
            let permit = permits.clone().acquire_owned().await.expect("never closed");
            let scheduled = Duration::from_secs_f64(started as f64 / rate);
            if start.elapsed() > scheduled + Duration::from_millis(100) {
                late += 1;
            }
            let fut = make(started);
            tasks.spawn(async move {
                let out = fut.await;
                drop(permit);
                out
            });
            started += 1;
        }
        while let Some(done) = tasks.try_join_next() {
            results.push(done.expect("request task panicked"));
        }
    }
    while let Some(done) = tasks.join_next().await {
        results.push(done.expect("request task panicked"));
    }
    Paced { results, late }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_linear_in_time() {
        assert_eq!(due(Duration::ZERO, 1000.0), 0);
        assert_eq!(due(Duration::from_millis(999), 1000.0), 999);
        assert_eq!(due(Duration::from_secs(60), 1000.0), 60_000);
        assert_eq!(due(Duration::from_millis(1500), 2.0), 3);
        assert_eq!(due(Duration::from_millis(400), 2.0), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn starts_every_request_once_and_collects_them() {
        // Paused tokio time: the schedule runs on virtual time, no real waiting.
        let run = paced(100.0, Duration::from_secs(2), 8, |i| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            i
        })
        .await;
        let mut got = run.results;
        got.sort_unstable();
        assert_eq!(got, (0..200).collect::<Vec<_>>());
        assert_eq!(run.late, 0);
    }
}
