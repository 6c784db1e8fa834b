//! Cron schedules with time zones, with crontab's meaning.
//!
//! `Schedule::parse` reads the crontab syntax operators know (Vixie cron): five fields
//! `minute hour day-of-month month day-of-week`, or six with a leading seconds field; names
//! `JAN`-`DEC` and `SUN`-`SAT`; `*`, ranges, steps, lists; 0 and 7 both Sunday; `@daily`-style
//! macros. Schedules are evaluated in the wall-clock time of a zone, with the daylight-saving rules
//! of `docs/cron.md`: a skipped time fires when the clock jumps (or with the schedule's next
//! time if that comes within the hour), a repeated time fires once.
//!
//! ```
//! use sop_dsl::cron::Schedule;
//! use chrono::TimeZone;
//! use chrono_tz::America::New_York;
//!
//! let schedule = Schedule::parse("30 2 * * *").unwrap();
//! let before = New_York.with_ymd_and_hms(2026, 3, 7, 12, 0, 0).unwrap();
//! let fires: Vec<String> = schedule.iter_after(before).take(2).map(|t| t.to_rfc3339()).collect();
//! // 02:30 does not exist on 2026-03-08 in New York: it fires when the clock jumps to 03:00.
//! assert_eq!(fires, ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]);
//! ```
//!
//! The search for the next wall-clock time is delegated to the `cron` crate, which jumps field by
//! field; see `plan.rs` for what we use it for and where crontab's meaning differs from it.

mod describe;
mod field;
mod plan;
mod syntax;
mod zone;

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike};
use chrono_tz::Tz;

use field::Field;
use plan::Plan;

/// A parsed cron expression. Equal schedules have equal normalized text.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    fields: Fields,
    plan: Plan,
}

#[derive(Debug, Clone, PartialEq)]
struct Fields {
    /// The macro (`@daily`) the expression was written as, if any.
    alias: Option<&'static str>,
    has_seconds: bool,
    second: Field,
    minute: Field,
    hour: Field,
    day_of_month: Field,
    month: Field,
    day_of_week: Field,
}

/// Why an expression is not a valid schedule, and where: `span` is a byte range of the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError {
    pub message: String,
    pub span: Range<usize>,
}

impl CronError {
    pub(crate) fn new(message: impl Into<String>, span: Range<usize>) -> CronError {
        CronError {
            message: message.into(),
            span,
        }
    }

    /// The expression with a caret line under the span and the message, for terminals:
    ///
    /// ```text
    /// 0 9 * * MONDAY
    ///         ^^^^^^ unknown day-of-week name `MONDAY`: ...
    /// ```
    pub fn render(&self, expr: &str) -> String {
        let start = self.span.start.min(expr.len());
        let end = self.span.end.clamp(start, expr.len());
        let pad = expr.get(..start).map_or(start, |s| s.chars().count());
        let width = expr.get(start..end).map_or(1, |s| s.chars().count()).max(1);
        format!(
            "{expr}\n{}{} {}",
            " ".repeat(pad),
            "^".repeat(width),
            self.message
        )
    }
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CronError {}

impl Schedule {
    /// Parses a crontab expression; errors carry the byte span of the offending text.
    pub fn parse(expr: &str) -> Result<Schedule, CronError> {
        let fields = syntax::parse(expr)?;
        let plan = Plan::new(&fields).map_err(|message| CronError::new(message, 0..expr.len()))?;
        Ok(Schedule { fields, plan })
    }

    /// The first fire time strictly after `after`, in `after`'s zone. `None` if the schedule never
    /// fires again (impossible dates like `0 0 30 2 *`, or beyond the year 2100).
    pub fn next_after(&self, after: DateTime<Tz>) -> Option<DateTime<Tz>> {
        let tz = after.timezone();
        let mut floor = zone::high_water(after)?;
        loop {
            let local = self.plan.next_local(floor)?;
            let mut fire = zone::first_instant(tz, local)?;
            if fire.naive_local() != local {
                fire = self.after_jump(fire);
            }
            // Always true by construction of `high_water`; the loop only guards odd zone data.
            if fire > after {
                return Some(fire);
            }
            floor = local;
        }
    }

    /// When the clock jumped over scheduled times: fire at the jump, unless the schedule fires
    /// anyway before as much time has passed as the clock skipped (an hour, usually). Then that
    /// fire stands for the skipped ones too, so `5 * * * *` fires at 03:05 and not also at 03:00:
    /// customers get one message, not two a few minutes apart. A daily 02:30 still fires at 03:00.
    fn after_jump(&self, jump: DateTime<Tz>) -> DateTime<Tz> {
        let regular = jump
            .naive_local()
            .checked_sub_signed(chrono::TimeDelta::seconds(1))
            .and_then(|reading| self.plan.next_local(reading))
            .and_then(|local| zone::first_instant(jump.timezone(), local));
        match regular {
            Some(t) if t - jump < zone::jump_size(jump) => t,
            _ => jump,
        }
    }

    /// The fire times after `after`, in increasing order.
    pub fn iter_after(&self, after: DateTime<Tz>) -> impl Iterator<Item = DateTime<Tz>> + '_ {
        std::iter::successors(self.next_after(after), move |t| self.next_after(*t))
    }

    /// Whether a wall-clock reading is one of the schedule's times, with Vixie cron's rule: when
    /// both day-of-month and day-of-week are restricted (neither starts with `*`), a day matches if
    /// either does; otherwise both must (`*` restricts nothing, but `*/2` still does).
    pub fn matches(&self, local: NaiveDateTime) -> bool {
        let f = &self.fields;
        let dom = f.day_of_month.contains(local.day());
        let dow = f
            .day_of_week
            .contains(local.weekday().num_days_from_sunday());
        let day = if self.days_match_either() {
            dom || dow
        } else {
            dom && dow
        };
        day && f.second.contains(local.second())
            && f.minute.contains(local.minute())
            && f.hour.contains(local.hour())
            && f.month.contains(local.month())
    }

    /// Both day fields are restricted, so a day matches when *either* does (`0 9 1-7 * MON` is
    /// days 1-7 and every Monday). Operators often expect AND here; the checker can point it out.
    pub fn days_match_either(&self) -> bool {
        !self.fields.day_of_month.star && !self.fields.day_of_week.star
    }

    /// The expression had a leading seconds field (six fields).
    pub fn has_seconds(&self) -> bool {
        self.fields.has_seconds
    }

    /// Whether the schedule can ever fire. `0 0 30 2 *` (February 30th) cannot; the checker should
    /// reject it rather than wait forever.
    pub fn is_satisfiable(&self) -> bool {
        let f = &self.fields;
        if self.days_match_either() {
            // Every month has every weekday, so the day-of-week half alone fires.
            return true;
        }
        // Otherwise some allowed day must exist in some allowed month; each (month, day) falls on
        // every weekday within a few decades, so the day-of-week field cannot make it impossible.
        f.month.values().any(|m| {
            let longest = match m {
                2 => 29,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            f.day_of_month.values().any(|d| d <= longest)
        })
    }

    /// A one-line English description, e.g. "at 09:30 on Monday through Friday".
    pub fn describe(&self) -> String {
        describe::describe(&self.fields)
    }
}

impl FromStr for Schedule {
    type Err = CronError;

    fn from_str(s: &str) -> Result<Schedule, CronError> {
        Schedule::parse(s)
    }
}

/// The normalized expression: fields separated by one space, names upper-cased, macros kept.
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = &self.fields;
        if let Some(alias) = fields.alias {
            return f.write_str(alias);
        }
        if fields.has_seconds {
            write!(f, "{} ", fields.second.text)?;
        }
        write!(
            f,
            "{} {} {} {} {}",
            fields.minute.text,
            fields.hour.text,
            fields.day_of_month.text,
            fields.month.text,
            fields.day_of_week.text
        )
    }
}
