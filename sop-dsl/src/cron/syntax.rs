//! A whole expression: split into fields (keeping byte offsets for error spans) or expand a macro.

use super::field::{Field, FieldKind};
use super::{CronError, Fields};

/// Vixie cron's macros and the expressions they stand for.
const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

pub(super) fn parse(expr: &str) -> Result<Fields, CronError> {
    let words = words(expr);
    let Some(&(first_at, first)) = words.first() else {
        return Err(CronError::new(
            "empty cron expression: expected 5 fields `minute hour day-of-month month day-of-week`",
            0..expr.len(),
        ));
    };
    if first.starts_with('@') {
        return parse_macro(expr, &words, first_at, first);
    }
    let kinds: &[FieldKind] = match words.len() {
        5 => &FIELDS_5,
        6 => &FIELDS_6,
        n if n < 5 => {
            let (last_at, last) = words[n - 1];
            return Err(CronError::new(
                format!(
                    "expected 5 fields `minute hour day-of-month month day-of-week` (or 6 with seconds first), found {n}"
                ),
                first_at..last_at + last.len(),
            ));
        }
        n => {
            let (extra_at, _) = words[6];
            let (last_at, last) = words[n - 1];
            return Err(CronError::new(
                format!(
                    "too many fields: expected 5, or 6 with seconds first, found {n} (crontab has no year field)"
                ),
                extra_at..last_at + last.len(),
            ));
        }
    };
    let mut parsed = kinds
        .iter()
        .zip(&words)
        .map(|(&kind, &(at, text))| Field::parse(kind, text, at))
        .collect::<Result<Vec<_>, _>>()?;
    let has_seconds = parsed.len() == 6;
    let second = if has_seconds {
        parsed.remove(0)
    } else {
        Field::parse(FieldKind::Second, "0", 0)?
    };
    let [minute, hour, day_of_month, month, day_of_week] = <[Field; 5]>::try_from(parsed)
        .map_err(|_| CronError::new("internal error: field count", 0..expr.len()))?;
    Ok(Fields {
        alias: None,
        has_seconds,
        second,
        minute,
        hour,
        day_of_month,
        month,
        day_of_week,
    })
}

const FIELDS_5: [FieldKind; 5] = [
    FieldKind::Minute,
    FieldKind::Hour,
    FieldKind::DayOfMonth,
    FieldKind::Month,
    FieldKind::DayOfWeek,
];
const FIELDS_6: [FieldKind; 6] = [
    FieldKind::Second,
    FieldKind::Minute,
    FieldKind::Hour,
    FieldKind::DayOfMonth,
    FieldKind::Month,
    FieldKind::DayOfWeek,
];

fn parse_macro(
    expr: &str,
    words: &[(usize, &str)],
    at: usize,
    word: &str,
) -> Result<Fields, CronError> {
    if let Some(&(extra_at, _)) = words.get(1) {
        return Err(CronError::new(
            format!("`{word}` stands alone: nothing may follow it"),
            extra_at..expr.trim_end().len(),
        ));
    }
    let lower = word.to_ascii_lowercase();
    let span = at..at + word.len();
    if lower == "@reboot" {
        return Err(CronError::new(
            "`@reboot` is not a schedule; use a manual or API trigger instead",
            span,
        ));
    }
    let Some(&(alias, expansion)) = MACROS.iter().find(|(name, _)| *name == lower) else {
        let names: Vec<&str> = MACROS.iter().map(|(name, _)| *name).collect();
        return Err(CronError::new(
            format!(
                "unknown macro `{word}`: expected one of {}",
                names.join(", ")
            ),
            span,
        ));
    };
    // The expansion is ours and valid; report any surprise against the macro's own span.
    let mut fields = parse(expansion).map_err(|e| CronError::new(e.message, span.clone()))?;
    fields.alias = Some(alias);
    Ok(fields)
}

/// Whitespace-separated words with their byte offsets.
fn words(expr: &str) -> Vec<(usize, &str)> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in expr.char_indices().chain([(expr.len(), ' ')]) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                words.push((s, &expr[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(expr: &str) -> (String, std::ops::Range<usize>) {
        let e = parse(expr).unwrap_err();
        (e.message, e.span)
    }

    #[test]
    fn spans_are_byte_offsets_in_the_whole_expression() {
        assert_eq!(error("0  9 * * MONDAY").1, 9..15);
        assert_eq!(error("\t0 25 * * *").1, 3..5);
        assert_eq!(error("0 0 * * * 2026").1, 10..14);
        assert_eq!(error("0 0 * * * 2026 x").1, 15..16);
        assert_eq!(error("0 0 *").1, 0..5);
        assert_eq!(error("   ").1, 0..3);
        assert_eq!(error("@daily 5").1, 7..8);
        assert_eq!(error("@fortnightly").1, 0..12);
        assert!(error("@reboot").0.contains("not a schedule"));
        // Non-ASCII text: spans stay on character boundaries.
        assert_eq!(error("0 9 * * 周一").1, 8..14);
    }

    #[test]
    fn macros_expand_to_their_crontab_meaning() {
        let f = parse("@WEEKLY").unwrap();
        assert_eq!(f.alias, Some("@weekly"));
        assert_eq!(f.day_of_week.values().collect::<Vec<_>>(), [0]);
        assert!(!f.has_seconds);
    }
}
