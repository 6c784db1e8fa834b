//! What starts runs besides platform events: cron schedules, inactivity scans and manual
//! audiences. Producers only: they say who should be enrolled in which playbook and why;
//! `sop-runtime` applies the entry rules (`sop_engine::decide_enrollment`) and enrolls.
//!
//! - [`due_cron_fires`] / [`next_cron_fire`]: cron and inactivity-check schedules in the
//!   playbook's (or trigger's) time zone, with the daylight-saving rules of `docs/cron.md` and
//!   a [`MissedFire`] policy after downtime. Each [`CronFire`] carries the
//!   `Op::SetCronLastFire` to commit with its enrolments, so an instant never fires twice.
//! - [`AudiencePager`]: the contacts or customer groups a playbook's audience admits, in pages
//!   of bounded size.
//! - [`inactive_page`]: contacts silent longer than a threshold, by the store's activity index.
//! - [`ManualPager`]: a batch start by ids or by the playbook's audience.
//!
//! See `docs/triggers.md` for the policies.

mod audience;
mod cron;
mod deployed;
mod error;
mod filter;
mod inactivity;
mod manual;
mod view;

pub use audience::AudiencePager;
pub use cron::{
    CronFire, CronPolicy, DEFAULT_GRACE_SECONDS, FireSource, MissedFire, due_cron_fires,
    next_cron_fire, trigger_key,
};
pub use deployed::{Deployed, Enrollment};
pub use error::TriggerError;
pub use inactivity::{InactivityCursor, inactive_page};
pub use manual::{MAX_MANUAL_IDS, ManualAudience, ManualPage, ManualPager};
pub use view::{contact_view, group_view};

#[cfg(test)]
mod tests;
