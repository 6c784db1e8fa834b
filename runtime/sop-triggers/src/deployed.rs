//! What triggers read (a deployed playbook version) and what they produce (enrolments).

use sop_clock::Timestamp;
use sop_dsl::Playbook;
use sop_engine::{StartCause, Subject};

/// A deployed playbook version as triggers see it. Pass the current version of each
/// playbook only; runs in flight on older versions are not the triggers' business.
#[derive(Debug, Clone, Copy)]
pub struct Deployed<'a> {
    /// Playbook id, as stored (`Store::playbook`).
    pub id: &'a str,
    pub version: u32,
    pub playbook: &'a Playbook,
    pub tenant: &'a str,
    /// The platform account runs act through (`Subject::account`).
    pub account: &'a str,
    /// When this version was deployed (`PlaybookVersion::deployed_at`): a schedule that has
    /// never fired counts its fires from here, so a new playbook does not catch up on the past.
    pub deployed_at: Timestamp,
}

/// One candidate: this subject should start `playbook` (at `version`) because of `cause`.
/// The runtime still applies the entry rules (`sop_engine::decide_enrollment`) and the
/// policy gate; a candidate is not a promise to send anything.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrollment {
    pub playbook: String,
    pub version: u32,
    pub tenant: String,
    pub subject: Subject,
    pub cause: StartCause,
    /// The scheduled instant of the cron or inactivity-check fire that produced this
    /// candidate; `None` for manual starts.
    pub fired_at: Option<Timestamp>,
}

impl Enrollment {
    /// The subject as the store indexes it (runs by subject, `Check::NoLiveRun`).
    pub fn store_subject(&self) -> sop_store::Subject {
        match self.subject.kind {
            sop_engine::SubjectKind::Contact => sop_store::Subject::Contact(
                sop_store::ContactKey::new(self.tenant.as_str(), self.subject.id.as_str()),
            ),
            sop_engine::SubjectKind::Group => sop_store::Subject::Group {
                tenant: self.tenant.clone(),
                id: self.subject.id.clone(),
            },
        }
    }

    /// A key naming this enrolment for de-duplication across a crash in the middle of a
    /// paged fire: `(source, dedupe_id)` for `Check::EventUnseen` + `Op::MarkEventSeen`.
    /// Fires name their scheduled instant, so re-running a fire after a crash enrolls nobody
    /// twice; manual starts have no such instant and return `None`.
    pub fn dedupe_key(&self) -> Option<(String, String)> {
        let at = self.fired_at?;
        let kind = match self.subject.kind {
            sop_engine::SubjectKind::Contact => "contact",
            sop_engine::SubjectKind::Group => "group",
        };
        Some((
            format!("trigger:{}", self.playbook),
            format!(
                "{}/{kind}/{}/{}",
                at.timestamp_millis(),
                self.tenant,
                self.subject.id
            ),
        ))
    }
}
