//! The contract every [`Store`] backend must pass. Call [`run_all`] with a factory of empty
//! stores, and [`survives_reopen`] with a function that reopens one persistent store, from the
//! backend's own tests. Each check panics with a message naming the broken rule.

use serde_json::json;
use sop_clock::{TimeDelta, Timestamp};

use crate::*;

mod batches;
mod records;
mod runs;

pub use batches::*;
pub use records::*;
pub use runs::*;

/// A fixed instant all checks count from (2026-01-01T00:00:00Z).
pub fn t0() -> Timestamp {
    Timestamp::from_timestamp_millis(1_767_225_600_000).expect("in range")
}

fn at(minutes: i64) -> Timestamp {
    t0() + TimeDelta::minutes(minutes)
}

/// A contact of tenant `acme`.
pub fn contact(id: &str, last: Option<Timestamp>) -> Contact {
    let mut c = Contact::new(ContactKey::new("acme", id), t0());
    c.last_interaction = last;
    c.tags.insert("vip".into());
    c.attributes.insert("city".into(), json!("杭州"));
    c
}

/// A waiting run of `playbook` about contact `who` of tenant `acme`.
pub fn run(id: RunId, playbook: &str, who: &str, state: RunState) -> Run {
    Run {
        id,
        playbook: playbook.into(),
        version: 1,
        subject: Subject::Contact(ContactKey::new("acme", who)),
        state,
        step: Some("wait_reply".into()),
        iteration: 0,
        counters: Default::default(),
        variables: Default::default(),
        reason: None,
        revision: 1,
        created_at: t0(),
        updated_at: t0(),
    }
}

pub fn timer(run: RunId, name: &str, due: Timestamp) -> Timer {
    Timer {
        key: TimerKey::new(run, name),
        due,
        step: Some("wait_reply".into()),
    }
}

pub fn outbox(run: RunId, step: &str, state: OutboxState) -> OutboxEntry {
    OutboxEntry {
        key: IdempotencyKey::new(run, step, 0),
        action: "wecom.send_text".into(),
        account: "acme-staff-1".into(),
        input_digest: "d1".into(),
        delivery: Delivery::AtMostOnce,
        state,
        attempts: 1,
        created_at: t0(),
        updated_at: t0(),
    }
}

fn history(step: &str) -> HistoryEntry {
    HistoryEntry {
        at: t0(),
        step: Some(step.into()),
        input: "{}".into(),
        outcome: "sent".into(),
        gate: Some("passed".into()),
    }
}

fn commit<S: Store>(store: &S, ops: Vec<Op>) -> Receipt {
    store
        .commit(Batch {
            checks: vec![],
            ops,
        })
        .expect("commit succeeds")
}

/// Runs every check, each on a fresh store from `fresh`.
pub fn run_all<S: Store>(mut fresh: impl FnMut() -> S) {
    contacts_round_trip_and_page(&fresh());
    inactivity_scan_follows_last_interaction(&fresh());
    run_indexes_follow_state_and_subject(&fresh());
    history_is_append_only_and_ordered(&fresh());
    timers_scan_by_due_time_and_move(&fresh());
    subscriptions_by_subject_and_event(&fresh());
    dedupe_keys_and_event_log(&fresh());
    outbox_scans_by_state(&fresh());
    touches_count_in_windows(&fresh());
    cron_state_and_run_ids(&fresh());
    plugin_kv_honours_ttl(&fresh());
    a_failed_check_applies_nothing(&fresh());
    one_live_run_per_subject_and_playbook(&fresh());
    concurrent_commits_keep_indexes_consistent(&fresh());
    ops_see_earlier_ops_of_their_batch(&fresh());
    groups_round_trip_and_page(&fresh());
    playbook_versions_are_kept(&fresh());
    run_detail_lives_and_dies_with_its_run(&fresh());
    flow_records_and_indexes(&fresh());
}

/// Writes a typical run-advance batch durably, then reopens the store (via `reopen`, which
/// must open the same persistent store after the previous handle is dropped) and reads it
/// back; run ids keep growing across the reopen.
pub fn survives_reopen<S: Store>(mut reopen: impl FnMut() -> S) {
    let store = reopen();
    let id = store.next_run_id().unwrap();
    let mut r = run(id, "welcome", "c1", RunState::Waiting);
    r.variables
        .insert("coupon".into(), json!({"code": "C10", "yuan": 10}));
    let batch = Batch::new()
        .check(Check::RunRevision {
            run: id,
            expected: None,
        })
        .op(Op::PutContact(contact("c1", Some(at(0)))))
        .op(Op::PutRun(r.clone()))
        .op(Op::PutRunDetail {
            run: id,
            detail: b"engine state".to_vec(),
        })
        .op(Op::PutTimer(timer(id, "wait", at(60))))
        .op(Op::PutOutbox(outbox(id, "welcome", OutboxState::Pending)))
        .op(Op::AppendHistory {
            run: id,
            entry: history("welcome"),
        })
        .op(Op::KvSet {
            plugin: "wecom".into(),
            key: "token".into(),
            value: b"t".to_vec(),
            expires_at: Some(at(100)),
        });
    store.commit_durable(batch).unwrap();
    drop(store);
    let store = reopen();
    assert_eq!(store.run(id).unwrap(), Some(r), "run survives");
    assert_eq!(
        store.run_detail(id).unwrap(),
        Some(b"engine state".to_vec()),
        "run detail survives"
    );
    assert_eq!(
        store.due_timers(at(60), None, 10).unwrap(),
        [timer(id, "wait", at(60))]
    );
    assert_eq!(
        store
            .outbox_in_state(OutboxStateKind::Pending, None, 10)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.history(id, None, 10).unwrap().len(), 1);
    assert_eq!(
        store.contact(&ContactKey::new("acme", "c1")).unwrap(),
        Some(contact("c1", Some(at(0))))
    );
    assert_eq!(
        store.kv_get("wecom", "token", at(0)).unwrap(),
        Some(b"t".to_vec())
    );
    let next = store.next_run_id().unwrap();
    assert!(
        next > id,
        "run ids never repeat across restarts ({next} after {id})"
    );
    let receipt = store
        .commit(Batch::new().op(Op::AppendHistory {
            run: id,
            entry: history("x"),
        }))
        .unwrap();
    assert_eq!(
        receipt.history_seqs,
        [(id, 2)],
        "sequences continue after reopen"
    );
}
