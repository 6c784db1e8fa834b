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
//! See `docs/triggers.md` for the policies. The runtime's scheduler loop, in short:
//!
//! ```
//! use sop_store::{Batch, Check, MemoryStore, Op, Store};
//! use sop_triggers::{CronPolicy, Deployed, due_cron_fires, next_cron_fire};
//!
//! let src = "id: morning\nversion: 1\naudience: {tags_any: [vip]}\n\
//!            triggers: [{cron: '0 9 * * *'}]\nsteps: [{id: pause, wait: 1h}]\n";
//! let playbook = sop_dsl::load(src, None).playbook;
//! let deployed_at = "2026-03-01T00:00:00Z".parse().unwrap();
//! let deployed = [Deployed { id: "morning", version: 1, playbook: &playbook, tenant: "acme",
//!     account: "wecom:acme", deployed_at }];
//! let store = MemoryStore::new();
//! let mut vip = sop_store::Contact::new(sop_store::ContactKey::new("acme", "c1"), deployed_at);
//! vip.tags.insert("vip".into());
//! store.commit(Batch::new().op(Op::PutContact(vip))).unwrap();
//!
//! // Sleep until the next fire (09:00 Shanghai = 01:00 UTC), then take what is due.
//! let now = next_cron_fire(&deployed, &store).unwrap().unwrap();
//! assert_eq!(now.to_rfc3339(), "2026-03-01T01:00:00+00:00");
//! for fire in due_cron_fires(&store, &deployed, now, &CronPolicy::default()).unwrap() {
//!     let mut pager = fire.audience(&store, deployed[0]).unwrap();
//!     let mut last_batch = Batch::new();
//!     while let Some(page) = pager.as_mut().map(|p| p.next_page(500)).transpose().unwrap() {
//!         if page.is_empty() { break; }
//!         for enrollment in page {
//!             // The runtime: decide_enrollment, create the run, and de-duplicate per fire.
//!             let (source, dedupe_id) = enrollment.dedupe_key().unwrap();
//!             last_batch = last_batch
//!                 .check(Check::EventUnseen { source: source.clone(), dedupe_id: dedupe_id.clone() })
//!                 .op(Op::MarkEventSeen { source, dedupe_id, at: now });
//!         }
//!     }
//!     // The watermark goes with the last page (or alone): the fire happens once.
//!     store.commit(last_batch.op(fire.commit)).unwrap();
//! }
//! assert!(due_cron_fires(&store, &deployed, now, &CronPolicy::default()).unwrap().is_empty());
//! ```

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
