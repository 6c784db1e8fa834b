//! Batch semantics: checks, entry rules, concurrency, ops seeing earlier ops.

use super::*;

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
