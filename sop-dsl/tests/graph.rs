//! Step-graph semantics: nested lists continue after their parent, waits break loops, jumps
//! into nested steps are allowed.

use sop_dsl::{Code, load};

fn codes(steps: &str) -> Vec<Code> {
    let src = format!("id: t\nversion: 1\ntriggers:\n  - manual: true\nsteps:\n{steps}");
    let loaded = load(&src, None);
    loaded
        .diagnostics
        .iter()
        .map(|d| d.code)
        .filter(|c| *c != Code::CatalogSkipped)
        .collect()
}

#[test]
fn nested_list_falls_through_to_the_step_after_its_parent() {
    let steps = "
  - id: a
    if: \"contact.vip\"
    then:
      - id: b
        add_tags: vip
  - id: c
    goto: a
";
    assert_eq!(codes(steps), [Code::LoopWithoutWait]);
}

#[test]
fn a_wait_anywhere_in_the_loop_breaks_it() {
    let steps = "
  - id: a
    if: \"contact.vip\"
    then:
      - id: b
        wait: 1d
    else:
      - id: b2
        wait_until: \"09:00\"
  - id: c
    goto: a
";
    assert_eq!(codes(steps), []);
}

#[test]
fn a_loop_with_a_waitless_path_still_spins() {
    // The `else` path skips the wait, so a -> c -> a never pauses.
    let steps = "
  - id: a
    if: \"contact.vip\"
    then:
      - id: b
        wait: 1d
  - id: c
    goto: a
";
    assert_eq!(codes(steps), [Code::LoopWithoutWait]);
}

#[test]
fn jumping_into_nested_steps_is_allowed_and_reaches_them() {
    let steps = "
  - id: w
    wait_for:
      event: wecom.message_received
      timeout: 1d
      on_timeout:
        - id: nudge
          wait: 1h
        - id: stop
          end: completed
  - id: again
    goto: nudge
";
    assert_eq!(codes(steps), []);
}

#[test]
fn empty_branches_continue_with_the_next_step() {
    let steps = "
  - id: a
    if: \"contact.vip\"
    then: []
  - id: b
    wait: 1h
";
    assert_eq!(codes(steps), []);
}

#[test]
fn steps_after_a_goto_are_unreachable_unless_targeted() {
    let steps = "
  - id: a
    wait: 1h
  - id: jump
    goto: d
  - id: skipped
    add_tags: x
  - id: d
    end: completed
";
    assert_eq!(codes(steps), [Code::UnreachableStep]);
}

#[test]
fn defaults_fill_the_model() {
    let src = "id: t\nversion: 3\ntriggers:\n  - manual: true\nsteps:\n  - id: h\n    handoff:\n      deadline: 30m\n";
    let loaded = load(src, None);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let p = loaded.playbook;
    assert_eq!(p.timezone.to_string(), "Asia/Shanghai");
    assert_eq!(p.entry.repeat, sop_dsl::model::Repeat::Always);
    assert!(p.entry.one_active_run);
    assert_eq!(p.policy.category, sop_dsl::model::Category::Marketing);
    let sop_dsl::model::StepKind::Handoff(h) = &p.steps[0].kind else {
        panic!("not a handoff: {:?}", p.steps[0].kind);
    };
    assert_eq!(h.handoff.to.as_str(), "{{ contact.owner }}");
    assert_eq!(h.handoff.deadline.as_seconds(), 1800);
}

#[test]
fn a_step_reached_only_through_on_error_is_reachable() {
    let steps = "
  - id: send
    action: wecom.notify_staff
    params: {touser: a, text: hi}
    on_error: fallback
  - id: done
    end: completed
  - id: fallback
    add_tags: failed
";
    assert_eq!(codes(steps), []);
}

#[test]
fn an_on_error_list_falls_through_after_its_action() {
    let steps = "
  - id: send
    action: wecom.notify_staff
    params: {touser: a, text: hi}
    on_error:
      - id: note
        set: {failed: \"{{ error.kind }}\"}
      - id: again
        goto: send
";
    // note -> again -> send -> (on_error) note: no wait anywhere, a run could spin.
    assert_eq!(codes(steps), [Code::LoopWithoutWait]);
}

#[test]
fn a_wait_inside_on_error_makes_a_retry_loop_fine() {
    let steps = "
  - id: send
    action: wecom.notify_staff
    params: {touser: a, text: hi}
    on_error:
      - id: later
        wait: 1h
      - id: again
        goto: send
";
    assert_eq!(codes(steps), []);
}
