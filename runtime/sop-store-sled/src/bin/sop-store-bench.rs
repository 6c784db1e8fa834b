//! Store benchmark: commit rate of a typical run-advance batch, and the disk / memory cost
//! of a million runs waiting for a reply with a timeout (run, engine state, timer,
//! subscription), with the time to restart and resume them.
//!
//! Usage: `sop-store-bench [--runs N] [--dir DIR] [--skip-commit-rate] [--copy]` (release build
//! recommended). Each restart runs in a fresh child process (`--restart DIR --due-percent P`)
//! so its RSS is the restart's own; it reopens the store, finds the timers that came due
//! (P% of the runs) and loads each due run's record and detail.
//! Wall-clock timing is this tool's purpose, so it reads `Instant` directly.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;
use sop_clock::{TimeDelta, Timestamp};
use sop_store::{
    Batch, Check, ContactKey, Delivery, HistoryEntry, IdempotencyKey, Op, OutboxEntry, OutboxState,
    Run, RunId, RunState, Store, Subject, Subscription, Timer, TimerKey,
};
use sop_store_sled::{SledOptions, SledStore};

type Error = Box<dyn std::error::Error>;

fn t0() -> Timestamp {
    Timestamp::from_timestamp_millis(1_767_225_600_000).unwrap_or_default()
}

fn waiting_run(id: RunId, revision: u64) -> Run {
    let mut variables = serde_json::Map::new();
    variables.insert("coupon".into(), json!("RE-10"));
    variables.insert("channel".into(), json!("qr_store_17"));
    Run {
        id,
        playbook: "reactivation".into(),
        version: 3,
        subject: Subject::Contact(ContactKey::new("acme", format!("wm{:012}", id.0))),
        state: RunState::Waiting,
        step: Some("wait_reply".into()),
        iteration: revision as u32,
        counters: Default::default(),
        variables,
        reason: None,
        revision,
        created_at: t0(),
        updated_at: t0(),
    }
}

fn wait_timer(id: RunId, minutes: i64) -> Timer {
    Timer {
        key: TimerKey::new(id, "wait"),
        due: t0() + TimeDelta::minutes(minutes),
        step: Some("wait_reply".into()),
    }
}

/// What the engine commits when a run sends and moves on to a wait: guard, run, timer,
/// outbox entry and history line.
fn advance(id: RunId, revision: u64) -> Batch {
    let at = t0() + TimeDelta::seconds(revision as i64);
    Batch::new()
        .check(Check::RunRevision {
            run: id,
            expected: Some(revision - 1),
        })
        .op(Op::PutRun(waiting_run(id, revision)))
        .op(Op::PutTimer(wait_timer(id, revision as i64 * 1440)))
        .op(Op::PutOutbox(OutboxEntry {
            key: IdempotencyKey::new(id, "second_touch", revision as u32),
            action: "wecom.send_text".into(),
            account: "acme-staff-3".into(),
            input_digest: "9f2c44e1".into(),
            delivery: Delivery::AtMostOnce,
            state: OutboxState::Pending,
            attempts: 1,
            created_at: at,
            updated_at: at,
        }))
        .op(Op::AppendHistory {
            run: id,
            entry: HistoryEntry {
                at,
                step: Some("second_touch".into()),
                input: "text: 好久不见，送您一张券".into(),
                outcome: "pending".into(),
                gate: Some("passed".into()),
            },
        })
}

fn open(dir: &Path) -> Result<SledStore, Error> {
    Ok(sop_store_sled::open(dir, &SledOptions::default())?)
}

fn proc_status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len()..].trim().to_string())
        })
        .unwrap_or_else(|| "n/a".into())
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn commit_rate(dir: &Path) -> Result<(), Error> {
    let store = open(dir)?;
    let runs = 10_000u64;
    for chunk in (1..=runs).collect::<Vec<_>>().chunks(1000) {
        let ops = chunk
            .iter()
            .map(|i| Op::PutRun(waiting_run(RunId(*i), 1)))
            .collect();
        store.commit(Batch {
            checks: vec![],
            ops,
        })?;
    }
    let n = 20_000u64;
    let start = Instant::now();
    for i in 0..n {
        store.commit(advance(RunId(i % runs + 1), i / runs + 2))?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "advance batch (check+run+timer+outbox+history), commit:          {:>8.0} commits/s",
        n as f64 / secs
    );
    let m = 300u64;
    let start = Instant::now();
    for i in 0..m {
        store.commit_durable(advance(RunId(i + 1), n / runs + 2))?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "advance batch, commit_durable (fsync each):                     {:>8.0} commits/s",
        m as f64 / secs
    );
    Ok(())
}

/// The detail bytes the runtime stores for a run waiting on a reply with a timeout: its
/// `DETAIL_FORMAT` byte (1) and the engine's `RunState` as JSON, with the same fields and
/// typical values (about 700 bytes).
fn waiting_detail(id: RunId) -> Vec<u8> {
    let run = format!("r{}", id.0);
    let state = json!({
        "format": 1,
        "id": run,
        "playbook": "reactivation",
        "version": 3,
        "subject": {"kind": "contact", "id": format!("wm{:012}", id.0), "account": "acme-staff-3"},
        "status": "waiting_event",
        "step": "wait_reply",
        "waiting": {
            "for": "event",
            "subscription": format!("{run}/wait_reply/1/wait_for"),
            "timer": format!("{run}/wait_reply/1/timeout"),
        },
        "iterations": {"first_touch": 1, "wait_reply": 1},
        "attempts": {"transient": 0, "rate_limited": 0, "auth_expired": 0},
        "outputs": {"first_touch": {"msgid": format!("msg_{:012x}", id.0 * 7919), "sent_at": 1_767_225_600_000u64}},
        "variables": {"coupon": "RE-10", "channel": "qr_store_17"},
        "cause": {"kind": "cron", "trigger": "0", "at": "2026-01-01T00:00:00Z"},
        "created_at": "2026-01-01T00:00:00Z",
        "started_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:01.250Z",
    });
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(state.to_string().as_bytes());
    bytes
}

/// Timeouts are spread evenly over 30 days in a shuffled run order (so resuming the due runs
/// reads scattered run records, as after a real downtime): run `id` of `runs` gets slot
/// `id * SPREAD mod runs`, a permutation because `SPREAD` is a prime that divides no bench size.
const SPREAD: u64 = 2_654_435_761;
const SPAN_MS: i64 = 30 * 24 * 3_600_000;

/// The due time of slot `slot` of `runs`: strictly increasing in `slot`.
fn due_at(slot: u64, runs: u64) -> Timestamp {
    t0() + TimeDelta::milliseconds((slot as i128 * SPAN_MS as i128 / runs.max(1) as i128) as i64)
}

/// Everything the runtime stores for a run waiting for a reply with a timeout: the run, its
/// engine state, the timeout timer and the subscription.
fn waiting_ops(id: RunId, runs: u64, ops: &mut Vec<Op>) {
    let run = waiting_run(id, 1);
    let subject = run.subject.clone();
    ops.push(Op::PutRun(run));
    ops.push(Op::PutRunDetail {
        run: id,
        detail: waiting_detail(id),
    });
    ops.push(Op::PutTimer(Timer {
        key: TimerKey::new(id, format!("r{}/wait_reply/1/timeout", id.0)),
        due: due_at(
            (id.0 as u128 * SPREAD as u128 % runs.max(1) as u128) as u64,
            runs,
        ),
        step: Some("wait_reply".into()),
    }));
    ops.push(Op::Subscribe(Subscription {
        subject,
        event: "wecom.message_received".into(),
        run: id,
        step: "wait_reply".into(),
    }));
}

fn fill(dir: &Path, runs: u64) -> Result<(), Error> {
    let store = open(dir)?;
    let start = Instant::now();
    let mut i = 1;
    while i <= runs {
        let end = (i + 1000).min(runs + 1);
        let mut ops = Vec::with_capacity(4 * (end - i) as usize);
        for id in i..end {
            waiting_ops(RunId(id), runs, &mut ops);
        }
        store.commit(Batch {
            checks: vec![],
            ops,
        })?;
        i = end;
    }
    store.flush()?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "fill {runs} waiting runs (run+detail+timer+subscription, 1000 per batch): {secs:.1} s ({:.0} runs/s)",
        runs as f64 / secs
    );
    println!(
        "  RSS after fill: {}, peak {}",
        proc_status("VmRSS:"),
        proc_status("VmHWM:")
    );
    drop(store);
    let size = dir_size(dir);
    println!(
        "  on disk: {:.0} MiB ({:.0} bytes per waiting run)",
        mib(size),
        size as f64 / runs as f64
    );
    Ok(())
}

/// Child process: a restart. Reopen, find every timer due by `percent`% of the way through
/// the 30 days (exactly `percent`% of the `runs` runs), and load each due run's record and
/// detail (what the runtime reads to resume it).
fn restart(dir: &Path, runs: u64, percent: u64) -> Result<(), Error> {
    let start = Instant::now();
    let store = open(dir)?;
    let opened = start.elapsed().as_secs_f64();
    let until = due_at(runs * percent / 100, runs) - TimeDelta::milliseconds(1);
    let mut due = Vec::new();
    let mut after: Option<Timer> = None;
    loop {
        let page = store.due_timers(until, after.as_ref(), 10_000)?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        due.extend(page.into_iter().map(|t| t.key.run));
        after = Some(last);
    }
    let scanned = start.elapsed().as_secs_f64();
    let mut bytes = 0usize;
    for run in &due {
        let record = store.run(*run)?.ok_or("due run without a record")?;
        let detail = store.run_detail(*run)?.ok_or("due run without detail")?;
        bytes += detail.len() + record.playbook.len();
    }
    let loaded = start.elapsed().as_secs_f64();
    println!(
        "restart, {percent:>3}% due ({} timers): reopen {opened:.2} s, + find due timers {:.2} s, + load run and detail {:.2} s = {loaded:.2} s; RSS {}, peak {}",
        due.len(),
        scanned - opened,
        loaded - scanned,
        proc_status("VmRSS:"),
        proc_status("VmHWM:"),
    );
    if bytes == 0 && !due.is_empty() {
        return Err("due runs loaded no bytes".into());
    }
    Ok(())
}

/// Copies a store directory (each restart starts from the state the fill left).
fn copy_dir(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn run_child(args: &[&str]) -> Result<(), Error> {
    let status = std::process::Command::new(std::env::current_exe()?)
        .args(args)
        .status()?;
    if !status.success() {
        return Err(format!("child {args:?} failed: {status}").into());
    }
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let runs: u64 = value("--runs")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    if runs.is_multiple_of(SPREAD) {
        return Err("--runs must not be a multiple of 2654435761".into());
    }
    if let Some(dir) = value("--restart") {
        let percent: u64 = value("--due-percent")
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(100);
        if !(1..=100).contains(&percent) {
            return Err("--due-percent takes 1..=100".into());
        }
        return restart(Path::new(dir), runs, percent);
    }
    let tmp;
    let root: PathBuf = match value("--dir") {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    if !args.iter().any(|a| a == "--skip-commit-rate") {
        commit_rate(&root.join("commit"))?;
    }
    let waiting = root.join("waiting");
    fill(&waiting, runs)?;
    // Restarts in a fresh process each, on the store as the fill left it. The first open
    // after a write-heavy period replays sled's whole log since the previous open (the worst
    // case; sled writes its snapshot at open); the later ones replay only what was logged
    // since. `--copy` gives every restart its own copy of the filled store, so each one is
    // the worst case (needs the store's size again in free disk).
    let copy = args.iter().any(|a| a == "--copy");
    let runs = runs.to_string();
    for percent in ["1", "1", "10", "100"] {
        let dir = if copy {
            let dir = root.join("restart");
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            copy_dir(&waiting, &dir)?;
            dir
        } else {
            waiting.clone()
        };
        let dir = dir.to_string_lossy();
        run_child(&["--restart", &dir, "--runs", &runs, "--due-percent", percent])?;
    }
    if copy {
        std::fs::remove_dir_all(root.join("restart"))?;
    }
    Ok(())
}
