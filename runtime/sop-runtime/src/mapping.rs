//! How engine values map to store records: ids, subjects, the encoded run state, timer
//! names, and the store's indexed run fields.

use std::collections::BTreeMap;

use sop_dsl::model::Zone;
use sop_engine::{ContactView, Invocation, RunState as EngineState, RunStatus, SubjectKind};
use sop_store::{Contact, Group, IdempotencyKey, Run, RunId, RunState, Subject};

use crate::error::RuntimeError;

/// Format byte in front of a run's detail bytes: 1 = the engine's `RunState` as JSON
/// (self-describing, so an engine field added with a default still reads old records; the
/// state carries its own `format` too).
pub const DETAIL_FORMAT: u8 = 1;

/// Prefix of timer names the runtime owns (the engine's timer ids start with the run id).
pub const RUNTIME_TIMER: &str = "rt:";

/// The engine's run id for a store run id (`r12`).
pub fn engine_run_id(id: RunId) -> sop_engine::RunId {
    sop_engine::RunId(id.to_string())
}

/// The store run id of an engine run id written by [`engine_run_id`].
pub fn store_run_id(id: &sop_engine::RunId) -> Option<RunId> {
    id.0.strip_prefix('r')?.parse().ok().map(RunId)
}

/// The outbox key of an invocation.
pub fn outbox_key(run: RunId, invocation: &Invocation) -> IdempotencyKey {
    IdempotencyKey::new(run, invocation.step.as_str(), invocation.iteration)
}

/// The timer that re-asks the gate for a deferred invocation.
pub fn defer_timer(invocation: &Invocation) -> String {
    format!("{RUNTIME_TIMER}defer:{}", invocation.key)
}

/// The timer that asks the plugin about an accepted asynchronous action.
pub fn check_timer(invocation: &Invocation) -> String {
    format!("{RUNTIME_TIMER}check:{}", invocation.key)
}

/// The store subject of an engine subject in `tenant`.
pub fn store_subject(tenant: &str, subject: &sop_engine::Subject) -> Subject {
    match subject.kind {
        SubjectKind::Contact => Subject::Contact(sop_store::ContactKey::new(tenant, &subject.id)),
        SubjectKind::Group => Subject::Group {
            tenant: tenant.into(),
            id: subject.id.clone(),
        },
    }
}

/// The tenant of a store subject.
pub fn tenant_of(subject: &Subject) -> &str {
    match subject {
        Subject::Contact(key) => &key.tenant,
        Subject::Group { tenant, .. } => tenant,
    }
}

/// Which shard (lane) handles a subject: a stable hash, so a subject always lands on the same
/// lane and its transitions stay in order.
pub fn shard_of(subject: &Subject, shards: usize) -> usize {
    let hash = match subject {
        Subject::Contact(key) => sop_engine::stable_hash(&["c", &key.tenant, &key.id]),
        Subject::Group { tenant, id } => sop_engine::stable_hash(&["g", tenant, id]),
    };
    (hash % shards.max(1) as u64) as usize
}

/// Encodes a run state for `Op::PutRunDetail`.
pub fn encode_state(state: &EngineState) -> Result<Vec<u8>, RuntimeError> {
    let mut bytes = vec![DETAIL_FORMAT];
    serde_json::to_writer(&mut bytes, state).map_err(|e| RuntimeError::Corrupt {
        run: state.id.0.clone(),
        reason: format!("cannot encode run state: {e}"),
    })?;
    Ok(bytes)
}

/// Decodes a run's detail bytes.
pub fn decode_state(run: RunId, bytes: &[u8]) -> Result<EngineState, RuntimeError> {
    let corrupt = |reason: String| RuntimeError::Corrupt {
        run: run.to_string(),
        reason,
    };
    match bytes.split_first() {
        Some((&DETAIL_FORMAT, json)) => serde_json::from_slice(json)
            .map_err(|e| corrupt(format!("cannot decode run state: {e}"))),
        Some((format, _)) => Err(corrupt(format!(
            "run state has format {format}, this binary reads {DETAIL_FORMAT}"
        ))),
        None => Err(corrupt("empty run state".into())),
    }
}

/// The store's coarse state of an engine status.
pub fn store_state(status: RunStatus) -> RunState {
    match status {
        RunStatus::Created | RunStatus::Running => RunState::Active,
        RunStatus::WaitingTimer | RunStatus::WaitingEvent | RunStatus::WaitingOutcome => {
            RunState::Waiting
        }
        RunStatus::Completed => RunState::Completed,
        RunStatus::Converted => RunState::Converted,
        RunStatus::Failed => RunState::Failed,
        RunStatus::Cancelled => RunState::Cancelled,
    }
}

/// The engine status entry rules should see for a store state (live or how it ended).
pub fn engine_status(state: RunState) -> RunStatus {
    match state {
        RunState::Active => RunStatus::Running,
        RunState::Waiting => RunStatus::WaitingTimer,
        RunState::Completed => RunStatus::Completed,
        RunState::Converted => RunStatus::Converted,
        RunState::Failed => RunStatus::Failed,
        RunState::Cancelled => RunStatus::Cancelled,
    }
}

/// The indexed run record of an engine state (`revision` set by the caller).
pub fn run_record(state: &EngineState, subject: Subject, revision: u64) -> Run {
    let step = state.step.as_ref().map(|s| s.0.clone());
    Run {
        id: store_run_id(&state.id).unwrap_or(RunId(0)),
        playbook: state.playbook.clone(),
        version: state.version,
        subject,
        state: store_state(state.status),
        iteration: step.as_deref().map_or(0, |s| state.iteration(s)),
        step,
        counters: state
            .iterations
            .iter()
            .map(|(k, v)| (k.clone(), u64::from(*v)))
            .collect(),
        variables: state
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        reason: state.finish.as_ref().map(|f| f.reason.clone()),
        revision,
        created_at: state.created_at,
        updated_at: state.updated_at,
    }
}

/// A contact as templates and conditions see it.
pub fn contact_view(contact: &Contact) -> ContactView {
    let name = contact
        .attributes
        .get("name")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    ContactView {
        id: contact.key.id.clone(),
        name,
        owner: contact.owner.clone(),
        tags: contact.tags.clone(),
        attributes: contact
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        timezone: contact
            .time_zone
            .as_deref()
            .and_then(|z| z.parse::<chrono_tz::Tz>().ok())
            .map(Zone),
    }
}

/// A customer group as templates and conditions see it (`contact.*` in group playbooks).
pub fn group_view(group: &Group) -> ContactView {
    ContactView {
        id: group.key.id.clone(),
        name: (!group.name.is_empty()).then(|| group.name.clone()),
        owner: group.owner.clone(),
        tags: group.tags.clone(),
        attributes: group
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        timezone: None,
    }
}

/// Runs started by a schedule, a scan or an operator are bulk traffic for the rate limiter.
pub(crate) fn cause_is_bulk(state: &sop_engine::RunState) -> bool {
    state
        .cause
        .as_ref()
        .is_some_and(|cause| !matches!(cause, sop_engine::StartCause::Event { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_round_trip_and_bad_ids_are_refused() {
        assert_eq!(store_run_id(&engine_run_id(RunId(42))), Some(RunId(42)));
        assert_eq!(store_run_id(&sop_engine::RunId("x1".into())), None);
    }

    #[test]
    fn detail_bytes_refuse_unknown_formats_and_garbage() {
        assert!(decode_state(RunId(1), &[]).is_err());
        assert!(decode_state(RunId(1), &[9, b'{', b'}']).is_err());
        assert!(decode_state(RunId(1), &[DETAIL_FORMAT, b'{']).is_err());
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        let subject = Subject::Contact(sop_store::ContactKey::new("t", "c1"));
        let first = shard_of(&subject, 4);
        assert!(first < 4);
        assert_eq!(shard_of(&subject, 4), first);
        assert_eq!(shard_of(&subject, 0), 0);
    }
}
