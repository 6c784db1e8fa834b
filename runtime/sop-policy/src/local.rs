//! Local time in a contact's zone: quiet-hour windows and calendar periods, DST-safe.

use chrono::{
    Datelike, Days, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike,
};
use chrono_tz::Tz;
use sop_clock::{TimeDelta, Timestamp};
use sop_dsl::model::QuietHours;

/// The calendar period a cap counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Calendar {
    Day,
    Week,
    Month,
}

/// The UTC instant of a local wall-clock time. A time skipped by a DST jump resolves to the
/// first valid minute after it; a repeated one to its first occurrence.
pub(crate) fn instant_of(tz: Tz, local: NaiveDateTime) -> Timestamp {
    let mut probe = local;
    // DST gaps are at most a few hours; a day of minutes bounds the search.
    for _ in 0..=24 * 60 {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.to_utc(),
            LocalResult::Ambiguous(early, _) => return early.to_utc(),
            LocalResult::None => probe += TimeDelta::minutes(1),
        }
    }
    // Unreachable for real zones; reading the wall clock as UTC keeps the result sane.
    local.and_utc()
}

fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_time(NaiveTime::MIN)
}

/// If `now` falls inside the quiet window in `tz`, the instant the window ends.
pub(crate) fn quiet_until(quiet: QuietHours, tz: Tz, now: Timestamp) -> Option<Timestamp> {
    let QuietHours::Window { start, end } = quiet else {
        return None;
    };
    let local = now.with_timezone(&tz).naive_local();
    let minutes = local.hour() * 60 + local.minute();
    if !quiet.contains(minutes) {
        return None;
    }
    let (s, e) = (start.minutes_since_midnight(), end.minutes_since_midnight());
    let end_time = NaiveTime::from_hms_opt(u32::from(end.hour), u32::from(end.minute), 0)
        .unwrap_or(NaiveTime::MIN);
    // A window wrapping past midnight ends tomorrow when we are in its evening part.
    let date = if s > e && minutes >= s {
        local.date().checked_add_days(Days::new(1))?
    } else {
        local.date()
    };
    let until = instant_of(tz, date.and_time(end_time));
    // A DST jump can land the end at or before now; never defer into the past.
    Some(until.max(now + TimeDelta::minutes(1)))
}

/// The period containing `now` in `tz`, as `[from, to)` in UTC.
pub(crate) fn period(calendar: Calendar, tz: Tz, now: Timestamp) -> (Timestamp, Timestamp) {
    let today = now.with_timezone(&tz).date_naive();
    let (first, next) = match calendar {
        Calendar::Day => (today, today.checked_add_days(Days::new(1))),
        Calendar::Week => {
            let monday = today
                .checked_sub_days(Days::new(u64::from(today.weekday().num_days_from_monday())))
                .unwrap_or(today);
            (monday, monday.checked_add_days(Days::new(7)))
        }
        Calendar::Month => {
            let first = today.with_day(1).unwrap_or(today);
            (first, first.checked_add_months(Months::new(1)))
        }
    };
    let from = instant_of(tz, midnight(first));
    let to = next.map_or(Timestamp::MAX_UTC, |d| instant_of(tz, midnight(d)));
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn quiet_window_across_midnight_in_shanghai() {
        let q: QuietHours = "22:00-08:00".parse().unwrap();
        let tz = chrono_tz::Asia::Shanghai;
        // 23:30 local (15:30 UTC): ends at 08:00 the next local day = 00:00 UTC.
        assert_eq!(
            quiet_until(q, tz, utc("2026-03-01T15:30:00Z")),
            Some(utc("2026-03-02T00:00:00Z"))
        );
        // 03:00 local: ends the same local day at 08:00.
        assert_eq!(
            quiet_until(q, tz, utc("2026-03-01T19:00:00Z")),
            Some(utc("2026-03-02T00:00:00Z"))
        );
        // 08:00 local sharp: outside.
        assert_eq!(quiet_until(q, tz, utc("2026-03-02T00:00:00Z")), None);
        assert_eq!(
            quiet_until(QuietHours::Off, tz, utc("2026-03-01T15:30:00Z")),
            None
        );
    }

    #[test]
    fn quiet_window_over_a_dst_change() {
        let q: QuietHours = "22:00-08:00".parse().unwrap();
        let tz = chrono_tz::America::New_York;
        // 2026-03-08: clocks jump 02:00 EST → 03:00 EDT. At 23:00 EST on the 7th (04:00Z)
        // the window ends at 08:00 EDT = 12:00Z, not 13:00Z.
        assert_eq!(
            quiet_until(q, tz, utc("2026-03-08T04:00:00Z")),
            Some(utc("2026-03-08T12:00:00Z"))
        );
        // A window ending inside the skipped hour ends at the first valid minute after it.
        let gap: QuietHours = "01:00-02:30".parse().unwrap();
        assert_eq!(
            quiet_until(gap, tz, utc("2026-03-08T06:30:00Z")), // 01:30 EST
            Some(utc("2026-03-08T07:00:00Z"))                  // 03:00 EDT
        );
        // Autumn: 2026-11-01 01:00-02:00 happens twice; the end is its first occurrence.
        let fall: QuietHours = "00:00-01:30".parse().unwrap();
        assert_eq!(
            quiet_until(fall, tz, utc("2026-11-01T04:30:00Z")), // 00:30 EDT
            Some(utc("2026-11-01T05:30:00Z"))                   // 01:30 EDT
        );
    }

    #[test]
    fn calendar_periods_follow_the_zone() {
        let tz = chrono_tz::Asia::Shanghai;
        // 2026-03-01 23:30 Shanghai is 15:30Z; the local day is March 1st.
        let (from, to) = period(Calendar::Day, tz, utc("2026-03-01T15:30:00Z"));
        assert_eq!(from, utc("2026-02-28T16:00:00Z"));
        assert_eq!(to, utc("2026-03-01T16:00:00Z"));
        // Wednesday 2026-03-04 → week Monday 2nd to Monday 9th.
        let (from, to) = period(Calendar::Week, tz, utc("2026-03-04T03:00:00Z"));
        assert_eq!(from, utc("2026-03-01T16:00:00Z"));
        assert_eq!(to, utc("2026-03-08T16:00:00Z"));
        let (from, to) = period(Calendar::Month, tz, utc("2026-02-28T17:00:00Z"));
        assert_eq!(from, utc("2026-02-28T16:00:00Z")); // March 1st local
        assert_eq!(to, utc("2026-03-31T16:00:00Z"));
        // A DST day is 23 hours long.
        let ny = chrono_tz::America::New_York;
        let (from, to) = period(Calendar::Day, ny, utc("2026-03-08T12:00:00Z"));
        assert_eq!(to - from, TimeDelta::hours(23));
    }
}
