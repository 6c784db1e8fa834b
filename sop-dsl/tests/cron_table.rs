//! Tricky schedules with fire times worked out by hand from crontab(5) and Vixie cron's rules.
//!
//! Calendar facts used (2026 is not a leap year): 2026-01-01 is a Thursday; February 1st and
//! March 1st are Sundays. New York springs forward on 2026-03-08 (02:00 EST → 03:00 EDT) and falls
//! back on 2026-11-01 (02:00 EDT → 01:00 EST). Berlin springs forward on 2026-03-29 (02:00 CET →
//! 03:00 CEST) and falls back on 2026-10-25 (03:00 CEST → 02:00 CET). Havana springs forward at
//! midnight on 2026-03-08 (00:00 CST → 01:00 CDT). Shanghai has no daylight saving.

use chrono::DateTime;
use chrono_tz::Tz;
use sop_dsl::cron::Schedule;

struct Case {
    why: &'static str,
    expr: &'static str,
    tz: &'static str,
    after: &'static str,
    expect: &'static [&'static str],
}

const SH: &str = "Asia/Shanghai";
const NY: &str = "America/New_York";
const BER: &str = "Europe/Berlin";

const CASES: &[Case] = &[
    // Month ends.
    Case {
        why: "the 31st only in 31-day months",
        expr: "0 0 31 * *",
        tz: SH,
        after: "2026-01-01T00:00:00+08:00",
        expect: &[
            "2026-01-31T00:00:00+08:00",
            "2026-03-31T00:00:00+08:00",
            "2026-05-31T00:00:00+08:00",
            "2026-07-31T00:00:00+08:00",
            "2026-08-31T00:00:00+08:00",
            "2026-10-31T00:00:00+08:00",
            "2026-12-31T00:00:00+08:00",
            "2027-01-31T00:00:00+08:00",
        ],
    },
    Case {
        why: "the 30th skips February",
        expr: "0 12 30 * *",
        tz: SH,
        after: "2026-01-31T00:00:00+08:00",
        expect: &["2026-03-30T12:00:00+08:00", "2026-04-30T12:00:00+08:00"],
    },
    Case {
        why: "last days of February in a common and a leap year",
        expr: "0 0 28,29 2 *",
        tz: SH,
        after: "2026-01-01T00:00:00+08:00",
        expect: &[
            "2026-02-28T00:00:00+08:00",
            "2027-02-28T00:00:00+08:00",
            "2028-02-28T00:00:00+08:00",
            "2028-02-29T00:00:00+08:00",
        ],
    },
    Case {
        why: "February 29th waits for leap years",
        expr: "0 0 29 2 *",
        tz: SH,
        after: "2026-01-01T00:00:00+08:00",
        expect: &["2028-02-29T00:00:00+08:00", "2032-02-29T00:00:00+08:00"],
    },
    // Day-of-month and day-of-week.
    Case {
        why: "both restricted: the 13th OR a Friday, Friday the 13th once",
        expr: "0 0 13 * FRI",
        tz: SH,
        after: "2026-01-01T00:00:00+08:00",
        expect: &[
            "2026-01-02T00:00:00+08:00",
            "2026-01-09T00:00:00+08:00",
            "2026-01-13T00:00:00+08:00",
            "2026-01-16T00:00:00+08:00",
            "2026-01-23T00:00:00+08:00",
            "2026-01-30T00:00:00+08:00",
            "2026-02-06T00:00:00+08:00",
            "2026-02-13T00:00:00+08:00",
            "2026-02-20T00:00:00+08:00",
        ],
    },
    Case {
        why: "`1-7 ... MON` is not 'first Monday': days 1-7 OR any Monday",
        expr: "0 9 1-7 * MON",
        tz: SH,
        after: "2026-01-01T10:00:00+08:00",
        expect: &[
            "2026-01-02T09:00:00+08:00",
            "2026-01-03T09:00:00+08:00",
            "2026-01-04T09:00:00+08:00",
            "2026-01-05T09:00:00+08:00",
            "2026-01-06T09:00:00+08:00",
            "2026-01-07T09:00:00+08:00",
            "2026-01-12T09:00:00+08:00",
            "2026-01-19T09:00:00+08:00",
            "2026-01-26T09:00:00+08:00",
            "2026-02-01T09:00:00+08:00",
        ],
    },
    Case {
        why: "a day field starting with `*` (here `*/2`) makes it AND: odd days that are Mondays",
        expr: "0 9 */2 * MON",
        tz: SH,
        after: "2026-01-01T00:00:00+08:00",
        expect: &[
            "2026-01-05T09:00:00+08:00",
            "2026-01-19T09:00:00+08:00",
            "2026-02-09T09:00:00+08:00",
            "2026-02-23T09:00:00+08:00",
            "2026-03-09T09:00:00+08:00",
        ],
    },
    Case {
        why: "the same odd days written without `*` are restricted: odd days OR Mondays",
        expr: "0 9 1-31/2 * MON",
        tz: SH,
        after: "2026-01-01T10:00:00+08:00",
        expect: &[
            "2026-01-03T09:00:00+08:00",
            "2026-01-05T09:00:00+08:00",
            "2026-01-07T09:00:00+08:00",
            "2026-01-09T09:00:00+08:00",
            "2026-01-11T09:00:00+08:00",
            "2026-01-12T09:00:00+08:00",
            "2026-01-13T09:00:00+08:00",
        ],
    },
    Case {
        why: "Feb 29th OR any Monday in February",
        expr: "0 0 29 2 MON",
        tz: SH,
        after: "2027-02-20T00:00:00+08:00",
        expect: &[
            "2027-02-22T00:00:00+08:00",
            "2028-02-07T00:00:00+08:00",
            "2028-02-14T00:00:00+08:00",
            "2028-02-21T00:00:00+08:00",
            "2028-02-28T00:00:00+08:00",
            "2028-02-29T00:00:00+08:00",
        ],
    },
    Case {
        why: "7 is Sunday, like 0",
        expr: "0 9 * * 7",
        tz: SH,
        after: "2026-01-01T00:00:00+08:00",
        expect: &["2026-01-04T09:00:00+08:00", "2026-01-11T09:00:00+08:00"],
    },
    Case {
        why: "a weekday range ending in 7 wraps onto Sunday",
        expr: "0 9 * * 5-7",
        tz: SH,
        after: "2026-01-01T00:00:00+08:00",
        expect: &[
            "2026-01-02T09:00:00+08:00",
            "2026-01-03T09:00:00+08:00",
            "2026-01-04T09:00:00+08:00",
            "2026-01-09T09:00:00+08:00",
        ],
    },
    // Steps, names, seconds, macros.
    Case {
        why: "`*/20` over an hour range",
        expr: "*/20 9-10 * * *",
        tz: SH,
        after: "2026-01-01T08:00:00+08:00",
        expect: &[
            "2026-01-01T09:00:00+08:00",
            "2026-01-01T09:20:00+08:00",
            "2026-01-01T09:40:00+08:00",
            "2026-01-01T10:00:00+08:00",
            "2026-01-01T10:20:00+08:00",
            "2026-01-01T10:40:00+08:00",
            "2026-01-02T09:00:00+08:00",
        ],
    },
    Case {
        why: "`a-b/n` starts at a, `a/n` runs to the end of the field",
        expr: "10-50/20,5/30 0 * * *",
        tz: SH,
        after: "2026-01-01T00:00:00+08:00",
        expect: &[
            "2026-01-01T00:05:00+08:00",
            "2026-01-01T00:10:00+08:00",
            "2026-01-01T00:30:00+08:00",
            "2026-01-01T00:35:00+08:00",
            "2026-01-01T00:50:00+08:00",
            "2026-01-02T00:05:00+08:00",
        ],
    },
    Case {
        why: "month and weekday names, any case",
        expr: "0 8 1 jan,Jul *",
        tz: SH,
        after: "2026-01-01T08:00:00+08:00",
        expect: &["2026-07-01T08:00:00+08:00", "2027-01-01T08:00:00+08:00"],
    },
    Case {
        why: "weekday name range",
        expr: "30 18 * * mon-FRI",
        tz: SH,
        after: "2026-01-02T19:00:00+08:00",
        expect: &["2026-01-05T18:30:00+08:00", "2026-01-06T18:30:00+08:00"],
    },
    Case {
        why: "a seconds field, strictly after a time in the middle of a minute",
        expr: "*/20 * * * * *",
        tz: SH,
        after: "2026-01-01T10:00:05+08:00",
        expect: &[
            "2026-01-01T10:00:20+08:00",
            "2026-01-01T10:00:40+08:00",
            "2026-01-01T10:01:00+08:00",
        ],
    },
    Case {
        why: "strictly after: a fire time is not repeated",
        expr: "30 0 12 * * *",
        tz: SH,
        after: "2026-01-01T12:00:30+08:00",
        expect: &["2026-01-02T12:00:30+08:00"],
    },
    Case {
        why: "@weekly is Sunday midnight",
        expr: "@weekly",
        tz: SH,
        after: "2026-01-01T00:00:00+08:00",
        expect: &["2026-01-04T00:00:00+08:00", "2026-01-11T00:00:00+08:00"],
    },
    Case {
        why: "@yearly",
        expr: "@annually",
        tz: SH,
        after: "2026-01-01T00:00:00+08:00",
        expect: &["2027-01-01T00:00:00+08:00"],
    },
    Case {
        why: "the zone of --after does not matter, the schedule's zone does",
        expr: "0 9 * * *",
        tz: SH,
        after: "2026-01-01T01:30:00Z",
        expect: &["2026-01-02T09:00:00+08:00"],
    },
    Case {
        why: "Shanghai has no daylight saving: New York's transition day is ordinary",
        expr: "30 2 * * *",
        tz: SH,
        after: "2026-03-07T12:00:00+08:00",
        expect: &["2026-03-08T02:30:00+08:00", "2026-03-09T02:30:00+08:00"],
    },
    // New York, spring forward: 02:00-02:59 does not exist on 2026-03-08.
    Case {
        why: "a time in the gap fires when the clock jumps, and the day is not skipped",
        expr: "30 2 * * *",
        tz: NY,
        after: "2026-03-07T12:00:00-05:00",
        expect: &["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
    },
    Case {
        why: "the start of the gap too",
        expr: "0 2 * * *",
        tz: NY,
        after: "2026-03-07T12:00:00-05:00",
        expect: &["2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"],
    },
    Case {
        why: "the first time after the gap fires once",
        expr: "0 3 * * *",
        tz: NY,
        after: "2026-03-07T12:00:00-05:00",
        expect: &["2026-03-08T03:00:00-04:00", "2026-03-09T03:00:00-04:00"],
    },
    Case {
        why: "wildcard hour: every slot of the gap collapses into one fire at 03:00",
        expr: "*/15 * * * *",
        tz: NY,
        after: "2026-03-08T01:30:00-05:00",
        expect: &[
            "2026-03-08T01:45:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T03:15:00-04:00",
        ],
    },
    Case {
        why: "wildcard hour: a skipped 02:05 is not made up at 03:00 when 03:05 comes anyway",
        expr: "5 * * * *",
        tz: NY,
        after: "2026-03-08T01:00:00-05:00",
        expect: &[
            "2026-03-08T01:05:00-05:00",
            "2026-03-08T03:05:00-04:00",
            "2026-03-08T04:05:00-04:00",
        ],
    },
    Case {
        why: "a skipped time merges into a scheduled time less than an hour after the jump",
        expr: "30 2,3 * * *",
        tz: NY,
        after: "2026-03-07T12:00:00-05:00",
        expect: &["2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"],
    },
    Case {
        why: "but not into one further away",
        expr: "30 2,4 * * *",
        tz: NY,
        after: "2026-03-07T12:00:00-05:00",
        expect: &[
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T04:30:00-04:00",
            "2026-03-09T02:30:00-04:00",
        ],
    },
    Case {
        why: "asking again after the jump does not fire the gap time a second time",
        expr: "30 2 * * *",
        tz: NY,
        after: "2026-03-08T03:00:00-04:00",
        expect: &["2026-03-09T02:30:00-04:00"],
    },
    // New York, fall back: 01:00-01:59 happens twice on 2026-11-01.
    Case {
        why: "a repeated time fires once, at its first occurrence",
        expr: "30 1 * * *",
        tz: NY,
        after: "2026-10-31T12:00:00-04:00",
        expect: &["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
    },
    Case {
        why: "wildcard hour: the repeated hour's slots are not fired again",
        expr: "*/30 * * * *",
        tz: NY,
        after: "2026-11-01T00:40:00-04:00",
        expect: &[
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T02:00:00-05:00",
            "2026-11-01T02:30:00-05:00",
        ],
    },
    Case {
        why: "hourly: 01:00 once, then 02:00 two real hours later",
        expr: "0 * * * *",
        tz: NY,
        after: "2026-11-01T00:30:00-04:00",
        expect: &[
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T02:00:00-05:00",
            "2026-11-01T03:00:00-05:00",
        ],
    },
    Case {
        why: "asked from inside the second pass, the next fire is after the repeated hour",
        expr: "*/30 * * * *",
        tz: NY,
        after: "2026-11-01T01:10:00-05:00",
        expect: &["2026-11-01T02:00:00-05:00"],
    },
    // Berlin, spring forward: 02:00-02:59 does not exist on 2026-03-29.
    Case {
        why: "Berlin gap",
        expr: "30 2 * * *",
        tz: BER,
        after: "2026-03-28T12:00:00+01:00",
        expect: &["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
    },
    Case {
        why: "Berlin gap: 02:00, 02:30 and 03:00 fire once together",
        expr: "0,30 2-3 * * *",
        tz: BER,
        after: "2026-03-29T01:00:00+01:00",
        expect: &[
            "2026-03-29T03:00:00+02:00",
            "2026-03-29T03:30:00+02:00",
            "2026-03-30T02:00:00+02:00",
        ],
    },
    // Berlin, fall back: 02:00-02:59 happens twice on 2026-10-25.
    Case {
        why: "Berlin overlap, fixed time",
        expr: "30 2 * * *",
        tz: BER,
        after: "2026-10-24T12:00:00+02:00",
        expect: &["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
    },
    Case {
        why: "Berlin overlap, minute steps inside the repeated hour",
        expr: "*/20 2 * * *",
        tz: BER,
        after: "2026-10-25T01:50:00+02:00",
        expect: &[
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:20:00+02:00",
            "2026-10-25T02:40:00+02:00",
            "2026-10-26T02:00:00+01:00",
        ],
    },
    Case {
        why: "Havana springs forward at midnight: @daily fires at 01:00 that day",
        expr: "@daily",
        tz: "America/Havana",
        after: "2026-03-07T12:00:00-05:00",
        expect: &["2026-03-08T01:00:00-04:00", "2026-03-09T00:00:00-04:00"],
    },
];

fn run(case: &Case) -> Vec<String> {
    let schedule = Schedule::parse(case.expr).unwrap_or_else(|e| panic!("{}: {e}", case.expr));
    let tz: Tz = case.tz.parse().unwrap();
    let after = DateTime::parse_from_rfc3339(case.after)
        .unwrap()
        .with_timezone(&tz);
    schedule
        .iter_after(after)
        .take(case.expect.len())
        .map(|t| t.to_rfc3339())
        .collect()
}

#[test]
fn tricky_schedules_fire_when_crontab_says() {
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|case| {
            let got = run(case);
            (got != case.expect).then(|| {
                format!(
                    "{} ({}, {} after {}):\n  expected {:?}\n  got      {:?}",
                    case.why, case.expr, case.tz, case.after, case.expect, got
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn impossible_dates_never_fire() {
    let after = DateTime::parse_from_rfc3339("2026-01-01T00:00:00+08:00")
        .unwrap()
        .with_timezone(&chrono_tz::Asia::Shanghai);
    for expr in ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30,31 2 */2"] {
        let schedule = Schedule::parse(expr).unwrap();
        assert!(!schedule.is_satisfiable(), "{expr}");
        assert_eq!(schedule.next_after(after), None, "{expr}");
    }
    // With a restricted weekday the OR rule makes it possible again: Mondays in February.
    let schedule = Schedule::parse("0 0 30 2 MON").unwrap();
    assert!(schedule.is_satisfiable());
    assert_eq!(
        schedule.next_after(after).unwrap().to_rfc3339(),
        "2026-02-02T00:00:00+08:00"
    );
}

struct Bad {
    expr: &'static str,
    span: std::ops::Range<usize>,
    message: &'static str,
}

const BAD: &[Bad] = &[
    Bad {
        expr: "60 * * * *",
        span: 0..2,
        message: "minute 60 is out of range: the minute field takes 0-59",
    },
    Bad {
        expr: "0 24 * * *",
        span: 2..4,
        message: "hour 24 is out of range: the hour field takes 0-23",
    },
    Bad {
        expr: "0 0 32 * *",
        span: 4..6,
        message: "day-of-month 32 is out of range: the day-of-month field takes 1-31",
    },
    Bad {
        expr: "0 0 0 * *",
        span: 4..5,
        message: "day-of-month 0 is out of range: the day-of-month field takes 1-31",
    },
    Bad {
        expr: "0 0 * 13 *",
        span: 6..8,
        message: "month 13 is out of range: the month field takes 1-12",
    },
    Bad {
        expr: "0 0 * * 8",
        span: 8..9,
        message: "day-of-week 8 is out of range: the day-of-week field takes 0-7",
    },
    Bad {
        expr: "60 0 0 * * *",
        span: 0..2,
        message: "second 60 is out of range: the second field takes 0-59",
    },
    Bad {
        expr: "0 17-9 * * *",
        span: 2..6,
        message: "reversed range `17-9`: the start must not be after the end (write `9-17` or use a list)",
    },
    Bad {
        expr: "0 9 * * SAT-SUN",
        span: 8..15,
        message: "reversed range `SAT-SUN`: the start must not be after the end (write `SUN-SAT` or use a list)",
    },
    Bad {
        expr: "*/0 * * * *",
        span: 2..3,
        message: "step must be at least 1",
    },
    Bad {
        expr: "0 */25 * * *",
        span: 4..6,
        message: "step 25 is larger than the range it steps over (24 hour values)",
    },
    Bad {
        expr: "0 9,,17 * * *",
        span: 3..4,
        message: "empty list item in the hour field",
    },
    Bad {
        expr: "0 9 * * MON,",
        span: 11..12,
        message: "empty list item in the day-of-week field",
    },
    Bad {
        expr: "0 9 * * *,",
        span: 9..10,
        message: "empty list item in the day-of-week field",
    },
    Bad {
        expr: "0 9 * JANUARY *",
        span: 6..13,
        message: "unknown month name `JANUARY`: use three-letter names JAN-DEC; did you mean `JAN`?",
    },
    Bad {
        expr: "0 MON * * *",
        span: 2..5,
        message: "unexpected name `MON`: the hour field takes numbers 0-23",
    },
    Bad {
        expr: "0 0 ? * MON",
        span: 4..5,
        message: "unexpected `?` in the day-of-month field (`?`, `L`, `W` and `#` are Quartz extensions; crontab does not have them)",
    },
    Bad {
        expr: "0 0 L * *",
        span: 4..5,
        message: "unexpected name `L`: the day-of-month field takes numbers 1-31 (`?`, `L`, `W` and `#` are Quartz extensions; crontab does not have them)",
    },
    Bad {
        expr: "0 0 * * 1#2",
        span: 9..10,
        message: "unexpected `#` in the day-of-week field (`?`, `L`, `W` and `#` are Quartz extensions; crontab does not have them)",
    },
    Bad {
        expr: "0 9-",
        span: 0..4,
        message: "expected 5 fields `minute hour day-of-month month day-of-week` (or 6 with seconds first), found 2",
    },
    Bad {
        expr: "",
        span: 0..0,
        message: "empty cron expression: expected 5 fields `minute hour day-of-month month day-of-week`",
    },
    Bad {
        expr: "0 0 0 * * * 2026",
        span: 12..16,
        message: "too many fields: expected 5, or 6 with seconds first, found 7 (crontab has no year field)",
    },
    Bad {
        expr: "0 9- * * *",
        span: 3..4,
        message: "missing end of range after `-`",
    },
    Bad {
        expr: "0 -9 * * *",
        span: 2..3,
        message: "missing start of range (negative values are not allowed in the hour field)",
    },
    Bad {
        expr: "0 9/ * * *",
        span: 3..4,
        message: "missing step after `/`",
    },
    Bad {
        expr: "0 /5 * * *",
        span: 2..3,
        message: "missing a value or `*` before `/`",
    },
    Bad {
        expr: "0 */x * * *",
        span: 4..5,
        message: "unexpected `x` in step: a step is a whole number like `*/15`",
    },
    Bad {
        expr: "0 *-5 * * *",
        span: 2..3,
        message: "`*` cannot be part of a range; write `*` alone or a range like `1-5`",
    },
    Bad {
        expr: "@reboot",
        span: 0..7,
        message: "`@reboot` is not a schedule; use a manual or API trigger instead",
    },
    Bad {
        expr: "@daily 0",
        span: 7..8,
        message: "`@daily` stands alone: nothing may follow it",
    },
];

#[test]
fn bad_expressions_point_at_the_problem() {
    let failures: Vec<String> = BAD
        .iter()
        .filter_map(|bad| match Schedule::parse(bad.expr) {
            Ok(s) => Some(format!("{:?}: accepted as {s}", bad.expr)),
            Err(e) if e.span != bad.span || e.message != bad.message => Some(format!(
                "{:?}:\n  expected {:?} {}\n  got      {:?} {}",
                bad.expr, bad.span, bad.message, e.span, e.message
            )),
            Err(_) => None,
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn display_gives_back_the_normalized_expression() {
    for (expr, normal) in [
        ("  0   9 * *   mon-fri ", "0 9 * * MON-FRI"),
        ("*/5 0 12 * * *", "*/5 0 12 * * *"),
        ("@Daily", "@daily"),
    ] {
        let schedule: Schedule = expr.parse().unwrap();
        assert_eq!(schedule.to_string(), normal);
        assert_eq!(Schedule::parse(normal).unwrap(), schedule);
    }
    assert!(
        Schedule::parse("0 9 1-7 * MON")
            .unwrap()
            .days_match_either()
    );
    assert!(
        !Schedule::parse("0 9 */2 * MON")
            .unwrap()
            .days_match_either()
    );
    assert!(!Schedule::parse("0 9 1-7 * *").unwrap().days_match_either());
    assert!(Schedule::parse("*/5 0 12 * * *").unwrap().has_seconds());
    assert!(!Schedule::parse("@hourly").unwrap().has_seconds());
}
