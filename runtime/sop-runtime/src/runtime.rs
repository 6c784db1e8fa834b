//! The runtime: shared state, the run-transition primitive (load → advance → one commit →
//! perform), and the operator-facing API.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use sop_clock::{Clock, Timestamp};
use sop_dsl::Playbook;
use sop_dsl::model::AudienceTarget;
use sop_engine::{Context, Input, RunState as EngineState, StartCause};
use sop_store::{
    Batch, ContactKey, GroupKey, Op, OptOut, Run, RunId, Store, StoreError, Subject, TimerKey,
};
use tokio::sync::Notify;

use crate::config::RuntimeConfig;
use crate::error::RuntimeError;
use crate::gate::PolicyGate;
use crate::mapping::{decode_state, engine_run_id, engine_status, shard_of, store_subject};
use crate::plugins::Plugins;
use crate::registry::{DeployReport, Deployment, PlaybookSource, Registry};
use crate::tx::{Tx, Work};

/// Everything the runtime is wired to.
#[derive(Debug)]
pub struct RuntimeDeps {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub plugins: Arc<dyn Plugins>,
    /// The policy gate (`sop_policy::Gate`, or [`PassThrough`](crate::PassThrough)).
    pub gate: Arc<dyn PolicyGate>,
    pub config: RuntimeConfig,
}

/// Who a manual start is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManualAudience {
    /// These contact ids of the playbook's tenant.
    Contacts(Vec<String>),
    /// These group ids of the playbook's tenant.
    Groups(Vec<String>),
    /// Every contact (or group, for a group playbook) of the tenant the playbook's audience
    /// admits, read page by page.
    Everyone,
}

/// What a manual start (or a batch of trigger enrolments) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManualReceipt {
    pub enrolled: Vec<RunId>,
    /// Subjects not enrolled, with the entry rule's reason.
    pub skipped: Vec<(String, String)>,
}

/// One enrolment a trigger asks for (cron fire, inactivity scan, API).
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollRequest {
    pub playbook: String,
    pub subject: Subject,
    pub cause: StartCause,
    /// (source, id) that makes the enrolment happen once (a fire's per-subject key, see
    /// `sop_triggers::Enrollment::dedupe_key`); committed with the run.
    pub dedupe: Option<(String, String)>,
}

/// The durable scheduler. Cheap to clone (an `Arc` inside).
#[derive(Debug, Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    /// Flushes of `store` shared by every caller waiting for durability.
    durability: crate::durability::Durability,
    pub clock: Arc<dyn Clock>,
    pub plugins: Arc<dyn Plugins>,
    pub gate: Arc<dyn PolicyGate>,
    pub config: RuntimeConfig,
    pub registry: Registry,
    /// One lane per shard: a subject's transitions are serialised on its lane.
    shards: Vec<tokio::sync::Mutex<()>>,
    /// Wakes the timer loop when a timer earlier than the one it sleeps on is armed.
    pub wake: Notify,
    /// When the timer loop will next look (ms; `i64::MAX` while it scans, so that every
    /// armed timer wakes it).
    pub next_due_ms: AtomicI64,
    /// The latest due time the timer loop has scanned up to (ms; `i64::MIN` before the first
    /// pass). A timer armed at or before it may lie behind the loop's cursor.
    pub scanned_to_ms: AtomicI64,
    /// The next pass starts from the first timer instead of where the last one stopped.
    pub rescan: std::sync::atomic::AtomicBool,
    /// Set while `serve` runs: one scheduler per runtime.
    serving: std::sync::atomic::AtomicBool,
    /// Wakes the trigger loop after a deploy, pause or resume.
    pub triggers_changed: Notify,
    /// Runtime timers (deferrals, outcome checks) being handled, so the loop skips them.
    pub inflight: Mutex<HashSet<TimerKey>>,
    /// Places for timer tasks off the loop (`timers.rs`, `TIMER_TASKS`).
    pub timer_tasks: Arc<tokio::sync::Semaphore>,
    /// Plugin calls (key, attempt) this process recorded in the outbox and has not answered
    /// yet: their `Pending` entries are live, not left over from a crash, so recovery leaves
    /// them alone.
    pub calls: Mutex<HashSet<(sop_store::IdempotencyKey, u32)>>,
    /// Wakes the flow loop (a held start armed, a counted run ended).
    pub flow_wake: Notify,
    /// Runs counted by a flow concurrency limit that ended, for the flow loop.
    pub flow_ended: Mutex<Vec<RunId>>,
    /// Bulk sends dispatched and waiting their turn.
    pub bulk: crate::bulk::BulkQueue,
    /// Outcomes of batched calls, asked once for all their members.
    pub shared_outcomes: crate::batch::SharedOutcomes,
    /// Outcomes waiting to be fed in one commit (`feeds.rs`).
    pub feeds: crate::feeds::FeedQueue,
    /// Set while a start of gathered bulk sends is pending (`dispatch.rs`).
    pub bulk_gathering: std::sync::atomic::AtomicBool,
    /// Runs whose send this process parked alone on its deferral timer: it comes back at its
    /// own turn and goes straight to the gate.
    pub parked: Mutex<HashSet<RunId>>,
    /// Deferral timers whose sends wait in the bulk queue, by run: in flight (the timer loop
    /// skips them) until the send is dispatched.
    pub queued_deferrals: Mutex<std::collections::HashMap<RunId, TimerKey>>,
}

/// A run as stored: indexed record, engine state, and its playbook version.
pub(crate) struct Loaded {
    pub run: Run,
    pub state: EngineState,
    pub playbook: Arc<Playbook>,
}

/// Ops committed with a transition as the input's acknowledgement (the fired timer's
/// deletion, the outbox outcome), computed on the run's lane.
pub(crate) type Ack<'a> = dyn Fn(&Inner, &Loaded) -> Result<Vec<Op>, RuntimeError> + Sync + 'a;

/// Longest allowed `flush_interval_ms`: a welcome waits for up to three flushes within its
/// code's 20 seconds.
const MAX_FLUSH_INTERVAL_MS: u64 = 1000;

/// Commit attempts for one input when another lane raced us (a `Conflict`).
const COMMIT_ATTEMPTS: usize = 3;

/// Subjects enrolled per commit, at most (manual starts, cron fires, audience pages). A
/// commit's fixed cost (the store's lock, its batch) is shared; each group holds up to this
/// many lanes while it reads and commits, which a welcome on one of them waits for.
const ENROL_GROUP: usize = 32;

impl Runtime {
    /// Wires the runtime. Nothing runs until [`serve`](Runtime::serve).
    pub fn new(deps: RuntimeDeps) -> Result<Runtime, RuntimeError> {
        let config = &deps.config;
        if config.shards == 0
            || config.timer_page == 0
            || config.audience_page == 0
            || config.housekeeping_seconds == 0
            || config.outcome_recheck_seconds == 0
            || config.bulk_in_flight == 0
        {
            return Err(RuntimeError::BadRequest(
                "runtime.shards, timer_page, audience_page, housekeeping_seconds, \
                 outcome_recheck_seconds and bulk_in_flight must be at least 1"
                    .into(),
            ));
        }
        if config.flush_interval_ms > MAX_FLUSH_INTERVAL_MS {
            return Err(RuntimeError::BadRequest(format!(
                "runtime.flush_interval_ms is {}: at most {MAX_FLUSH_INTERVAL_MS} (every durable \
                 wait, a welcome's among them, may wait that long)",
                config.flush_interval_ms
            )));
        }
        let bulk = crate::bulk::BulkQueue::new(config.bulk_in_flight);
        let catalog = deps.plugins.catalog().clone();
        let shards = (0..deps.config.shards)
            .map(|_| tokio::sync::Mutex::new(()))
            .collect();
        Ok(Runtime {
            inner: Arc::new(Inner {
                durability: crate::durability::Durability::new(
                    deps.store.clone(),
                    std::time::Duration::from_millis(config.flush_interval_ms),
                ),
                store: deps.store,
                clock: deps.clock,
                plugins: deps.plugins,
                gate: deps.gate,
                config: deps.config,
                registry: Registry::new(catalog),
                shards,
                wake: Notify::new(),
                triggers_changed: Notify::new(),
                next_due_ms: AtomicI64::new(i64::MAX),
                scanned_to_ms: AtomicI64::new(i64::MIN),
                rescan: std::sync::atomic::AtomicBool::new(true),
                serving: std::sync::atomic::AtomicBool::new(false),
                inflight: Mutex::new(HashSet::new()),
                timer_tasks: Arc::new(tokio::sync::Semaphore::new(crate::timers::TIMER_TASKS)),
                calls: Mutex::new(HashSet::new()),
                flow_wake: Notify::new(),
                flow_ended: Mutex::new(Vec::new()),
                bulk,
                shared_outcomes: crate::batch::SharedOutcomes::default(),
                feeds: crate::feeds::FeedQueue::default(),
                bulk_gathering: std::sync::atomic::AtomicBool::new(false),
                parked: Mutex::new(HashSet::new()),
                queued_deferrals: Mutex::new(std::collections::HashMap::new()),
            }),
        })
    }

    /// Checks every playbook against the catalog first; all-or-nothing. Unchanged sources
    /// keep their version, changed ones get version+1; runs in flight stay on their version.
    pub fn deploy(&self, playbooks: Vec<PlaybookSource>) -> Result<DeployReport, RuntimeError> {
        let inner = &self.inner;
        let report = inner
            .registry
            .deploy(&*inner.store, playbooks, inner.clock.now())?;
        // Schedules may have changed: the trigger loop recomputes its next fire.
        inner.triggers_changed.notify_one();
        // Held starts of a playbook deployed again (or whose `flow:` changed) are looked at.
        inner.flow_wake.notify_one();
        for deployed in report.playbooks.iter().filter(|p| p.changed) {
            tracing::info!(playbook = %deployed.id, version = deployed.version, removed_steps = ?deployed.removed_steps, "deployed");
        }
        Ok(report)
    }

    /// Starts runs of a deployed playbook for an audience (entry rules apply).
    pub async fn start_manual(
        &self,
        playbook: &str,
        subjects: ManualAudience,
        by: &str,
    ) -> Result<ManualReceipt, RuntimeError> {
        let inner = &self.inner;
        let deployment = inner
            .registry
            .deployment(playbook)
            .ok_or_else(|| RuntimeError::UnknownPlaybook(playbook.into()))?;
        let cause = StartCause::Manual { by: by.into() };
        let tenant = deployment.tenant.clone();
        let mut receipt = ManualReceipt::default();
        let enroll = |subject: Subject| EnrollRequest {
            playbook: playbook.into(),
            subject,
            cause: cause.clone(),
            dedupe: None,
        };
        match subjects {
            ManualAudience::Contacts(ids) => {
                let requests = ids
                    .into_iter()
                    .map(|id| enroll(Subject::Contact(ContactKey::new(&tenant, id))))
                    .collect();
                self.enroll(requests, &mut receipt).await?;
            }
            ManualAudience::Groups(ids) => {
                let requests = ids
                    .into_iter()
                    .map(|id| {
                        enroll(Subject::Group {
                            tenant: tenant.clone(),
                            id,
                        })
                    })
                    .collect();
                self.enroll(requests, &mut receipt).await?;
            }
            ManualAudience::Everyone => {
                let groups = deployment
                    .playbook
                    .audience
                    .as_ref()
                    .is_some_and(|a| a.target == AudienceTarget::Groups);
                let page = inner.config.audience_page;
                let mut after: Option<String> = None;
                loop {
                    let ids: Vec<String> = if groups {
                        inner
                            .store
                            .groups(&tenant, after.as_deref(), page)?
                            .into_iter()
                            .map(|g| g.key.id)
                            .collect()
                    } else {
                        inner
                            .store
                            .contacts(&tenant, after.as_deref(), page)?
                            .into_iter()
                            .map(|c| c.key.id)
                            .collect()
                    };
                    let Some(last) = ids.last().cloned() else {
                        break;
                    };
                    let requests = ids
                        .into_iter()
                        .map(|id| {
                            enroll(if groups {
                                Subject::Group {
                                    tenant: tenant.clone(),
                                    id,
                                }
                            } else {
                                Subject::Contact(ContactKey::new(&tenant, id))
                            })
                        })
                        .collect();
                    self.enroll(requests, &mut receipt).await?;
                    after = Some(last);
                }
            }
        }
        Ok(receipt)
    }

    /// Enrols subjects a trigger chose (cron fire, inactivity page): per subject the entry
    /// rules are decided and the run is created and started in one commit. Paused playbooks
    /// enrol nobody.
    pub async fn enroll(
        &self,
        requests: Vec<EnrollRequest>,
        receipt: &mut ManualReceipt,
    ) -> Result<(), RuntimeError> {
        self.enroll_with(requests, receipt, Vec::new()).await
    }

    /// [`enroll`](Runtime::enroll), committing `extra` ops (e.g. the cron fire's
    /// `Op::SetCronLastFire`) with the first enrolment, or alone if there is none.
    pub async fn enroll_with(
        &self,
        requests: Vec<EnrollRequest>,
        receipt: &mut ManualReceipt,
        extra: Vec<Op>,
    ) -> Result<(), RuntimeError> {
        // The runs' first actions are dispatched once every subject is enrolled, error or
        // not: bulk sends of one text enrolled together then ride in shared calls
        // (`batch.rs`) instead of each starting alone in a free place.
        let mut work = Vec::new();
        let enrolled = self.enroll_each(requests, receipt, extra, &mut work).await;
        self.inner.perform(work);
        enrolled
    }

    async fn enroll_each(
        &self,
        requests: Vec<EnrollRequest>,
        receipt: &mut ManualReceipt,
        mut extra: Vec<Op>,
        work: &mut Vec<Work>,
    ) -> Result<(), RuntimeError> {
        let inner = &self.inner;
        let mut group: Vec<(EnrollRequest, Arc<Deployment>)> = Vec::new();
        for request in requests {
            let deployment = inner
                .registry
                .deployment(&request.playbook)
                .ok_or_else(|| RuntimeError::UnknownPlaybook(request.playbook.clone()))?;
            if inner.registry.is_paused(&deployment.id) {
                let label = subject_label(&request.subject);
                receipt.skipped.push((label, "playbook is paused".into()));
                continue;
            }
            // Flow control reads and writes one record per key, which several starts of a
            // group could share: such starts go one per commit. A subject enrolled twice
            // must see its first run: the group ends before it.
            let alone = Inner::flow_of(&deployment).is_some();
            let full = group.len() >= ENROL_GROUP
                || group.iter().any(|(r, _)| r.subject == request.subject)
                || (alone && !group.is_empty())
                || group
                    .first()
                    .is_some_and(|(_, d)| Inner::flow_of(d).is_some());
            if full {
                self.enroll_group(std::mem::take(&mut group), receipt, &mut extra, work)
                    .await?;
            }
            group.push((request, deployment));
        }
        if !group.is_empty() {
            self.enroll_group(group, receipt, &mut extra, work).await?;
        }
        if !extra.is_empty() {
            inner.store.commit(Batch {
                checks: Vec::new(),
                ops: extra,
            })?;
        }
        Ok(())
    }

    /// Enrols a group of distinct subjects in one commit, on their lanes (taken in lane
    /// order, so two groups never wait on each other crosswise). `extra` goes with the first
    /// commit.
    async fn enroll_group(
        &self,
        group: Vec<(EnrollRequest, Arc<Deployment>)>,
        receipt: &mut ManualReceipt,
        extra: &mut Vec<Op>,
        work: &mut Vec<Work>,
    ) -> Result<(), RuntimeError> {
        let inner = &self.inner;
        let mut shards: Vec<usize> = group
            .iter()
            .map(|(r, _)| shard_of(&r.subject, inner.shards.len()))
            .collect();
        shards.sort_unstable();
        shards.dedup();
        let mut lanes = Vec::with_capacity(shards.len());
        for shard in shards {
            lanes.push(inner.shards[shard].lock().await);
        }
        let mut live = Vec::with_capacity(group.len());
        for (request, deployment) in group {
            if let Some((source, id)) = &request.dedupe
                && inner.store.event_seen(source, id)?.is_some()
            {
                let label = subject_label(&request.subject);
                receipt
                    .skipped
                    .push((label, "enrolled by this fire already".into()));
                continue;
            }
            live.push((request, deployment));
        }
        let mut outcomes = Vec::with_capacity(live.len());
        for attempt in 0..COMMIT_ATTEMPTS {
            let now = inner.clock.now();
            let mut tx = Tx::new();
            for op in extra.iter() {
                tx.batch.push(op.clone());
            }
            outcomes.clear();
            for (request, deployment) in &live {
                if let Some((source, id)) = &request.dedupe {
                    tx.batch.checks.push(sop_store::Check::EventUnseen {
                        source: source.clone(),
                        dedupe_id: id.clone(),
                    });
                    tx.batch.push(Op::MarkEventSeen {
                        source: source.clone(),
                        dedupe_id: id.clone(),
                        at: now,
                    });
                }
                outcomes.push(inner.enroll_into(
                    &mut tx,
                    deployment,
                    &request.subject,
                    &request.cause,
                    now,
                )?);
            }
            match inner.commit_deferred(tx) {
                Ok(done) => {
                    work.extend(done);
                    break;
                }
                Err(RuntimeError::Store(StoreError::Conflict(_)))
                    if attempt + 1 < COMMIT_ATTEMPTS =>
                {
                    metrics::counter!("sop_runtime_commit_conflicts_total").increment(1);
                }
                Err(e) => return Err(e),
            }
        }
        drop(lanes);
        extra.clear();
        for ((request, _), outcome) in live.iter().zip(outcomes) {
            match outcome {
                Ok(run) => receipt.enrolled.push(run),
                Err(reason) => receipt
                    .skipped
                    .push((subject_label(&request.subject), reason)),
            }
        }
        Ok(())
    }

    /// Cancels a run (operator or API); its in-flight call's later result is ignored.
    pub async fn cancel_run(&self, run: RunId, reason: &str) -> Result<(), RuntimeError> {
        let input = Input::Cancel {
            reason: reason.into(),
        };
        self.inner.feed(run, &input, &|_, _| Ok(Vec::new())).await?;
        Ok(())
    }

    /// The staff member answered after a hand-off: the run goes on.
    pub async fn handoff_answered(&self, run: RunId, by: &str) -> Result<(), RuntimeError> {
        let input = Input::HandoffAnswered { by: by.into() };
        match self.inner.feed(run, &input, &|_, _| Ok(Vec::new())).await? {
            Some(reason) => Err(RuntimeError::BadRequest(reason)),
            None => Ok(()),
        }
    }

    /// Records an opt-out (or opt-in) for a contact; the gate skips marketing to opted-out
    /// contacts from the next invocation on. Durable when it returns.
    pub async fn set_consent(
        &self,
        contact: &ContactKey,
        opted_out: bool,
        by: &str,
        source: &str,
    ) -> Result<(), RuntimeError> {
        let inner = &self.inner;
        let subject = Subject::Contact(contact.clone());
        let _lane = inner.lane(&subject).await;
        let now = inner.clock.now();
        let mut tx = Tx::new();
        let record = tx.contact_mut(&*inner.store, contact, now)?;
        record.consent.opted_out = opted_out.then(|| OptOut {
            at: now,
            by: by.into(),
            source: source.into(),
        });
        inner.store.commit(tx.into_batch().batch)?;
        inner.durable().await?;
        metrics::counter!("sop_runtime_consent_changes_total", "source" => "api").increment(1);
        Ok(())
    }

    /// Stops enrolling new runs of the playbook; runs in flight go on.
    pub fn pause(&self, playbook: &str) -> Result<(), RuntimeError> {
        self.known(playbook)?;
        self.inner.registry.set_paused(playbook, true);
        self.inner.triggers_changed.notify_one();
        Ok(())
    }

    /// Enrols new runs of the playbook again.
    pub fn resume(&self, playbook: &str) -> Result<(), RuntimeError> {
        self.known(playbook)?;
        self.inner.registry.set_paused(playbook, false);
        self.inner.triggers_changed.notify_one();
        Ok(())
    }

    /// Pauses the playbook and cancels every live run of it (any version); returns how many.
    pub async fn drain(&self, playbook: &str, reason: &str) -> Result<usize, RuntimeError> {
        self.pause(playbook)?;
        let mut cancelled = 0;
        for state in [sop_store::RunState::Active, sop_store::RunState::Waiting] {
            loop {
                // Cancelled runs leave the state, so always read the first page.
                let page = self.inner.store.runs_by_state(playbook, state, None, 256)?;
                if page.is_empty() {
                    break;
                }
                for run in page {
                    self.cancel_run(run, reason).await?;
                    cancelled += 1;
                }
            }
        }
        Ok(cancelled)
    }

    /// The store the runtime writes (for the admin API's reads).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The current deployment of a playbook.
    pub fn deployment(&self, playbook: &str) -> Option<Arc<Deployment>> {
        self.inner.registry.deployment(playbook)
    }

    /// Recovery, then the timer and trigger loops, until `shutdown` resolves; then flushes
    /// the store. In-flight plugin calls are left to finish or, if the process ends, to be
    /// reconciled at the next start.
    pub async fn serve(
        &self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), RuntimeError> {
        let inner = self.inner.clone();
        if inner.serving.swap(true, Ordering::AcqRel) {
            return Err(RuntimeError::BadRequest(
                "the runtime is already serving".into(),
            ));
        }
        // Cleared also when the caller drops the `serve` future.
        let _serving = Serving(&inner.serving);
        self.serve_until(shutdown).await
    }

    async fn serve_until(
        &self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), RuntimeError> {
        let inner = self.inner.clone();
        inner.recover().await?;
        tokio::select! {
            result = inner.clone().timer_loop() => result?,
            result = self.clone().trigger_loop() => result?,
            result = inner.clone().housekeeping_loop() => result?,
            result = inner.clone().flow_loop() => result?,
            () = shutdown => tracing::info!("runtime shutting down"),
        }
        inner.store.flush()?;
        Ok(())
    }

    fn known(&self, playbook: &str) -> Result<(), RuntimeError> {
        match self.inner.registry.deployment(playbook) {
            Some(_) => Ok(()),
            None => Err(RuntimeError::UnknownPlaybook(playbook.into())),
        }
    }
}

impl Inner {
    /// Waits until everything committed so far is durable, without holding a worker thread.
    pub async fn durable(&self) -> Result<(), RuntimeError> {
        Ok(self.durability.wait().await?)
    }

    /// Takes the lane of a subject.
    pub async fn lane(&self, subject: &Subject) -> tokio::sync::MutexGuard<'_, ()> {
        self.shards[shard_of(subject, self.shards.len())]
            .lock()
            .await
    }

    /// The run as stored, with its playbook version.
    pub fn load(&self, id: RunId) -> Result<Option<Loaded>, RuntimeError> {
        let Some(run) = self.store.run(id)? else {
            return Ok(None);
        };
        let detail = self
            .store
            .run_detail(id)?
            .ok_or_else(|| RuntimeError::Corrupt {
                run: id.to_string(),
                reason: "run has no stored state".into(),
            })?;
        let state = decode_state(id, &detail)?;
        let playbook = self
            .registry
            .get(&*self.store, &run.playbook, run.version)?;
        Ok(Some(Loaded {
            run,
            state,
            playbook,
        }))
    }

    /// Feeds one input to a run on its lane: load, `advance`, commit the transition together
    /// with `pre`'s ops (an acknowledgement: the fired timer's deletion, the outbox outcome),
    /// then perform the effects. Returns why the engine ignored the input, if it did.
    pub async fn feed(
        self: &Arc<Self>,
        id: RunId,
        input: &Input,
        pre: &Ack<'_>,
    ) -> Result<Option<String>, RuntimeError> {
        use tracing::Instrument as _;
        let span = tracing::debug_span!("transition", run = %id);
        self.feed_on_lane(id, input, pre).instrument(span).await
    }

    async fn feed_on_lane(
        self: &Arc<Self>,
        id: RunId,
        input: &Input,
        pre: &Ack<'_>,
    ) -> Result<Option<String>, RuntimeError> {
        let Some(first) = self.store.run(id)? else {
            return Err(RuntimeError::UnknownRun(id.to_string()));
        };
        let _lane = self.lane(&first.subject).await;
        for attempt in 0..COMMIT_ATTEMPTS {
            let Some(loaded) = self.load(id)? else {
                return Err(RuntimeError::UnknownRun(id.to_string()));
            };
            let now = self.clock.now();
            let mut tx = Tx::new();
            for op in pre(self, &loaded)? {
                tx.batch.push(op);
            }
            let ignored = self.advance_into(&mut tx, &loaded, input, now)?;
            if tx.batch.is_empty() {
                return Ok(ignored);
            }
            match self.commit(tx) {
                Ok(()) => return Ok(ignored),
                Err(RuntimeError::Store(StoreError::Conflict(_)))
                    if attempt + 1 < COMMIT_ATTEMPTS =>
                {
                    metrics::counter!("sop_runtime_commit_conflicts_total").increment(1);
                }
                Err(e) => return Err(e),
            }
        }
        Err(RuntimeError::Store(StoreError::Conflict(format!(
            "run {id} kept changing under its lane"
        ))))
    }

    /// Advances a loaded run by `input` into `tx`: the transition is recorded unless the
    /// engine ignored the input; returns why it did.
    pub(crate) fn advance_into(
        &self,
        tx: &mut Tx,
        loaded: &Loaded,
        input: &Input,
        now: Timestamp,
    ) -> Result<Option<String>, RuntimeError> {
        let subject = &loaded.run.subject;
        let view = tx.view(&*self.store, subject, &loaded.state.subject.account, now)?;
        let ctx = Context {
            now,
            contact: &view,
            catalog: Some(&self.registry.catalog),
            config: &self.config.engine,
        };
        let transition = sop_engine::advance(&loaded.playbook, &loaded.state, input, &ctx);
        let ignored = transition.ignored.clone();
        match &ignored {
            Some(reason) => {
                tracing::debug!(run = %loaded.run.id, %reason, "input ignored");
                metrics::counter!("sop_runtime_inputs_ignored_total", "playbook" => loaded.run.playbook.clone()).increment(1);
            }
            None => {
                metrics::counter!("sop_runtime_transitions_total", "playbook" => loaded.run.playbook.clone()).increment(1);
                tx.record(
                    &*self.store,
                    &loaded.playbook,
                    Some(&loaded.run),
                    &loaded.state,
                    subject,
                    &transition,
                    now,
                )?;
            }
        }
        Ok(ignored)
    }

    /// Commits a transaction, then performs its work (spawned: a slow plugin call blocks
    /// nobody) and wakes the timer loop if it armed an earlier timer.
    pub fn commit(self: &Arc<Self>, tx: Tx) -> Result<(), RuntimeError> {
        let work = self.commit_deferred(tx)?;
        self.perform(work);
        Ok(())
    }

    /// Commits a transaction and returns its work, to be performed by the caller (after a
    /// flush, for events).
    pub fn commit_deferred(&self, tx: Tx) -> Result<Vec<Work>, RuntimeError> {
        let prepared = tx.into_batch();
        if prepared.batch.is_empty() {
            return Ok(Vec::new());
        }
        let flow = self.flow_note(&prepared.batch);
        self.store.commit(prepared.batch)?;
        self.flow_notify(flow);
        for (playbook, outcome) in prepared.flow_counts {
            metrics::counter!("sop_flow_starts_total", "playbook" => playbook, "outcome" => outcome)
                .increment(1);
        }
        for (playbook, status) in prepared.finished {
            metrics::counter!("sop_runtime_runs_finished_total", "playbook" => playbook, "status" => status).increment(1);
        }
        if let Some(due) = prepared.earliest_timer {
            self.armed(due);
        }
        Ok(prepared.work)
    }

    /// A timer due at `due` was committed: wake the loop if it would sleep past it.
    pub fn armed(&self, due: Timestamp) {
        if due.timestamp_millis() <= self.scanned_to_ms.load(Ordering::Acquire) {
            self.rescan.store(true, Ordering::Release);
        }
        if due.timestamp_millis() < self.next_due_ms.load(Ordering::Acquire) {
            self.wake.notify_one();
        }
    }

    /// Performs post-commit work.
    pub fn perform(self: &Arc<Self>, work: Vec<Work>) {
        // Bulk sends of a batched action are queued together before any starts, so the
        // first to start finds the others of its batch waiting (`batch.rs`).
        let mut batched = Vec::new();
        for item in work {
            match item {
                Work::Invoke {
                    run,
                    subject,
                    invocation,
                    bulk,
                } => {
                    let shape = bulk
                        .then(|| {
                            crate::batch::shape(
                                &self.registry.catalog,
                                &invocation,
                                self.config.batch_max,
                            )
                        })
                        .flatten();
                    match shape {
                        Some(shape) => {
                            let account = (invocation.plugin, invocation.account);
                            batched.push((account, run, subject, Some((shape.hint, shape.max))));
                        }
                        None => self.start_dispatch(run, subject, invocation, bulk),
                    }
                }
                Work::Handoff {
                    run,
                    playbook,
                    to,
                    deadline,
                } => {
                    // The hand-off itself is in the run's history; operators' tools and the
                    // staff notification action of the playbook's next steps act on it.
                    tracing::info!(%run, %playbook, staff = %to, %deadline, "hand-off to staff");
                    metrics::counter!("sop_runtime_handoffs_total", "playbook" => playbook)
                        .increment(1);
                }
            }
        }
        if !batched.is_empty() {
            self.bulk.enqueue(batched);
            self.start_queued();
        }
    }

    /// A trigger's start: through the playbook's flow control if it has one (which may hold
    /// or drop it), then [`start_into`](Inner::start_into). `Err(reason)` (inside `Ok`): no
    /// run started now (refused, dropped, or held by flow control).
    pub fn enroll_into(
        &self,
        tx: &mut Tx,
        deployment: &Deployment,
        subject: &Subject,
        cause: &StartCause,
        now: Timestamp,
    ) -> Result<Result<RunId, String>, RuntimeError> {
        if Self::flow_of(deployment).is_some() {
            return self.flow_offer(tx, deployment, subject, cause, now);
        }
        self.start_into(tx, deployment, subject, cause, now)
    }

    /// Decides entry for one subject and, if admitted, creates and starts the run in `tx`.
    /// `Err(reason)` (inside `Ok`) is an entry rule's refusal.
    pub fn start_into(
        &self,
        tx: &mut Tx,
        deployment: &Deployment,
        subject: &Subject,
        cause: &StartCause,
        now: Timestamp,
    ) -> Result<Result<RunId, String>, RuntimeError> {
        let playbook = &deployment.playbook;
        let mut prior = Vec::new();
        for summary in self.store.runs_of_subject(subject)? {
            if summary.playbook != deployment.id {
                continue;
            }
            let started_at = match self.store.run(summary.id)? {
                Some(run) => run.created_at,
                None => continue,
            };
            prior.push(sop_engine::PriorRun {
                id: engine_run_id(summary.id),
                status: engine_status(summary.state),
                started_at,
            });
        }
        let view = tx.view(&*self.store, subject, &deployment.account, now)?;
        let label = deployment.id.clone();
        if matches!(subject, Subject::Group { .. }) && crate::groups::is_dismissed(&view) {
            metrics::counter!("sop_runtime_enrollments_total", "playbook" => label, "outcome" => "skipped").increment(1);
            return Ok(Err("the group was dismissed".into()));
        }
        if let sop_engine::Enrollment::Skip { reason } =
            sop_engine::decide_enrollment(playbook, cause, &view, &prior, now)
        {
            metrics::counter!("sop_runtime_enrollments_total", "playbook" => label, "outcome" => "skipped").increment(1);
            return Ok(Err(reason));
        }
        let id = self.store.next_run_id()?;
        let (kind, subject_id) = match subject {
            Subject::Contact(key) => (sop_engine::SubjectKind::Contact, key.id.clone()),
            Subject::Group { id, .. } => (sop_engine::SubjectKind::Group, id.clone()),
        };
        let engine_subject = sop_engine::Subject {
            kind,
            id: subject_id,
            account: deployment.account.clone(),
        };
        debug_assert_eq!(
            &store_subject(crate::mapping::tenant_of(subject), &engine_subject),
            subject
        );
        let state = EngineState::new(engine_run_id(id), playbook, engine_subject, now);
        let ctx = Context {
            now,
            contact: &view,
            catalog: Some(&self.registry.catalog),
            config: &self.config.engine,
        };
        let start = Input::Start {
            cause: cause.clone(),
        };
        let transition = sop_engine::advance(playbook, &state, &start, &ctx);
        if playbook.entry.one_active_run {
            tx.batch.checks.push(sop_store::Check::NoLiveRun {
                subject: subject.clone(),
                playbook: deployment.id.clone(),
            });
        }
        tx.record(
            &*self.store,
            playbook,
            None,
            &state,
            subject,
            &transition,
            now,
        )?;
        metrics::counter!("sop_runtime_enrollments_total", "playbook" => label, "outcome" => "enrolled").increment(1);
        Ok(Ok(id))
    }
}

/// Clears the serving flag when `serve` ends or is dropped.
struct Serving<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A subject as operators read it (no platform secrets; ids only).
pub(crate) fn subject_label(subject: &Subject) -> String {
    match subject {
        Subject::Contact(key) => format!("contact {}/{}", key.tenant, key.id),
        Subject::Group { tenant, id } => format!("group {tenant}/{id}"),
    }
}

/// The group key of a group subject.
pub(crate) fn group_key(subject: &Subject) -> Option<GroupKey> {
    match subject {
        Subject::Group { tenant, id } => Some(GroupKey::new(tenant, id)),
        Subject::Contact(_) => None,
    }
}
