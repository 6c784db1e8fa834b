//! Platform faults (issue #9): a broadcast and live welcomes against an emulator that answers
//! 10 % of calls with HTTP 503, holds 2 % until they time out, resets 2 % of connections,
//! revokes the access token in the middle and forces 45009 ("API frequency limit") bursts.
//! At the end every delivery either reached the person once or is reported with its reason
//! (the outbox record's or the run's, over the admin API), and nothing reached anyone twice
//! (the emulator's delivery log).
//!
//! The daemon and the emulator run on manual clocks that the test moves together, 20 times
//! faster than real time: the back-offs (a 45009 waits a minute, the engine's transient
//! back-off doubles from 30 s) are the same on their clocks and take seconds of the test's.
//!
//! `SOP_FAULTS_CONTACTS` (default 150), `SOP_FAULTS_WELCOMES` (default 30) and
//! `SOP_FAULTS_SEED` (default 11) size and seed it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sop_harness::{Http, Profile, World, wait_for};
use sop_reliability::{Audit, BROADCAST, WELCOME, contact_id, deliveries, env_or, spec};

/// How long the daemon may take to finish the work: retries wait for back-offs (a 45009
/// waits a minute), so this is generous; nothing here measures time.
const SETTLE: Duration = Duration::from_secs(900);

/// Where both clocks start (2026-03-02 01:00 UTC).
const START_MS: i64 = 1_772_413_200_000;
/// How far both clocks move every [`TICK`]: 20 times real time.
const STEP_MS: u64 = 1_000;
const TICK: Duration = Duration::from_millis(50);

/// Moves the emulator's clock and then the daemon's by [`STEP_MS`] every [`TICK`] until
/// `stop`. A failed move (the daemon busy) is tried again at the next tick.
async fn drive_clocks(emulator: Http, admin: Http, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let _ = sop_harness::advance_clocks(&emulator, &admin, STEP_MS).await;
        tokio::time::sleep(TICK).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_send_completes_or_is_reported_and_none_twice_under_platform_faults() {
    let contacts: usize = env_or("SOP_FAULTS_CONTACTS", 150);
    let welcomes: usize = env_or("SOP_FAULTS_WELCOMES", 30);
    let seed: u64 = env_or("SOP_FAULTS_SEED", 11);
    let started = Instant::now();
    let mut spec = spec(Profile::Debug, seed, contacts);
    let start = START_MS.to_string();
    spec.daemon_args
        .extend(["--manual-clock".to_owned(), start.clone()]);
    spec.emulator_args
        .extend(["--manual-clock".to_owned(), start]);
    let world = World::start(spec).await.unwrap_or_else(|e| panic!("{e}"));
    let booted = started.elapsed();
    let emulator = world.emulator.http().clone();
    let stop_clocks = Arc::new(AtomicBool::new(false));
    let clocks = tokio::spawn(drive_clocks(
        emulator.clone(),
        world.admin.clone(),
        stop_clocks.clone(),
    ));
    let faults = json!({
        "default": {"status_5xx_rate": 0.10, "timeout_rate": 0.02, "reset_rate": 0.02},
        "hang_ms": 2_000,
    });
    emulator
        .put("/_emulator/faults", &faults)
        .await
        .unwrap_or_else(|e| panic!("PUT faults: {e}"));
    // A 45009 burst from the start (20 s on the platform's clock): the first sends are told to come back in a minute (the
    // plugin's back-off for 45009, which also backs the whole account off in the gate; a
    // burst of several calls would cost a minute each, one call going through per minute).
    for api in [
        "externalcontact/add_msg_template",
        "externalcontact/send_welcome_msg",
    ] {
        world
            .emulator
            .post(
                "/_emulator/rate_limit/burst",
                &json!({"platform": "wecom", "api": api, "duration_ms": 20_000}),
            )
            .await
            .unwrap_or_else(|e| panic!("burst: {e}"));
    }

    let audience: Vec<String> = (0..contacts).map(contact_id).collect();
    let start = world
        .admin
        .post(
            &format!("/api/playbooks/{BROADCAST}/start"),
            &json!({ "contacts": audience }),
        )
        .await
        .unwrap_or_else(|e| panic!("start: {e}\n{}", world.logs()));
    assert_eq!(
        start["enrolled"].as_array().map(Vec::len),
        Some(contacts),
        "{start}"
    );
    let mut added = Vec::new();
    for _ in 0..welcomes {
        let answer = world
            .emulator
            .post("/_emulator/events", &json!({"kind": "add_contact"}))
            .await
            .unwrap();
        added.push(answer["external_userid"].as_str().unwrap().to_owned());
    }

    // In the middle: the token is revoked (the plugin must notice 40014 and fetch a new
    // one), and a second burst of 45009 (20 s on the platform's clock, one of the test's).
    wait_for("a third of the sends", SETTLE, || {
        let emulator = emulator.clone();
        async move {
            let n = deliveries(&emulator).await.ok()?.len();
            (n >= (contacts + welcomes) / 3).then_some(())
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", world.logs()));
    let third = started.elapsed();
    world
        .emulator
        .post("/_emulator/tokens/revoke", &json!({"platform": "wecom"}))
        .await
        .unwrap();
    world
        .emulator
        .post(
            "/_emulator/rate_limit/burst",
            &json!({"platform": "wecom", "api": "externalcontact/add_msg_template", "duration_ms": 20_000}),
        )
        .await
        .unwrap();

    let admin = world.admin.clone();
    wait_for("every run to end", SETTLE, || {
        let (admin, emulator) = (admin.clone(), emulator.clone());
        async move { sop_reliability::work_finished(&admin, &emulator, &[BROADCAST, WELCOME]).await }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", world.logs()));
    let ended = started.elapsed();
    stop_clocks.store(true, Ordering::Relaxed);
    clocks.await.expect("the clock driver");

    let audit = Audit::read(&world.admin, &emulator, &[BROADCAST, WELCOME])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut problems = Vec::new();
    let mut sent = 0;
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for (playbook, step, who) in [
        (BROADCAST, "promo", &audience),
        (WELCOME, "welcome", &added),
    ] {
        for contact in who {
            let runs = audit.runs_of(playbook, contact);
            let [run] = runs else {
                problems.push(format!("{playbook} {contact}: {} runs", runs.len()));
                continue;
            };
            if run.is_live() {
                problems.push(format!(
                    "{playbook} {contact}: run {} still {}",
                    run.id, run.state
                ));
            }
            let delivered = audit.delivered(contact, step);
            if delivered > 1 {
                problems.push(format!("{contact}: {step} delivered {delivered} times"));
            }
            let outbox = audit.outbox_of(contact, step);
            // The record's own reason for an unknown or failed send, else the run's.
            let reported = outbox
                .iter()
                .filter(|e| e.state == "unknown" || e.state == "failed")
                .find_map(|e| e.reason.clone().map(|r| format!("{} {r}", e.state)))
                .or_else(|| {
                    (run.state == "failed")
                        .then(|| run.reason.clone())
                        .flatten()
                });
            match (delivered, reported) {
                (1, None) => sent += 1,
                (_, Some(reason)) => {
                    // Group by the reason's words, without ids and numbers.
                    let class: String = reason
                        .split_whitespace()
                        .take(6)
                        .collect::<Vec<_>>()
                        .join(" ");
                    *reasons.entry(format!("{step}, delivered {delivered}: {class}")).or_default() += 1;
                }
                (0, None) => problems.push(format!(
                    "{contact}: {step} neither delivered nor reported (run {run:?}, outbox {outbox:?})"
                )),
                (_, None) => {}
            }
        }
    }
    if !audit.stray.is_empty() {
        problems.push(format!("deliveries naming no step: {:?}", audit.stray));
    }
    let counters = world.emulator.get("/_emulator/counters").await.unwrap();
    let faults: u64 = counters["faults"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    let rate_limited: u64 = counters["endpoints"].as_object().map_or(0, |m| {
        m.values().filter_map(|e| e["rate_limited"].as_u64()).sum()
    });
    let tokens = counters["endpoints"]["gettoken"]["calls"]
        .as_u64()
        .unwrap_or(0);
    println!(
        "platform faults: seed {seed}, {contacts} broadcast contacts + {} welcomes; {sent} sent once, \
         {} reported; {:.1} s (built and started {:.1} s, a third sent at {:.1} s, all ended at {:.1} s)",
        added.len(),
        reasons.values().sum::<usize>(),
        started.elapsed().as_secs_f64(),
        booted.as_secs_f64(),
        third.as_secs_f64(),
        ended.as_secs_f64(),
    );
    for (reason, n) in &reasons {
        println!("  {n:>4}  {reason}");
    }
    println!(
        "  emulator: {faults} faults injected ({:?}), {rate_limited} answers 45009, {tokens} token requests",
        counters["faults"]
    );
    // The faults really happened, else this test proves nothing.
    assert!(
        faults > 0 && rate_limited > 0,
        "no faults injected: {counters}"
    );
    assert!(
        tokens >= 2,
        "the revoked token was never replaced: {counters}"
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
