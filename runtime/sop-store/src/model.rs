//! Model-based testing: random operation sequences applied to a store and to plain
//! `BTreeMap`s, compared after every step. Backends run [`check`] in a proptest over
//! [`ops`]; persistent backends pass a `reopen` so [`ModelOp::Reopen`] drops the store and
//! opens it again from disk (durability of every returned commit).

use std::collections::BTreeMap;

use proptest::prelude::*;
use sop_clock::{TimeDelta, Timestamp};

use crate::conformance::{self, t0};
use crate::*;

/// One step of a random sequence. Small domains make collisions (updates, moves) common.
#[derive(Debug, Clone)]
pub enum ModelOp {
    PutRun {
        id: u64,
        playbook: u8,
        who: u8,
        state: u8,
    },
    DeleteRun {
        id: u64,
    },
    AppendHistory {
        id: u64,
    },
    PutTimer {
        id: u64,
        name: u8,
        due: i64,
    },
    CancelTimer {
        id: u64,
        name: u8,
    },
    PutContact {
        who: u8,
        last: Option<i64>,
    },
    DeleteContact {
        who: u8,
    },
    MarkSeen {
        msg: u8,
        at: i64,
    },
    ForgetSeenBefore {
        at: i64,
    },
    KvSet {
        key: u8,
        ttl: Option<i64>,
        now: i64,
    },
    KvPurge {
        now: i64,
    },
    Touch {
        who: u8,
        at: i64,
    },
    PutOutbox {
        id: u64,
        state: u8,
    },
    Subscribe {
        id: u64,
        who: u8,
        event: u8,
    },
    UnsubscribeRun {
        id: u64,
    },
    /// Several of the above in one batch.
    Batch(Vec<ModelOp>),
    /// Drop the store and open it again (durable backends only).
    Reopen,
}

/// Random sequences; `with_reopen` adds [`ModelOp::Reopen`].
pub fn ops(with_reopen: bool) -> impl Strategy<Value = Vec<ModelOp>> {
    let single = prop_oneof![
        (1..5u64, 0..2u8, 0..3u8, 0..6u8).prop_map(|(id, playbook, who, state)| ModelOp::PutRun {
            id,
            playbook,
            who,
            state
        }),
        (1..5u64).prop_map(|id| ModelOp::DeleteRun { id }),
        (1..5u64).prop_map(|id| ModelOp::AppendHistory { id }),
        (1..5u64, 0..2u8, -5..30i64).prop_map(|(id, name, due)| ModelOp::PutTimer {
            id,
            name,
            due
        }),
        (1..5u64, 0..2u8).prop_map(|(id, name)| ModelOp::CancelTimer { id, name }),
        (0..3u8, proptest::option::of(0..30i64))
            .prop_map(|(who, last)| ModelOp::PutContact { who, last }),
        (0..3u8).prop_map(|who| ModelOp::DeleteContact { who }),
        (0..4u8, 0..30i64).prop_map(|(msg, at)| ModelOp::MarkSeen { msg, at }),
        (0..30i64).prop_map(|at| ModelOp::ForgetSeenBefore { at }),
        (0..3u8, proptest::option::of(0..10i64), 0..30i64)
            .prop_map(|(key, ttl, now)| ModelOp::KvSet { key, ttl, now }),
        (0..40i64).prop_map(|now| ModelOp::KvPurge { now }),
        (0..3u8, 0..30i64).prop_map(|(who, at)| ModelOp::Touch { who, at }),
        (1..5u64, 0..6u8).prop_map(|(id, state)| ModelOp::PutOutbox { id, state }),
        (1..5u64, 0..3u8, 0..2u8).prop_map(|(id, who, event)| ModelOp::Subscribe {
            id,
            who,
            event
        }),
        (1..5u64).prop_map(|id| ModelOp::UnsubscribeRun { id }),
    ];
    let step = single.prop_recursive(1, 8, 4, |inner| {
        proptest::collection::vec(inner, 1..5).prop_map(ModelOp::Batch)
    });
    let reopen_weight = if with_reopen { 1 } else { 0 };
    let step = prop_oneof![12 => step, reopen_weight => Just(ModelOp::Reopen)];
    proptest::collection::vec(step, 1..40)
}

fn at(minutes: i64) -> Timestamp {
    t0() + TimeDelta::minutes(minutes)
}

fn who(n: u8) -> String {
    format!("c{n}")
}

const PLAYBOOKS: [&str; 2] = ["welcome", "reactivate"];

/// What the store should contain.
#[derive(Debug, Default)]
struct Model {
    runs: BTreeMap<u64, Run>,
    history: BTreeMap<u64, u64>,
    timers: BTreeMap<(u64, u8), i64>,
    contacts: BTreeMap<u8, Option<i64>>,
    seen: BTreeMap<u8, i64>,
    kv: BTreeMap<u8, (u8, Option<Timestamp>)>,
    kv_version: u8,
    touches: BTreeMap<u8, Vec<i64>>,
    outbox: BTreeMap<u64, OutboxStateKind>,
    /// (who, event, run)
    subscriptions: std::collections::BTreeSet<(u8, u8, u64)>,
}

fn outbox_state(code: u8) -> OutboxState {
    match code {
        0 => OutboxState::Pending,
        5 => OutboxState::PendingMember {
            call: "r1.send.1/batch".into(),
        },
        1 => OutboxState::Sent {
            output: "{}".into(),
        },
        2 => OutboxState::Failed {
            reason: "permanent".into(),
        },
        3 => OutboxState::Unknown {
            reason: "crash".into(),
        },
        _ => OutboxState::Accepted {
            handle: "h".into(),
            check_after: at(1),
        },
    }
}

impl Model {
    /// Applies `op` to the model and returns the equivalent store ops.
    fn apply(&mut self, op: &ModelOp, out: &mut Vec<Op>) {
        match *op {
            ModelOp::PutRun {
                id,
                playbook,
                who: w,
                state,
            } => {
                let run = conformance::run(
                    RunId(id),
                    PLAYBOOKS[playbook as usize],
                    &who(w),
                    RunState::ALL[state as usize],
                );
                self.runs.insert(id, run.clone());
                out.push(Op::PutRun(run));
            }
            ModelOp::DeleteRun { id } => {
                self.runs.remove(&id);
                self.history.remove(&id);
                self.timers.retain(|(r, _), _| *r != id);
                self.subscriptions.retain(|(_, _, r)| *r != id);
                out.push(Op::DeleteRun(RunId(id)));
            }
            ModelOp::AppendHistory { id } => {
                *self.history.entry(id).or_default() += 1;
                let entry = HistoryEntry {
                    at: at(0),
                    step: None,
                    input: String::new(),
                    outcome: "ok".into(),
                    gate: None,
                };
                out.push(Op::AppendHistory {
                    run: RunId(id),
                    entry,
                });
            }
            ModelOp::PutTimer { id, name, due } => {
                self.timers.insert((id, name), due);
                out.push(Op::PutTimer(conformance::timer(
                    RunId(id),
                    &format!("t{name}"),
                    at(due),
                )));
            }
            ModelOp::CancelTimer { id, name } => {
                self.timers.remove(&(id, name));
                out.push(Op::CancelTimer(TimerKey::new(
                    RunId(id),
                    format!("t{name}"),
                )));
            }
            ModelOp::PutContact { who: w, last } => {
                self.contacts.insert(w, last);
                out.push(Op::PutContact(conformance::contact(&who(w), last.map(at))));
            }
            ModelOp::DeleteContact { who: w } => {
                self.contacts.remove(&w);
                out.push(Op::DeleteContact(ContactKey::new("acme", who(w))));
            }
            ModelOp::MarkSeen { msg, at: t } => {
                self.seen.entry(msg).or_insert(t);
                out.push(Op::MarkEventSeen {
                    source: "wecom".into(),
                    dedupe_id: format!("m{msg}"),
                    at: at(t),
                });
            }
            ModelOp::ForgetSeenBefore { at: t } => {
                self.seen.retain(|_, seen| *seen >= t);
                out.push(Op::ForgetEventsSeenBefore(at(t)));
            }
            ModelOp::KvSet { key, ttl, now } => {
                self.kv_version = self.kv_version.wrapping_add(1);
                let expires_at = ttl.map(|ttl| at(now + ttl));
                self.kv.insert(key, (self.kv_version, expires_at));
                out.push(Op::KvSet {
                    plugin: "p".into(),
                    key: format!("k{key}"),
                    value: vec![self.kv_version],
                    expires_at,
                });
            }
            ModelOp::KvPurge { now } => {
                self.kv
                    .retain(|_, (_, exp)| exp.is_none_or(|e| at(now) < e));
                out.push(Op::KvPurgeExpired { now: at(now) });
            }
            ModelOp::Touch { who: w, at: t } => {
                self.touches.entry(w).or_default().push(t);
                out.push(Op::RecordTouch {
                    key: touch_key(w),
                    at: at(t),
                });
            }
            ModelOp::PutOutbox { id, state } => {
                let entry = conformance::outbox(RunId(id), "s", outbox_state(state));
                self.outbox.insert(id, entry.state.kind());
                out.push(Op::PutOutbox(entry));
            }
            ModelOp::Subscribe { id, who: w, event } => {
                self.subscriptions.insert((w, event, id));
                out.push(Op::Subscribe(subscription(id, w, event)));
            }
            ModelOp::UnsubscribeRun { id } => {
                self.subscriptions.retain(|(_, _, r)| *r != id);
                out.push(Op::UnsubscribeRun(RunId(id)));
            }
            ModelOp::Batch(ref ops) => ops.iter().for_each(|op| self.apply(op, out)),
            ModelOp::Reopen => {}
        }
    }

    fn assert_matches<S: Store>(&self, store: &S) {
        for playbook in PLAYBOOKS {
            for state in RunState::ALL {
                let expect: Vec<RunId> = self
                    .runs
                    .values()
                    .filter(|r| r.playbook == playbook && r.state == state)
                    .map(|r| r.id)
                    .collect();
                assert_eq!(
                    store
                        .runs_by_state(playbook, state, None, usize::MAX)
                        .unwrap(),
                    expect,
                    "{playbook} {state:?}"
                );
            }
        }
        for w in 0..3 {
            let subject = Subject::Contact(ContactKey::new("acme", who(w)));
            let expect: Vec<RunSummary> = self
                .runs
                .values()
                .filter(|r| r.subject == subject)
                .map(RunSummary::from)
                .collect();
            assert_eq!(
                store.runs_of_subject(&subject).unwrap(),
                expect,
                "runs of {subject:?}"
            );
        }
        for id in 1..5 {
            assert_eq!(
                store.run(RunId(id)).unwrap().as_ref(),
                self.runs.get(&id),
                "run {id}"
            );
            let n = store.history(RunId(id), None, usize::MAX).unwrap().len() as u64;
            assert_eq!(
                n,
                self.history.get(&id).copied().unwrap_or(0),
                "history of {id}"
            );
        }
        let mut expect: Vec<(i64, u64, u8)> = self
            .timers
            .iter()
            .map(|(&(r, n), &due)| (due, r, n))
            .collect();
        expect.sort();
        let expect: Vec<Timer> = expect
            .into_iter()
            .map(|(due, r, n)| conformance::timer(RunId(r), &format!("t{n}"), at(due)))
            .collect();
        assert_eq!(
            store.due_timers(at(100), None, usize::MAX).unwrap(),
            expect,
            "due timers"
        );
        let bound = 15;
        let mut idle: Vec<(i64, u8)> = self
            .contacts
            .iter()
            .map(|(&w, &last)| (last.map_or(i64::MIN, |m| m), w))
            .filter(|(last, _)| *last < bound)
            .collect();
        idle.sort();
        let idle: Vec<String> = idle.into_iter().map(|(_, w)| who(w)).collect();
        let got: Vec<String> = store
            .inactive_contacts("acme", at(bound), None, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(_, k)| k.id)
            .collect();
        assert_eq!(got, idle, "inactive contacts");
        for msg in 0..4 {
            let got = store.event_seen("wecom", &format!("m{msg}")).unwrap();
            assert_eq!(got, self.seen.get(&msg).map(|t| at(*t)), "seen m{msg}");
        }
        for key in 0..3 {
            for now in [0, 5, 15, 45] {
                let expect = self
                    .kv
                    .get(&key)
                    .filter(|(_, exp)| exp.is_none_or(|e| at(now) < e))
                    .map(|(v, _)| vec![*v]);
                assert_eq!(
                    store.kv_get("p", &format!("k{key}"), at(now)).unwrap(),
                    expect,
                    "kv k{key} at {now}"
                );
            }
        }
        for w in 0..3 {
            let mut expect: Vec<Timestamp> = self
                .touches
                .get(&w)
                .into_iter()
                .flatten()
                .filter(|t| (5..20).contains(*t))
                .map(|t| at(*t))
                .collect();
            expect.sort();
            assert_eq!(
                store.touches(&touch_key(w), at(5), at(20)).unwrap(),
                expect,
                "touches of {w}"
            );
        }
        for (code, kind) in [
            OutboxStateKind::Pending,
            OutboxStateKind::Sent,
            OutboxStateKind::Failed,
            OutboxStateKind::Unknown,
            OutboxStateKind::Accepted,
        ]
        .into_iter()
        .enumerate()
        {
            let expect: Vec<u64> = self
                .outbox
                .iter()
                .filter(|(_, k)| **k == kind)
                .map(|(id, _)| *id)
                .collect();
            let got: Vec<u64> = store
                .outbox_in_state(kind, None, usize::MAX)
                .unwrap()
                .into_iter()
                .map(|e| e.key.run.0)
                .collect();
            assert_eq!(got, expect, "outbox in state {code}");
        }
    }
}

fn subscription(id: u64, w: u8, event: u8) -> Subscription {
    Subscription {
        subject: Subject::Contact(ContactKey::new("acme", who(w))),
        event: format!("e{event}"),
        run: RunId(id),
        step: "wait".into(),
    }
}

fn touch_key(w: u8) -> TouchKey {
    TouchKey::new(ContactKey::new("acme", who(w)), "staff", "marketing")
}

/// Applies `ops` to a store from `open` and to the model, comparing after every step.
/// `open` is called once at the start and again for every [`ModelOp::Reopen`], after the
/// previous store was dropped.
pub fn check<S: Store>(ops: &[ModelOp], mut open: impl FnMut() -> S) {
    let mut store = Some(open());
    let mut model = Model::default();
    for op in ops {
        if let ModelOp::Reopen = op {
            if let Some(s) = store.take() {
                s.flush().expect("flush before reopen");
            }
            store = Some(open());
        } else {
            let mut batch = Vec::new();
            model.apply(op, &mut batch);
            let s = store.as_ref().expect("open");
            s.commit(Batch {
                checks: vec![],
                ops: batch,
            })
            .expect("commit");
        }
        model.assert_matches(store.as_ref().expect("open"));
    }
}
