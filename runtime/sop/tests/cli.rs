//! `sop validate`, `sop schema` and `sop preview` as a user runs them.

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sop"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("sop runs")
}

const BROKEN: &str = "sop-dsl/tests/fixtures/invalid/goto_unknown.yaml";
const WARNING_ONLY: &str = "sop-dsl/tests/fixtures/invalid/long_duration.yaml";

#[test]
fn bundled_playbooks_validate_with_exit_0() {
    let mut args = vec!["validate", "--plugins", "playbooks/plugins"];
    let files: Vec<String> = [
        "welcome",
        "group-nurture",
        "live-reminder",
        "reactivation",
        "douyin-dm",
        "order-points",
        "welcome-members",
    ]
    .iter()
    .map(|n| format!("playbooks/{n}.yaml"))
    .collect();
    args.extend(files.iter().map(String::as_str));
    let out = sop(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("7 file(s) checked: 0 error(s), 0 warning(s), 0 note(s)"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_directory_means_its_yaml_files() {
    let out = sop(&["validate", "--plugins", "playbooks/plugins", "playbooks"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("7 file(s) checked: 0 error(s)"), "{stderr}");
}

#[test]
fn errors_exit_1_with_rustc_style_output_on_stderr() {
    let out = sop(&["validate", "--plugins", "playbooks/plugins", BROKEN]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{BROKEN}:9:11: error[SOP0031]: no step has the id `strat`"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("^^^^^ did you mean `start`?"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn warnings_alone_exit_0() {
    let out = sop(&["validate", "--plugins", "playbooks/plugins", WARNING_ONLY]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning[SOP0052]"), "{stderr}");
}

#[test]
fn json_format_lists_every_diagnostic_with_positions() {
    let out = sop(&[
        "validate",
        "--format",
        "json",
        "--plugins",
        "playbooks/plugins",
        BROKEN,
        WARNING_ONLY,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stderr).expect("stderr is JSON");
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 2);
    let first = &items[0];
    assert_eq!(first["file"], BROKEN);
    assert_eq!(first["code"], "SOP0031");
    assert_eq!(first["severity"], "error");
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(9), Some(11))
    );
    assert_eq!(first["primary"]["message"], "did you mean `start`?");
    assert_eq!(first["doc"], "docs/errors/SOP0031.md");
    assert_eq!(items[1]["severity"], "warning");
}

#[test]
fn missing_file_and_bad_plugins_dir_fail_cleanly() {
    let out = sop(&["validate", "no/such/playbook.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    let out = sop(&[
        "validate",
        "--plugins",
        "no/such/dir",
        "playbooks/welcome.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn schema_prints_the_committed_schema() {
    let out = sop(&["schema"]);
    assert!(out.status.success());
    let committed = std::fs::read(root().join("docs/playbook.schema.json")).unwrap();
    assert_eq!(out.stdout, committed);
}

#[test]
fn preview_shows_next_cron_times_and_steps() {
    let out = sop(&[
        "preview",
        "--plugins",
        "playbooks/plugins",
        "--after",
        "2026-11-20T00:00:00Z",
        "playbooks/group-nurture.yaml",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 2026-11-20 is a Friday: next weekdays at 10:00 Shanghai are Fri 20, Mon 23, Tue 24.
    assert!(
        stdout.contains(
            "next: 2026-11-20T10:00:00+08:00, 2026-11-23T10:00:00+08:00, 2026-11-24T10:00:00+08:00"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("[daily_content] do wecom.mass_send_groups"),
        "{stdout}"
    );
    let out = sop(&["preview", BROKEN]);
    assert_eq!(out.status.code(), Some(1));
}
