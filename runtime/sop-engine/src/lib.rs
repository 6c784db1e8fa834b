//! The sop engine's run interpreter: a pure, deterministic state machine.
//!
//! [`advance`] applies one [`Input`] (a start, a timer, an event, an action's result, ...) to a
//! [`RunState`] and returns the next state with the [`Effect`]s to perform (invoke an action,
//! arm a timer, subscribe to an event, tag the contact, append history, finish). It reads no
//! clock and does no I/O: the caller commits the new state and the effects in one atomic write,
//! then performs the effects and feeds their results back as inputs. See `docs/engine.md`.
//!
//! ```
//! use sop_engine::*;
//!
//! let src = "id: hello\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: pause\n    wait: 1h\n";
//! let playbook = sop_dsl::load(src, None).playbook;
//! let now = "2026-01-05T02:00:00Z".parse().unwrap();
//! let subject = Subject { kind: SubjectKind::Contact, id: "wm_1".into(), account: "acme".into() };
//! let run = RunState::new(RunId("r1".into()), &playbook, subject, now);
//! let (contact, config) = (ContactView::new("wm_1"), EngineConfig::default());
//! let ctx = Context { now, contact: &contact, catalog: None, config: &config };
//! let start = Input::Start { cause: StartCause::Manual { by: "ops".into() } };
//! let t = advance(&playbook, &run, &start, &ctx);
//! assert_eq!(t.state.status, RunStatus::WaitingTimer);
//! assert!(t.effects.iter().any(|e| matches!(e, Effect::ScheduleTimer { .. })));
//! ```

mod action;
mod config;
mod contact;
mod context;
mod effect;
mod enrollment;
mod event;
mod hash;
mod ids;
mod input;
mod local_time;
mod retry;
mod routing;
mod run_state;
mod split;
mod steps;
mod template;
mod transition;

pub use config::{EngineConfig, OnUnknown, RetryPolicy};
pub use contact::ContactView;
pub use context::Context;
pub use effect::{Effect, HistoryEntry, Invocation, Subscription, SubscriptionPurpose};
pub use enrollment::{Enrollment, PriorRun, decide_enrollment, flow_key};
pub use event::{Event, StartCause};
pub use hash::stable_hash;
pub use ids::{IdempotencyKey, RunId, SubscriptionId, TimerId};
pub use input::{ActionResult, Input, OutcomeStatus, PluginError};
pub use local_time::next_local_time;
pub use retry::transient_delay_ms;
pub use routing::{KEPT_EVENTS, Route, route_event, route_event_to_runs, waited_event_kinds};
pub use run_state::{
    Attempts, Finish, RunState, RunStatus, STATE_FORMAT, StepFailure, Subject, SubjectKind, Waiting,
};
pub use split::choose_arm;
pub use transition::{Transition, advance};
