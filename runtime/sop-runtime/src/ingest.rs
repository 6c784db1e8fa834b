//! Platform events: de-duplicated by (source, dedupe id), the contact (and group) updated,
//! waiting runs resumed or converted, event triggers enrolled: one commit per event, made
//! durable before the ingress answers the platform.

use std::collections::BTreeSet;
use std::sync::Arc;

use sop_clock::Timestamp;
use sop_dsl::model::{AudienceTarget, Trigger};
use sop_engine::{Context, Event, Input, StartCause};
use sop_store::{
    Check, ContactKey, EventRecord, FriendStatus, GroupKey, Op, OptOut, RunId, StoreError, Subject,
};

use crate::error::RuntimeError;
use crate::gate::ConsentChange;
use crate::runtime::{Inner, Runtime};
use crate::tx::Tx;

/// Where events come from: the plugin account whose webhook delivered them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSource {
    pub tenant: String,
    pub plugin: String,
    pub account: String,
}

impl EventSource {
    /// The dedupe and event-log source, `plugin:account`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.plugin, self.account)
    }
}

/// What an ingest did; returned once everything is durable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReceipt {
    /// Events committed for the first time.
    pub accepted: usize,
    /// Events seen before (same source and dedupe id), dropped.
    pub duplicates: usize,
    /// Runs the events started.
    pub enrolled: Vec<RunId>,
    /// Runs the events resumed or converted.
    pub resumed: Vec<RunId>,
}

/// Event kinds (after the plugin prefix) that are not an interaction with the contact.
const NOT_INTERACTION: [&str; 5] = [
    "contact_deleted",
    "staff_deleted_by_contact",
    "contact_edited",
    "group_member_left",
    "order_refunded",
];

/// Commit attempts per event when a lane raced us.
const EVENT_ATTEMPTS: usize = 3;

impl Runtime {
    /// De-duplicates, updates contacts (last interaction, consent keywords, friend status),
    /// enrolls, resumes waits. Returns once committed durably (then the ingress may answer
    /// 200).
    pub async fn ingest(
        &self,
        source: &EventSource,
        events: Vec<Event>,
    ) -> Result<IngestReceipt, RuntimeError> {
        use tracing::Instrument as _;
        let span = tracing::info_span!("ingest", tenant = %source.tenant, plugin = %source.plugin,
            account = %source.account, events = events.len());
        self.ingest_all(source, events).instrument(span).await
    }

    async fn ingest_all(
        &self,
        source: &EventSource,
        events: Vec<Event>,
    ) -> Result<IngestReceipt, RuntimeError> {
        let inner = &self.inner;
        let mut receipt = IngestReceipt::default();
        let mut work = Vec::new();
        for event in events {
            let outcome = inner.ingest_one(source, &event).await?;
            let label = if outcome.is_some() {
                "accepted"
            } else {
                "duplicate"
            };
            metrics::counter!("sop_runtime_events_total", "plugin" => source.plugin.clone(), "outcome" => label).increment(1);
            match outcome {
                Some((enrolled, resumed, more)) => {
                    receipt.accepted += 1;
                    receipt.enrolled.extend(enrolled);
                    receipt.resumed.extend(resumed);
                    work.extend(more);
                }
                None => receipt.duplicates += 1,
            }
        }
        // One flush covers every event of the delivery; only then is anything performed.
        inner.durable().await?;
        inner.perform(work);
        Ok(receipt)
    }
}

type Accepted = (Vec<RunId>, Vec<RunId>, Vec<crate::tx::Work>);

impl Inner {
    /// One event in one commit. `None`: a duplicate.
    async fn ingest_one(
        self: &Arc<Self>,
        source: &EventSource,
        event: &Event,
    ) -> Result<Option<Accepted>, RuntimeError> {
        let contact = event
            .contact
            .as_ref()
            .map(|id| ContactKey::new(&source.tenant, id));
        let group = event
            .group
            .as_ref()
            .map(|id| GroupKey::new(&source.tenant, id));
        let contact_subject = contact.clone().map(Subject::Contact);
        let group_subject = group.as_ref().map(|g| Subject::Group {
            tenant: g.tenant.clone(),
            id: g.id.clone(),
        });
        // The contact's lane (else the group's): the event's effects on that subject stay in
        // order with its other transitions. Runs of the other subject are guarded by their
        // revision check.
        let lane_subject = contact_subject
            .clone()
            .or_else(|| group_subject.clone())
            .unwrap_or_else(|| Subject::Contact(ContactKey::new(&source.tenant, "")));
        let _lane = self.lane(&lane_subject).await;
        let source_key = source.key();
        let dedupe = (!event.dedupe_id.is_empty()).then_some(event.dedupe_id.as_str());
        for attempt in 0..EVENT_ATTEMPTS {
            if let Some(id) = dedupe
                && self.store.event_seen(&source_key, id)?.is_some()
            {
                return Ok(None);
            }
            let now = self.clock.now();
            let mut tx = Tx::new();
            if let Some(id) = dedupe {
                tx.batch.checks.push(Check::EventUnseen {
                    source: source_key.clone(),
                    dedupe_id: id.into(),
                });
                tx.batch.push(Op::MarkEventSeen {
                    source: source_key.clone(),
                    dedupe_id: id.into(),
                    at: now,
                });
            }
            tx.batch.push(Op::AppendEvent(EventRecord {
                received_at: now,
                source: source_key.clone(),
                kind: event.kind.clone(),
                subject: contact_subject.clone().or_else(|| group_subject.clone()),
                dedupe_id: dedupe.map(str::to_string),
                payload: serde_json::to_value(event).unwrap_or_default(),
            }));
            if let Some(key) = &contact {
                self.update_contact(&mut tx, source, key, event, now)?;
            }
            if let Some(key) = &group {
                let record = tx.group_mut(&*self.store, key, &source.account, now)?;
                crate::groups::apply_event(record, kind_suffix(&event.kind), event);
            }
            let resumed = self.route(&mut tx, event, [&contact_subject, &group_subject], now)?;
            let enrolled = self.enroll_event(
                &mut tx,
                source,
                event,
                &contact_subject,
                &group_subject,
                now,
            )?;
            match self.commit_deferred(tx) {
                Ok(work) => return Ok(Some((enrolled, resumed, work))),
                Err(RuntimeError::Store(StoreError::Conflict(_)))
                    if attempt + 1 < EVENT_ATTEMPTS =>
                {
                    // A duplicate delivered concurrently, or another lane moved one of the
                    // runs: read again and redo.
                    metrics::counter!("sop_runtime_commit_conflicts_total").increment(1);
                }
                Err(e) => return Err(e),
            }
        }
        Err(RuntimeError::Store(StoreError::Conflict(format!(
            "event {} kept conflicting",
            event.kind
        ))))
    }

    fn update_contact(
        &self,
        tx: &mut Tx,
        source: &EventSource,
        key: &ContactKey,
        event: &Event,
        now: Timestamp,
    ) -> Result<(), RuntimeError> {
        let suffix = kind_suffix(&event.kind);
        let consent = if suffix == "message_received" {
            event
                .attributes
                .get("text")
                .and_then(|t| t.as_str())
                .and_then(|text| self.gate.consent_keyword(text))
        } else {
            None
        };
        let record = tx.contact_mut(&*self.store, key, now)?;
        record.platform_ids.insert(source.key(), key.id.clone());
        if let Some(staff) = &event.staff
            && record.owner.is_none()
        {
            record.owner = Some(staff.clone());
        }
        match suffix {
            "contact_added" => record.friend = FriendStatus::Friend,
            "staff_deleted_by_contact" => record.friend = FriendStatus::DeletedByContact,
            "contact_deleted" => record.friend = FriendStatus::DeletedByStaff,
            _ => {}
        }
        if !NOT_INTERACTION.contains(&suffix) {
            let at = event.occurred_at.min(now);
            record.last_interaction = Some(record.last_interaction.map_or(at, |t| t.max(at)));
        }
        match consent {
            Some(ConsentChange::OptOut { keyword }) => {
                record.consent.opted_out = Some(OptOut {
                    at: now,
                    by: "contact".into(),
                    source: format!("keyword {keyword}"),
                });
                metrics::counter!("sop_runtime_consent_changes_total", "source" => "keyword")
                    .increment(1);
            }
            Some(ConsentChange::OptIn { .. }) => {
                record.consent.opted_out = None;
                metrics::counter!("sop_runtime_consent_changes_total", "source" => "keyword")
                    .increment(1);
            }
            None => {}
        }
        Ok(())
    }

    /// Resumes or converts the runs subscribed to this kind of event about these subjects.
    fn route(
        &self,
        tx: &mut Tx,
        event: &Event,
        subjects: [&Option<Subject>; 2],
        now: Timestamp,
    ) -> Result<Vec<RunId>, RuntimeError> {
        let mut runs = BTreeSet::new();
        for subject in subjects.into_iter().flatten() {
            for subscription in self.store.subscribers(subject, &event.kind)? {
                runs.insert(subscription.run);
            }
        }
        let mut resumed = Vec::new();
        let input = Input::Event {
            event: event.clone(),
        };
        for id in runs {
            let Some(loaded) = self.load(id)? else {
                continue;
            };
            let subject = loaded.run.subject.clone();
            let view = tx.view(&*self.store, &subject, &loaded.state.subject.account, now)?;
            let ctx = Context {
                now,
                contact: &view,
                catalog: Some(&self.registry.catalog),
                config: &self.config.engine,
            };
            let transition = sop_engine::advance(&loaded.playbook, &loaded.state, &input, &ctx);
            if transition.ignored.is_some() {
                continue;
            }
            tx.record(
                &*self.store,
                &loaded.playbook,
                Some(&loaded.run),
                &loaded.state,
                &subject,
                &transition,
                now,
            )?;
            resumed.push(id);
        }
        Ok(resumed)
    }

    /// Enrols the event's subject in every deployed playbook of the tenant with an event
    /// trigger of this kind.
    fn enroll_event(
        &self,
        tx: &mut Tx,
        source: &EventSource,
        event: &Event,
        contact: &Option<Subject>,
        group: &Option<Subject>,
        now: Timestamp,
    ) -> Result<Vec<RunId>, RuntimeError> {
        let mut enrolled = Vec::new();
        let cause = StartCause::Event {
            event: event.clone(),
        };
        for deployment in self.registry.current() {
            if deployment.tenant != source.tenant || self.registry.is_paused(&deployment.id) {
                continue;
            }
            let triggered = deployment
                .playbook
                .triggers
                .iter()
                .any(|t| matches!(t, Trigger::Event(trigger) if trigger.event.0 == event.kind));
            if !triggered {
                continue;
            }
            let for_groups = deployment
                .playbook
                .audience
                .as_ref()
                .is_some_and(|a| a.target == AudienceTarget::Groups);
            let Some(subject) = (if for_groups { group } else { contact }) else {
                continue;
            };
            match self.enroll_into(tx, &deployment, subject, &cause, now)? {
                Ok(run) => enrolled.push(run),
                Err(reason) => {
                    tracing::debug!(playbook = %deployment.id, %reason, "not enrolled");
                }
            }
        }
        Ok(enrolled)
    }
}

/// `message_received` of `wecom.message_received`.
fn kind_suffix(kind: &str) -> &str {
    kind.rsplit('.').next().unwrap_or(kind)
}
