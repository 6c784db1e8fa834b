//! Crash test: a child process (this test binary, re-executed with `crash_child`) runs a
//! playbook with waits, branches, tags and several sends for N contacts on a sled store, on a
//! scaled real clock (one real second is an hour). The parent kills it with SIGKILL at random
//! (seeded) moments and restarts it until it finishes, then compares the outcome with an
//! uninterrupted reference run of the same inputs: every run's final state, step path and tags
//! are the same, no at-most-once idempotency key reached the platform twice, and every send of
//! the reference reached the platform except sends whose outbox outcome is `unknown`.
//!
//! The platform is an append-only delivery log: `invoke` writes the key and fsyncs *before*
//! answering, so the log holds every call the platform took, even one the runtime never heard
//! back from.
//!
//! Environment: `SOP_CRASH_KILLS` (default 12), `SOP_CRASH_CONTACTS` (default 300),
//! `SOP_CRASH_SEED` (default 7), `SOP_CRASH_MAX_DELAY_MS` (longest life of a child before its
//! kill, default 700), `SOP_CRASH_KEEP` (a directory to keep the stores in); for a longer
//! run e.g. `SOP_CRASH_KILLS=100 SOP_CRASH_CONTACTS=1000 SOP_CRASH_MAX_DELAY_MS=300`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sop_clock::{Clock, Sleep, SystemClock, TimeDelta, Timestamp};
use sop_dsl::Catalog;
use sop_dsl::catalog::Delivery;
use sop_engine::{ActionResult, Event, OutcomeStatus};
use sop_runtime::{
    BoxFuture, EventSource, PassThrough, PlaybookSource, PluginCall, Plugins, Runtime,
    RuntimeConfig, RuntimeDeps,
};
use sop_store::{ContactKey, OutboxStateKind, RunId, RunState, Store, Subject};

const TENANT: &str = "demo-brand";
const ACCOUNT: &str = "demo-corp";
const PLAYBOOK_ID: &str = "crash";
/// Virtual seconds per real second: a one-hour wait takes one real second.
const SCALE: i32 = 3600;

/// Waits, branches on contact attributes (set from the start event), tags, synchronous and
/// accepted-later sends, an idempotent platform tag, a wait for a reply (answered by the
/// child's driver) and a wait that times out. Nothing depends on run ids or exact times, so
/// every contact's path is a function of its inputs.
const PLAYBOOK: &str = r#"
id: crash
version: 1
name: crash test
tenant: demo-brand
owner: ops@demo-brand.example
triggers:
  - event: wecom.contact_added
entry:
  repeat: once
steps:
  - id: remember
    set:
      tier: "{{ event.attributes.tier }}"
      replies: "{{ event.attributes.replies }}"
  - id: welcome
    action: wecom.send_welcome
    params:
      welcome_code: "{{ event.attributes.welcome_code }}"
      text: "welcome {{ contact.id }}"
  - id: tag_channel
    action: wecom.mark_tag
    params:
      userid: staff_zhang
      external_userid: "{{ contact.id }}"
      add_tag: ["channel:{{ event.attributes.state }}"]
  - id: tier
    if: "contact.attributes.tier == 'vip'"
    then:
      - id: tag_vip
        add_tags: vip
      - id: tell_owner_vip
        action: wecom.notify_staff
        params:
          touser: staff_zhang
          text: "vip {{ contact.id }}"
    else:
      - id: tag_regular
        add_tags: regular
  - id: settle
    wait: 1h
  - id: replies
    if: "contact.attributes.replies == 'yes'"
    then:
      - id: await_reply
        wait_for:
          event: wecom.message_received
          timeout: 30d
          on_timeout:
            - id: lost
              end: completed
      - id: coupon
        action: wecom.mass_send_contacts
        params:
          sender: staff_zhang
          contacts: ["{{ contact.id }}"]
          text: "coupon {{ contact.id }}"
      - id: tag_coupon
        add_tags: coupon
      - id: converted
        end: converted
    else:
      - id: await_silence
        wait_for:
          event: wecom.message_received
          timeout: 2h
          on_timeout:
            - id: nudge
              action: wecom.mass_send_contacts
              params:
                sender: staff_zhang
                contacts: ["{{ contact.id }}"]
                text: "nudge {{ contact.id }}"
            - id: tag_nudged
              add_tags: nudged
  - id: cool_down
    wait: 3h
  - id: follow_up
    action: wecom.notify_staff
    params:
      touser: staff_zhang
      text: "follow up {{ contact.id }}"
"#;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn contact_id(i: usize) -> String {
    format!("c{i:05}")
}

fn catalog() -> Catalog {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/plugins");
    Catalog::load_dir(&dir).expect("bundled manifests")
}

// ---------------------------------------------------------------- the child process

/// Real time sped up `SCALE` times from an anchor kept in the data dir, so the clock goes on
/// across restarts (and while the process is dead, as a real one would).
#[derive(Debug)]
struct ScaledClock {
    real_anchor: Timestamp,
    virtual_anchor: Timestamp,
}

impl ScaledClock {
    /// The anchor is written (and synced) by the first start and read by every restart.
    fn open(dir: &Path) -> ScaledClock {
        let path = dir.join("anchor");
        let real_anchor = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().expect("anchor"),
            Err(_) => {
                let now = SystemClock.now();
                let tmp = dir.join("anchor.tmp");
                let mut file = File::create(&tmp).expect("anchor file");
                file.write_all(now.to_rfc3339().as_bytes()).expect("write");
                file.sync_all().expect("sync");
                std::fs::rename(&tmp, &path).expect("rename");
                now
            }
        };
        ScaledClock {
            real_anchor,
            // Monday 2026-01-05 10:00 in Shanghai.
            virtual_anchor: "2026-01-05T02:00:00Z".parse().expect("instant"),
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Timestamp {
        self.virtual_anchor + (SystemClock.now() - self.real_anchor) * SCALE
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_> {
        Box::pin(async move {
            // The division truncates: wait a millisecond more, and re-check.
            while self.now() < deadline {
                let real = self.real_anchor
                    + (deadline - self.virtual_anchor) / SCALE
                    + TimeDelta::milliseconds(1);
                SystemClock.sleep_until(real).await;
            }
        })
    }
}

/// The platform: every call is appended to `deliveries` and synced before it is answered.
/// Key-only outcome checks (after a crash) cannot be answered, as on WeCom.
#[derive(Debug)]
struct LoggingPlatform {
    catalog: Catalog,
    log: Mutex<File>,
    /// Which start of the child this is (0 for the first), written beside each delivery.
    generation: usize,
}

impl LoggingPlatform {
    fn open(dir: &Path, generation: usize) -> LoggingPlatform {
        let path = dir.join("deliveries");
        // A kill in the middle of a write leaves a torn last line: that call was never
        // answered, so the platform did not take it. Cut it off.
        if let Ok(bytes) = std::fs::read(&path) {
            let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            if keep < bytes.len() {
                let file = OpenOptions::new().write(true).open(&path).expect("log");
                file.set_len(keep as u64).expect("truncate");
                file.sync_all().expect("sync");
            }
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("delivery log");
        LoggingPlatform {
            catalog: catalog(),
            log: Mutex::new(log),
            generation,
        }
    }
}

impl Plugins for LoggingPlatform {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn invoke<'a>(&'a self, call: &'a PluginCall) -> BoxFuture<'a, ActionResult> {
        {
            let mut log = self.log.lock().expect("log lock");
            let line = format!(
                "{}\t{}.{}\t{}\n",
                call.key, call.plugin, call.action, self.generation
            );
            log.write_all(line.as_bytes()).expect("append delivery");
            log.sync_data().expect("sync delivery");
        }
        let asynchronous = self
            .catalog
            .plugin(&call.plugin)
            .and_then(|p| p.action(&call.action))
            .is_some_and(|a| a.asynchronous);
        let result = if asynchronous {
            ActionResult::Accepted {
                handle: format!("task-{}", call.key),
                check_after_ms: 60_000,
                output: json!({"task": true}),
            }
        } else {
            ActionResult::Done {
                output: json!({"ok": true}),
            }
        };
        Box::pin(async move { result })
    }

    fn check_outcome<'a>(
        &'a self,
        _call: &'a PluginCall,
        handle: Option<&'a str>,
    ) -> BoxFuture<'a, Option<OutcomeStatus>> {
        let answer = handle.map(|_| OutcomeStatus::Done {
            output: json!({"delivered": 1}),
        });
        Box::pin(async move { answer })
    }
}

fn event_source() -> EventSource {
    EventSource {
        tenant: TENANT.into(),
        plugin: "wecom".into(),
        account: ACCOUNT.into(),
    }
}

fn contact_added(i: usize, now: Timestamp) -> Event {
    Event {
        kind: "wecom.contact_added".into(),
        dedupe_id: format!("add-{i}"),
        occurred_at: now,
        contact: Some(contact_id(i)),
        staff: Some("staff_zhang".into()),
        group: None,
        attributes: json!({
            "state": format!("ch{}", i % 3),
            "welcome_code": format!("w{i}"),
            "tier": if i.is_multiple_of(5) { "vip" } else { "regular" },
            "replies": if i.is_multiple_of(2) { "yes" } else { "no" },
        }),
    }
}

fn reply(contact: &str, now: Timestamp) -> Event {
    Event {
        kind: "wecom.message_received".into(),
        dedupe_id: format!("reply-{contact}"),
        occurred_at: now,
        contact: Some(contact.into()),
        staff: Some("staff_zhang".into()),
        group: None,
        attributes: json!({"text": "1"}),
    }
}

fn count_runs(store: &dyn Store, state: RunState) -> usize {
    let mut count = 0;
    let mut after = None;
    loop {
        let page = store
            .runs_by_state(PLAYBOOK_ID, state, after, 500)
            .expect("scan runs");
        count += page.len();
        match page.last() {
            Some(last) if page.len() == 500 => after = Some(*last),
            _ => return count,
        }
    }
}

/// Appends this start's (virtual) time to `starts`; returns how many starts came before.
fn record_start(dir: &Path, now: Timestamp) -> usize {
    let path = dir.join("starts");
    let before = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .count();
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("starts file");
    file.write_all(format!("{}\n", now.timestamp_millis()).as_bytes())
        .expect("write start");
    file.sync_data().expect("sync start");
    before
}

/// Enrols every contact (again after a restart: the dedupe ids keep it single), answers the
/// contacts that wait for a reply, and returns once every run has finished.
async fn child_main(dir: &Path, contacts: usize) {
    let store: Arc<dyn Store> = Arc::new(
        sop_store_sled::open(&dir.join("store"), &sop_store_sled::SledOptions::default())
            .expect("open store"),
    );
    let clock = Arc::new(ScaledClock::open(dir));
    let generation = record_start(dir, clock.now());
    let rt = Runtime::new(RuntimeDeps {
        store: store.clone(),
        clock: clock.clone(),
        plugins: Arc::new(LoggingPlatform::open(dir, generation)),
        gate: Arc::new(PassThrough),
        config: RuntimeConfig::default(),
    })
    .expect("runtime");
    rt.deploy(vec![PlaybookSource {
        origin: "crash.yaml".into(),
        source: PLAYBOOK.into(),
        tenant: TENANT.into(),
        account: ACCOUNT.into(),
    }])
    .expect("deploy");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn({
        let rt = rt.clone();
        async move {
            rt.serve(async {
                let _ = stopped.await;
            })
            .await
        }
    });

    for start in (0..contacts).step_by(25) {
        let events = (start..(start + 25).min(contacts))
            .map(|i| contact_added(i, clock.now()))
            .collect();
        rt.ingest(&event_source(), events).await.expect("ingest");
    }

    loop {
        // Answer every run waiting for its contact's reply.
        let mut after = None;
        loop {
            let page = store
                .runs_by_state(PLAYBOOK_ID, RunState::Waiting, after, 200)
                .expect("scan");
            for id in &page {
                let Some(run) = store.run(*id).expect("run") else {
                    continue;
                };
                if run.step.as_deref() == Some("await_reply")
                    && let Subject::Contact(key) = &run.subject
                {
                    rt.ingest(&event_source(), vec![reply(&key.id, clock.now())])
                        .await
                        .expect("ingest reply");
                }
            }
            match page.last() {
                Some(last) if page.len() == 200 => after = Some(*last),
                _ => break,
            }
        }
        let live = count_runs(&*store, RunState::Active) + count_runs(&*store, RunState::Waiting);
        let finished: usize = [
            RunState::Completed,
            RunState::Converted,
            RunState::Failed,
            RunState::Cancelled,
        ]
        .into_iter()
        .map(|s| count_runs(&*store, s))
        .sum();
        if live == 0 && finished >= contacts {
            break;
        }
        clock.sleep_until(clock.now() + TimeDelta::minutes(3)).await;
    }
    let _ = stop.send(());
    serving.await.expect("serve task").expect("serve");
    store.flush().expect("flush");
}

/// The child process's entry; `crash_restart_matches_reference` runs it with the data dir in
/// `SOP_CRASH_DIR`.
#[test]
#[ignore = "the child process of crash_restart_matches_reference"]
fn crash_child() {
    let Some(dir) = std::env::var_os("SOP_CRASH_DIR") else {
        eprintln!("crash_child runs only as the child of crash_restart_matches_reference");
        return;
    };
    let contacts = env_or("SOP_CRASH_CONTACTS", 300);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    tokio.block_on(child_main(Path::new(&dir), contacts));
}

// ---------------------------------------------------------------- the parent

fn spawn_child(dir: &Path, contacts: usize) -> Child {
    let stderr = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("child.log"))
        .expect("child log");
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["crash_child", "--exact", "--ignored", "--nocapture"])
        .env("SOP_CRASH_DIR", dir)
        .env("SOP_CRASH_CONTACTS", contacts.to_string())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn child")
}

/// Waits up to `limit` for the child; `None` if it is still running.
fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if start.elapsed() >= limit {
            return None;
        }
        // The parent paces real processes on real time (the only place in the tests).
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// splitmix64: reproducible kill moments from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

const CHILD_LIMIT: Duration = Duration::from_secs(120);

fn child_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("child.log")).unwrap_or_default()
}

fn finish(child: &mut Child, dir: &Path, what: &str) {
    match wait_for(child, CHILD_LIMIT) {
        Some(status) => assert!(
            status.success(),
            "{what}: child failed ({status}):\n{}",
            child_log(dir)
        ),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what}: child stuck for {CHILD_LIMIT:?}:\n{}",
                child_log(dir)
            );
        }
    }
}

/// What a finished directory holds, by contact.
struct Outcome {
    /// contact → (final state, step path, tags).
    runs: BTreeMap<String, (RunState, Vec<String>, BTreeSet<String>)>,
    /// Deliveries in the log: (contact, step) → (qualified action, times delivered).
    delivered: BTreeMap<(String, String), (String, usize)>,
    /// Outbox entries recorded as unknown: (contact, step) → (was it in the delivery log,
    /// qualified action, attempts).
    unknown: BTreeMap<(String, String), (bool, String, u32)>,
    /// At-most-once calls marked unknown by the same process that made them.
    own_calls: Vec<String>,
    pending: usize,
    timers_left: usize,
    torn: usize,
}

fn read_outcome(dir: &Path, contacts: usize) -> Outcome {
    let store = sop_store_sled::open(&dir.join("store"), &sop_store_sled::SledOptions::default())
        .expect("open finished store");
    let mut run_contact: HashMap<RunId, String> = HashMap::new();
    let mut runs = BTreeMap::new();
    for state in RunState::ALL {
        let mut after = None;
        loop {
            let page = store
                .runs_by_state(PLAYBOOK_ID, state, after, 500)
                .expect("scan");
            for id in &page {
                let run = store.run(*id).expect("run").expect("listed run");
                let Subject::Contact(key) = &run.subject else {
                    panic!("group run {id}");
                };
                let mut path: Vec<String> = Vec::new();
                for (_, entry) in store.history(*id, None, 10_000).expect("history") {
                    if let Some(step) = entry.step
                        && path.last() != Some(&step)
                    {
                        path.push(step);
                    }
                }
                let tags = store
                    .contact(&ContactKey::new(TENANT, key.id.clone()))
                    .expect("contact")
                    .map(|c| c.tags)
                    .unwrap_or_default();
                let previous = runs.insert(key.id.clone(), (state, path, tags));
                assert!(previous.is_none(), "two runs for contact {}", key.id);
                run_contact.insert(*id, key.id.clone());
            }
            match page.last() {
                Some(last) if page.len() == 500 => after = Some(*last),
                _ => break,
            }
        }
    }
    assert_eq!(runs.len(), contacts, "one run per contact in {dir:?}");

    let log = std::fs::read_to_string(dir.join("deliveries")).unwrap_or_default();
    let mut delivered: BTreeMap<(String, String), (String, usize)> = BTreeMap::new();
    // Key → the start of the child that delivered it (the last time).
    let mut keys = BTreeMap::new();
    let mut torn = 0;
    for line in log.split_inclusive('\n') {
        let fields: Vec<&str> = line.strip_suffix('\n').unwrap_or("").split('\t').collect();
        let [key, action, generation] = fields[..] else {
            torn += 1;
            continue;
        };
        // `r<run>.<step>.<iteration>`
        let (run, rest) = key.split_once('.').expect("key run");
        let (step, _iteration) = rest.rsplit_once('.').expect("key iteration");
        let run = RunId(run.trim_start_matches('r').parse().expect("run id"));
        let contact = run_contact
            .get(&run)
            .unwrap_or_else(|| panic!("delivery for unknown run {key}"))
            .clone();
        keys.insert(
            key.to_string(),
            generation.parse::<usize>().expect("generation"),
        );
        let entry = delivered
            .entry((contact, step.to_string()))
            .or_insert_with(|| (action.to_string(), 0));
        entry.1 += 1;
    }

    // The start each generation of the child began at, to tell which one marked an entry.
    let starts: Vec<i64> = std::fs::read_to_string(dir.join("starts"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().expect("start time"))
        .collect();
    let generation_at = |at: Timestamp| {
        starts
            .iter()
            .rposition(|start| *start <= at.timestamp_millis())
            .expect("after the first start")
    };
    let mut unknown = BTreeMap::new();
    let mut own_calls = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .outbox_in_state(OutboxStateKind::Unknown, after.as_ref(), 500)
            .expect("outbox");
        for entry in &page {
            let contact = run_contact[&entry.key.run].clone();
            // An at-most-once call is delivered at most once; if the process that delivered
            // it also marked it unknown, recovery took a live call for a crash's leftover.
            let marked_by = generation_at(entry.updated_at);
            if entry.delivery == sop_store::Delivery::AtMostOnce
                && keys.get(&entry.key.to_string()) == Some(&marked_by)
            {
                own_calls.push(format!("{} (start {marked_by})", entry.key));
            }
            unknown.insert(
                (contact, entry.key.step.clone()),
                (
                    keys.contains_key(&entry.key.to_string()),
                    entry.action.clone(),
                    entry.attempts,
                ),
            );
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = Some(last.key.clone()),
            _ => break,
        }
    }
    let pending = store
        .outbox_in_state(OutboxStateKind::Pending, None, 1000)
        .expect("outbox")
        .len();
    let far: Timestamp = "2100-01-01T00:00:00Z".parse().expect("instant");
    let timers_left = store.due_timers(far, None, 1000).expect("timers").len();
    Outcome {
        runs,
        delivered,
        unknown,
        own_calls,
        pending,
        timers_left,
        torn,
    }
}

#[test]
fn crash_restart_matches_reference() {
    let kills: usize = env_or("SOP_CRASH_KILLS", 12);
    let contacts: usize = env_or("SOP_CRASH_CONTACTS", 300);
    let seed: u64 = env_or("SOP_CRASH_SEED", 7);
    let max_delay_ms: u64 = env_or("SOP_CRASH_MAX_DELAY_MS", 700).max(20);
    let temp = tempfile::tempdir().expect("temp dir");
    // `SOP_CRASH_KEEP=DIR` keeps both directories there, to look into a failure.
    let root =
        std::env::var_os("SOP_CRASH_KEEP").map_or_else(|| temp.path().to_path_buf(), Into::into);
    let reference_dir = root.join("reference");
    let crash_dir = root.join("crash");
    std::fs::create_dir_all(&reference_dir).expect("dir");
    std::fs::create_dir_all(&crash_dir).expect("dir");
    let started = Instant::now();

    // The reference runs alongside, untouched.
    let mut reference = spawn_child(&reference_dir, contacts);
    let mut rng = Rng(seed);
    let mut killed = 0;
    let mut starts = 0;
    loop {
        let mut child = spawn_child(&crash_dir, contacts);
        starts += 1;
        if killed == kills {
            finish(&mut child, &crash_dir, "crash run, last start");
            break;
        }
        let delay = Duration::from_millis(rng.between(20, max_delay_ms));
        match wait_for(&mut child, delay) {
            Some(status) => {
                assert!(
                    status.success(),
                    "crash run: child failed ({status}):\n{}",
                    child_log(&crash_dir)
                );
                // Finished before the kill: no more restarts needed.
                break;
            }
            None => {
                child.kill().expect("SIGKILL");
                child.wait().expect("reap");
                killed += 1;
            }
        }
    }
    finish(&mut reference, &reference_dir, "reference run");
    assert!(
        killed >= kills.min(10),
        "the child finished after {killed} kills: lower SOP_CRASH_MAX_DELAY_MS"
    );
    let wall = started.elapsed();

    let expected = read_outcome(&reference_dir, contacts);
    let actual = read_outcome(&crash_dir, contacts);
    let catalog = catalog();
    let delivery_of = |action: &str| {
        let (plugin, name) = action.split_once('.').expect("qualified action");
        catalog
            .plugin(plugin)
            .and_then(|p| p.action(name))
            .map(|a| a.delivery)
            .expect("catalog action")
    };

    // The reference itself: nothing unknown, nothing twice, nothing left over.
    assert!(expected.unknown.is_empty(), "reference has unknown sends");
    assert!(
        expected.delivered.values().all(|(_, n)| *n == 1),
        "reference delivered a key twice"
    );
    for outcome in [&expected, &actual] {
        assert_eq!(outcome.pending, 0, "outbox entries left pending");
        assert_eq!(outcome.timers_left, 0, "timers left armed");
        for (contact, (state, path, _)) in &outcome.runs {
            assert!(
                !state.is_live(),
                "run of {contact} stuck in {state:?} at {path:?}"
            );
        }
    }

    // Same final state, step path and tags for every contact.
    let mut differing = Vec::new();
    for (contact, want) in &expected.runs {
        let got = &actual.runs[contact];
        if got != want {
            differing.push(format!("{contact}: expected {want:?}, got {got:?}"));
        }
    }
    assert!(
        differing.is_empty(),
        "{} runs differ from the reference:\n{}",
        differing.len(),
        differing.join("\n")
    );

    // Deliveries: at most once per at-most-once key; every expected one unless unknown.
    let mut twice = Vec::new();
    let mut idempotent_repeats = 0;
    for ((contact, step), (action, times)) in &actual.delivered {
        if *times > 1 {
            match delivery_of(action) {
                Delivery::AtMostOnce => twice.push(format!("{contact} {step} {action} x{times}")),
                Delivery::Idempotent => idempotent_repeats += times - 1,
            }
        }
        assert!(
            expected
                .delivered
                .contains_key(&(contact.clone(), step.clone())),
            "{contact} {step}: delivered, but not in the reference"
        );
    }
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    let mut missing = Vec::new();
    let mut missing_unknown = 0;
    for (key, (action, _)) in &expected.delivered {
        if actual.delivered.contains_key(key) {
            continue;
        }
        if actual.unknown.contains_key(key) {
            missing_unknown += 1;
        } else {
            missing.push(format!("{} {} {action}", key.0, key.1));
        }
    }
    assert!(missing.is_empty(), "never delivered: {missing:?}");

    // An idempotent action is retried after an unknown outcome until it is sent; one left
    // unknown means an answer was overwritten (recovery once took this process's own
    // in-flight calls for a crash's leftovers).
    let stuck_unknown: Vec<_> = actual
        .unknown
        .iter()
        .filter(|(_, (_, action, _))| delivery_of(action) == Delivery::Idempotent)
        .collect();
    assert!(
        stuck_unknown.is_empty(),
        "idempotent actions left unknown: {stuck_unknown:?}"
    );
    assert!(
        actual.own_calls.is_empty(),
        "calls marked unknown by the process that made them: {:?}",
        actual.own_calls
    );
    let unknown_delivered = actual.unknown.values().filter(|u| u.0).count();
    let deliveries: usize = actual.delivered.values().map(|(_, n)| n).sum();
    println!(
        "crash test: {contacts} contacts, seed {seed}, {killed} kills (of {kills} asked), {starts} starts, {:.1} s; \
         reference delivered {}, crash run delivered {deliveries} ({idempotent_repeats} idempotent \
         repeats, {} torn log lines); unknown outcomes {} ({unknown_delivered} reached the \
         platform, {missing_unknown} did not)",
        wall.as_secs_f64(),
        expected.delivered.len(),
        actual.torn,
        actual.unknown.len(),
    );
    for ((contact, step), (reached, action, attempts)) in &actual.unknown {
        println!(
            "  unknown: {contact} {step} {action} after {attempts} attempts (in the delivery log: {reached})"
        );
    }
}
