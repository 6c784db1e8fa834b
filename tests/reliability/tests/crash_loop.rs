//! Crash loop (issue #9): a broadcast to N contacts (started through the admin API) plus live
//! welcome traffic (contacts added on the emulator, callbacks to the daemon) while the daemon
//! is killed with SIGKILL at seeded random moments and restarted on the same data dir. At the
//! end, from the emulator's delivery log and the daemon's admin API:
//!
//! - no contact received a message twice from one step;
//! - every message that should have been sent was sent, except sends recorded `unknown` in
//!   the outbox (the calls in flight at a kill; several per kill are possible, since sends run
//!   concurrently, at most the plugin host's instance pool per kill);
//! - no run is lost or stuck: every broadcast contact and every welcomed contact has exactly
//!   one finished run.
//!
//! CI-sized by default; `SOP_CRASHLOOP_CONTACTS`, `SOP_CRASHLOOP_KILLS`, `SOP_CRASHLOOP_SEED`,
//! `SOP_CRASHLOOP_MAX_GAP_MS` (longest life of the daemon between kills),
//! `SOP_CRASHLOOP_WELCOMES_PER_S`, `SOP_CRASHLOOP_RELEASE=1` (release binaries) for the full
//! size: `tests/reliability/crash-loop.sh`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sop_harness::{Http, Profile, World};
use sop_reliability::{Audit, BROADCAST, Rng, WELCOME, contact_id, env_or, spec};

/// Contacts per admin start request.
const CHUNK: usize = 250;
/// How long the daemon may take to finish the work after the last kill, at least; generous,
/// a loaded machine is slow, and nothing here measures time.
const SETTLE: Duration = Duration::from_secs(600);
/// ... and per broadcast contact: WeCom's hourly limit paces one corp at about 41 mass sends
/// a second, so 100,000 contacts need 40 minutes whatever the machine.
const SETTLE_PER_CONTACT: Duration = Duration::from_millis(50);
/// The plugin host's default instance pool: the most calls that can be in flight at a kill.
const MAX_IN_FLIGHT: usize = 64;

/// Prints the seed (and how to rerun) if the test fails.
struct SeedOnFailure(u64);

impl Drop for SeedOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "crash loop failed with seed {0}: rerun with SOP_CRASHLOOP_SEED={0} \
                 (SOP_HARNESS_KEEP=1 keeps the data dir and logs)",
                self.0
            );
        }
    }
}

/// Starts the broadcast for every contact, `CHUNK` at a time, retrying a chunk until the
/// daemon answers it (a kill may cut a request short; `repeat: once` makes a retry skip the
/// contacts it already enrolled). Returns (enrolled, skipped as already enrolled, requests).
async fn broadcast(admin: Http, contacts: Vec<String>) -> (usize, usize, usize) {
    let (mut enrolled, mut skipped, mut requests) = (0, 0, 0);
    for chunk in contacts.chunks(CHUNK) {
        loop {
            requests += 1;
            let path = format!("/api/playbooks/{BROADCAST}/start");
            match admin.post_raw(&path, &json!({ "contacts": chunk })).await {
                Ok(reply) if reply.status == 200 => {
                    let body = reply.json().expect("start answers JSON");
                    enrolled += body["enrolled"].as_array().map_or(0, Vec::len);
                    skipped += body["skipped"].as_array().map_or(0, Vec::len);
                    break;
                }
                // Killed mid-request, not up yet, or still recovering.
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    (enrolled, skipped, requests)
}

/// Adds contacts on the emulator (each one a callback to the daemon) until `stop`; returns
/// their ids.
async fn welcome_traffic(emulator: Http, per_second: u64, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut added = Vec::new();
    let gap = Duration::from_millis(1_000 / per_second.max(1));
    while !stop.load(Ordering::Relaxed) {
        let answer = emulator
            .post("/_emulator/events", &json!({"kind": "add_contact"}))
            .await
            .expect("the emulator takes add_contact");
        let id = answer["external_userid"]
            .as_str()
            .unwrap_or_else(|| panic!("add_contact answered {answer}"));
        added.push(id.to_owned());
        tokio::time::sleep(gap).await;
    }
    added
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_and_welcomes_survive_a_sigkill_loop() {
    let contacts: usize = env_or("SOP_CRASHLOOP_CONTACTS", 2_000);
    let kills: usize = env_or("SOP_CRASHLOOP_KILLS", 20);
    let seed: u64 = env_or("SOP_CRASHLOOP_SEED", 7);
    let max_gap_ms: u64 = env_or("SOP_CRASHLOOP_MAX_GAP_MS", 1_500).max(100);
    let welcomes_per_s: u64 = env_or("SOP_CRASHLOOP_WELCOMES_PER_S", 10);
    let profile = if env_or("SOP_CRASHLOOP_RELEASE", 0) == 1 {
        Profile::Release
    } else {
        Profile::Debug
    };
    let _seed = SeedOnFailure(seed);
    let started = Instant::now();
    let mut world = World::start(spec(profile, seed, contacts))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let boot = started.elapsed();

    let audience: Vec<String> = (0..contacts).map(contact_id).collect();
    let broadcaster = tokio::spawn(broadcast(world.admin.clone(), audience.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let welcomer = tokio::spawn(welcome_traffic(
        world.emulator.http().clone(),
        welcomes_per_s,
        stop.clone(),
    ));

    // The kills: each after a seeded random stretch of the daemon's life since it was ready.
    let mut rng = Rng(seed);
    let mut restarts = Duration::ZERO;
    for kill in 0..kills {
        let life = Duration::from_millis(rng.between(50, max_gap_ms));
        tokio::time::sleep(life).await;
        world
            .daemon
            .kill9()
            .unwrap_or_else(|e| panic!("kill {kill}: {e}"));
        let t = Instant::now();
        world
            .daemon
            .restart()
            .await
            .unwrap_or_else(|e| panic!("restart after kill {kill}: {e}\n{}", world.logs()));
        restarts += t.elapsed();
    }
    stop.store(true, Ordering::Relaxed);
    let added = welcomer.await.expect("welcome traffic");
    let (enrolled, skipped, requests) = broadcaster.await.expect("broadcast");
    let killing = started.elapsed() - boot;

    // Let the last daemon finish: every callback answered, no run live (the broadcast's runs
    // all exist once its start requests were answered; a welcome's once its callback was).
    let admin = world.admin.clone();
    let emulator = world.emulator.http().clone();
    let settle = SETTLE.max(SETTLE_PER_CONTACT * u32::try_from(contacts).unwrap_or(u32::MAX));
    sop_harness::wait_for("the daemon to finish the work", settle, || {
        let (admin, emulator) = (admin.clone(), emulator.clone());
        async move { sop_reliability::work_finished(&admin, &emulator, &[BROADCAST, WELCOME]).await }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", world.logs()));
    let total = started.elapsed();

    let audit = Audit::read(&world.admin, world.emulator.http(), &[BROADCAST, WELCOME])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The emulator retries a callback for many minutes: none may have been given up.
    let counters = world.emulator.get("/_emulator/counters").await.unwrap();
    let (generated, acked, given_up) = (
        counters["events_generated"].as_u64().unwrap_or(0),
        counters["callbacks_acked"].as_u64().unwrap_or(0),
        counters["callbacks_failed"].as_u64().unwrap_or(0),
    );

    let mut problems = Vec::new();
    if given_up > 0 {
        problems.push(format!(
            "{given_up} callbacks never acknowledged by the daemon"
        ));
    }
    let mut unknown = [0usize; 2];
    let mut unknown_delivered = 0;
    let mut sent = [0usize; 2];
    for (i, (playbook, step, who)) in [
        (BROADCAST, "promo", &audience),
        (WELCOME, "welcome", &added),
    ]
    .into_iter()
    .enumerate()
    {
        for contact in who {
            // Exactly one finished run.
            let runs = audit.runs_of(playbook, contact);
            match runs {
                [run] if run.is_live() => problems.push(format!(
                    "{playbook} {contact}: run {} stuck {} at {:?}",
                    run.id, run.state, run.step
                )),
                [_] => {}
                [] => problems.push(format!("{playbook} {contact}: no run (lost)")),
                more => problems.push(format!("{playbook} {contact}: {} runs", more.len())),
            }
            let delivered = audit.delivered(contact, step);
            let outbox = audit.outbox_of(contact, step);
            let is_unknown = outbox.iter().any(|e| e.state == "unknown");
            if delivered > 1 {
                problems.push(format!("{contact}: {step} delivered {delivered} times"));
            }
            if is_unknown {
                unknown[i] += 1;
                unknown_delivered += delivered;
            } else if delivered == 1 {
                sent[i] += 1;
            } else {
                let run = runs.first();
                problems.push(format!(
                    "{contact}: {step} never delivered and not recorded unknown (outbox {outbox:?}, run {run:?})"
                ));
            }
        }
    }
    let expected: std::collections::BTreeSet<(String, String)> = audience
        .iter()
        .map(|c| (c.clone(), "promo".to_owned()))
        .chain(added.iter().map(|c| (c.clone(), "welcome".to_owned())))
        .collect();
    for (key, n) in &audit.delivered {
        if !expected.contains(key) {
            problems.push(format!("unexpected delivery {key:?} x{n}"));
        }
    }
    if !audit.stray.is_empty() {
        problems.push(format!("deliveries naming no step: {:?}", audit.stray));
    }
    let pending: Vec<_> = audit.outbox_in("pending").collect();
    if !pending.is_empty() {
        problems.push(format!("outbox records left pending: {pending:?}"));
    }
    let unknown_total = unknown[0] + unknown[1];
    if unknown_total > kills * MAX_IN_FLIGHT {
        problems.push(format!(
            "{unknown_total} unknown sends for {kills} kills: more than the {MAX_IN_FLIGHT} calls that can be in flight at each"
        ));
    }
    let failed_runs = audit
        .runs
        .values()
        .flatten()
        .filter(|r| r.state != "completed")
        .map(|r| format!("{} {} {:?}", r.id, r.state, r.reason))
        .collect::<Vec<_>>();

    println!(
        "crash loop: seed {seed}, {kills} kills ({} starts), {contacts} broadcast contacts \
         ({enrolled} enrolled + {skipped} skipped as already enrolled in {requests} start requests), \
         {} contacts added ({acked} of {generated} callbacks acknowledged); \
         promo: {} sent once, {} unknown; welcome: {} sent once, {} unknown \
         ({unknown_delivered} of the {} unknown reached the platform, {:.1} per kill); \
         {} runs not completed; boot {:.1} s, kill loop {:.1} s (restarts {:.1} s in all), total {:.1} s",
        world.daemon.starts(),
        added.len(),
        sent[0],
        unknown[0],
        sent[1],
        unknown[1],
        unknown_total,
        unknown_total as f64 / kills.max(1) as f64,
        failed_runs.len(),
        boot.as_secs_f64(),
        killing.as_secs_f64(),
        restarts.as_secs_f64(),
        total.as_secs_f64(),
    );
    for r in failed_runs.iter().take(20) {
        println!("  not completed: {r}");
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems
            .iter()
            .take(50)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
