//! Store benchmark: commit rate of a typical run-advance batch, and the disk / memory cost
//! of a million waiting runs with the time to reopen and scan all their timers.
//!
//! Usage: `sop-store-bench [--runs N] [--dir DIR]` (release build recommended). The
//! reopen-and-scan phase runs in a fresh child process so its RSS is the restart's own.
//! Wall-clock timing is this tool's purpose, so it reads `Instant` directly.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;
use sop_clock::{TimeDelta, Timestamp};
use sop_store::{
    Batch, Check, ContactKey, Delivery, HistoryEntry, IdempotencyKey, Op, OutboxEntry, OutboxState,
    Run, RunId, RunState, Store, Subject, Timer, TimerKey,
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

fn fill(dir: &Path, runs: u64) -> Result<(), Error> {
    let store = open(dir)?;
    let start = Instant::now();
    let mut i = 1;
    while i <= runs {
        let end = (i + 1000).min(runs + 1);
        let mut ops = Vec::with_capacity(2 * (end - i) as usize);
        for id in i..end {
            ops.push(Op::PutRun(waiting_run(RunId(id), 1)));
            // Spread due times over 30 days.
            ops.push(Op::PutTimer(wait_timer(RunId(id), (id % 43_200) as i64)));
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
        "fill {runs} waiting runs (run+timer, 1000 per batch):     {secs:>8.1} s ({:.0} runs/s)",
        runs as f64 / secs
    );
    println!(
        "  RSS after fill: {}, peak {}",
        proc_status("VmRSS:"),
        proc_status("VmHWM:")
    );
    drop(store);
    println!(
        "  on disk: {:.0} MiB ({:.0} bytes per waiting run)",
        mib(dir_size(dir)),
        dir_size(dir) as f64 / runs as f64
    );
    Ok(())
}

/// Child process: reopen and page through every due timer.
fn scan(dir: &Path) -> Result<(), Error> {
    let start = Instant::now();
    let store = open(dir)?;
    let opened = start.elapsed().as_secs_f64();
    let mut count = 0u64;
    let mut after: Option<Timer> = None;
    let until = t0() + TimeDelta::days(31);
    loop {
        let page = store.due_timers(until, after.as_ref(), 10_000)?;
        count += page.len() as u64;
        match page.into_iter().last() {
            Some(last) => after = Some(last),
            None => break,
        }
    }
    let total = start.elapsed().as_secs_f64();
    println!(
        "reopen (fresh process): {opened:.2} s; open + scan all {count} due timers: {total:.2} s"
    );
    println!(
        "  RSS after scan: {}, peak {}",
        proc_status("VmRSS:"),
        proc_status("VmHWM:")
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    if let Some(dir) = value("--scan") {
        return scan(Path::new(dir));
    }
    let runs: u64 = value("--runs")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let tmp;
    let root: PathBuf = match value("--dir") {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    commit_rate(&root.join("commit"))?;
    let waiting = root.join("waiting");
    fill(&waiting, runs)?;
    let status = std::process::Command::new(std::env::current_exe()?)
        .arg("--scan")
        .arg(&waiting)
        .status()?;
    if !status.success() {
        return Err(format!("scan child failed: {status}").into());
    }
    Ok(())
}
