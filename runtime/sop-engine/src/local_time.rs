//! The next occurrence of a local time of day, correct across daylight-saving changes.
//!
//! A time that does not exist that day (the spring-forward gap) fires at the first valid
//! minute after it; a time that occurs twice (fall back) fires at the first of the two. That is
//! crontab's rule, and right for customer messages: never skip a day, never fire twice.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use sop_dsl::model::TimeOfDay;

/// The first instant strictly after `now` whose local time in `zone` is `at` (or, on a day
/// when `at` falls in a gap, the end of the gap).
pub fn next_local_time(now: DateTime<Utc>, zone: Tz, at: TimeOfDay) -> DateTime<Utc> {
    let today = now.with_timezone(&zone).date_naive();
    // Three days always suffice: the occurrence today may have passed, tomorrow's may not.
    for offset in 0..3 {
        let Some(day) = today.checked_add_days(Days::new(offset)) else {
            break;
        };
        if let Some(candidate) = on_day(zone, day, at).filter(|t| *t > now) {
            return candidate;
        }
    }
    // Unreachable for real zones; a day later is still a correct, conservative answer.
    now.checked_add_signed(chrono::TimeDelta::days(1))
        .unwrap_or(now)
}

fn on_day(zone: Tz, day: NaiveDate, at: TimeOfDay) -> Option<DateTime<Utc>> {
    let time = NaiveTime::from_hms_opt(u32::from(at.hour), u32::from(at.minute), 0)?;
    let mut local = day.and_time(time);
    // Gaps are at most a few hours; walk forward a minute at a time to the first valid one.
    for _ in 0..=24 * 60 {
        match zone.from_local_datetime(&local) {
            LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => return Some(first.with_timezone(&Utc)),
            LocalResult::None => local += chrono::Duration::minutes(1),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn tod(text: &str) -> TimeOfDay {
        text.parse().unwrap()
    }

    #[test]
    fn later_today_or_tomorrow() {
        let zone = Tz::Asia__Shanghai;
        // 01:00 UTC = 09:00 Shanghai.
        let now = utc("2026-03-02T01:00:00Z");
        assert_eq!(
            next_local_time(now, zone, tod("09:30")),
            utc("2026-03-02T01:30:00Z")
        );
        assert_eq!(
            next_local_time(now, zone, tod("09:00")),
            utc("2026-03-03T01:00:00Z")
        );
        assert_eq!(
            next_local_time(now, zone, tod("08:00")),
            utc("2026-03-03T00:00:00Z")
        );
    }

    #[test]
    fn spring_forward_gap_fires_at_the_end_of_the_gap() {
        let zone = Tz::America__New_York;
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist.
        let now = utc("2026-03-08T05:00:00Z"); // 00:00 EST
        assert_eq!(
            next_local_time(now, zone, tod("02:30")),
            utc("2026-03-08T07:00:00Z")
        );
    }

    #[test]
    fn fall_back_repeated_hour_fires_once_at_the_first() {
        let zone = Tz::America__New_York;
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
        let now = utc("2026-11-01T04:00:00Z"); // 00:00 EDT
        let first = next_local_time(now, zone, tod("01:30"));
        assert_eq!(first, utc("2026-11-01T05:30:00Z"));
        // Asked again right after it fired, the next one is tomorrow, not the repeat.
        let next = next_local_time(first, zone, tod("01:30"));
        assert_eq!(next, utc("2026-11-02T06:30:00Z"));
    }
}
