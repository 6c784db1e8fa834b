//! The contract every [`Store`] backend must pass. Call [`run_all`] with a factory of empty
//! stores, and [`survives_reopen`] with a function that reopens one persistent store, from the
//! backend's own tests. Each check panics with a message naming the broken rule.

use serde_json::json;
use sop_clock::{TimeDelta, Timestamp};

use crate::*;

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
}

pub fn contacts_round_trip_and_page<S: Store>(store: &S) {
    let ids = ["c3", "c1", "c2", "c\u{0}x", "c10"];
    let ops = ids
        .iter()
        .map(|id| Op::PutContact(contact(id, None)))
        .collect();
    commit(store, ops);
    let got = store.contact(&ContactKey::new("acme", "c1")).unwrap();
    assert_eq!(got, Some(contact("c1", None)), "contact round trip");
    assert_eq!(
        store.contact(&ContactKey::new("other", "c1")).unwrap(),
        None,
        "tenants are separate"
    );
    let first: Vec<String> = store
        .contacts("acme", None, 3)
        .unwrap()
        .into_iter()
        .map(|c| c.key.id)
        .collect();
    assert_eq!(first, ["c\u{0}x", "c1", "c10"], "contacts page in id order");
    let rest: Vec<String> = store
        .contacts("acme", Some("c10"), 10)
        .unwrap()
        .into_iter()
        .map(|c| c.key.id)
        .collect();
    assert_eq!(rest, ["c2", "c3"], "next page starts after the cursor");
    commit(
        store,
        vec![Op::DeleteContact(ContactKey::new("acme", "c2"))],
    );
    assert_eq!(
        store.contacts("acme", None, 10).unwrap().len(),
        4,
        "delete removes"
    );
}

pub fn inactivity_scan_follows_last_interaction<S: Store>(store: &S) {
    commit(
        store,
        vec![
            Op::PutContact(contact("old", Some(at(-100)))),
            Op::PutContact(contact("never", None)),
            Op::PutContact(contact("recent", Some(at(-1)))),
            Op::PutContact(contact("older", Some(at(-200)))),
        ],
    );
    let ids = |rows: Vec<(Option<Timestamp>, ContactKey)>| {
        rows.into_iter().map(|(_, k)| k.id).collect::<Vec<_>>()
    };
    let idle = store.inactive_contacts("acme", at(-50), None, 10).unwrap();
    assert_eq!(
        ids(idle.clone()),
        ["never", "older", "old"],
        "never first, then oldest"
    );
    assert_eq!(idle[1].0, Some(at(-200)), "rows carry the last interaction");
    let page = store
        .inactive_contacts("acme", at(-50), Some(&idle[1]), 10)
        .unwrap();
    assert_eq!(ids(page), ["old"], "paging continues after the cursor");
    // An interaction moves the contact out of the inactive range.
    commit(store, vec![Op::PutContact(contact("old", Some(at(0))))]);
    let idle = store.inactive_contacts("acme", at(-50), None, 10).unwrap();
    assert_eq!(
        ids(idle),
        ["never", "older"],
        "old index entry removed on update"
    );
    assert!(
        store
            .inactive_contacts("other", at(0), None, 10)
            .unwrap()
            .is_empty()
    );
}

pub fn run_indexes_follow_state_and_subject<S: Store>(store: &S) {
    let (a, b, c) = (RunId(1), RunId(2), RunId(3));
    commit(
        store,
        vec![
            Op::PutRun(run(a, "welcome", "c1", RunState::Waiting)),
            Op::PutRun(run(b, "welcome", "c2", RunState::Waiting)),
            Op::PutRun(run(c, "reactivate", "c1", RunState::Active)),
        ],
    );
    assert_eq!(
        store.run(a).unwrap(),
        Some(run(a, "welcome", "c1", RunState::Waiting))
    );
    assert_eq!(
        store
            .runs_by_state("welcome", RunState::Waiting, None, 10)
            .unwrap(),
        [a, b]
    );
    assert_eq!(
        store
            .runs_by_state("welcome", RunState::Waiting, Some(a), 10)
            .unwrap(),
        [b]
    );
    let mut done = run(a, "welcome", "c1", RunState::Completed);
    done.revision = 2;
    commit(store, vec![Op::PutRun(done)]);
    assert_eq!(
        store
            .runs_by_state("welcome", RunState::Waiting, None, 10)
            .unwrap(),
        [b],
        "left the old state"
    );
    assert_eq!(
        store
            .runs_by_state("welcome", RunState::Completed, None, 10)
            .unwrap(),
        [a]
    );
    let subject = Subject::Contact(ContactKey::new("acme", "c1"));
    let runs = store.runs_of_subject(&subject).unwrap();
    let summary: Vec<(RunId, &str, RunState)> = runs
        .iter()
        .map(|r| (r.id, r.playbook.as_str(), r.state))
        .collect();
    assert_eq!(
        summary,
        [
            (a, "welcome", RunState::Completed),
            (c, "reactivate", RunState::Active)
        ]
    );
    commit(
        store,
        vec![
            Op::PutTimer(timer(c, "wait", at(5))),
            Op::AppendHistory {
                run: c,
                entry: history("s1"),
            },
            Op::DeleteRun(c),
        ],
    );
    assert_eq!(store.run(c).unwrap(), None);
    assert_eq!(
        store.runs_of_subject(&subject).unwrap().len(),
        1,
        "subject index cleaned"
    );
    assert!(
        store
            .runs_by_state("reactivate", RunState::Active, None, 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        store.history(c, None, 10).unwrap().is_empty(),
        "history removed with the run"
    );
    assert_eq!(
        store.timer(&TimerKey::new(c, "wait")).unwrap(),
        None,
        "timers removed with the run"
    );
    assert!(store.due_timers(at(10), None, 10).unwrap().is_empty());
}

pub fn history_is_append_only_and_ordered<S: Store>(store: &S) {
    let r = RunId(9);
    let receipt = commit(
        store,
        vec![
            Op::AppendHistory {
                run: r,
                entry: history("a"),
            },
            Op::AppendHistory {
                run: r,
                entry: history("b"),
            },
            Op::AppendHistory {
                run: RunId(10),
                entry: history("x"),
            },
        ],
    );
    assert_eq!(
        receipt.history_seqs,
        [(r, 1), (r, 2), (RunId(10), 1)],
        "seqs per run from 1"
    );
    commit(
        store,
        vec![Op::AppendHistory {
            run: r,
            entry: history("c"),
        }],
    );
    let steps: Vec<(u64, Option<String>)> = store
        .history(r, None, 10)
        .unwrap()
        .into_iter()
        .map(|(s, e)| (s, e.step))
        .collect();
    assert_eq!(
        steps,
        [
            (1, Some("a".into())),
            (2, Some("b".into())),
            (3, Some("c".into()))
        ]
    );
    assert_eq!(
        store.history(r, Some(2), 10).unwrap().len(),
        1,
        "paging by seq"
    );
}

pub fn timers_scan_by_due_time_and_move<S: Store>(store: &S) {
    let (a, b, c) = (RunId(1), RunId(2), RunId(3));
    commit(
        store,
        vec![
            Op::PutTimer(timer(b, "wait", at(10))),
            Op::PutTimer(timer(a, "wait", at(10))),
            Op::PutTimer(timer(c, "timeout", at(5))),
            Op::PutTimer(timer(c, "wait", at(60 * 24 * 30))),
            Op::PutTimer(timer(
                a,
                "before-epoch",
                Timestamp::from_timestamp_millis(-5).unwrap(),
            )),
        ],
    );
    let keys = |ts: Vec<Timer>| {
        ts.into_iter()
            .map(|t| (t.key.run, t.key.name))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(store.due_timers(at(4), None, 10).unwrap()),
        [(a, "before-epoch".into())]
    );
    let due = store.due_timers(at(10), None, 10).unwrap();
    assert_eq!(
        keys(due.clone()),
        [
            (a, "before-epoch".into()),
            (c, "timeout".into()),
            (a, "wait".into()),
            (b, "wait".into())
        ],
        "ordered by due time then run, inclusive of the bound"
    );
    assert_eq!(
        keys(store.due_timers(at(10), Some(&due[1]), 1).unwrap()),
        [(a, "wait".into())],
        "paging"
    );
    // Moving a timer leaves no trace at the old time; cancelling removes it.
    commit(
        store,
        vec![
            Op::PutTimer(timer(a, "wait", at(100))),
            Op::CancelTimer(TimerKey::new(c, "timeout")),
            Op::CancelTimer(TimerKey::new(c, "never-set")),
        ],
    );
    assert_eq!(
        keys(store.due_timers(at(10), None, 10).unwrap()),
        [(a, "before-epoch".into()), (b, "wait".into())]
    );
    assert_eq!(
        store
            .timer(&TimerKey::new(a, "wait"))
            .unwrap()
            .map(|t| t.due),
        Some(at(100))
    );
}

pub fn subscriptions_by_subject_and_event<S: Store>(store: &S) {
    let c1 = Subject::Contact(ContactKey::new("acme", "c1"));
    let g = Subject::Group {
        tenant: "acme".into(),
        id: "c1".into(),
    };
    let sub = |subject: &Subject, event: &str, run: u64| Subscription {
        subject: subject.clone(),
        event: event.into(),
        run: RunId(run),
        step: "wait_reply".into(),
    };
    commit(
        store,
        vec![
            Op::Subscribe(sub(&c1, "wecom.message_received", 1)),
            Op::Subscribe(sub(&c1, "wecom.message_received", 2)),
            Op::Subscribe(sub(&c1, "wecom.contact_deleted", 3)),
            Op::Subscribe(sub(&g, "wecom.message_received", 4)),
        ],
    );
    let runs = |s: &Subject, e: &str| {
        store
            .subscribers(s, e)
            .unwrap()
            .into_iter()
            .map(|s| s.run.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(runs(&c1, "wecom.message_received"), [1, 2]);
    assert_eq!(
        runs(&g, "wecom.message_received"),
        [4],
        "a group is not the contact with the same id"
    );
    commit(
        store,
        vec![Op::Unsubscribe {
            subject: c1.clone(),
            event: "wecom.message_received".into(),
            run: RunId(1),
        }],
    );
    assert_eq!(runs(&c1, "wecom.message_received"), [2]);
    assert_eq!(runs(&c1, "wecom.contact_deleted"), [3]);
    // A run waiting on two events at once; its wait ends: both go.
    commit(
        store,
        vec![
            Op::Subscribe(sub(&c1, "wecom.contact_deleted", 2)),
            Op::UnsubscribeRun(RunId(2)),
        ],
    );
    assert!(runs(&c1, "wecom.message_received").is_empty());
    assert_eq!(runs(&c1, "wecom.contact_deleted"), [3]);
    commit(store, vec![Op::DeleteRun(RunId(3))]);
    assert!(
        runs(&c1, "wecom.contact_deleted").is_empty(),
        "deleting a run unsubscribes it"
    );
    assert_eq!(runs(&g, "wecom.message_received"), [4]);
}

pub fn dedupe_keys_and_event_log<S: Store>(store: &S) {
    let event = |id: &str| EventRecord {
        received_at: at(0),
        source: "wecom:acme".into(),
        kind: "wecom.message_received".into(),
        subject: Some(Subject::Contact(ContactKey::new("acme", "c1"))),
        dedupe_id: Some(id.into()),
        payload: json!({"text": "优惠券", "n": 1}),
    };
    let accept = |id: &str, at: Timestamp| Batch {
        checks: vec![Check::EventUnseen {
            source: "wecom:acme".into(),
            dedupe_id: id.into(),
        }],
        ops: vec![
            Op::MarkEventSeen {
                source: "wecom:acme".into(),
                dedupe_id: id.into(),
                at,
            },
            Op::AppendEvent(event(id)),
        ],
    };
    let r1 = store.commit(accept("m1", at(0))).unwrap();
    let r2 = store.commit(accept("m2", at(10))).unwrap();
    assert_eq!((r1.event_seqs, r2.event_seqs), (vec![1], vec![2]));
    let dup = store.commit(accept("m1", at(20)));
    assert!(
        matches!(dup, Err(StoreError::Conflict(_))),
        "a repeated platform id is refused: {dup:?}"
    );
    assert_eq!(
        store.event_seen("wecom:acme", "m1").unwrap(),
        Some(at(0)),
        "first sighting kept"
    );
    assert_eq!(
        store.event_seen("douyin:acme", "m1").unwrap(),
        None,
        "sources are separate"
    );
    let log = store.events(None, 10).unwrap();
    assert_eq!(log.len(), 2, "the refused event was not logged");
    assert_eq!(log[0], (1, event("m1")));
    assert_eq!(store.events(Some(1), 10).unwrap()[0].0, 2);
    commit(store, vec![Op::ForgetEventsSeenBefore(at(5))]);
    assert_eq!(
        store.event_seen("wecom:acme", "m1").unwrap(),
        None,
        "retention forgets old ids"
    );
    assert_eq!(store.event_seen("wecom:acme", "m2").unwrap(), Some(at(10)));
}

pub fn outbox_scans_by_state<S: Store>(store: &S) {
    let (a, b) = (RunId(1), RunId(2));
    let first = outbox(a, "welcome", OutboxState::Pending);
    let guarded = |e: OutboxEntry| Batch {
        checks: vec![Check::OutboxAbsent(e.key.clone())],
        ops: vec![Op::PutOutbox(e)],
    };
    store.commit(guarded(first.clone())).unwrap();
    store
        .commit(guarded(outbox(b, "welcome", OutboxState::Pending)))
        .unwrap();
    assert!(
        matches!(
            store.commit(guarded(first.clone())),
            Err(StoreError::Conflict(_))
        ),
        "never recorded twice"
    );
    let pending = store
        .outbox_in_state(OutboxStateKind::Pending, None, 10)
        .unwrap();
    assert_eq!(
        pending.iter().map(|e| e.key.run).collect::<Vec<_>>(),
        [a, b]
    );
    let accepted = OutboxEntry {
        state: OutboxState::Accepted {
            handle: "msg-1".into(),
            check_after: at(30),
        },
        ..first.clone()
    };
    commit(store, vec![Op::PutOutbox(accepted.clone())]);
    assert_eq!(
        store
            .outbox_in_state(OutboxStateKind::Pending, None, 10)
            .unwrap()
            .len(),
        1,
        "left pending"
    );
    assert_eq!(
        store
            .outbox_in_state(OutboxStateKind::Accepted, None, 10)
            .unwrap(),
        std::slice::from_ref(&accepted)
    );
    assert_eq!(store.outbox(&first.key).unwrap(), Some(accepted));
    assert_eq!(
        store
            .outbox_in_state(
                OutboxStateKind::Pending,
                Some(&IdempotencyKey::new(a, "welcome", 0)),
                10
            )
            .unwrap()
            .len(),
        1
    );
    assert_eq!(first.key.to_string(), "r1.welcome.0");
}

pub fn touches_count_in_windows<S: Store>(store: &S) {
    let key = TouchKey::new(ContactKey::new("acme", "c1"), "staff-1", "marketing");
    let other = TouchKey::new(ContactKey::new("acme", "c1"), "staff-1", "service");
    commit(
        store,
        vec![
            Op::RecordTouch {
                key: key.clone(),
                at: at(0),
            },
            Op::RecordTouch {
                key: key.clone(),
                at: at(0),
            },
            Op::RecordTouch {
                key: key.clone(),
                at: at(60),
            },
            Op::RecordTouch {
                key: other.clone(),
                at: at(30),
            },
        ],
    );
    assert_eq!(
        store.touches(&key, at(0), at(61)).unwrap(),
        [at(0), at(0), at(60)],
        "same-instant touches both count"
    );
    assert_eq!(
        store.touches(&key, at(1), at(60)).unwrap(),
        Vec::<Timestamp>::new(),
        "window is [from, to)"
    );
    assert_eq!(
        store.touches(&other, at(0), at(100)).unwrap(),
        [at(30)],
        "categories are separate"
    );
    commit(
        store,
        vec![Op::ForgetTouchesBefore {
            key: key.clone(),
            before: at(30),
        }],
    );
    assert_eq!(store.touches(&key, at(-100), at(100)).unwrap(), [at(60)]);
    assert_eq!(store.touches(&other, at(0), at(100)).unwrap(), [at(30)]);
}

pub fn cron_state_and_run_ids<S: Store>(store: &S) {
    assert_eq!(store.cron_last_fire("nurture", "0").unwrap(), None);
    commit(
        store,
        vec![Op::SetCronLastFire {
            playbook: "nurture".into(),
            trigger: "0".into(),
            at: at(600),
        }],
    );
    assert_eq!(store.cron_last_fire("nurture", "0").unwrap(), Some(at(600)));
    assert_eq!(store.cron_last_fire("nurture", "1").unwrap(), None);
    let ids: Vec<RunId> = (0..100).map(|_| store.next_run_id().unwrap()).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 100, "run ids are unique");
}

pub fn plugin_kv_honours_ttl<S: Store>(store: &S) {
    let set = |key: &str, v: &[u8], expires_at: Option<Timestamp>| Op::KvSet {
        plugin: "wecom".into(),
        key: key.into(),
        value: v.to_vec(),
        expires_at,
    };
    commit(
        store,
        vec![
            set("token", b"abc", Some(at(120))),
            set("cursor", b"7", None),
        ],
    );
    assert_eq!(
        store.kv_get("wecom", "token", at(119)).unwrap(),
        Some(b"abc".to_vec())
    );
    assert_eq!(
        store.kv_get("wecom", "token", at(120)).unwrap(),
        None,
        "expired at its expiry instant"
    );
    assert_eq!(
        store.kv_get("douyin", "token", at(0)).unwrap(),
        None,
        "namespaced by plugin"
    );
    assert_eq!(
        store.kv_get("wecom", "cursor", at(1_000_000)).unwrap(),
        Some(b"7".to_vec())
    );
    // Overwriting without a TTL keeps the value past the old expiry, also through a purge.
    commit(
        store,
        vec![
            set("token", b"def", None),
            Op::KvPurgeExpired { now: at(500) },
        ],
    );
    assert_eq!(
        store.kv_get("wecom", "token", at(500)).unwrap(),
        Some(b"def".to_vec())
    );
    commit(
        store,
        vec![
            set("short", b"x", Some(at(10))),
            Op::KvPurgeExpired { now: at(10) },
        ],
    );
    assert_eq!(
        store.kv_get("wecom", "short", at(0)).unwrap(),
        None,
        "purged"
    );
    commit(
        store,
        vec![Op::KvDelete {
            plugin: "wecom".into(),
            key: "cursor".into(),
        }],
    );
    assert_eq!(store.kv_get("wecom", "cursor", at(0)).unwrap(), None);
}

pub fn a_failed_check_applies_nothing<S: Store>(store: &S) {
    let r = RunId(1);
    commit(
        store,
        vec![Op::PutRun(run(r, "welcome", "c1", RunState::Waiting))],
    );
    let mut advanced = run(r, "welcome", "c1", RunState::Active);
    advanced.revision = 2;
    let stale = Batch {
        checks: vec![
            Check::RunRevision {
                run: r,
                expected: Some(1),
            },
            Check::EventUnseen {
                source: "s".into(),
                dedupe_id: "d".into(),
            },
            // Fails: the run exists.
            Check::RunRevision {
                run: r,
                expected: None,
            },
        ],
        ops: vec![
            Op::PutRun(advanced.clone()),
            Op::PutTimer(timer(r, "wait", at(1))),
            Op::PutOutbox(outbox(r, "welcome", OutboxState::Pending)),
            Op::AppendHistory {
                run: r,
                entry: history("welcome"),
            },
            Op::MarkEventSeen {
                source: "s".into(),
                dedupe_id: "d".into(),
                at: at(0),
            },
        ],
    };
    assert!(matches!(
        store.commit(stale.clone()),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.run(r).unwrap().map(|r| r.state),
        Some(RunState::Waiting),
        "run untouched"
    );
    assert!(
        store.due_timers(at(10), None, 10).unwrap().is_empty(),
        "no timer"
    );
    assert!(
        store
            .outbox_in_state(OutboxStateKind::Pending, None, 10)
            .unwrap()
            .is_empty(),
        "no outbox"
    );
    assert!(store.history(r, None, 10).unwrap().is_empty(), "no history");
    assert_eq!(store.event_seen("s", "d").unwrap(), None, "no dedupe key");
    // The same batch with a correct guard applies entirely.
    let good = Batch {
        checks: stale.checks[..2].to_vec(),
        ops: stale.ops,
    };
    store.commit(good).unwrap();
    assert_eq!(store.run(r).unwrap(), Some(advanced));
    assert_eq!(store.due_timers(at(10), None, 10).unwrap().len(), 1);
    assert_eq!(
        store
            .outbox_in_state(OutboxStateKind::Pending, None, 10)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.history(r, None, 10).unwrap().len(), 1);
    assert!(store.event_seen("s", "d").unwrap().is_some());
    assert!(
        matches!(
            store.commit(Batch::new().check(Check::RunRevision {
                run: r,
                expected: Some(1)
            })),
            Err(StoreError::Conflict(_))
        ),
        "a lost update is refused"
    );
}

pub fn one_live_run_per_subject_and_playbook<S: Store>(store: &S) {
    let subject = Subject::Contact(ContactKey::new("acme", "c1"));
    let enrol = |id: u64, playbook: &str| Batch {
        checks: vec![Check::NoLiveRun {
            subject: subject.clone(),
            playbook: playbook.into(),
        }],
        ops: vec![Op::PutRun(run(RunId(id), playbook, "c1", RunState::Active))],
    };
    store.commit(enrol(1, "welcome")).unwrap();
    assert!(
        matches!(
            store.commit(enrol(2, "welcome")),
            Err(StoreError::Conflict(_))
        ),
        "second live run of the same playbook refused"
    );
    store.commit(enrol(3, "reactivate")).unwrap();
    let mut done = run(RunId(1), "welcome", "c1", RunState::Converted);
    done.revision = 2;
    commit(store, vec![Op::PutRun(done)]);
    store
        .commit(enrol(4, "welcome"))
        .expect("a finished run does not block re-entry");
    let live: Vec<u64> = store
        .runs_of_subject(&subject)
        .unwrap()
        .into_iter()
        .filter(|r| r.state.is_live())
        .map(|r| r.id.0)
        .collect();
    assert_eq!(live, [3, 4]);
}

/// Four threads move the same runs between states and timers at once; afterwards every
/// index agrees with the records (commits that fix indexes must not interleave).
pub fn concurrent_commits_keep_indexes_consistent<S: Store>(store: &S) {
    std::thread::scope(|scope| {
        for thread in 0..4u64 {
            scope.spawn(move || {
                for i in 0..150u64 {
                    let id = RunId((thread + i) % 6 + 1);
                    let state = RunState::ALL[((thread * 7 + i) % 6) as usize];
                    let who = format!("c{}", (thread + i) % 3);
                    commit(
                        store,
                        vec![
                            Op::PutRun(run(id, "welcome", &who, state)),
                            Op::PutTimer(timer(id, "wait", at((thread * 1000 + i) as i64))),
                        ],
                    );
                }
            });
        }
    });
    let mut indexed = Vec::new();
    for state in RunState::ALL {
        for id in store
            .runs_by_state("welcome", state, None, usize::MAX)
            .unwrap()
        {
            let stored = store.run(id).unwrap().expect("indexed run exists");
            assert_eq!(stored.state, state, "state index agrees with run {id}");
            indexed.push(id);
        }
    }
    indexed.sort();
    assert_eq!(
        indexed,
        (1..=6).map(RunId).collect::<Vec<_>>(),
        "each run indexed once"
    );
    let mut by_subject = 0;
    for who in ["c0", "c1", "c2"] {
        let subject = Subject::Contact(ContactKey::new("acme", who));
        for summary in store.runs_of_subject(&subject).unwrap() {
            let stored = store.run(summary.id).unwrap().expect("run exists");
            assert_eq!(
                (stored.subject, stored.state),
                (subject.clone(), summary.state)
            );
            by_subject += 1;
        }
    }
    assert_eq!(by_subject, 6, "each run under exactly one subject");
    let timers = store.due_timers(at(10_000), None, usize::MAX).unwrap();
    assert_eq!(timers.len(), 6, "one timer per run, old positions removed");
    for t in timers {
        assert_eq!(
            store.timer(&t.key).unwrap(),
            Some(t.clone()),
            "timer indexes agree"
        );
    }
}

pub fn ops_see_earlier_ops_of_their_batch<S: Store>(store: &S) {
    let r = RunId(5);
    commit(
        store,
        vec![
            Op::PutRun(run(r, "welcome", "c1", RunState::Active)),
            Op::PutRun(run(r, "welcome", "c1", RunState::Waiting)),
            Op::PutTimer(timer(r, "wait", at(5))),
            Op::PutTimer(timer(r, "wait", at(7))),
            Op::PutContact(contact("c1", Some(at(1)))),
            Op::PutContact(contact("c1", Some(at(2)))),
            Op::RecordTouch {
                key: TouchKey::new(ContactKey::new("acme", "c1"), "a", "m"),
                at: at(0),
            },
            Op::RecordTouch {
                key: TouchKey::new(ContactKey::new("acme", "c1"), "a", "m"),
                at: at(0),
            },
        ],
    );
    assert!(
        store
            .runs_by_state("welcome", RunState::Active, None, 10)
            .unwrap()
            .is_empty(),
        "no stale index"
    );
    assert_eq!(
        store
            .runs_by_state("welcome", RunState::Waiting, None, 10)
            .unwrap(),
        [r]
    );
    assert_eq!(
        store
            .due_timers(at(100), None, 10)
            .unwrap()
            .iter()
            .map(|t| t.due)
            .collect::<Vec<_>>(),
        [at(7)]
    );
    assert_eq!(
        store
            .inactive_contacts("acme", at(100), None, 10)
            .unwrap()
            .len(),
        1
    );
    let key = TouchKey::new(ContactKey::new("acme", "c1"), "a", "m");
    assert_eq!(store.touches(&key, at(0), at(1)).unwrap().len(), 2);
    assert!(store.commit(Batch::new()).is_ok(), "an empty batch is fine");
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
