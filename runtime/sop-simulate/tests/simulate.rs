//! End-to-end simulations of the bundled playbooks on the real runtime.

use std::path::{Path, PathBuf};

use sop_simulate::{Report, SimulateOptions, simulate};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn options(playbook: &str, contacts: u32, days: u32, seed: u64) -> SimulateOptions {
    let mut options = SimulateOptions::new(repo().join("playbooks").join(playbook));
    options.plugins_dir = repo().join("playbooks/plugins");
    options.contacts = contacts;
    options.days = days;
    options.seed = seed;
    options
}

fn without_wall_time(mut report: Report) -> Report {
    report.header.wall_ms = 0;
    report
}

#[test]
fn every_bundled_playbook_simulates_for_a_week() {
    for playbook in [
        "welcome.yaml",
        "group-nurture.yaml",
        "live-reminder.yaml",
        "reactivation.yaml",
        "douyin-dm.yaml",
        "order-points.yaml",
        "welcome-members.yaml",
    ] {
        let report =
            simulate(options(playbook, 200, 7, 3)).unwrap_or_else(|e| panic!("{playbook}: {e}"));
        let id = playbook.trim_end_matches(".yaml");
        let runs = &report.playbook(id).expect("the playbook is reported").runs;
        assert!(runs.started > 0, "{playbook} started no run:\n{report}");
        let sent = report.playbook(id).unwrap().total(|s| s.sent);
        assert!(sent > 0, "{playbook} sent nothing:\n{report}");
        let text = report.to_string();
        assert!(
            text.contains("modelled"),
            "the header says calls are modelled"
        );
        let json = serde_json::to_value(&report).expect("serialises");
        assert_eq!(json["playbooks"][0]["id"], id);
    }
}

#[test]
fn reactivation_over_five_weeks_touches_twice_and_tags_dormant() {
    let report = simulate(options("reactivation.yaml", 300, 35, 11)).expect("simulates");
    let playbook = report.playbook("reactivation").unwrap();
    let first = playbook.step("touch_30").unwrap().sent + playbook.step("touch_20").unwrap().sent;
    let second = playbook.step("second_touch").unwrap();
    let dormant = playbook.step("mark_dormant").unwrap();
    assert!(first > 50, "first touches: {first}\n{report}");
    assert!(second.entered > 0 && second.sent > 0, "{report}");
    assert!(
        second.sent < first,
        "only the silent get a second touch:\n{report}"
    );
    assert!(dormant.entered > 0, "{report}");
    assert!(
        playbook.step("wait_reply_1").unwrap().replied > 0,
        "{report}"
    );
    assert!(playbook.runs.converted > 0, "replies convert:\n{report}");
    // No contact is touched twice within the 90-day window: at most one run each.
    assert!(playbook.runs.started <= u64::from(report.header.contacts_at_end));
}

#[test]
fn quiet_hours_show_up_as_deferrals_that_are_sent_later() {
    let mut options = options("reactivation.yaml", 200, 10, 5);
    // Many contacts abroad: 11:00 in Shanghai is night in their zone.
    options.behaviour.abroad_share = 0.5;
    let report = simulate(options).expect("simulates");
    let playbook = report.playbook("reactivation").unwrap();
    let deferred = playbook.total(|s| s.deferred_quiet_hours);
    assert!(deferred > 0, "{report}");
    assert_eq!(
        playbook.gate.get("deferred: quiet hours").copied(),
        Some(deferred)
    );
    let touched = playbook.step("touch_30").unwrap().sent + playbook.step("touch_20").unwrap().sent;
    assert!(touched > deferred, "deferred sends go out later:\n{report}");
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let a = without_wall_time(simulate(options("welcome.yaml", 300, 5, 42)).unwrap());
    let b = without_wall_time(simulate(options("welcome.yaml", 300, 5, 42)).unwrap());
    assert_eq!(a, b);
    let c = without_wall_time(simulate(options("welcome.yaml", 300, 5, 43)).unwrap());
    assert_ne!(a, c, "another seed, another world");
}

#[test]
fn several_playbooks_share_the_gate_and_are_all_reported() {
    let mut options = options("welcome.yaml", 200, 3, 9);
    options
        .playbooks
        .push(repo().join("playbooks/reactivation.yaml"));
    let report = simulate(options).expect("simulates");
    assert_eq!(report.header.playbooks, ["welcome", "reactivation"]);
    assert!(report.playbook("reactivation").unwrap().runs.started > 0);
}

#[test]
fn deletions_and_opt_outs_reach_the_gate_and_the_platform() {
    let mut options = options("reactivation.yaml", 300, 20, 8);
    options.behaviour.deletes_per_day = 0.02;
    options.behaviour.reply_probability = 0.6;
    options.behaviour.opt_out_share = 0.5;
    let report = simulate(options).expect("simulates");
    let playbook = report.playbook("reactivation").unwrap();
    // Reported deletions: the gate skips before any call.
    assert!(
        playbook
            .gate
            .get("skipped: deleted the staff member")
            .copied()
            > Some(0),
        "{report}"
    );
    // Unreported ones: the platform's answer (mass-send status 2) fails the send.
    assert!(
        playbook
            .failures
            .keys()
            .any(|reason| reason.contains("status 2")),
        "{report}"
    );
}

#[test]
fn opt_out_replies_suppress_later_marketing() {
    let mut options = options("live-reminder.yaml", 200, 4, 8);
    options.behaviour.opt_out_share = 0.5;
    let report = simulate(options).expect("simulates");
    assert!(report.header.traffic.opt_out_keywords > 0, "{report}");
    let playbook = report.playbook("live-reminder").unwrap();
    // Reminders twice a day: contacts who answered "TD" to one are skipped by the next.
    assert!(
        playbook.gate.get("skipped: opted out").copied() > Some(0),
        "{report}"
    );
    assert!(playbook.total(|s| s.suppressed) > 0, "{report}");
}
