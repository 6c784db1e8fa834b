//! The retry policy: one behaviour per plugin error, asynchronous outcomes, gate verdicts.

use chrono::TimeDelta;
use sop_dsl::catalog::Delivery;
use sop_engine::*;

use crate::driver::{Behaviour, Driver, parse, utc};

const SEND: &str = "id: t\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: send\n    action: wecom.notify_staff\n    params: {touser: a, text: hi}\n  - id: after\n    add_tags: sent\n";
const TAG: &str = "id: t\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: tag\n    action: wecom.mark_tag\n    params: {userid: a, external_userid: b}\n";
const MASS: &str = "id: t\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: mass\n    action: wecom.mass_send_contacts\n    params: {sender: a, contacts: [b], text: hi}\n  - id: after\n    add_tags: sent\n";

fn run(src: &str, action: &str, behaviour: Behaviour) -> Driver {
    let mut d = Driver::new(
        parse(src),
        ContactView::new("wm_1"),
        utc("2026-01-05T02:00:00Z"),
    )
    .behave(action, behaviour);
    d.start_manual();
    d.advance_time(TimeDelta::days(3));
    d
}

fn gaps(d: &Driver) -> Vec<i64> {
    d.invocations
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).num_milliseconds())
        .collect()
}

#[test]
fn transient_errors_are_retried_with_growing_jittered_backoff_and_the_same_key() {
    let d = run(SEND, "wecom.notify_staff", Behaviour::Transient(3));
    assert_eq!(d.invocations.len(), 4);
    assert!(
        d.invocations
            .iter()
            .all(|(_, i)| i.key == d.invocations[0].1.key)
    );
    let attempts: Vec<u32> = d.invocations.iter().map(|(_, i)| i.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 4]);
    let gaps = gaps(&d);
    for (n, gap) in gaps.iter().enumerate() {
        let full = 30_000i64 << n;
        assert!((full / 2..=full).contains(gap), "gap {n} = {gap}");
    }
    assert!(d.contact.tags.contains("sent"));
    assert_eq!(d.status(), RunStatus::Completed);
}

#[test]
fn transient_errors_past_the_cap_fail_the_run_with_the_reason() {
    let d = run(SEND, "wecom.notify_staff", Behaviour::Transient(100));
    assert_eq!(d.invocations.len(), 5);
    assert_eq!(d.status(), RunStatus::Failed);
    assert_eq!(
        d.finish_reason(),
        "step `send`: transient after 5 failed attempt(s): 502 from platform"
    );
}

#[test]
fn rate_limited_waits_exactly_retry_after_and_is_not_a_failure() {
    let d = run(
        SEND,
        "wecom.notify_staff",
        Behaviour::RateLimited(7, 45_000),
    );
    assert_eq!(d.invocations.len(), 8, "more than the transient cap of 5");
    assert!(gaps(&d).iter().all(|g| *g == 45_000));
    assert_eq!(d.status(), RunStatus::Completed);
}

#[test]
fn auth_expired_is_retried_later_a_bounded_number_of_times() {
    let ok = run(SEND, "wecom.notify_staff", Behaviour::AuthExpired(2));
    assert_eq!(gaps(&ok), [900_000, 900_000]);
    assert_eq!(ok.status(), RunStatus::Completed);
    let bad = run(SEND, "wecom.notify_staff", Behaviour::AuthExpired(10));
    assert_eq!(bad.invocations.len(), 3);
    assert_eq!(bad.status(), RunStatus::Failed);
    assert!(bad.finish_reason().contains("auth-expired"));
}

#[test]
fn permanent_and_invalid_input_fail_at_once() {
    for (behaviour, kind) in [
        (Behaviour::Permanent, "permanent"),
        (Behaviour::InvalidInput, "invalid-input"),
    ] {
        let d = run(SEND, "wecom.notify_staff", behaviour);
        assert_eq!(d.invocations.len(), 1);
        assert_eq!(d.status(), RunStatus::Failed);
        assert!(d.finish_reason().contains(kind), "{}", d.finish_reason());
    }
}

#[test]
fn unknown_outcome_of_an_at_most_once_send_is_never_retried_and_the_run_goes_on() {
    let d = run(SEND, "wecom.notify_staff", Behaviour::Unknown);
    assert_eq!(d.invocations[0].1.delivery, Delivery::AtMostOnce);
    assert_eq!(d.invocations.len(), 1);
    assert_eq!(d.state.outputs["send"]["outcome"], "unknown");
    assert!(d.history.iter().any(|h| h.outcome.contains("not retried")));
    assert_eq!(d.status(), RunStatus::Completed);
}

#[test]
fn unknown_outcome_fails_the_run_when_configured() {
    let mut d = Driver::new(
        parse(SEND),
        ContactView::new("wm_1"),
        utc("2026-01-05T02:00:00Z"),
    )
    .behave("wecom.notify_staff", Behaviour::Unknown);
    d.config.retry.on_unknown = OnUnknown::Fail;
    d.start_manual();
    assert_eq!(d.invocations.len(), 1);
    assert_eq!(d.status(), RunStatus::Failed);
    assert!(d.finish_reason().contains("unknown"));
}

#[test]
fn unknown_outcome_of_an_idempotent_action_is_retried() {
    let d = run(TAG, "wecom.mark_tag", Behaviour::Unknown);
    assert_eq!(d.invocations[0].1.delivery, Delivery::Idempotent);
    assert_eq!(d.invocations.len(), 5);
    assert_eq!(d.status(), RunStatus::Failed);
}

#[test]
fn accepted_actions_wait_for_their_outcome() {
    let mut d = Driver::new(
        parse(MASS),
        ContactView::new("wm_1"),
        utc("2026-01-05T02:00:00Z"),
    )
    .behave(
        "wecom.mass_send_contacts",
        Behaviour::Accepted(Some(3_600_000)),
    );
    d.start_manual();
    assert_eq!(d.status(), RunStatus::WaitingOutcome);
    d.advance_time(TimeDelta::minutes(30));
    assert_eq!(d.status(), RunStatus::WaitingOutcome, "still pending");
    d.advance_time(TimeDelta::hours(1));
    assert_eq!(d.status(), RunStatus::Completed);
    assert_eq!(d.state.outputs["mass"]["sent"], 1);
    assert_eq!(d.invocations.len(), 1, "outcome checks are not new sends");
    assert!(d.timers.is_empty(), "the outcome timeout was cancelled");
}

#[test]
fn accepted_actions_without_an_outcome_time_out_and_fail() {
    let d = run(MASS, "wecom.mass_send_contacts", Behaviour::Accepted(None));
    assert_eq!(d.status(), RunStatus::Failed);
    assert!(
        d.finish_reason().contains("no outcome"),
        "{}",
        d.finish_reason()
    );
    assert_eq!(
        d.state.finish.as_ref().unwrap().at,
        utc("2026-01-06T02:00:00Z")
    );
}

#[test]
fn accepted_actions_whose_outcome_failed_fail_the_run() {
    let d = run(
        MASS,
        "wecom.mass_send_contacts",
        Behaviour::AcceptedThenFails,
    );
    assert_eq!(d.status(), RunStatus::Failed);
    assert!(d.finish_reason().contains("staff never confirmed"));
}

#[test]
fn the_policy_gate_can_skip_a_step_or_end_the_run() {
    for (result, status, tagged) in [
        (
            ActionResult::Skipped {
                reason: "cap 1/day".into(),
            },
            RunStatus::Completed,
            true,
        ),
        (
            ActionResult::EndRun {
                reason: "cap: end".into(),
            },
            RunStatus::Completed,
            false,
        ),
    ] {
        let mut d = Driver::new(
            parse(SEND),
            ContactView::new("wm_1"),
            utc("2026-01-05T02:00:00Z"),
        );
        d.catalog = None;
        // Answer in place of the plugin: take the invocation the run handed out.
        let ctx_contact = d.contact.clone();
        let config = d.config.clone();
        let ctx = Context {
            now: d.now,
            contact: &ctx_contact,
            catalog: None,
            config: &config,
        };
        let start = Input::Start {
            cause: StartCause::Manual { by: "t".into() },
        };
        let t = advance(&d.playbook, &d.state, &start, &ctx);
        let Some(Effect::InvokeAction(invocation)) = t
            .effects
            .iter()
            .find(|e| matches!(e, Effect::InvokeAction(_)))
        else {
            panic!("no invocation")
        };
        assert_eq!(
            invocation.delivery,
            Delivery::AtMostOnce,
            "unknown actions: the safe side"
        );
        d.state = t.state.clone();
        d.feed(Input::ActionResult {
            key: invocation.key.clone(),
            result,
        });
        assert_eq!(d.status(), status);
        assert_eq!(d.contact.tags.contains("sent"), tagged);
    }
}
