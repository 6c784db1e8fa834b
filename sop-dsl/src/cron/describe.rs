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
    let hours: Vec<u32> = f.hour.values().collect();
    let within_hours = || match stepped(&f.hour, "hours") {
        Some(phrase) => format!("of {phrase}"),
        None => format!("of hour{} {}", plural(&hours), numbers(&f.hour)),
    };
    let minutes = match (single(&f.minute), f.hour.is_full()) {
        (Some(m), _) if hours.len() <= 4 => {
            let seconds = match (single(&f.second), seconds_phrase(f)) {
                (Some(0), _) => String::new(),
                (Some(s), _) => format!(":{s:02}"),
                (None, Some(phrase)) => return format!("{phrase} {}", clock_list(&hours, m, "")),
                (None, None) => String::new(),
            };
            return clock_list(&hours, m, &seconds);
        }
        (Some(m), true) => format!("at minute {m} of every hour"),
        (Some(m), false) => format!("at minute {m} {}", within_hours()),
        (None, true) if f.minute.is_full() => "every minute".to_owned(),
        (None, false) if f.minute.is_full() => format!("every minute {}", within_hours()),
        (None, true) => every("minute", &f.minute),
        (None, false) => format!("{} {}", every("minute", &f.minute), within_hours()),
    };
    match seconds_phrase(f) {
        None => minutes,
        Some(phrase) if f.minute.is_full() && f.hour.is_full() => phrase,
        Some(phrase) if f.minute.is_full() => format!("{phrase} {}", within_hours()),
        Some(phrase) => format!("{phrase}, {minutes}"),
    }
}

/// `every 10 seconds`, or `None` for the usual second 0.
fn seconds_phrase(f: &Fields) -> Option<String> {
    if f.second.values().eq([0]) {
        None
    } else if f.second.is_full() {
        Some("every second".to_owned())
    } else {
        Some(every("second", &f.second))
    }
}

/// `at 09:00 and 18:00`.
fn clock_list(hours: &[u32], minute: u32, seconds: &str) -> String {
    let times = hours.iter().map(|h| format!("{h:02}:{minute:02}{seconds}"));
    format!("at {}", join(times))
}

fn plural(values: &[u32]) -> &'static str {
    if values.len() > 1 { "s" } else { "" }
}

/// `every 15 minutes`, `every 10 minutes from 10 to 50`, `at minutes 5 and 35`.
fn every(unit: &str, field: &Field) -> String {
    match stepped(field, &format!("{unit}s")) {
        Some(phrase) => phrase,
        None => {
            let values: Vec<u32> = field.values().collect();
            format!("at {unit}{} {}", plural(&values), numbers(field))
        }
    }
}

/// `every 2 hours`, `every 2 hours from 8 to 18`: for values in steps of more than one.
fn stepped(field: &Field, units: &str) -> Option<String> {
    let values: Vec<u32> = field.values().collect();
    let (first, last) = (*values.first()?, *values.last()?);
    let step = values.get(1)? - first;
    let progression = values.len() >= 3
        && step > 1
        && values
            .iter()
            .enumerate()
            .all(|(i, v)| *v == first + i as u32 * step);
    if !progression {
        return None;
    }
    let top = if field.kind == FieldKind::DayOfWeek {
        6
    } else {
        field.kind.max()
    };
    Some(if first == field.kind.min() && last + step > top {
        format!("every {step} {units}")
    } else {
        format!("every {step} {units} from {first} to {last}")
    })
}

fn days(f: &Fields) -> String {
    let (dom, dow) = (&f.day_of_month, &f.day_of_week);
    let on_dom = || match stepped(dom, "days") {
        Some(phrase) => format!("{phrase} of the month"),
        None => {
            let days: Vec<u32> = dom.values().collect();
            format!("on day{} {} of the month", plural(&days), numbers(dom))
        }
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
            "at minute 0 of hours 9-18 on Sunday and Saturday"
        );
        assert_eq!(describe("0 9,18 * * *"), "at 09:00 and 18:00");
        assert_eq!(
            describe("0 8-18/2 * * *"),
            "at minute 0 of every 2 hours from 8 to 18"
        );
        assert_eq!(
            describe("10-50/20 * * * *"),
            "every 20 minutes from 10 to 50"
        );
        assert_eq!(
            describe("*/15 9-17 * * *"),
            "every 15 minutes of hours 9-17"
        );
        assert_eq!(describe("0 */2 * * *"), "at minute 0 of every 2 hours");
        assert_eq!(describe("*/10 0 12 * * *"), "every 10 seconds at 12:00");
        assert_eq!(describe("* * * * * *"), "every second");
        assert_eq!(describe("* * 9 * * *"), "every second of hour 9");
        assert_eq!(describe("30 */5 * * * *"), "at second 30, every 5 minutes");
        assert_eq!(
            describe("5 0 1,15 JAN-MAR *"),
            "at 00:05 on days 1 and 15 of the month in January through March"
        );
        assert_eq!(
            describe("0 8 */2 * MON"),
            "at 08:00 every 2 days of the month if it is Monday"
        );
        assert_eq!(describe("@hourly"), "at minute 0 of every hour");
    }
}
