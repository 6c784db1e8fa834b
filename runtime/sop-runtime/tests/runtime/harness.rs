//! A fake plugin host and gate that record what they are asked, and a runtime around them.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sop_clock::{TimeDelta, Timestamp, VirtualClock};
use sop_dsl::Catalog;
use sop_engine::{ActionResult, Event, OutcomeStatus, PluginError};
use sop_runtime::*;
use sop_store::{ContactKey, HistoryEntry, MemoryStore, Run, RunId, Store};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What the fake plugin does for one action.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Done with this output.
    Succeeds,
    /// Fails with this error this many times, then succeeds.
    FailsThen(u32, PluginError),
    /// Accepted; `check-outcome` answers done.
    Accepted,
    /// Accepted, with these recipients rejected by the platform (a batched action's
    /// `recipients.rejected`).
    AcceptedRejecting(Vec<String>),
    /// Never answers (the process "dies" mid-call).
    Hangs,
}

#[derive(Debug)]
pub struct FakePlugins {
    catalog: Catalog,
    behaviours: Mutex<HashMap<String, Behaviour>>,
    failures: Mutex<HashMap<String, u32>>,
    /// Every call, in order.
    pub calls: Mutex<Vec<PluginCall>>,
    /// Every outcome check: (key, handle).
    pub checks: Mutex<Vec<(String, Option<String>)>>,
    /// What a check without a handle (after a crash) answers.
    pub reconcile: Mutex<Option<OutcomeStatus>>,
    /// Calls whose input `text` is this never answer (a platform that hangs for one account).
    pub hang_on_text: Mutex<Option<String>>,
    /// Outcome checks with a handle left without an answer (a platform error) before the
    /// next ones answer done.
    pub unanswered_checks: Mutex<u32>,
}

impl FakePlugins {
    pub fn new() -> Arc<Self> {
        Arc::new(FakePlugins {
            catalog: catalog(),
            behaviours: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
            checks: Mutex::new(Vec::new()),
            reconcile: Mutex::new(None),
            hang_on_text: Mutex::new(None),
            unanswered_checks: Mutex::new(0),
        })
    }

    pub fn behave(&self, action: &str, behaviour: Behaviour) {
        self.behaviours
            .lock()
            .unwrap()
            .insert(action.into(), behaviour);
    }

    /// `plugin.action` of every call, in order.
    pub fn called(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| format!("{}.{}", c.plugin, c.action))
            .collect()
    }

    pub fn calls_of(&self, action: &str) -> Vec<PluginCall> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| format!("{}.{}", c.plugin, c.action) == action)
            .cloned()
            .collect()
    }
}

impl Plugins for FakePlugins {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn invoke<'a>(&'a self, call: &'a PluginCall) -> BoxFuture<'a, ActionResult> {
        self.calls.lock().unwrap().push(call.clone());
        let name = format!("{}.{}", call.plugin, call.action);
        let behaviour = self
            .behaviours
            .lock()
            .unwrap()
            .get(&name)
            .cloned()
            .unwrap_or_else(|| {
                // Asynchronous actions (mass sends) are accepted and confirmed later.
                let asynchronous = self
                    .catalog
                    .plugin(&call.plugin)
                    .and_then(|p| p.action(&call.action))
                    .is_some_and(|a| a.asynchronous);
                if asynchronous {
                    Behaviour::Accepted
                } else {
                    Behaviour::Succeeds
                }
            });
        let hang_on = self.hang_on_text.lock().unwrap().clone();
        let hangs = hang_on.is_some()
            && hang_on.as_deref() == call.input.get("text").and_then(Value::as_str);
        let behaviour = if hangs { Behaviour::Hangs } else { behaviour };
        let result = match behaviour {
            Behaviour::Succeeds => Some(ActionResult::Done {
                output: json!({"ok": true, "key": call.key}),
            }),
            Behaviour::FailsThen(times, error) => {
                let mut failures = self.failures.lock().unwrap();
                let count = failures.entry(name).or_default();
                if *count < times {
                    *count += 1;
                    Some(ActionResult::Error { error })
                } else {
                    Some(ActionResult::Done { output: json!({}) })
                }
            }
            Behaviour::Accepted => Some(ActionResult::Accepted {
                handle: format!("task-{}", call.key),
                check_after_ms: 60_000,
                output: json!({"task": true}),
            }),
            Behaviour::AcceptedRejecting(rejected) => Some(ActionResult::Accepted {
                handle: format!("task-{}", call.key),
                check_after_ms: 60_000,
                output: json!({"task": true, "recipients": {"rejected": rejected}}),
            }),
            Behaviour::Hangs => None,
        };
        Box::pin(async move {
            match result {
                Some(result) => result,
                None => std::future::pending().await,
            }
        })
    }

    fn check_outcome<'a>(
        &'a self,
        call: &'a PluginCall,
        handle: Option<&'a str>,
    ) -> BoxFuture<'a, Option<OutcomeStatus>> {
        self.checks
            .lock()
            .unwrap()
            .push((call.key.clone(), handle.map(str::to_string)));
        let mut unanswered = self.unanswered_checks.lock().unwrap();
        let answer = match handle {
            Some(_) if *unanswered > 0 => {
                *unanswered -= 1;
                None
            }
            Some(_) => Some(OutcomeStatus::Done {
                output: json!({"delivered": 1}),
            }),
            None => self.reconcile.lock().unwrap().clone(),
        };
        Box::pin(async move { answer })
    }
}

/// A gate answering from a script (then passing), recording what it was asked.
#[derive(Debug, Default)]
pub struct ScriptedGate {
    pub script: Mutex<VecDeque<Admission>>,
    pub asked: Mutex<Vec<String>>,
    /// The rate limiter never grants a slot (the process "dies" before the intent).
    pub hang: std::sync::atomic::AtomicBool,
}

impl PolicyGate for ScriptedGate {
    fn admit(
        &self,
        _store: &dyn Store,
        req: &GateRequest<'_>,
    ) -> Result<Admission, sop_store::StoreError> {
        self.asked.lock().unwrap().push(format!(
            "{}.{}@{}",
            req.invocation.plugin, req.invocation.action, req.now
        ));
        Ok(self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Admission::Pass {
                touches: Vec::new(),
                decision: "pass".into(),
            }))
    }

    fn acquire<'a>(
        &'a self,
        _plugin: &'a str,
        _account: &'a str,
        _action: &'a str,
        _recipient: Option<&'a str>,
        _priority: Priority,
    ) -> BoxFuture<'a, Slot> {
        let hang = self.hang.load(std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            if hang {
                std::future::pending::<()>().await;
            }
            Slot::Granted(Duration::ZERO)
        })
    }

    fn acquire_check<'a>(
        &'a self,
        _plugin: &'a str,
        _account: &'a str,
        _action: &'a str,
    ) -> BoxFuture<'a, Duration> {
        Box::pin(async { Duration::ZERO })
    }

    fn slow_down(&self, _plugin: &str, _account: &str, _retry_after: Duration) {}

    fn consent_keyword(&self, text: &str) -> Option<ConsentChange> {
        PassThrough.consent_keyword(text)
    }
}

pub fn catalog() -> Catalog {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/plugins");
    Catalog::load_dir(&dir).expect("bundled manifests")
}

pub fn bundled(name: &str) -> PlaybookSource {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../playbooks")
        .join(name);
    PlaybookSource {
        origin: path.display().to_string(),
        source: std::fs::read_to_string(&path).expect("bundled playbook"),
        tenant: TENANT.into(),
        account: ACCOUNT.into(),
    }
}

pub fn inline(source: &str) -> PlaybookSource {
    PlaybookSource {
        origin: "inline.yaml".into(),
        source: source.into(),
        tenant: TENANT.into(),
        account: ACCOUNT.into(),
    }
}

pub const TENANT: &str = "demo-brand";
pub const ACCOUNT: &str = "demo-corp";

/// Monday 2026-01-05 10:00 in Shanghai.
pub fn t0() -> Timestamp {
    "2026-01-05T02:00:00Z".parse().unwrap()
}

pub struct Harness {
    pub rt: Runtime,
    pub clock: VirtualClock,
    pub plugins: Arc<FakePlugins>,
    pub store: Arc<dyn Store>,
    stop: Option<oneshot::Sender<()>>,
    serving: Option<JoinHandle<Result<(), RuntimeError>>>,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with(
            Arc::new(MemoryStore::new()),
            VirtualClock::new(t0()),
            FakePlugins::new(),
            Arc::new(PassThrough),
        )
    }

    /// A harness at 22:00 Shanghai (quiet hours) with the real `sop_policy::Gate` and its
    /// default policy, on a memory store.
    pub fn at_night_with_default_policy() -> Harness {
        let clock = VirtualClock::new(t0() + TimeDelta::hours(12));
        let gate = sop_policy::Gate::new(
            sop_policy::PolicyConfig::default(),
            &catalog(),
            Arc::new(clock.clone()),
        )
        .expect("default policy");
        Harness::with(
            Arc::new(MemoryStore::new()),
            clock,
            FakePlugins::new(),
            Arc::new(gate),
        )
    }

    pub fn with(
        store: Arc<dyn Store>,
        clock: VirtualClock,
        plugins: Arc<FakePlugins>,
        gate: Arc<dyn PolicyGate>,
    ) -> Harness {
        Harness::with_config(store, clock, plugins, gate, RuntimeConfig::default())
    }

    pub fn with_config(
        store: Arc<dyn Store>,
        clock: VirtualClock,
        plugins: Arc<FakePlugins>,
        gate: Arc<dyn PolicyGate>,
        config: RuntimeConfig,
    ) -> Harness {
        let rt = Runtime::new(RuntimeDeps {
            store: store.clone(),
            clock: Arc::new(clock.clone()),
            plugins: plugins.clone(),
            gate,
            config,
        })
        .expect("runtime");
        Harness {
            rt,
            clock,
            plugins,
            store,
            stop: None,
            serving: None,
        }
    }

    /// Starts `serve` (recovery, then the timer loop) and lets it settle.
    pub async fn serve(&mut self) {
        let (stop, stopped) = oneshot::channel::<()>();
        let rt = self.rt.clone();
        self.serving = Some(tokio::spawn(async move {
            rt.serve(async {
                let _ = stopped.await;
            })
            .await
        }));
        self.stop = Some(stop);
        self.settle().await;
    }

    /// Stops serving; returns once `serve` returned.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(serving) = self.serving.take() {
            serving.await.expect("serve task").expect("serve result");
        }
    }

    pub async fn settle(&self) {
        self.clock.settle().await;
    }

    pub async fn run_for(&self, by: TimeDelta) {
        self.clock.run_for(by).await;
    }

    pub fn deploy(&self, sources: Vec<PlaybookSource>) -> DeployReport {
        self.rt.deploy(sources).expect("deploy")
    }

    pub fn event(&self, kind: &str, contact: &str, dedupe: &str, attributes: Value) -> Event {
        Event {
            kind: kind.into(),
            dedupe_id: dedupe.into(),
            occurred_at: self.clock_now(),
            contact: Some(contact.into()),
            staff: Some("staff_zhang".into()),
            group: None,
            attributes,
        }
    }

    pub fn clock_now(&self) -> Timestamp {
        sop_clock::Clock::now(&self.clock)
    }

    pub async fn ingest(&self, events: Vec<Event>) -> IngestReceipt {
        let receipt = self.rt.ingest(&source(), events).await.expect("ingest");
        self.settle().await;
        receipt
    }

    pub fn run(&self, id: RunId) -> Run {
        self.store.run(id).unwrap().expect("run exists")
    }

    pub fn state(&self, id: RunId) -> sop_engine::RunState {
        decode_state(id, &self.store.run_detail(id).unwrap().unwrap()).unwrap()
    }

    pub fn history(&self, id: RunId) -> Vec<HistoryEntry> {
        self.store
            .history(id, None, 1000)
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }

    pub fn tags(&self, contact: &str) -> Vec<String> {
        self.store
            .contact(&ContactKey::new(TENANT, contact))
            .unwrap()
            .map(|c| c.tags.into_iter().collect())
            .unwrap_or_default()
    }

    pub fn put_contact(&self, contact: sop_store::Contact) {
        self.store
            .commit(sop_store::Batch::new().op(sop_store::Op::PutContact(contact)))
            .unwrap();
    }
}

pub fn source() -> EventSource {
    EventSource {
        tenant: TENANT.into(),
        plugin: "wecom".into(),
        account: ACCOUNT.into(),
    }
}
