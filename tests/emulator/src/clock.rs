//! Time as the emulator sees it. Every expiry, window and limit reads this clock, so tests
//! drive time with [`ManualClock`] instead of sleeping.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + Debug {
    /// Current time in Unix milliseconds.
    fn now_ms(&self) -> u64;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    ms: AtomicU64,
}

impl ManualClock {
    /// Start at `start_ms` Unix milliseconds.
    pub fn new(start_ms: u64) -> Self {
        Self {
            ms: AtomicU64::new(start_ms),
        }
    }

    /// Move forward by `ms` milliseconds.
    pub fn advance(&self, ms: u64) {
        self.ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Jump to an absolute time.
    pub fn set(&self, ms: u64) {
        self.ms.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.ms.load(Ordering::SeqCst)
    }
}

/// Days in the month of `unix_ms` (UTC+8, the platforms' time zone), and a month key.
pub fn month_of(unix_ms: u64) -> (u32, u32) {
    let (y, m, _) = civil_date(unix_ms);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    };
    (y * 12 + m, days)
}

/// Day number (since the epoch) of `unix_ms` in UTC+8.
pub fn day_of(unix_ms: u64) -> u32 {
    u32::try_from((unix_ms + CHINA_OFFSET_MS) / 86_400_000).unwrap_or(u32::MAX)
}

const CHINA_OFFSET_MS: u64 = 8 * 3_600_000;

/// (year, month 1-12, day 1-31) in UTC+8; Howard Hinnant's days-to-civil algorithm.
fn civil_date(unix_ms: u64) -> (u32, u32, u32) {
    let days = i64::from(day_of(unix_ms));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        u32::try_from(y).unwrap_or(0),
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(500);
        assert_eq!(c.now_ms(), 1_500);
        c.set(10);
        assert_eq!(c.now_ms(), 10);
    }

    #[test]
    fn months_in_china_time() {
        // 2024-02-10 00:00 UTC+8: leap February.
        let feb = 1_707_494_400_000;
        assert_eq!(month_of(feb).1, 29);
        // 2023-12-31 20:00 UTC is already January 2024 in UTC+8.
        let new_year = 1_704_052_800_000;
        assert_eq!(month_of(new_year), (2024 * 12 + 1, 31));
        assert_eq!(month_of(new_year - 3_600_000 * 5).1, 31);
        assert_ne!(month_of(new_year).0, month_of(new_year - 3_600_000 * 5).0);
    }
}
