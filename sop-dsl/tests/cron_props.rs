//! Properties of cron schedules over random expressions, zones and start times.
//!
//! The strongest one compares `iter_after` with a brute-force model written independently of the
//! implementation: a scheduler that wakes every real minute, looks at the wall clock, and fires if
//! the clock has newly passed (or jumped over) a scheduled reading since it last looked. That is
//! the documented meaning: skipped readings fire when the clock jumps, repeated ones never again.

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use sop_dsl::cron::Schedule;

/// Zones with daylight saving at different hours, of different sizes, in both hemispheres.
const ZONES: &[&str] = &[
    "Asia/Shanghai",
    "America/New_York",
    "Europe/Berlin",
    "America/Havana",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Australia/Sydney",
    "Asia/Kolkata",
    "UTC",
];

fn number(min: u32, max: u32) -> impl Strategy<Value = String> {
    (min..=max).prop_map(|v| v.to_string())
}

/// One list item of a field with values `min..=max`, in every crontab form.
fn item(min: u32, max: u32) -> impl Strategy<Value = String> {
    let range = (min..=max, min..=max).prop_map(|(a, b)| (a.min(b), a.max(b)));
    prop_oneof![
        3 => Just("*".to_owned()),
        2 => number(min, max),
        1 => (1..=(max - min + 1)).prop_map(|n| format!("*/{n}")),
        1 => range.clone().prop_map(|(a, b)| format!("{a}-{b}")),
        1 => range.prop_flat_map(|(a, b)| (1..=(b - a + 1)).prop_map(move |n| format!("{a}-{b}/{n}"))),
        1 => (min..=max).prop_flat_map(move |a| (1..=(max - a + 1)).prop_map(move |n| format!("{a}/{n}"))),
    ]
}

fn field(min: u32, max: u32) -> impl Strategy<Value = String> {
    prop::collection::vec(item(min, max), 1..=3).prop_map(|items| items.join(","))
}

fn names(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(names), 1..=2).prop_map(|n| n.join(","))
}

/// Five-field expressions, with day fields often left as `*` so schedules fire often enough.
fn expression5() -> impl Strategy<Value = String> {
    let dom = prop_oneof![2 => Just("*".to_owned()), 1 => field(1, 31)];
    let month = prop_oneof![
        3 => Just("*".to_owned()),
        1 => field(1, 12),
        1 => names(&["JAN", "mar", "Oct", "NOV", "dec"]),
    ];
    let dow = prop_oneof![
        2 => Just("*".to_owned()),
        1 => field(0, 7),
        1 => names(&["SUN", "mon", "Fri", "SAT"]),
    ];
    (field(0, 59), field(0, 23), dom, month, dow)
        .prop_map(|(m, h, dom, mon, dow)| format!("{m} {h} {dom} {mon} {dow}"))
}

fn expression() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => expression5(),
        1 => (field(0, 59), expression5()).prop_map(|(s, rest)| format!("{s} {rest}")),
        1 => prop::sample::select(&["@yearly", "@monthly", "@weekly", "@daily", "@hourly"][..])
            .prop_map(str::to_owned),
    ]
}

fn zone() -> impl Strategy<Value = Tz> {
    prop::sample::select(ZONES).prop_map(|z| z.parse::<Tz>().unwrap())
}

fn instant(tz: Tz, ts: i64) -> DateTime<Tz> {
    tz.from_utc_datetime(&DateTime::from_timestamp(ts, 0).unwrap().naive_utc())
}

fn offset(t: DateTime<Tz>) -> i32 {
    t.offset().fix().local_minus_utc()
}

/// Instants at which the zone's offset changes in 2025-2027 (found by scanning hourly).
fn transitions(tz: Tz) -> Vec<i64> {
    let start = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    let end = Utc
        .with_ymd_and_hms(2028, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    (start..end)
        .step_by(3600)
        .filter(|&ts| offset(instant(tz, ts)) != offset(instant(tz, ts + 3600)))
        .map(|ts| ts + 3600)
        .collect()
}

/// The model scheduler: wake each real minute until `to` and look at the wall clock. Fire if it
/// shows a scheduled minute not shown before. If it jumped over scheduled minutes, fire now too,
/// unless a scheduled minute comes up within as much time as the clock skipped (that fire then
/// stands for the skipped ones). Report the fires after `from`; watch the clock from six hours
/// earlier so that `from` may fall inside a repeated hour.
fn model_fires(schedule: &Schedule, tz: Tz, from: i64, to: i64) -> Vec<i64> {
    let reading = |ts: i64| instant(tz, ts).naive_local();
    let minutes =
        |from: NaiveDateTime, count: i64| (0..count).map(move |i| from + Duration::minutes(i));
    let warm_up = from - 6 * 3600;
    let mut high: NaiveDateTime = reading(warm_up);
    let mut fires = Vec::new();
    for ts in (warm_up + 60..=to).step_by(60) {
        let now = reading(ts);
        if now <= high {
            continue;
        }
        let skipped = (now - high).num_minutes() - 1;
        let fire = schedule.matches(now)
            || (minutes(high + Duration::minutes(1), skipped).any(|l| schedule.matches(l))
                && !minutes(now + Duration::minutes(1), skipped - 1).any(|l| schedule.matches(l)));
        if fire && ts > from {
            fires.push(ts);
        }
        high = now;
    }
    fires
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_never_panics_on_any_text(text in "\\PC{0,40}") {
        let _ = Schedule::parse(&text);
    }

    #[test]
    fn parse_never_panics_on_near_misses(text in "[0-9*/,\\- @a-zA-Z?#LW\t]{0,30}") {
        if let Err(e) = Schedule::parse(&text) {
            prop_assert!(e.span.start <= e.span.end && e.span.end <= text.len(), "{:?} {:?}", text, e);
            prop_assert!(text.is_char_boundary(e.span.start) && text.is_char_boundary(e.span.end));
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn errors_spans_are_on_char_boundaries(text in "[0-9*/, 周一\u{3000}]{0,20}") {
        if let Err(e) = Schedule::parse(&text) {
            prop_assert!(e.span.end <= text.len());
            prop_assert!(text.is_char_boundary(e.span.start) && text.is_char_boundary(e.span.end));
        }
    }

    #[test]
    fn valid_expressions_round_trip_and_describe(expr in expression()) {
        let schedule = Schedule::parse(&expr).unwrap();
        prop_assert!(!schedule.describe().is_empty());
        prop_assert_eq!(Schedule::parse(&schedule.to_string()).unwrap(), schedule);
    }

    /// Fire times increase, and each is a scheduled reading in local time unless it is the end of
    /// a daylight-saving gap that swallowed a scheduled reading.
    #[test]
    fn fire_times_increase_and_match_the_fields(
        expr in expression(),
        tz in zone(),
        start in Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap().timestamp()
            ..Utc.with_ymd_and_hms(2090, 1, 1, 0, 0, 0).unwrap().timestamp(),
    ) {
        let schedule = Schedule::parse(&expr).unwrap();
        let mut previous = instant(tz, start);
        for fire in schedule.iter_after(previous).take(20) {
            prop_assert!(fire > previous, "{} in {}: {} then {}", expr, tz, previous, fire);
            let local = fire.naive_local();
            if !schedule.matches(local) {
                let before = fire - Duration::seconds(1);
                prop_assert!(offset(before) < offset(fire), "{} in {}: {} does not match", expr, tz, fire);
                let mut l = before.naive_local() + Duration::seconds(1);
                let mut swallowed = false;
                while l < local && !swallowed {
                    swallowed = schedule.matches(l);
                    l += Duration::seconds(1);
                }
                prop_assert!(swallowed, "{} in {}: {} matches nothing in the gap", expr, tz, fire);
            }
            previous = fire;
        }
    }

    /// Around every transition of 2025-2027, the fires equal the minute-by-minute model's.
    #[test]
    fn agrees_with_a_minute_by_minute_scheduler_across_transitions(
        expr in expression5(),
        tz in zone(),
        pick in any::<prop::sample::Index>(),
        lead_minutes in 0i64..(24 * 60),
    ) {
        let schedule = Schedule::parse(&expr).unwrap();
        let around = transitions(tz);
        // Zones without transitions get an ordinary day.
        let pivot = if around.is_empty() { 1_767_225_600 } else { around[pick.index(around.len())] };
        let from = pivot - lead_minutes * 60;
        let to = from + 2 * 24 * 3600;
        let expected = model_fires(&schedule, tz, from, to);
        let got: Vec<i64> = schedule
            .iter_after(instant(tz, from))
            .map(|t| t.timestamp())
            .take_while(|&ts| ts <= to)
            .collect();
        prop_assert_eq!(got, expected, "{} in {} from {}", expr, tz, instant(tz, from));
    }

    /// Across month and year ends of 2000-2090 (leap days included), the fires equal the model's.
    #[test]
    fn agrees_with_a_minute_by_minute_scheduler_across_month_ends(
        expr in expression5(),
        tz in zone(),
        year in 2000i32..2090,
        month in 1u32..=12,
        lead_minutes in 0i64..(24 * 60),
    ) {
        let schedule = Schedule::parse(&expr).unwrap();
        let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
        let month_end = tz
            .with_ymd_and_hms(next_year, next_month, 1, 0, 0, 0)
            .earliest()
            .unwrap_or_else(|| instant(tz, Utc.with_ymd_and_hms(next_year, next_month, 1, 0, 0, 0).unwrap().timestamp()));
        let from = month_end.timestamp() - lead_minutes * 60;
        let to = from + 2 * 24 * 3600;
        let expected = model_fires(&schedule, tz, from, to);
        let got: Vec<i64> = schedule
            .iter_after(instant(tz, from))
            .map(|t| t.timestamp())
            .take_while(|&ts| ts <= to)
            .collect();
        prop_assert_eq!(got, expected, "{} in {} from {}", expr, tz, instant(tz, from));
    }

    /// Any zone, any time from 1900 to 2200: no panic, and results still increase.
    #[test]
    fn any_zone_any_era_never_panics(
        expr in expression(),
        tz in prop::sample::select(&chrono_tz::TZ_VARIANTS[..]),
        start in -2_208_988_800i64..7_258_118_400,
    ) {
        let schedule = Schedule::parse(&expr).unwrap();
        let mut previous = instant(tz, start);
        for fire in schedule.iter_after(previous).take(5) {
            prop_assert!(fire > previous);
            previous = fire;
        }
    }
}
