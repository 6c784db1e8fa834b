//! Contacts, events and dedupe, outbox, touches, cron state, plugin kv.

use serde_json::json;
use sop_clock::Timestamp;

use super::*;

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

pub fn groups_round_trip_and_page<S: Store>(store: &S) {
    let group = |id: &str| {
        let mut g = Group::new(GroupKey::new("acme", id), "wecom:acme", t0());
        g.name = format!("fans {id}");
        g.tags.insert("nurture".into());
        g.member_count = 42;
        g
    };
    let ops = ["g3", "g1", "g2"]
        .iter()
        .map(|id| Op::PutGroup(group(id)))
        .collect();
    commit(store, ops);
    assert_eq!(
        store.group(&GroupKey::new("acme", "g1")).unwrap(),
        Some(group("g1")),
        "group round trip"
    );
    assert_eq!(
        store.group(&GroupKey::new("other", "g1")).unwrap(),
        None,
        "tenants are separate"
    );
    let ids = |gs: Vec<Group>| gs.into_iter().map(|g| g.key.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.groups("acme", None, 2).unwrap()),
        ["g1", "g2"],
        "groups page in id order"
    );
    assert_eq!(
        ids(store.groups("acme", Some("g2"), 10).unwrap()),
        ["g3"],
        "next page after the cursor"
    );
    commit(store, vec![Op::DeleteGroup(GroupKey::new("acme", "g2"))]);
    assert_eq!(
        ids(store.groups("acme", None, 10).unwrap()),
        ["g1", "g3"],
        "delete removes"
    );
}

pub fn playbook_versions_are_kept<S: Store>(store: &S) {
    let version = |id: &str, version: u32| PlaybookVersion {
        id: id.into(),
        version,
        source: format!("id: {id}\n# v{version}\n"),
        origin: format!("playbooks/{id}.yaml"),
        digest: format!("d{version}"),
        deployed_at: at(version as i64),
    };
    commit(
        store,
        vec![
            Op::PutPlaybook(version("welcome", 2)),
            Op::PutPlaybook(version("reactivation", 1)),
            Op::PutPlaybook(version("welcome", 1)),
            Op::PutPlaybook(version("welcome", 10)),
        ],
    );
    assert_eq!(
        store.playbook("welcome", 2).unwrap(),
        Some(version("welcome", 2))
    );
    assert_eq!(store.playbook("welcome", 3).unwrap(), None);
    let versions: Vec<u32> = store
        .playbook_versions("welcome")
        .unwrap()
        .into_iter()
        .map(|p| p.version)
        .collect();
    assert_eq!(versions, [1, 2, 10], "versions ascend numerically");
    assert_eq!(
        store.playbook_ids().unwrap(),
        ["reactivation", "welcome"],
        "ids sorted, once each"
    );
}

/// Flow records: by key, by due time (moved on every put) and by run; a revision check
/// refuses a stale writer.
pub fn flow_records_and_indexes<S: Store>(store: &S) {
    use crate::{FlowKey, FlowRecord, HeldStart, RunId, Subject};
    let key = |k: &str| FlowKey {
        playbook: "welcome".into(),
        key: k.into(),
    };
    let mut a = FlowRecord::new(key("a"));
    a.due_ms = Some(2_000);
    a.live = vec![RunId(7), RunId(8)];
    a.queue.push(HeldStart {
        subject: Subject::Contact(ContactKey::new("t", "c1")),
        cause: b"{}".to_vec(),
        at: Timestamp::from_timestamp_millis(1_000).unwrap(),
    });
    let mut b = FlowRecord::new(key("b"));
    b.due_ms = Some(1_000);
    store
        .commit(
            Batch::new()
                .check(Check::FlowRevision {
                    key: key("a"),
                    expected: None,
                })
                .op(Op::PutFlow(a.clone()))
                .op(Op::PutFlow(b.clone())),
        )
        .unwrap();
    assert_eq!(store.flow(&key("a")).unwrap(), Some(a.clone()));
    let due: Vec<String> = store
        .due_flows(2_000, None, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.key.key)
        .collect();
    assert_eq!(due, ["b", "a"]);
    assert_eq!(store.due_flows(1_999, None, 10).unwrap(), vec![b.clone()]);
    assert_eq!(
        store
            .due_flows(5_000, Some(&(1_000, key("b"))), 10)
            .unwrap(),
        vec![a.clone()]
    );
    assert_eq!(store.flows_of_run(RunId(8)).unwrap(), vec![key("a")]);
    assert_eq!(store.flows(None, 10).unwrap().len(), 2);
    assert_eq!(store.flows(Some(&key("a")), 10).unwrap(), vec![b.clone()]);

    // Moving: the old due and run entries go.
    let mut moved = a.clone();
    moved.revision = 1;
    moved.due_ms = None;
    moved.live = vec![RunId(9)];
    store
        .commit(
            Batch::new()
                .check(Check::FlowRevision {
                    key: key("a"),
                    expected: Some(0),
                })
                .op(Op::PutFlow(moved)),
        )
        .unwrap();
    assert_eq!(store.due_flows(5_000, None, 10).unwrap(), vec![b.clone()]);
    assert!(store.flows_of_run(RunId(8)).unwrap().is_empty());
    assert_eq!(store.flows_of_run(RunId(9)).unwrap(), vec![key("a")]);
    let stale = store.commit(
        Batch::new()
            .check(Check::FlowRevision {
                key: key("a"),
                expected: Some(0),
            })
            .op(Op::DeleteFlow(key("a"))),
    );
    assert!(matches!(stale, Err(crate::StoreError::Conflict(_))));
    store
        .commit(Batch::new().op(Op::DeleteFlow(key("a"))))
        .unwrap();
    assert_eq!(store.flow(&key("a")).unwrap(), None);
    assert!(store.flows_of_run(RunId(9)).unwrap().is_empty());
}
