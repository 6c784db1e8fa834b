//! Inactivity: contacts silent longer than a trigger's threshold, by the store's activity
//! index (`Store::inactive_contacts`: a key-range scan over (tenant, last interaction), never a
//! scan of all contacts).
//!
//! A check (the trigger's `check:` schedule, a [`CronFire`] with
//! [`FireSource::Inactivity`]) lists every contact whose last interaction is before
//! `fired_at − inactive_for`, never-interacted contacts first, then oldest first. The
//! [`InactivityCursor`] is the scan position within one check (threshold fixed at the fire's
//! scheduled instant, plus the last index entry read), so pages are stable while new
//! interactions arrive. Between checks there is no watermark: a contact still silent at the
//! next check is listed again, and the playbook's entry rules (`repeat: once`,
//! `once_per_window`, `one_active_run`), applied by the runtime with
//! `sop_engine::decide_enrollment`, are what keep it from being enrolled at every check.

use serde::{Deserialize, Serialize};
use sop_clock::Timestamp;
use sop_dsl::model::Duration;
use sop_engine::{StartCause, Subject, SubjectKind};
use sop_store::{ContactKey, Store};

use crate::cron::{CronFire, FireSource};
use crate::deployed::{Deployed, Enrollment};
use crate::error::TriggerError;
use crate::filter::Filter;
use crate::view::contact_view;

/// Where an inactivity scan is: its threshold and the last index entry read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InactivityCursor {
    /// The check's scheduled instant (the enrolments' `fired_at`).
    pub fired_at: Timestamp,
    /// Contacts whose last interaction is strictly before this are inactive.
    pub before: Timestamp,
    /// The last (last interaction, contact) entry read; `None` at the start.
    pub after: Option<(Option<Timestamp>, ContactKey)>,
}

impl InactivityCursor {
    /// The start of a scan for a check at `fired_at`.
    pub fn start(fired_at: Timestamp, inactive_for: Duration) -> InactivityCursor {
        let span = i64::try_from(inactive_for.as_seconds())
            .ok()
            .and_then(chrono::TimeDelta::try_seconds)
            .unwrap_or(chrono::TimeDelta::MAX);
        InactivityCursor {
            fired_at,
            // A threshold before the representable past means nobody can be that inactive.
            before: fired_at
                .checked_sub_signed(span)
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
            after: None,
        }
    }

    /// The start of the scan of an inactivity-check fire; `None` for other fires.
    pub fn for_fire(fire: &CronFire) -> Option<InactivityCursor> {
        match (fire.source, fire.fire_at) {
            (FireSource::Inactivity { inactive_for }, Some(at)) => {
                Some(InactivityCursor::start(at, inactive_for))
            }
            _ => None,
        }
    }
}

/// One page of inactive contacts admitted by `deployed`'s audience (tags and `where` apply to
/// the contact), up to `limit`, and the cursor for the next page (`None`: the scan is done).
/// Reads the index in chunks of `limit` and each listed contact once.
pub fn inactive_page(
    store: &dyn Store,
    deployed: &Deployed<'_>,
    cursor: &InactivityCursor,
    limit: usize,
) -> Result<(Vec<Enrollment>, Option<InactivityCursor>), TriggerError> {
    let limit = limit.max(1);
    let filter = Filter::new(deployed.playbook, deployed.id)?;
    let mut after = cursor.after.clone();
    let mut page = Vec::new();
    loop {
        let want = limit - page.len();
        let chunk =
            store.inactive_contacts(deployed.tenant, cursor.before, after.as_ref(), want)?;
        let exhausted = chunk.len() < want;
        for (last_interaction, key) in chunk {
            if let Some(contact) = store.contact(&key)? {
                match filter.admits(&contact_view(&contact)) {
                    Ok(true) => page.push(Enrollment {
                        playbook: deployed.id.to_owned(),
                        version: deployed.version,
                        tenant: deployed.tenant.to_owned(),
                        subject: Subject {
                            kind: SubjectKind::Contact,
                            id: key.id.clone(),
                            account: deployed.account.to_owned(),
                        },
                        cause: StartCause::Inactivity { last_interaction },
                        fired_at: Some(cursor.fired_at),
                    }),
                    Ok(false) => {}
                    Err(message) => {
                        metrics::counter!("sop_trigger_condition_errors_total",
                            "playbook" => deployed.id.to_owned())
                        .increment(1);
                        tracing::warn!(playbook = deployed.id, %message,
                            "audience condition failed; contact left out");
                    }
                }
            }
            after = Some((last_interaction, key));
        }
        if exhausted {
            return Ok((page, None));
        }
        if page.len() >= limit {
            let next = InactivityCursor {
                after,
                ..cursor.clone()
            };
            return Ok((page, Some(next)));
        }
    }
}
