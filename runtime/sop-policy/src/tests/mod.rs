//! Gate tests on a virtual clock and the in-memory store.

mod admit;
mod rate;

use std::sync::Arc;

use serde_json::json;
use sop_clock::{Timestamp, VirtualClock};
use sop_dsl::Catalog;
use sop_dsl::catalog::{ActionAudience, Delivery};
use sop_dsl::model::{CapAction, Category, Policy, QuietHours, StepId};
use sop_engine::{IdempotencyKey, Invocation, RunId};
use sop_store::{Batch, Contact, ContactKey, MemoryStore, Store};

use crate::{Admission, Gate, GateRequest, PolicyConfig};

pub(crate) fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub(crate) fn shipped_catalog() -> Catalog {
    crate::limits::tests::catalog()
}

/// A plugin `p` with one slow account limit (1 per 10 s) used by every action, plus a
/// recipient limit for `notify`.
pub(crate) fn slow_catalog() -> Catalog {
    let spec = json!({
        "name": "p",
        "actions": [
            {"name": "send", "delivery": "at_most_once", "audience": "contact", "rate_limits": ["slow"]},
            {"name": "notify", "delivery": "at_most_once", "audience": "staff", "rate_limits": ["slow", "member"]}
        ],
        "rate_limits": [
            {"name": "slow", "scope": "account", "max": 1, "per_seconds": 10, "error_code": "45009"},
            {"name": "member", "scope": "recipient", "max": 1, "per_seconds": 60}
        ],
        "touch_limits": []
    });
    let mut catalog = Catalog::default();
    catalog
        .insert(serde_json::from_value(spec).unwrap())
        .unwrap();
    catalog
}

/// A gate that has been running for an hour at `start` (its limiters refilled since it
/// started: see [`fresh_gate`] for one that just started).
pub(crate) fn gate_with(
    config: PolicyConfig,
    catalog: &Catalog,
    start: &str,
) -> (Arc<Gate>, VirtualClock) {
    let clock = VirtualClock::new(t(start) - sop_clock::TimeDelta::hours(1));
    let gate = Gate::new(config, catalog, Arc::new(clock.clone())).unwrap();
    clock.advance(sop_clock::TimeDelta::hours(1));
    (Arc::new(gate), clock)
}

/// A gate started at the clock's time (a daemon that just started or restarted).
pub(crate) fn fresh_gate(
    config: PolicyConfig,
    catalog: &Catalog,
    clock: &VirtualClock,
) -> Arc<Gate> {
    Arc::new(Gate::new(config, catalog, Arc::new(clock.clone())).unwrap())
}

/// An invocation of `plugin.action` by run `run`.
pub(crate) fn invocation(
    run: &str,
    plugin: &str,
    action: &str,
    audience: ActionAudience,
) -> Invocation {
    Invocation {
        step: StepId("send".into()),
        iteration: 0,
        plugin: plugin.into(),
        action: action.into(),
        account: "acme".into(),
        input: json!({}),
        key: IdempotencyKey::new(&RunId(run.into()), "send", 0),
        delivery: Delivery::AtMostOnce,
        audience,
        asynchronous: false,
        time_critical: false,
        policy: Policy {
            quiet_hours: None,
            category: Category::Marketing,
            on_cap: CapAction::Defer,
        },
        attempt: 1,
    }
}

pub(crate) fn marketing(run: &str) -> Invocation {
    invocation(run, "wecom", "mass_send_contacts", ActionAudience::Contact)
}

pub(crate) fn quiet_off(mut inv: Invocation) -> Invocation {
    inv.policy.quiet_hours = Some(QuietHours::Off);
    inv
}

pub(crate) fn contact(id: &str, zone: Option<&str>) -> Contact {
    let mut c = Contact::new(ContactKey::new("acme", id), t("2026-01-01T00:00:00Z"));
    c.time_zone = zone.map(Into::into);
    c
}

/// Admits and, on a pass, commits the touches as the runtime would (with the outbox intent).
pub(crate) fn send(
    gate: &Gate,
    store: &MemoryStore,
    inv: &Invocation,
    c: &Contact,
    now: Timestamp,
) -> Admission {
    let req = GateRequest {
        invocation: inv,
        tenant: "acme",
        contact: Some(c),
        group: None,
        now,
    };
    let admission = gate.admit(store, &req).unwrap();
    if let Admission::Pass { touches, .. } = &admission {
        store
            .commit(Batch {
                checks: vec![],
                ops: touches.clone(),
            })
            .unwrap();
    }
    admission
}

pub(crate) fn deferred_until(a: &Admission) -> Timestamp {
    match a {
        Admission::Defer { until, .. } => *until,
        other => panic!("expected a deferral, got {other:?}"),
    }
}

pub(crate) fn is_pass(a: &Admission) -> bool {
    matches!(a, Admission::Pass { .. })
}
