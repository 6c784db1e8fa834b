//! The real clock: wall time from the OS, sleeps on tokio timers.

use std::time::Duration;

use crate::{Clock, Sleep, Timestamp};

/// Wall-clock time. Sleeps re-check the wall clock when they wake, so a deadline is never
/// reported early even if the system clock is stepped backwards while sleeping.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// Longest single tokio sleep; bounded so a wall-clock step forward (NTP) is noticed soon.
const MAX_NAP: Duration = Duration::from_secs(60);

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_> {
        Box::pin(async move {
            loop {
                let left = deadline - self.now();
                // A non-positive remainder fails `to_std`: the deadline has passed.
                let Ok(left) = left.to_std() else { return };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(MAX_NAP)).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_deadline_completes_at_once() {
        let clock = SystemClock;
        let before = clock.now();
        clock
            .sleep_until(before - chrono::TimeDelta::hours(1))
            .await;
        clock.sleep_until(before).await;
        assert!(clock.now() >= before);
    }
}
