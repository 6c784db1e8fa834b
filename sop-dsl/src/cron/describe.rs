//! One-line English descriptions of schedules, for previews (`sop cron next --explain`).

use super::Fields;
use super::field::{Field, FieldKind};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

pub(super) fn describe(f: &Fields) -> String {
    let mut out = time_of_day(f);
    let days = days(f);
    if !days.is_empty() {
        out.push(' ');
        out.push_str(&days);
    }
    if !f.month.is_full() {
        out.push_str(" in ");
        out.push_str(&names(&f.month));
    }
    out
}

fn time_of_day(f: &Fields) -> String {
    let single = |field: &Field| {
        let mut values = field.values();
        match (values.next(), values.next()) {
            (Some(v), None) => Some(v),
            _ => None,
        }
    };
    let (second, minute, hour) = (single(&f.second), single(&f.minute), single(&f.hour));
    match (second, minute, hour) {
        (Some(0), Some(m), Some(h)) => return format!("at {h:02}:{m:02}"),
        (Some(s), Some(m), Some(h)) => return format!("at {h:02}:{m:02}:{s:02}"),
        _ => {}
    }
    let mut parts = Vec::new();
    if f.second.is_full() {
        parts.push("every second".to_owned());
    } else if second != Some(0) {
        parts.push(every("second", &f.second));
    }
    if f.minute.is_full() {
        if parts.is_empty() {
            parts.push("every minute".to_owned());
        }
    } else {
        parts.push(every("minute", &f.minute));
    }
    if f.hour.is_full() {
        if parts.is_empty() {
            parts.push("every hour".to_owned());
        }
    } else {
        parts.push(every("hour", &f.hour));
    }
    parts.join(", ")
}

/// `every 15 minutes`, `at minute 5`, `at hours 9-12 and 14-18`.
fn every(unit: &str, field: &Field) -> String {
    if let Some(step) = regular_step(field) {
        return format!("every {step} {unit}s");
    }
    let many = field.values().nth(1).is_some();
    format!(
        "at {unit}{} {}",
        if many { "s" } else { "" },
        numbers(field)
    )
}

/// The step of a field that is exactly `*/n` (n > 1) over its natural range.
fn regular_step(field: &Field) -> Option<u32> {
    let values: Vec<u32> = field.values().collect();
    let (first, second) = (*values.first()?, *values.get(1)?);
    let step = second - first;
    let top = if field.kind == FieldKind::DayOfWeek {
        6
    } else {
        field.kind.max()
    };
    let expected: Vec<u32> = (field.kind.min()..=top).step_by(step as usize).collect();
    (step > 1 && values == expected).then_some(step)
}

fn days(f: &Fields) -> String {
    let (dom, dow) = (&f.day_of_month, &f.day_of_week);
    let on_dom = || match regular_step(dom) {
        Some(step) => format!("every {step} days of the month"),
        None => format!("on day {} of the month", numbers(dom)),
    };
    let on_dow = || format!("on {}", names(dow));
    if !dom.star && !dow.star {
        return format!("{} or {}", on_dom(), on_dow());
    }
    match (dom.is_full(), dow.is_full()) {
        (true, true) => String::new(),
        (false, true) => on_dom(),
        (true, false) => on_dow(),
        (false, false) => format!("{} if it is {}", on_dom(), names(dow)),
    }
}

/// Values with runs of three or more folded into ranges: `1-5, 10 and 15`.
fn numbers(field: &Field) -> String {
    join(runs(field).into_iter().map(|(a, b)| match b - a {
        0 => a.to_string(),
        1 => format!("{a} and {b}"),
        _ => format!("{a}-{b}"),
    }))
}

fn names(field: &Field) -> String {
    let name = |v: u32| match field.kind {
        FieldKind::Month => MONTHS[(v - 1) as usize],
        _ => WEEKDAYS[v as usize],
    };
    join(runs(field).into_iter().map(|(a, b)| match b - a {
        0 => name(a).to_owned(),
        1 => format!("{} and {}", name(a), name(b)),
        _ => format!("{} through {}", name(a), name(b)),
    }))
}

fn runs(field: &Field) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for v in field.values() {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == v => *end = v,
            _ => runs.push((v, v)),
        }
    }
    runs
}

fn join(parts: impl Iterator<Item = String>) -> String {
    let parts: Vec<String> = parts.collect();
    match parts.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => parts.concat(),
    }
}

#[cfg(test)]
mod tests {
    use crate::cron::Schedule;

    fn describe(expr: &str) -> String {
        Schedule::parse(expr).unwrap().describe()
    }

    #[test]
    fn reads_like_english() {
        assert_eq!(
            describe("30 9 * * MON-FRI"),
            "at 09:30 on Monday through Friday"
        );
        assert_eq!(describe("*/15 * * * *"), "every 15 minutes");
        assert_eq!(describe("* * * * *"), "every minute");
        assert_eq!(describe("*/10 * * * * *"), "every 10 seconds");
        assert_eq!(
            describe("0 0 13 * FRI"),
            "at 00:00 on day 13 of the month or on Friday"
        );
        assert_eq!(
            describe("0 12 29 2 *"),
            "at 12:00 on day 29 of the month in February"
        );
        assert_eq!(
            describe("0 9-18 * * SAT,SUN"),
            "at minute 0, at hours 9-18 on Sunday and Saturday"
        );
        assert_eq!(
            describe("5 0 1,15 JAN-MAR *"),
            "at 00:05 on day 1 and 15 of the month in January through March"
        );
        assert_eq!(
            describe("0 8 */2 * MON"),
            "at 08:00 every 2 days of the month if it is Monday"
        );
        assert_eq!(describe("@hourly"), "at minute 0");
    }
}
