//! A tiny in-test driver: feeds inputs to `advance`, performs the effects against an in-memory
//! world (timers, subscriptions, the contact) and a fake plugin, and keeps a virtual time.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use sop_dsl::{Catalog, Playbook};
use sop_engine::*;

/// What the fake plugin does when an action is invoked.
#[derive(Debug, Clone)]
pub enum Behaviour {
    Succeeds,
    /// Fails with a transient error this many times, then succeeds.
    Transient(u32),
    /// Answers "too fast, retry after ms" this many times, then succeeds.
    RateLimited(u32, u64),
    /// Answers auth-expired this many times, then succeeds.
    AuthExpired(u32),
    /// Accepted; the outcome is done once `confirm_after_ms` passed (never when `None`).
    Accepted(Option<u64>),
    /// Accepted, and the outcome check reports failure.
    AcceptedThenFails,
    /// Timeout after sending: outcome unknown.
    Unknown,
    Permanent,
    InvalidInput,
}

pub fn utc(text: &str) -> DateTime<Utc> {
    text.parse().expect("test instant")
}

pub fn load(path: &str) -> Playbook {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    let src = std::fs::read_to_string(&file).expect("playbook file");
    let loaded = sop_dsl::load(&src, Some(&catalog()));
    assert!(!loaded.has_errors(), "{path}: {:?}", loaded.diagnostics);
    loaded.playbook
}

pub fn parse(src: &str) -> Playbook {
    let loaded = sop_dsl::load(src, None);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.playbook
}

pub fn catalog() -> Catalog {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/plugins");
    Catalog::load_dir(&dir).expect("bundled manifests")
}

pub struct Driver {
    pub playbook: Playbook,
    pub catalog: Option<Catalog>,
    pub config: EngineConfig,
    pub contact: ContactView,
    pub now: DateTime<Utc>,
    pub state: RunState,
    pub timers: BTreeMap<TimerId, DateTime<Utc>>,
    pub subscriptions: BTreeMap<SubscriptionId, Subscription>,
    pub behaviours: HashMap<String, Behaviour>,
    /// Calls the fake plugin received per key, and when the accepted ones were accepted.
    calls: HashMap<IdempotencyKey, u32>,
    accepted_at: HashMap<IdempotencyKey, DateTime<Utc>>,
    checks: Vec<(DateTime<Utc>, IdempotencyKey, String)>,
    /// Every invocation handed out, in order, with the virtual time.
    pub invocations: Vec<(DateTime<Utc>, Invocation)>,
    pub history: Vec<HistoryEntry>,
    pub handoffs: Vec<(String, Option<String>, DateTime<Utc>)>,
    pub ignored: Vec<String>,
}

impl Driver {
    pub fn new(playbook: Playbook, contact: ContactView, now: DateTime<Utc>) -> Self {
        let subject = Subject {
            kind: SubjectKind::Contact,
            id: contact.id.clone(),
            account: "demo-corp".into(),
        };
        let state = RunState::new(RunId("run-0001".into()), &playbook, subject, now);
        Driver {
            playbook,
            catalog: Some(catalog()),
            config: EngineConfig::default(),
            contact,
            now,
            state,
            timers: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            behaviours: HashMap::new(),
            calls: HashMap::new(),
            accepted_at: HashMap::new(),
            checks: Vec::new(),
            invocations: Vec::new(),
            history: Vec::new(),
            handoffs: Vec::new(),
            ignored: Vec::new(),
        }
    }

    /// A run for a customer group instead of a contact.
    pub fn for_group(mut self) -> Self {
        self.state.subject.kind = SubjectKind::Group;
        self
    }

    pub fn with_run_id(mut self, id: &str) -> Self {
        self.state.id = RunId(id.into());
        self
    }

    pub fn behave(mut self, action: &str, behaviour: Behaviour) -> Self {
        self.behaviours.insert(action.into(), behaviour);
        self
    }

    pub fn status(&self) -> RunStatus {
        self.state.status
    }

    pub fn start_manual(&mut self) {
        self.feed(Input::Start {
            cause: StartCause::Manual { by: "test".into() },
        });
    }

    pub fn start_with_event(&mut self, kind: &str, attributes: Value) {
        let event = self.event(kind, attributes);
        self.feed(Input::Start {
            cause: StartCause::Event { event },
        });
    }

    pub fn event(&self, kind: &str, attributes: Value) -> Event {
        Event {
            kind: kind.into(),
            dedupe_id: format!("{kind}@{}", self.now.timestamp_millis()),
            occurred_at: self.now,
            contact: Some(self.contact.id.clone()),
            staff: Some("staff_zhang".into()),
            group: None,
            attributes,
        }
    }

    /// Delivers an event the way the wiring will: only if a subscription of this run wants
    /// its kind, then `advance` decides with the filters.
    pub fn send_event(&mut self, kind: &str, attributes: Value) {
        let event = self.event(kind, attributes);
        let subscribed = self.subscriptions.values().any(|s| s.event == kind);
        let route = route_event(&self.playbook, &self.state, &event, &self.contact, self.now);
        if !subscribed {
            assert_eq!(route, None, "a route without a subscription for {kind}");
            return;
        }
        let before = self.state.clone();
        self.feed(Input::Event { event });
        // route_event predicts exactly what advance does.
        assert_eq!(
            route.is_some(),
            self.state != before,
            "route_event disagrees for {kind}"
        );
    }

    /// Moves virtual time forward, firing due timers and outcome checks in order.
    pub fn advance_time(&mut self, by: TimeDelta) {
        let target = self.now + by;
        loop {
            let next_timer = self.timers.iter().map(|(id, due)| (*due, id.clone())).min();
            let next_check = self
                .checks
                .iter()
                .enumerate()
                .map(|(i, (at, _, _))| (*at, i))
                .min();
            let timer_due = next_timer
                .as_ref()
                .map(|(d, _)| *d)
                .filter(|d| *d <= target);
            let check_due = next_check.map(|(d, _)| d).filter(|d| *d <= target);
            match (timer_due, check_due) {
                (None, None) => break,
                (Some(t), c) if c.is_none_or(|c| t <= c) => {
                    let (due, timer) = next_timer.expect("timer");
                    self.now = self.now.max(due);
                    self.timers.remove(&timer);
                    self.feed(Input::TimerFired { timer });
                }
                _ => {
                    let (at, i) = next_check.expect("check");
                    self.now = self.now.max(at);
                    let (_, key, _handle) = self.checks.remove(i);
                    let status = self.check_outcome(&key);
                    self.feed(Input::Outcome { key, status });
                }
            }
        }
        self.now = target;
    }

    pub fn feed(&mut self, input: Input) {
        let mut queue = vec![input];
        while let Some(input) = queue.pop() {
            let ctx = Context {
                now: self.now,
                contact: &self.contact,
                catalog: self.catalog.as_ref(),
                config: &self.config,
            };
            let t = advance(&self.playbook, &self.state, &input, &ctx);
            if let Some(reason) = t.ignored {
                self.ignored.push(reason);
                continue;
            }
            self.state = t.state;
            for effect in t.effects {
                if let Some(next) = self.perform(effect) {
                    queue.push(next);
                }
            }
        }
    }

    fn perform(&mut self, effect: Effect) -> Option<Input> {
        match effect {
            Effect::InvokeAction(invocation) => {
                self.invocations.push((self.now, invocation.clone()));
                let result = self.call_plugin(&invocation);
                Some(Input::ActionResult {
                    key: invocation.key,
                    result,
                })
            }
            Effect::CheckOutcome {
                invocation,
                handle,
                at,
            } => {
                self.checks.push((at, invocation.key, handle));
                None
            }
            Effect::ScheduleTimer { timer, due } => {
                self.timers.insert(timer, due);
                None
            }
            Effect::CancelTimer { timer } => {
                self.timers.remove(&timer);
                None
            }
            Effect::Subscribe(s) => {
                self.subscriptions.insert(s.id.clone(), s);
                None
            }
            Effect::Unsubscribe { subscription } => {
                self.subscriptions.remove(&subscription);
                None
            }
            Effect::SetAttribute { name, value } => {
                self.contact.attributes.insert(name, value);
                None
            }
            Effect::AddTags { tags } => {
                self.contact.tags.extend(tags);
                None
            }
            Effect::RemoveTags { tags } => {
                for tag in tags {
                    self.contact.tags.remove(&tag);
                }
                None
            }
            Effect::Handoff {
                to, note, deadline, ..
            } => {
                self.handoffs.push((to, note, deadline));
                None
            }
            Effect::History(entry) => {
                self.history.push(entry);
                None
            }
            Effect::FinishRun { .. } => None,
        }
    }

    fn call_plugin(&mut self, invocation: &Invocation) -> ActionResult {
        let name = format!("{}.{}", invocation.plugin, invocation.action);
        let calls = self.calls.entry(invocation.key.clone()).or_insert(0);
        *calls += 1;
        let n = *calls;
        let error = |error| ActionResult::Error { error };
        let done = ActionResult::Done {
            output: json!({ "ok": true, "call": n }),
        };
        match self
            .behaviours
            .get(&name)
            .cloned()
            .unwrap_or(Behaviour::Succeeds)
        {
            Behaviour::Succeeds => done,
            Behaviour::Transient(times) if n <= times => error(PluginError::Transient {
                message: "502 from platform".into(),
            }),
            Behaviour::RateLimited(times, ms) if n <= times => error(PluginError::RateLimited {
                retry_after_ms: ms,
                message: "45009".into(),
            }),
            Behaviour::AuthExpired(times) if n <= times => error(PluginError::AuthExpired {
                message: "42001 token expired".into(),
            }),
            Behaviour::Transient(_) | Behaviour::RateLimited(..) | Behaviour::AuthExpired(_) => {
                done
            }
            Behaviour::Accepted(_) | Behaviour::AcceptedThenFails => {
                self.accepted_at.insert(invocation.key.clone(), self.now);
                ActionResult::Accepted {
                    handle: format!("msg-{}", invocation.key),
                    check_after_ms: 60_000,
                    output: json!({ "msgid": format!("msg-{}", invocation.key) }),
                }
            }
            Behaviour::Unknown => error(PluginError::OutcomeUnknown {
                message: "timeout after sending".into(),
            }),
            Behaviour::Permanent => error(PluginError::Permanent {
                message: "84061 not a friend".into(),
            }),
            Behaviour::InvalidInput => error(PluginError::InvalidInput {
                message: "40098 bad welcome code".into(),
            }),
        }
    }

    fn check_outcome(&self, key: &IdempotencyKey) -> OutcomeStatus {
        let name = self
            .invocations
            .iter()
            .find(|(_, i)| &i.key == key)
            .map(|(_, i)| format!("{}.{}", i.plugin, i.action))
            .unwrap_or_default();
        let accepted = self.accepted_at.get(key).copied().unwrap_or(self.now);
        match self.behaviours.get(&name) {
            Some(Behaviour::AcceptedThenFails) => OutcomeStatus::Failed {
                reason: "staff never confirmed".into(),
            },
            Some(Behaviour::Accepted(Some(ms)))
                if self.now >= accepted + TimeDelta::milliseconds(*ms as i64) =>
            {
                OutcomeStatus::Done {
                    output: json!({ "sent": 1 }),
                }
            }
            _ => OutcomeStatus::Pending {
                check_after_ms: 600_000,
            },
        }
    }

    /// Names of the actions invoked, in order (retries included).
    pub fn invoked(&self) -> Vec<String> {
        self.invocations
            .iter()
            .map(|(_, i)| format!("{}.{}", i.plugin, i.action))
            .collect()
    }

    /// Ids of the steps whose actions were invoked, in order (retries included).
    pub fn invoked_steps(&self) -> Vec<String> {
        self.invocations
            .iter()
            .map(|(_, i)| i.step.to_string())
            .collect()
    }

    pub fn finish_reason(&self) -> String {
        self.state
            .finish
            .as_ref()
            .map(|f| f.reason.clone())
            .unwrap_or_default()
    }
}
