//! Scale check: N runs waiting on durable timers in a sled store; then a restart (open the
//! store, deploy, recover) and the time to fire a slice of them. Prints wall-clock figures
//! and resident memory.
//!
//! `cargo run --release -p sop-runtime --example resume_bench -- [--runs N] [--due M] [--dir DIR]`
//! With `--reuse` (and `--dir`) the runs of an earlier invocation are reused, so the restart
//! is measured in a fresh process; `--fill-only` stops after creating the runs, so that the
//! next `--reuse` is the first open after the fill.

use std::sync::Arc;
use std::time::Instant;

use sop_clock::{Clock, TimeDelta, VirtualClock};
use sop_dsl::Catalog;
use sop_engine::{ActionResult, OutcomeStatus};
use sop_runtime::{
    BoxFuture, ManualAudience, PassThrough, PlaybookSource, PluginCall, Plugins, Runtime,
    RuntimeConfig, RuntimeDeps,
};
use sop_store::{RunState, Store};

/// No plugin is called: the bench playbook only waits and tags.
#[derive(Debug, Default)]
struct NoPlugins(Catalog);

impl Plugins for NoPlugins {
    fn catalog(&self) -> &Catalog {
        &self.0
    }
    fn invoke<'a>(&'a self, _call: &'a PluginCall) -> BoxFuture<'a, ActionResult> {
        Box::pin(async {
            ActionResult::Done {
                output: serde_json::Value::Null,
            }
        })
    }
    fn check_outcome<'a>(
        &'a self,
        _call: &'a PluginCall,
        _handle: Option<&'a str>,
    ) -> BoxFuture<'a, Option<OutcomeStatus>> {
        Box::pin(async { None })
    }
}

/// Every run waits until the next 09:00 Shanghai, then tags the contact and completes.
const PLAYBOOK: &str = "id: bench\nversion: 1\ntriggers: [{manual: true}]\nentry: {one_active_run: false}\nsteps:\n  - id: pause\n    wait_until: \"09:00\"\n  - id: done\n    add_tags: woke\n";

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn runtime(store: Arc<dyn Store>, clock: &VirtualClock) -> Runtime {
    Runtime::new(RuntimeDeps {
        store,
        clock: Arc::new(clock.clone()),
        plugins: Arc::new(NoPlugins::default()),
        gate: Arc::new(PassThrough),
        config: RuntimeConfig::default(),
    })
    .expect("runtime")
}

fn source() -> PlaybookSource {
    PlaybookSource {
        origin: "bench.yaml".into(),
        source: PLAYBOOK.into(),
        tenant: "bench".into(),
        account: "bench".into(),
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let runs: usize = arg("--runs")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let due: usize = arg("--due").and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = arg("--dir").map_or_else(|| temp.path().to_path_buf(), Into::into);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let clock = VirtualClock::new("2026-01-05T02:00:00Z".parse().expect("instant"));
    let options = sop_store_sled::SledOptions::default();

    // 1. N waiting runs, enrolled through the runtime in pages of 1,000.
    let reuse = std::env::args().any(|a| a == "--reuse");
    let created = Instant::now();
    tokio.block_on(async {
        if reuse {
            return;
        }
        let store: Arc<dyn Store> = Arc::new(sop_store_sled::open(&dir, &options).expect("open"));
        let rt = runtime(store.clone(), &clock);
        rt.deploy(vec![source()]).expect("deploy");
        for start in (0..runs).step_by(1_000) {
            let ids = (start..(start + 1_000).min(runs))
                .map(|i| format!("c{i}"))
                .collect();
            rt.start_manual("bench", ManualAudience::Contacts(ids), "bench")
                .await
                .expect("enrol");
        }
        store.flush().expect("flush");
    });
    let created = created.elapsed();
    let completed = |store: &dyn Store, limit: usize| {
        store
            .runs_by_state("bench", RunState::Completed, None, limit)
            .expect("scan")
            .len()
    };
    if !reuse {
        println!(
            "created {runs} waiting runs in {:.1} s ({:.0} runs/s), RSS {:.0} MiB",
            created.as_secs_f64(),
            runs as f64 / created.as_secs_f64(),
            rss_mib()
        );
    }

    // `--fill-only`: stop here, so that the next start is the first open after the fill
    // (sled then replays its whole log).
    if std::env::args().any(|a| a == "--fill-only") {
        return;
    }

    // 2. Restart: open, deploy, recover; the timer loop's first look.
    let restart = Instant::now();
    let (store, rt) = tokio.block_on(async {
        let store: Arc<dyn Store> = Arc::new(sop_store_sled::open(&dir, &options).expect("reopen"));
        let rt = runtime(store.clone(), &clock);
        rt.deploy(vec![source()]).expect("deploy");
        rt.serve(async {}).await.expect("recover");
        (store, rt)
    });
    println!(
        "restart (open + deploy + recovery) in {:.3} s, RSS {:.0} MiB",
        restart.elapsed().as_secs_f64(),
        rss_mib()
    );

    // 3. A downtime made every run due: time until the first and until `due` more of them
    // have fired and finished (an earlier invocation on the same store finished some).
    let before = completed(&*store, runs);
    let due = due.min(runs - before);
    let fire = Instant::now();
    let mut first = None;
    tokio.block_on(async {
        clock.advance(TimeDelta::days(1));
        let serving = tokio::spawn({
            let rt = rt.clone();
            async move { rt.serve(std::future::pending()).await }
        });
        loop {
            let done = completed(&*store, before + due);
            if done > before && first.is_none() {
                first = Some(fire.elapsed());
            }
            if done >= before + due {
                break;
            }
            // A benchmark measuring wall-clock time may nap between progress checks.
            #[allow(clippy::disallowed_methods)]
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        serving.abort();
    });
    let fire = fire.elapsed();
    println!(
        "first due run finished {:.3} s after serving; fired {due} due timers in {:.2} s \
         ({:.0} transitions/s, 2 lanes), RSS {:.0} MiB; now {}",
        first.unwrap_or_default().as_secs_f64(),
        fire.as_secs_f64(),
        due as f64 / fire.as_secs_f64(),
        rss_mib(),
        clock.now()
    );
}
