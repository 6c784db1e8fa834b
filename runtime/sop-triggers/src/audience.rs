//! A playbook's audience over the store, page by page.
//!
//! Contacts are read from `Store::contacts(tenant, ..)` and groups from `Store::groups(tenant,
//! ..)` in chunks of the page size, filtered by the audience (`tags_any`, `tags_all`,
//! `tags_none`, `where`), so memory stays bounded by the page size whatever the tenant's size.
//! Contacts who opted out or deleted the staff member are still listed: the policy gate
//! decides what may be sent to them (and records why not), and a playbook may legitimately
//! run for them (tagging, internal notifications).

use sop_clock::Timestamp;
use sop_dsl::model::AudienceTarget;
use sop_engine::{StartCause, Subject, SubjectKind};
use sop_store::{Store, StoreError};

use crate::cron::{CronFire, FireSource};
use crate::deployed::{Deployed, Enrollment};
use crate::error::TriggerError;
use crate::filter::Filter;
use crate::view::{contact_view, group_view};

/// Pages through the subjects a playbook's audience admits, in id order. Resumable: the
/// position is [`cursor`](AudiencePager::cursor), the last id read.
#[derive(Debug)]
pub struct AudiencePager<'s> {
    store: &'s dyn Store,
    deployed: Deployed<'s>,
    cause: StartCause,
    fired_at: Option<Timestamp>,
    filter: Filter<'s>,
    target: AudienceTarget,
    after: Option<String>,
    exhausted: bool,
    scanned: u64,
    condition_errors: u64,
}

impl<'s> AudiencePager<'s> {
    /// A pager over `deployed`'s audience; every candidate gets `cause`. `fired_at` is the
    /// scheduled instant of the fire (for [`Enrollment::dedupe_key`]), `None` for manual starts.
    /// Fails if the audience condition does not compile.
    pub fn new(
        store: &'s dyn Store,
        deployed: Deployed<'s>,
        cause: StartCause,
        fired_at: Option<Timestamp>,
    ) -> Result<AudiencePager<'s>, TriggerError> {
        Ok(AudiencePager {
            store,
            filter: Filter::new(deployed.playbook, deployed.id)?,
            target: deployed
                .playbook
                .audience
                .as_ref()
                .map_or(AudienceTarget::Contacts, |a| a.target),
            deployed,
            cause,
            fired_at,
            after: None,
            exhausted: false,
            scanned: 0,
            condition_errors: 0,
        })
    }

    /// Continues after `id` (a [`cursor`](AudiencePager::cursor) of an earlier pager).
    pub fn resume_after(mut self, id: impl Into<String>) -> Self {
        self.after = Some(id.into());
        self
    }

    /// Up to `limit` candidates (fewer only at the end; empty once exhausted). Reads the store
    /// in chunks of `limit`, so at most `limit` records are held at a time.
    pub fn next_page(&mut self, limit: usize) -> Result<Vec<Enrollment>, StoreError> {
        let limit = limit.max(1);
        let mut page = Vec::new();
        while page.len() < limit && !self.exhausted {
            match self.target {
                AudienceTarget::Contacts => self.contacts_chunk(limit, &mut page)?,
                AudienceTarget::Groups => self.groups_chunk(limit, &mut page)?,
            }
        }
        Ok(page)
    }

    fn contacts_chunk(
        &mut self,
        limit: usize,
        page: &mut Vec<Enrollment>,
    ) -> Result<(), StoreError> {
        let chunk = self.store.contacts(
            self.deployed.tenant,
            self.after.as_deref(),
            limit - page.len(),
        )?;
        self.exhausted = chunk.len() < limit - page.len();
        for contact in chunk {
            self.scanned += 1;
            if self.admits(&contact_view(&contact)) {
                page.push(self.enrollment(SubjectKind::Contact, contact.key.id.clone()));
            }
            self.after = Some(contact.key.id);
        }
        Ok(())
    }

    fn groups_chunk(&mut self, limit: usize, page: &mut Vec<Enrollment>) -> Result<(), StoreError> {
        let chunk = self.store.groups(
            self.deployed.tenant,
            self.after.as_deref(),
            limit - page.len(),
        )?;
        self.exhausted = chunk.len() < limit - page.len();
        for group in chunk {
            self.scanned += 1;
            // A run acts through the playbook's account; groups of other accounts cannot be
            // reached through it.
            if group.account == self.deployed.account && self.admits(&group_view(&group)) {
                page.push(self.enrollment(SubjectKind::Group, group.key.id.clone()));
            }
            self.after = Some(group.key.id);
        }
        Ok(())
    }

    fn admits(&mut self, view: &sop_engine::ContactView) -> bool {
        match self.filter.admits(view) {
            Ok(yes) => yes,
            Err(message) => {
                // Counted and logged without the subject's id; the subject is left out.
                self.condition_errors += 1;
                metrics::counter!("sop_trigger_condition_errors_total",
                    "playbook" => self.deployed.id.to_owned())
                .increment(1);
                tracing::warn!(playbook = self.deployed.id, %message,
                    "audience condition failed; subject left out");
                false
            }
        }
    }

    fn enrollment(&self, kind: SubjectKind, id: String) -> Enrollment {
        Enrollment {
            playbook: self.deployed.id.to_owned(),
            version: self.deployed.version,
            tenant: self.deployed.tenant.to_owned(),
            subject: Subject {
                kind,
                id,
                account: self.deployed.account.to_owned(),
            },
            cause: self.cause.clone(),
            fired_at: self.fired_at,
        }
    }

    /// The last id read (contact or group id): resume with [`resume_after`](Self::resume_after).
    pub fn cursor(&self) -> Option<&str> {
        self.after.as_deref()
    }

    /// No further candidates.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted
    }

    /// Records read so far (admitted or not).
    pub fn scanned(&self) -> u64 {
        self.scanned
    }

    /// Subjects left out because the `where` condition failed to evaluate for them.
    pub fn condition_errors(&self) -> u64 {
        self.condition_errors
    }
}

impl CronFire {
    /// The audience of a `cron:` fire that enrolls; `None` for inactivity checks (use
    /// [`crate::inactive_page`]) and for skipped fires.
    pub fn audience<'s>(
        &self,
        store: &'s dyn Store,
        deployed: Deployed<'s>,
    ) -> Result<Option<AudiencePager<'s>>, TriggerError> {
        match (self.source, self.cause()) {
            (FireSource::Schedule, Some(cause)) => {
                AudiencePager::new(store, deployed, cause, self.fire_at).map(Some)
            }
            _ => Ok(None),
        }
    }
}
