//! Finding the next scheduled wall-clock reading, with the `cron` crate doing the search.
//!
//! What the `cron` crate (0.17) gets right and we use: its field-by-field search (years, months,
//! days, hours, ... with ranges over ordered sets; never minute by minute), month lengths and leap
//! years. Where it differs from crontab, and what we own instead:
//! - syntax: its fields are `sec min hour dom month dow [year]` with a mandatory seconds field and
//!   day-of-week numbered 1-7 from Sunday (crontab: 0-7, 0 and 7 Sunday); its errors have no spans.
//!   We parse crontab ourselves and hand it a normalized expression of plain value lists.
//! - days: it always requires day-of-month AND day-of-week; Vixie cron fires on either when both
//!   are restricted. That OR is a union, so we search two schedules (one per day field) and take
//!   the earlier time.
//! - time zones: given a zone it silently skips times that do not exist on spring-forward days
//!   (a daily 02:30 job would miss a day) and may return a time before the one asked for in the
//!   repeated hour. We run it on naive wall-clock time (as UTC, which has no transitions) and map
//!   readings to instants ourselves in `zone.rs`.

use chrono::{NaiveDateTime, TimeZone, Utc};

use super::Fields;
use super::field::Field;

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan {
    /// Schedules whose union is ours; one, or two for the day-of-month OR day-of-week rule.
    searches: Vec<cron::Schedule>,
}

impl Plan {
    pub(super) fn new(fields: &Fields) -> Result<Plan, String> {
        let base = [
            list(&fields.second, 0),
            list(&fields.minute, 0),
            list(&fields.hour, 0),
        ]
        .join(" ");
        let month = list(&fields.month, 0);
        let dom = list(&fields.day_of_month, 0);
        let dow = list(&fields.day_of_week, 1);
        let exprs = if fields.day_of_month.star || fields.day_of_week.star {
            vec![format!("{base} {dom} {month} {dow}")]
        } else {
            vec![
                format!("{base} {dom} {month} *"),
                format!("{base} * {month} {dow}"),
            ]
        };
        let searches = exprs
            .iter()
            .map(|e| {
                e.parse::<cron::Schedule>().map_err(|err| {
                    format!("internal error: `{e}` rejected by the cron crate: {err}")
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Plan { searches })
    }

    /// The first scheduled reading strictly after `after`.
    pub(super) fn next_local(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let after = Utc.from_utc_datetime(&after);
        self.searches
            .iter()
            .filter_map(|s| s.after(&after).next())
            .min()
            .map(|t| t.naive_utc())
    }
}

/// A field as the cron crate reads it: `*` or a list; `shift` renumbers day-of-week to 1-7.
fn list(field: &Field, shift: u32) -> String {
    if field.is_full() {
        return "*".to_owned();
    }
    field
        .values()
        .map(|v| (v + shift).to_string())
        .collect::<Vec<_>>()
        .join(",")
}
