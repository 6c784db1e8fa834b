//! Calendar arithmetic in the platforms' time zone (UTC+8): receive limits count per
//! calendar day and month there. Time itself comes from a `sop_clock::Clock` held by the app.

use chrono::{DateTime, Datelike, Months, NaiveDate};

const CHINA_OFFSET_MS: u64 = 8 * 3_600_000;

/// The calendar date of `unix_ms` in UTC+8: the UTC date of the instant shifted by 8 h.
fn china_date(unix_ms: u64) -> NaiveDate {
    let shifted = i64::try_from(unix_ms.saturating_add(CHINA_OFFSET_MS)).unwrap_or(i64::MAX);
    DateTime::from_timestamp_millis(shifted)
        .unwrap_or_default()
        .date_naive()
}

/// Days in the month of `unix_ms` (UTC+8, the platforms' time zone), and a month key.
pub fn month_of(unix_ms: u64) -> (u32, u32) {
    let date = china_date(unix_ms);
    let first = date.with_day(1).unwrap_or(date);
    let next = first.checked_add_months(Months::new(1)).unwrap_or(first);
    let days = u32::try_from((next - first).num_days()).unwrap_or(31);
    let year = u32::try_from(date.year()).unwrap_or(0);
    (year * 12 + date.month(), days)
}

/// Day number (since the epoch) of `unix_ms` in UTC+8.
pub fn day_of(unix_ms: u64) -> u32 {
    u32::try_from((unix_ms + CHINA_OFFSET_MS) / 86_400_000).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

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
