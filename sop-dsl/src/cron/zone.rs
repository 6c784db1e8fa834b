//! Wall-clock time ↔ instants across daylight-saving transitions.
//!
//! A schedule is a set of wall-clock readings. Each reading fires at the first instant the clock
//! shows it or, if the clock jumps over it, at the first instant after the jump. Both rules are
//! one function: `first_instant(L) = min { t : clock(t) >= L }`, which is monotone in `L`, so the
//! next fire after `t` is `first_instant` of the first scheduled reading above the highest reading
//! the clock has shown up to `t` (`high_water`). (`Schedule::next_after` then merges a fire at a
//! jump into the schedule's next regular fire when that comes soon after; see `jump_size`.)

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone};
use chrono_tz::Tz;

/// Longest backward clock change we look for. Real fall-backs are 30 minutes to 2 hours.
const LOOK_BACK: TimeDelta = TimeDelta::hours(6);
/// Wider than any UTC offset (-12h to +14h): bounds the search for the end of a gap.
const ANY_OFFSET: TimeDelta = TimeDelta::hours(26);

/// The instant `local` fires at in `tz`: its only or first occurrence, or the end of the skipped
/// interval containing it. `None` only at the edges of chrono's representable range.
pub fn first_instant(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Tz>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t),
        LocalResult::Ambiguous(a, b) => Some(a.min(b)),
        LocalResult::None => gap_end(tz, local),
    }
}

/// First instant whose reading is after `local`, for a `local` the clock skips.
fn gap_end(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Tz>> {
    let reading_after = |ts: i64| {
        DateTime::from_timestamp(ts, 0)
            .map(|u| tz.from_utc_datetime(&u.naive_utc()).naive_local() > local)
    };
    // Readings before `lo` are all before `local`, readings from `hi` on are all after it.
    let mut lo = local.checked_sub_signed(ANY_OFFSET)?.and_utc().timestamp();
    let mut hi = local.checked_add_signed(ANY_OFFSET)?.and_utc().timestamp();
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if reading_after(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0).map(|u| tz.from_utc_datetime(&u.naive_utc()))
}

/// How much wall-clock time the clock skipped when it jumped at `jump` (zero if it did not).
pub fn jump_size(jump: DateTime<Tz>) -> TimeDelta {
    let offset = |t: DateTime<Tz>| i64::from(t.offset().fix().local_minus_utc());
    let before = jump
        .checked_sub_signed(TimeDelta::seconds(1))
        .map_or(offset(jump), offset);
    TimeDelta::seconds((offset(jump) - before).max(0))
}

/// The highest wall-clock reading shown up to and including `at` (whole seconds). It differs from
/// `at`'s own reading only in the repeated hour after the clock is set back: then it is the last
/// reading before the change, so nothing fires a second time.
pub fn high_water(at: DateTime<Tz>) -> Option<NaiveDateTime> {
    let tz = at.timezone();
    let at = DateTime::from_timestamp(at.timestamp(), 0)?.with_timezone(&tz);
    let offset = |t: DateTime<Tz>| t.offset().fix().local_minus_utc();
    let now = offset(at);
    let earlier = at.checked_sub_signed(LOOK_BACK)?;
    if offset(earlier) <= now {
        return Some(at.naive_local());
    }
    // The clock was set back within the window: find the change (last second still on the old offset).
    let (mut lo, mut hi) = (earlier.timestamp(), at.timestamp());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let t = DateTime::from_timestamp(mid, 0)?.with_timezone(&tz);
        if offset(t) == now {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let before_change = DateTime::from_timestamp(lo, 0)?
        .with_timezone(&tz)
        .naive_local();
    Some(before_change.max(at.naive_local()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use chrono_tz::America::New_York;

    fn local(d: u32, h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 3, d)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
    }

    #[test]
    fn a_skipped_reading_fires_when_the_clock_jumps() {
        // 2026-03-08 02:00 EST → 03:00 EDT.
        let t = first_instant(New_York, local(8, 2, 30)).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-08T03:00:00-04:00");
    }

    #[test]
    fn jump_size_is_the_skipped_wall_clock_time() {
        let jump = first_instant(New_York, local(8, 2, 30)).unwrap();
        assert_eq!(jump_size(jump), TimeDelta::hours(1));
        let ordinary = first_instant(New_York, local(9, 2, 30)).unwrap();
        assert_eq!(jump_size(ordinary), TimeDelta::zero());
    }

    #[test]
    fn a_repeated_reading_fires_at_its_first_occurrence() {
        let l = NaiveDate::from_ymd_opt(2026, 11, 1)
            .unwrap()
            .and_hms_opt(1, 30, 0)
            .unwrap();
        assert_eq!(
            first_instant(New_York, l).unwrap().to_rfc3339(),
            "2026-11-01T01:30:00-04:00"
        );
    }

    #[test]
    fn high_water_holds_through_the_repeated_hour() {
        // 01:20 EST is after 01:59:59 EDT was shown.
        let at = New_York.from_utc_datetime(
            &NaiveDate::from_ymd_opt(2026, 11, 1)
                .unwrap()
                .and_hms_opt(6, 20, 0)
                .unwrap(),
        );
        assert_eq!(at.to_rfc3339(), "2026-11-01T01:20:00-05:00");
        let hw = high_water(at).unwrap();
        assert_eq!(hw.to_string(), "2026-11-01 01:59:59");
        let normal = New_York.with_ymd_and_hms(2026, 11, 1, 3, 0, 0).unwrap();
        assert_eq!(
            high_water(normal).unwrap().to_string(),
            "2026-11-01 03:00:00"
        );
    }
}
