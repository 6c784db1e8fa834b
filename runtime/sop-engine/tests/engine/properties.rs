//! Property: for random input sequences the interpreter never panics, is deterministic, every
//! idempotency key names exactly one (step, iteration), and no (step, iteration) is performed
//! twice: an action goes out again only after an answer that says it did not take effect.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use serde_json::json;
use sop_dsl::catalog::Delivery;
use sop_dsl::{Catalog, Playbook};
use sop_engine::*;

use crate::driver::{catalog, load, parse, utc};

#[derive(Debug, Clone)]
enum Op {
    Start,
    FireArmedTimer,
    FireStaleTimer(u8),
    Answer(u8),
    AnswerWrongKey(u8),
    Outcome(u8),
    Event {
        kind: u8,
        text: u8,
        other_contact: bool,
    },
    HandoffAnswered,
    Cancel,
    Wait(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Start),
        6 => Just(Op::FireArmedTimer),
        1 => any::<u8>().prop_map(Op::FireStaleTimer),
        8 => any::<u8>().prop_map(Op::Answer),
        1 => any::<u8>().prop_map(Op::AnswerWrongKey),
        3 => any::<u8>().prop_map(Op::Outcome),
        4 => (any::<u8>(), any::<u8>(), any::<bool>())
            .prop_map(|(kind, text, other_contact)| Op::Event { kind, text, other_contact }),
        1 => Just(Op::HandoffAnswered),
        1 => prop::bool::weighted(0.1).prop_map(|c| if c { Op::Cancel } else { Op::Wait(60) }),
        2 => (0u32..3 * 86_400).prop_map(Op::Wait),
    ]
}

const KINDS: [&str; 5] = [
    "wecom.message_received",
    "shop.order_paid",
    "wecom.group_member_joined",
    "douyin.message_received",
    "wecom.contact_added",
];
const TEXTS: [&str; 4] = ["1", "我要退货", "hi", ""];

fn result(pick: u8) -> ActionResult {
    let error = |error| ActionResult::Error { error };
    match pick % 11 {
        0..=3 => ActionResult::Done {
            output: json!({"ok": true}),
        },
        4 => ActionResult::Accepted {
            handle: "h".into(),
            check_after_ms: 60_000,
            output: json!({}),
        },
        5 => error(PluginError::Transient {
            message: "t".into(),
        }),
        6 => error(PluginError::RateLimited {
            retry_after_ms: 1_000,
            message: "r".into(),
        }),
        7 => error(PluginError::AuthExpired {
            message: "a".into(),
        }),
        8 => error(PluginError::OutcomeUnknown {
            message: "u".into(),
        }),
        9 => error(PluginError::Permanent {
            message: "p".into(),
        }),
        _ => ActionResult::Skipped {
            reason: "cap".into(),
        },
    }
}

fn outcome(pick: u8) -> OutcomeStatus {
    match pick % 3 {
        0 => OutcomeStatus::Done { output: json!({}) },
        1 => OutcomeStatus::Pending {
            check_after_ms: 1_000,
        },
        _ => OutcomeStatus::Failed { reason: "f".into() },
    }
}

/// Whether the answer means the action did not take effect, so sending again is allowed.
fn allows_resend(result: &ActionResult, delivery: Delivery) -> bool {
    match result {
        ActionResult::Error { error } => match error {
            PluginError::Transient { .. }
            | PluginError::RateLimited { .. }
            | PluginError::AuthExpired { .. } => true,
            PluginError::OutcomeUnknown { .. } => delivery == Delivery::Idempotent,
            _ => false,
        },
        _ => false,
    }
}

struct World {
    playbook: Playbook,
    catalog: Catalog,
    config: EngineConfig,
    contact: ContactView,
    state: RunState,
    now: DateTime<Utc>,
    /// key -> (step, iteration), and the reverse.
    keys: HashMap<IdempotencyKey, (String, u32)>,
    step_keys: HashMap<(String, u32), IdempotencyKey>,
    sent: HashMap<IdempotencyKey, u32>,
    resends_allowed: HashMap<IdempotencyKey, u32>,
    settled: HashSet<IdempotencyKey>,
}

impl World {
    fn apply(&mut self, input: Input) -> Result<(), TestCaseError> {
        let ctx = Context {
            now: self.now,
            contact: &self.contact,
            catalog: Some(&self.catalog),
            config: &self.config,
        };
        let t = advance(&self.playbook, &self.state, &input, &ctx);
        prop_assert_eq!(
            &t,
            &advance(&self.playbook, &self.state, &input, &ctx),
            "deterministic"
        );
        if t.ignored.is_some() {
            prop_assert!(t.effects.is_empty());
            prop_assert_eq!(&t.state, &self.state);
            return Ok(());
        }
        prop_assert!(!self.state.status.is_terminal(), "a finished run moved");
        if let Input::ActionResult { key, result } = &input {
            let delivery = match &self.state.waiting {
                Some(Waiting::Result { invocation }) => invocation.delivery,
                _ => Delivery::AtMostOnce,
            };
            if allows_resend(result, delivery) {
                *self.resends_allowed.entry(key.clone()).or_default() += 1;
            } else {
                self.settled.insert(key.clone());
            }
        }
        for effect in &t.effects {
            if let Effect::InvokeAction(inv) = effect {
                let step = (inv.step.to_string(), inv.iteration);
                prop_assert_eq!(
                    inv.key.as_str(),
                    format!("{}/{}/{}", self.state.id, step.0, step.1)
                );
                let known = self.keys.entry(inv.key.clone()).or_insert(step.clone());
                prop_assert_eq!(&*known, &step, "one key, two steps");
                let key = self.step_keys.entry(step).or_insert(inv.key.clone());
                prop_assert_eq!(&*key, &inv.key, "one step iteration, two keys");
                prop_assert!(
                    !self.settled.contains(&inv.key),
                    "sent again after it took effect: {}",
                    inv.key
                );
                let sent = self.sent.entry(inv.key.clone()).or_default();
                *sent += 1;
                let allowed = 1 + self.resends_allowed.get(&inv.key).copied().unwrap_or(0);
                prop_assert!(
                    *sent <= allowed,
                    "{} sent {} times, {} allowed",
                    inv.key,
                    sent,
                    allowed
                );
            }
        }
        let stored: RunState =
            serde_json::from_str(&serde_json::to_string(&t.state).unwrap()).unwrap();
        prop_assert_eq!(&stored, &t.state, "state survives storage");
        for effect in &t.effects {
            match effect {
                Effect::AddTags { tags } => self.contact.tags.extend(tags.iter().cloned()),
                Effect::SetAttribute { name, value } => {
                    self.contact.attributes.insert(name.clone(), value.clone());
                }
                _ => {}
            }
        }
        self.state = t.state;
        Ok(())
    }

    fn input_for(&self, op: &Op) -> Option<Input> {
        let awaited = self.state.waiting.as_ref().and_then(Waiting::key).cloned();
        Some(match op {
            Op::Start => Input::Start {
                cause: StartCause::Manual { by: "p".into() },
            },
            Op::FireArmedTimer => Input::TimerFired {
                timer: self.state.waiting.as_ref()?.timer()?.clone(),
            },
            Op::FireStaleTimer(n) => Input::TimerFired {
                timer: TimerId(format!("{}/x/{n}/wait", self.state.id)),
            },
            Op::Answer(pick) => Input::ActionResult {
                key: awaited?,
                result: result(*pick),
            },
            Op::AnswerWrongKey(pick) => Input::ActionResult {
                key: IdempotencyKey(format!("{}/other/{pick}", self.state.id)),
                result: result(*pick),
            },
            Op::Outcome(pick) => Input::Outcome {
                key: awaited?,
                status: outcome(*pick),
            },
            Op::Event {
                kind,
                text,
                other_contact,
            } => Input::Event {
                event: Event {
                    kind: KINDS[*kind as usize % KINDS.len()].into(),
                    dedupe_id: String::new(),
                    occurred_at: self.now,
                    contact: Some(if *other_contact {
                        "other".into()
                    } else {
                        self.contact.id.clone()
                    }),
                    staff: None,
                    group: None,
                    attributes: json!({ "text": TEXTS[*text as usize % TEXTS.len()], "state": "qr", "amount": 1 }),
                },
            },
            Op::HandoffAnswered => Input::HandoffAnswered { by: "staff".into() },
            Op::Cancel => Input::Cancel { reason: "p".into() },
            Op::Wait(_) => return None,
        })
    }
}

fn playbooks() -> Vec<Playbook> {
    vec![
        load("playbooks/reactivation.yaml"),
        load("playbooks/welcome.yaml"),
        load("playbooks/douyin-dm.yaml"),
        parse(
            "id: loop\nversion: 1\ntriggers: [{manual: true}]\ngoals: [{event: shop.order_paid}]\nsteps:\n  - id: ping\n    action: wecom.mark_tag\n    params: {userid: a, external_userid: b}\n  - id: send\n    action: wecom.mass_send_contacts\n    params: {sender: a, contacts: [b], text: hi}\n  - id: w\n    wait_for: {event: wecom.message_received, timeout: 1h, on_timeout: again}\n  - id: h\n    handoff: {deadline: 10m}\n  - id: again\n    wait: 5m\n  - id: back\n    goto: ping\n",
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_inputs_never_panic_nor_send_one_step_iteration_twice(
        which in 0usize..4,
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let playbook = playbooks().swap_remove(which);
        let now = utc("2026-03-07T17:00:00Z");
        let subject = Subject { kind: SubjectKind::Contact, id: "wm_1".into(), account: "a".into() };
        let state = RunState::new(RunId("run-p".into()), &playbook, subject, now);
        let mut contact = ContactView::new("wm_1");
        contact.owner = Some("staff".into());
        let mut world = World {
            playbook,
            catalog: catalog(),
            config: EngineConfig::default(),
            contact,
            state,
            now,
            keys: HashMap::new(),
            step_keys: HashMap::new(),
            sent: HashMap::new(),
            resends_allowed: HashMap::new(),
            settled: HashSet::new(),
        };
        world.apply(Input::Start { cause: StartCause::Manual { by: "p".into() } })?;
        for op in &ops {
            if let Op::Wait(seconds) = op {
                world.now += TimeDelta::seconds(i64::from(*seconds));
            }
            if let Some(input) = world.input_for(op) {
                world.apply(input)?;
            }
        }
    }
}
