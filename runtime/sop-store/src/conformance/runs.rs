//! Runs and their indexes, history, timers, subscriptions.

use sop_clock::Timestamp;

use super::*;

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
    // A put that changes neither the state nor the summary leaves the index entries as
    // they are; one that changes the version moves the summary only.
    let mut stepped = run(b, "welcome", "c2", RunState::Waiting);
    stepped.revision = 2;
    commit(store, vec![Op::PutRun(stepped.clone())]);
    assert_eq!(store.run(b).unwrap(), Some(stepped.clone()));
    assert_eq!(
        store
            .runs_by_state("welcome", RunState::Waiting, None, 10)
            .unwrap(),
        [b]
    );
    stepped.revision = 3;
    stepped.version += 1;
    commit(store, vec![Op::PutRun(stepped.clone())]);
    let of_c2 = store
        .runs_of_subject(&Subject::Contact(ContactKey::new("acme", "c2")))
        .unwrap();
    assert_eq!(
        of_c2
            .iter()
            .map(|r| (r.id, r.version, r.state))
            .collect::<Vec<_>>(),
        [(b, stepped.version, RunState::Waiting)]
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
    commit(
        store,
        vec![Op::PutTimer(timer(RunId(2), "timeout", at(30)))],
    );
    let (timers, subs) = store.waits_of_run(RunId(2)).unwrap();
    assert_eq!(
        timers,
        [timer(RunId(2), "timeout", at(30))],
        "a run's timers"
    );
    assert_eq!(
        subs,
        [sub(&c1, "wecom.message_received", 2)],
        "a run's subscriptions"
    );
    // A run waiting on two events at once; its wait ends: both go.
    commit(
        store,
        vec![
            Op::Subscribe(sub(&c1, "wecom.contact_deleted", 2)),
            Op::UnsubscribeRun(RunId(2)),
        ],
    );
    assert!(runs(&c1, "wecom.message_received").is_empty());
    assert!(store.waits_of_run(RunId(2)).unwrap().1.is_empty());
    assert_eq!(runs(&c1, "wecom.contact_deleted"), [3]);
    commit(store, vec![Op::DeleteRun(RunId(3))]);
    assert!(
        runs(&c1, "wecom.contact_deleted").is_empty(),
        "deleting a run unsubscribes it"
    );
    assert_eq!(runs(&g, "wecom.message_received"), [4]);
}

pub fn run_detail_lives_and_dies_with_its_run<S: Store>(store: &S) {
    let id = store.next_run_id().unwrap();
    commit(
        store,
        vec![
            Op::PutRun(run(id, "welcome", "c1", RunState::Waiting)),
            Op::PutRunDetail {
                run: id,
                detail: b"state v1".to_vec(),
            },
        ],
    );
    assert_eq!(store.run_detail(id).unwrap(), Some(b"state v1".to_vec()));
    commit(
        store,
        vec![Op::PutRunDetail {
            run: id,
            detail: b"state v2".to_vec(),
        }],
    );
    assert_eq!(
        store.run_detail(id).unwrap(),
        Some(b"state v2".to_vec()),
        "detail is replaced"
    );
    commit(store, vec![Op::DeleteRun(id)]);
    assert_eq!(
        store.run_detail(id).unwrap(),
        None,
        "deleting the run deletes its detail"
    );
}
