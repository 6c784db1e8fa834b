//! Test helper for `tests/crash.rs`: advances a few runs forever, one atomic batch per step,
//! printing `step <n>` after each commit and `durable <n>` after each durable one, until
//! it is killed. Started again on the same directory it resumes from what was stored.
//!
//! Usage: `sop-store-crash-writer <dir>`

use std::io::Write as _;

use sop_clock::{TimeDelta, Timestamp};
use sop_store::{
    Batch, Check, ContactKey, Delivery, HistoryEntry, IdempotencyKey, Op, OutboxEntry, OutboxState,
    Run, RunId, RunState, Store, Subject, Timer, TimerKey,
};
use sop_store_sled::SledOptions;

/// Runs advanced round-robin.
pub const RUNS: u64 = 8;

fn t0() -> Timestamp {
    Timestamp::from_timestamp_millis(1_767_225_600_000).unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: sop-store-crash-writer <dir>")?;
    let options = SledOptions {
        flush_every_ms: Some(5),
        ..SledOptions::default()
    };
    let store = sop_store_sled::open(std::path::Path::new(&dir), &options)?;
    let mut out = std::io::stdout().lock();
    let mut step: u64 = 0;
    loop {
        step += 1;
        let id = RunId(step % RUNS + 1);
        let prev = store.run(id)?;
        let revision = prev.as_ref().map_or(0, |r| r.revision) + 1;
        let at = t0() + TimeDelta::minutes(revision as i64);
        let run = Run {
            id,
            playbook: "crash".into(),
            version: 1,
            subject: Subject::Contact(ContactKey::new("acme", format!("c{}", id.0))),
            state: RunState::Waiting,
            step: Some(format!("s{revision}")),
            iteration: revision as u32,
            counters: Default::default(),
            variables: Default::default(),
            reason: None,
            revision,
            created_at: t0(),
            updated_at: at,
        };
        let mut batch = Batch::new()
            .check(Check::RunRevision {
                run: id,
                expected: prev.as_ref().map(|r| r.revision),
            })
            .op(Op::PutRun(run))
            .op(Op::CancelTimer(TimerKey::new(
                id,
                format!("w{}", revision - 1),
            )))
            .op(Op::PutTimer(Timer {
                key: TimerKey::new(id, format!("w{revision}")),
                due: at,
                step: None,
            }))
            .op(Op::AppendHistory {
                run: id,
                entry: HistoryEntry {
                    at,
                    step: Some(format!("s{revision}")),
                    input: String::new(),
                    outcome: "sent".into(),
                    gate: None,
                },
            });
        let entry = |iteration: u64, state: OutboxState| OutboxEntry {
            key: IdempotencyKey::new(id, "send", iteration as u32),
            action: "wecom.send_text".into(),
            account: "a".into(),
            input_digest: String::new(),
            delivery: Delivery::AtMostOnce,
            state,
            attempts: 1,
            created_at: at,
            updated_at: at,
        };
        if revision > 1 {
            let sent = OutboxState::Sent {
                output: "{}".into(),
            };
            batch.push(Op::PutOutbox(entry(revision - 1, sent)));
        }
        batch.push(Op::PutOutbox(entry(revision, OutboxState::Pending)));
        if step.is_multiple_of(16) {
            store.commit_durable(batch)?;
            writeln!(out, "durable {id} {revision}")?;
        } else {
            store.commit(batch)?;
            writeln!(out, "step {id} {revision}")?;
        }
        out.flush()?;
    }
}
