//! One crontab field (`*/15`, `MON-FRI`, `1,15,30`) parsed into the set of values it allows.

use super::CronError;

/// Which of the six positions a field occupies; fixes its range and whether names are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const QUARTZ_HINT: &str =
    " (`?`, `L`, `W` and `#` are Quartz extensions; crontab does not have them)";
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl FieldKind {
    pub fn name(self) -> &'static str {
        match self {
            FieldKind::Second => "second",
            FieldKind::Minute => "minute",
            FieldKind::Hour => "hour",
            FieldKind::DayOfMonth => "day-of-month",
            FieldKind::Month => "month",
            FieldKind::DayOfWeek => "day-of-week",
        }
    }

    /// Smallest value accepted in the text.
    pub fn min(self) -> u32 {
        match self {
            FieldKind::DayOfMonth | FieldKind::Month => 1,
            _ => 0,
        }
    }

    /// Largest value accepted in the text (day-of-week accepts 7 as a second Sunday, like Vixie cron).
    pub fn max(self) -> u32 {
        match self {
            FieldKind::Second | FieldKind::Minute => 59,
            FieldKind::Hour => 23,
            FieldKind::DayOfMonth => 31,
            FieldKind::Month => 12,
            FieldKind::DayOfWeek => 7,
        }
    }

    fn names(self) -> Option<(&'static [&'static str], u32)> {
        match self {
            FieldKind::Month => Some((&MONTH_NAMES, 1)),
            FieldKind::DayOfWeek => Some((&WEEKDAY_NAMES, 0)),
            _ => None,
        }
    }
}

/// The values a field allows, as a bit set (bit `v` set = value `v` allowed).
///
/// Day-of-week is stored as 0-6 with Sunday = 0: a 7 in the text sets bit 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub kind: FieldKind,
    pub bits: u64,
    /// The text starts with `*`: Vixie cron's DOM_STAR/DOW_STAR flag, which decides the
    /// day-of-month/day-of-week rule (see `Schedule::matches`).
    pub star: bool,
    /// The field as written, names upper-cased: the normalized form shown back to people.
    pub text: String,
}

impl Field {
    /// Parses `text`, which starts at byte `offset` of the whole expression (for error spans).
    pub fn parse(kind: FieldKind, text: &str, offset: usize) -> Result<Field, CronError> {
        let mut bits = 0u64;
        let mut start = 0;
        for item in text.split(',') {
            let item_offset = offset + start;
            start += item.len() + 1;
            if item.is_empty() {
                let at = item_offset.saturating_sub(usize::from(item_offset > offset));
                return Err(CronError::new(
                    format!("empty list item in the {} field", kind.name()),
                    at..at + 1,
                ));
            }
            bits |= parse_item(kind, item, item_offset)?;
        }
        if kind == FieldKind::DayOfWeek && bits & (1 << 7) != 0 {
            bits = (bits & !(1 << 7)) | 1;
        }
        Ok(Field {
            kind,
            bits,
            star: text.starts_with('*'),
            text: text.to_ascii_uppercase(),
        })
    }

    pub fn contains(&self, value: u32) -> bool {
        value < 64 && self.bits & (1 << value) != 0
    }

    /// Allowed values in increasing order (day-of-week as 0-6).
    pub fn values(&self) -> impl Iterator<Item = u32> + '_ {
        (0..64).filter(|v| self.contains(*v))
    }

    /// Every value of the field's natural range is allowed (`*`, `0-59`, `1-7`, ...).
    pub fn is_full(&self) -> bool {
        let top = if self.kind == FieldKind::DayOfWeek {
            6
        } else {
            self.kind.max()
        };
        (self.kind.min()..=top).all(|v| self.contains(v))
    }
}

/// One comma-separated item: `*`, `a`, `a-b`, each optionally followed by `/step`.
fn parse_item(kind: FieldKind, item: &str, offset: usize) -> Result<u64, CronError> {
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => (base, Some(step)),
        None => (item, None),
    };
    let step_offset = offset + base.len() + 1;
    if base.is_empty() {
        return Err(CronError::new(
            "missing a value or `*` before `/`",
            offset..offset + 1,
        ));
    }
    let (low, high) = if base == "*" {
        (kind.min(), kind.max())
    } else if let Some((a, b)) = base.split_once('-') {
        if a.is_empty() {
            return Err(CronError::new(
                format!(
                    "missing start of range (negative values are not allowed in the {} field)",
                    kind.name()
                ),
                offset..offset + 1,
            ));
        }
        let b_offset = offset + a.len() + 1;
        if b.is_empty() {
            return Err(CronError::new(
                "missing end of range after `-`",
                b_offset - 1..b_offset,
            ));
        }
        let low = parse_value(kind, a, offset)?;
        let high = parse_value(kind, b, b_offset)?;
        if low > high {
            return Err(CronError::new(
                format!(
                    "reversed range `{base}`: the start must not be after the end (write `{b}-{a}` or use a list)"
                ),
                offset..offset + base.len(),
            ));
        }
        (low, high)
    } else {
        let value = parse_value(kind, base, offset)?;
        // `a/n` means from `a` to the end of the field, as in cronie and the cron crate.
        (value, if step.is_some() { kind.max() } else { value })
    };
    let step = match step {
        None => 1,
        Some(step) => parse_step(kind, step, step_offset, high - low + 1)?,
    };
    Ok((low..=high)
        .step_by(step as usize)
        .fold(0u64, |bits, v| bits | 1 << v))
}

fn parse_step(kind: FieldKind, text: &str, offset: usize, width: u32) -> Result<u32, CronError> {
    if text.is_empty() {
        return Err(CronError::new("missing step after `/`", offset - 1..offset));
    }
    if let Some((i, c)) = text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        return Err(CronError::new(
            format!("unexpected `{c}` in step: a step is a whole number like `*/15`"),
            offset + i..offset + i + c.len_utf8(),
        ));
    }
    let span = offset..offset + text.len();
    let step: u32 = text.parse().unwrap_or(u32::MAX);
    if step == 0 {
        return Err(CronError::new("step must be at least 1", span));
    }
    if step > width {
        return Err(CronError::new(
            format!(
                "step {step} is larger than the range it steps over ({width} {} values)",
                kind.name()
            ),
            span,
        ));
    }
    Ok(step)
}

fn parse_value(kind: FieldKind, text: &str, offset: usize) -> Result<u32, CronError> {
    let span = offset..offset + text.len();
    if text == "*" {
        return Err(CronError::new(
            "`*` cannot be part of a range; write `*` alone or a range like `1-5`",
            span,
        ));
    }
    if text.chars().all(char::is_alphabetic) {
        return parse_name(kind, text, span);
    }
    if let Some((i, c)) = text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        let at = offset + i..offset + i + c.len_utf8();
        let hint = match c {
            '?' | 'L' | 'W' | '#' => QUARTZ_HINT,
            _ => "",
        };
        return Err(CronError::new(
            format!("unexpected `{c}` in the {} field{hint}", kind.name()),
            at,
        ));
    }
    let value = text.parse::<u32>().unwrap_or(u32::MAX);
    if value < kind.min() || value > kind.max() {
        return Err(CronError::new(
            format!(
                "{} {text} is out of range: the {} field takes {}-{}",
                kind.name(),
                kind.name(),
                kind.min(),
                kind.max()
            ),
            span,
        ));
    }
    Ok(value)
}

fn parse_name(kind: FieldKind, text: &str, span: std::ops::Range<usize>) -> Result<u32, CronError> {
    let Some((names, first)) = kind.names() else {
        let hint = if ["L", "W", "LW"].contains(&text.to_ascii_uppercase().as_str()) {
            QUARTZ_HINT
        } else {
            ""
        };
        return Err(CronError::new(
            format!(
                "unexpected name `{text}`: the {} field takes numbers {}-{}{hint}",
                kind.name(),
                kind.min(),
                kind.max()
            ),
            span,
        ));
    };
    let upper = text.to_ascii_uppercase();
    if let Some(i) = names.iter().position(|n| *n == upper) {
        return Ok(first + i as u32);
    }
    let hint = names
        .iter()
        .find(|n| upper.len() > 3 && upper.starts_with(*n))
        .map(|n| format!("; did you mean `{n}`?"))
        .unwrap_or_default();
    Err(CronError::new(
        format!(
            "unknown {} name `{text}`: use three-letter names {}-{}{hint}",
            kind.name(),
            names[0],
            names[names.len() - 1]
        ),
        span,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(kind: FieldKind, text: &str) -> Vec<u32> {
        Field::parse(kind, text, 0).unwrap().values().collect()
    }

    fn error(kind: FieldKind, text: &str) -> (String, std::ops::Range<usize>) {
        let e = Field::parse(kind, text, 0).unwrap_err();
        (e.message, e.span)
    }

    #[test]
    fn steps_ranges_and_lists() {
        assert_eq!(values(FieldKind::Minute, "*/15"), [0, 15, 30, 45]);
        assert_eq!(values(FieldKind::Minute, "10-30/10"), [10, 20, 30]);
        assert_eq!(values(FieldKind::Minute, "50/5"), [50, 55]);
        assert_eq!(values(FieldKind::Hour, "1,3,5-6"), [1, 3, 5, 6]);
        assert_eq!(values(FieldKind::DayOfMonth, "*/10"), [1, 11, 21, 31]);
    }

    #[test]
    fn names_are_case_insensitive_and_seven_is_sunday() {
        assert_eq!(values(FieldKind::Month, "jan,Mar-may"), [1, 3, 4, 5]);
        assert_eq!(values(FieldKind::DayOfWeek, "MON-fri"), [1, 2, 3, 4, 5]);
        assert_eq!(values(FieldKind::DayOfWeek, "7"), [0]);
        assert_eq!(values(FieldKind::DayOfWeek, "5-7"), [0, 5, 6]);
        assert_eq!(values(FieldKind::DayOfWeek, "*/2"), [0, 2, 4, 6]);
    }

    #[test]
    fn errors_point_at_the_offending_text() {
        assert_eq!(error(FieldKind::Minute, "5,60").1, 2..4);
        assert_eq!(error(FieldKind::Hour, "9-5").1, 0..3);
        assert!(error(FieldKind::Hour, "9-5").0.contains("reversed range"));
        assert_eq!(error(FieldKind::Minute, "*/0").1, 2..3);
        assert_eq!(error(FieldKind::Minute, "1,,2").1, 1..2);
        assert_eq!(error(FieldKind::Minute, "1,").1, 1..2);
        assert_eq!(error(FieldKind::Minute, "MON").1, 0..3);
        assert_eq!(
            error(FieldKind::DayOfWeek, "MONDAY").0,
            "unknown day-of-week name `MONDAY`: use three-letter names SUN-SAT; did you mean `MON`?"
        );
        assert_eq!(error(FieldKind::DayOfMonth, "L").1, 0..1);
        assert_eq!(error(FieldKind::DayOfMonth, "0").1, 0..1);
        assert_eq!(error(FieldKind::DayOfMonth, "1W").1, 1..2);
        assert_eq!(error(FieldKind::Minute, "-5").1, 0..1);
        assert_eq!(error(FieldKind::Minute, "*/61").1, 2..4);
        assert_eq!(error(FieldKind::Minute, "99999999999").1, 0..11);
    }
}
