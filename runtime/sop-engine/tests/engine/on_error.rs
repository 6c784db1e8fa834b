//! `on_error` on action steps: a failure that would end the run takes the branch instead,
//! with the failure visible to templates as `error`.

use chrono::TimeDelta;
use serde_json::json;
use sop_engine::*;

use crate::driver::{Behaviour, Driver, parse, utc};

/// A nested `on_error` list that records the failure, then falls through to `after`.
const NESTED: &str = r#"id: t
version: 1
triggers: [{manual: true}]
steps:
  - id: send
    action: wecom.notify_staff
    params: {touser: a, text: hi}
    on_error:
      - id: note
        set:
          failed_kind: "{{ error.kind }}"
          failed_message: "{{ error.message }}"
          failed_step: "{{ error.step }}"
          failed_attempts: "{{ error.attempts }}"
  - id: after
    add_tags: went_on
"#;

/// `on_error` as a jump to a fallback step elsewhere in the playbook.
const GOTO: &str = r#"id: t
version: 1
triggers: [{manual: true}]
steps:
  - id: mass
    action: wecom.mass_send_contacts
    params: {sender: a, contacts: [b], text: hi}
    on_error: fallback
  - id: done
    end: completed
  - id: fallback
    set:
      fallback: "{{ error.kind }}"
"#;

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

#[test]
fn a_permanent_error_takes_on_error_and_templates_see_the_failure() {
    let d = run(NESTED, "wecom.notify_staff", Behaviour::Permanent);
    assert_eq!(d.invocations.len(), 1, "permanent errors are not retried");
    assert_eq!(d.status(), RunStatus::Completed);
    let attrs = &d.contact.attributes;
    assert_eq!(attrs["failed_kind"], json!("permanent"));
    assert_eq!(attrs["failed_message"], json!("84061 not a friend"));
    assert_eq!(attrs["failed_step"], json!("send"));
    assert_eq!(attrs["failed_attempts"], json!(1));
    assert!(
        d.contact.tags.contains("went_on"),
        "the branch falls through"
    );
    let failure = d.state.error.as_ref().expect("error recorded in the state");
    assert_eq!(failure.kind, "permanent");
    assert!(
        d.history
            .iter()
            .any(|h| h.outcome == "on_error" && h.input.contains("permanent"))
    );
}

#[test]
fn retries_used_up_take_on_error_with_the_attempt_count() {
    let d = run(NESTED, "wecom.notify_staff", Behaviour::Transient(100));
    assert_eq!(d.invocations.len(), 5, "the retry policy runs first");
    assert_eq!(d.status(), RunStatus::Completed);
    assert_eq!(d.contact.attributes["failed_kind"], json!("transient"));
    assert_eq!(d.contact.attributes["failed_attempts"], json!(5));
    assert!(d.timers.is_empty(), "no back-off timer left armed");
}

#[test]
fn a_transient_error_that_recovers_never_takes_on_error() {
    let d = run(NESTED, "wecom.notify_staff", Behaviour::Transient(2));
    assert_eq!(d.status(), RunStatus::Completed);
    assert!(d.state.error.is_none());
    assert!(!d.contact.attributes.contains_key("failed_kind"));
    assert!(d.contact.tags.contains("went_on"));
}

#[test]
fn without_on_error_the_run_still_fails_with_the_reason() {
    let src = NESTED.replace(
        "    on_error:\n      - id: note\n        set:\n          failed_kind: \"{{ error.kind }}\"\n          failed_message: \"{{ error.message }}\"\n          failed_step: \"{{ error.step }}\"\n          failed_attempts: \"{{ error.attempts }}\"\n",
        "",
    );
    assert!(!src.contains("on_error"));
    let d = run(&src, "wecom.notify_staff", Behaviour::Permanent);
    assert_eq!(d.status(), RunStatus::Failed);
    assert_eq!(
        d.finish_reason(),
        "step `send`: permanent after 1 failed attempt(s): 84061 not a friend"
    );
    assert!(d.state.error.is_none());
}

#[test]
fn an_unknown_outcome_takes_on_error_only_where_it_would_fail_the_run() {
    // Default (`on_unknown: continue`): the send most likely went out, the run goes on.
    let d = run(NESTED, "wecom.notify_staff", Behaviour::Unknown);
    assert_eq!(d.status(), RunStatus::Completed);
    assert!(d.state.error.is_none());
    // `on_unknown: fail`: the failure goes to on_error instead of ending the run.
    let mut d = Driver::new(
        parse(NESTED),
        ContactView::new("wm_1"),
        utc("2026-01-05T02:00:00Z"),
    )
    .behave("wecom.notify_staff", Behaviour::Unknown);
    d.config.retry.on_unknown = OnUnknown::Fail;
    d.start_manual();
    assert_eq!(d.invocations.len(), 1, "never re-sent");
    assert_eq!(d.status(), RunStatus::Completed);
    assert_eq!(
        d.contact.attributes["failed_kind"],
        json!("outcome-unknown")
    );
}

#[test]
fn an_asynchronous_failure_jumps_to_the_goto_target_and_disarms_the_timeout() {
    let d = run(
        GOTO,
        "wecom.mass_send_contacts",
        Behaviour::AcceptedThenFails,
    );
    assert_eq!(d.status(), RunStatus::Completed);
    assert_eq!(d.contact.attributes["fallback"], json!("outcome-failed"));
    assert!(d.timers.is_empty(), "the outcome timeout was cancelled");
    assert_eq!(
        d.state.error.as_ref().map(|e| e.message.as_str()),
        Some("staff never confirmed")
    );
}

#[test]
fn an_outcome_timeout_takes_on_error() {
    let d = run(GOTO, "wecom.mass_send_contacts", Behaviour::Accepted(None));
    assert_eq!(d.status(), RunStatus::Completed);
    assert_eq!(d.contact.attributes["fallback"], json!("outcome-timeout"));
    let failure = d.state.error.as_ref().unwrap();
    assert_eq!(failure.step.as_str(), "mass");
    assert_eq!(failure.message, "no outcome within 86400 s");
}

#[test]
fn a_successful_action_skips_on_error() {
    let d = run(
        GOTO,
        "wecom.mass_send_contacts",
        Behaviour::Accepted(Some(60_000)),
    );
    assert_eq!(d.status(), RunStatus::Completed);
    assert!(
        !d.contact.attributes.contains_key("fallback"),
        "the fallback never ran"
    );
    assert_eq!(d.state.step.as_ref().map(|s| s.as_str()), Some("done"));
}

#[test]
fn a_run_state_without_the_error_field_still_reads() {
    let d = run(NESTED, "wecom.notify_staff", Behaviour::Permanent);
    let mut value = serde_json::to_value(&d.state).unwrap();
    assert!(value.get("error").is_some());
    value.as_object_mut().unwrap().remove("error");
    let back: RunState = serde_json::from_value(value).unwrap();
    assert!(back.error.is_none());
}
