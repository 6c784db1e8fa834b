//! Crash atomicity: a writer process is killed (SIGKILL) at arbitrary points while it
//! commits run-advance batches; after every kill the reopened store holds each run exactly
//! as some whole batch left it (run, timer, history, outbox agree), never part of a batch,
//! and nothing acknowledged as durable is lost.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use sop_clock::{TimeDelta, Timestamp};
use sop_store::{IdempotencyKey, OutboxState, OutboxStateKind, RunId, Store, TimerKey};
use sop_store_sled::SledOptions;

const RUNS: u64 = 8;

fn t0() -> Timestamp {
    Timestamp::from_timestamp_millis(1_767_225_600_000).unwrap()
}

/// Runs the writer until it has reported `lines` commits, then kills it. Returns the
/// highest durable revision it acknowledged per run.
fn run_and_kill(dir: &std::path::Path, lines: usize) -> BTreeMap<u64, u64> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sop-store-crash-writer"))
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start writer");
    let stdout = child.stdout.take().expect("piped");
    let mut durable = BTreeMap::new();
    for line in BufReader::new(stdout).lines().take(lines) {
        let line = line.expect("writer output");
        let parts: Vec<&str> = line.split(' ').collect();
        if let ["durable", run, revision] = parts[..] {
            let run: u64 = run.trim_start_matches('r').parse().unwrap();
            durable.insert(run, revision.parse().unwrap());
        }
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    durable
}

fn check_consistent(store: &impl Store, durable: &BTreeMap<u64, u64>) -> u64 {
    let mut total = 0;
    for id in 1..=RUNS {
        let Some(run) = store.run(RunId(id)).unwrap() else {
            assert!(!durable.contains_key(&id), "durable run {id} lost");
            continue;
        };
        let rev = run.revision;
        total += rev;
        assert!(
            rev >= durable.get(&id).copied().unwrap_or(0),
            "run {id} lost durable revisions"
        );
        let history = store.history(RunId(id), None, usize::MAX).unwrap();
        assert_eq!(
            history.len() as u64,
            rev,
            "run {id}: one history line per applied batch"
        );
        let timer = store
            .timer(&TimerKey::new(RunId(id), format!("w{rev}")))
            .unwrap();
        assert_eq!(
            timer.map(|t| t.due),
            Some(t0() + TimeDelta::minutes(rev as i64)),
            "run {id}: timer of its revision"
        );
        let old = store
            .timer(&TimerKey::new(RunId(id), format!("w{}", rev - 1)))
            .unwrap();
        assert_eq!(
            old, None,
            "run {id}: previous timer cancelled in the same batch"
        );
        let pending = store
            .outbox(&IdempotencyKey::new(RunId(id), "send", rev as u32))
            .unwrap();
        assert_eq!(
            pending.map(|e| e.state),
            Some(OutboxState::Pending),
            "run {id}: outbox entry of its revision"
        );
        let next = store
            .outbox(&IdempotencyKey::new(RunId(id), "send", rev as u32 + 1))
            .unwrap();
        assert_eq!(next, None, "run {id}: nothing from a later batch");
    }
    let pending = store
        .outbox_in_state(OutboxStateKind::Pending, None, usize::MAX)
        .unwrap();
    let live = (1..=RUNS)
        .filter(|id| store.run(RunId(*id)).unwrap().is_some())
        .count();
    assert_eq!(pending.len(), live, "exactly one pending entry per run");
    let timers = store
        .due_timers(t0() + TimeDelta::days(3650), None, usize::MAX)
        .unwrap();
    assert_eq!(timers.len(), live, "exactly one timer per run");
    total
}

#[test]
fn killed_writers_never_leave_half_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut last_total = 0;
    for (round, lines) in [37, 200, 5, 611, 90].into_iter().enumerate() {
        let durable = run_and_kill(dir.path(), lines);
        let store = sop_store_sled::open(dir.path(), &SledOptions::default()).unwrap();
        let total = check_consistent(&store, &durable);
        assert!(
            total >= last_total,
            "round {round}: store went backwards ({total} < {last_total})"
        );
        last_total = total;
    }
    assert!(last_total > 0, "the writer made progress");
}
