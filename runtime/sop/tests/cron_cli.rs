//! `sop cron next` as operators run it: output format, defaults, errors and exit codes.

use std::process::{Command, Output};

fn sop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sop"))
        .args(args)
        .output()
        .expect("the sop binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn prints_one_rfc3339_time_per_line_with_offset() {
    let out = sop(&[
        "cron",
        "next",
        "30 2 * * *",
        "--tz",
        "America/New_York",
        "--after",
        "2026-03-07T12:00:00-05:00",
        "--count",
        "3",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "2026-03-08T03:00:00-04:00\n2026-03-09T02:30:00-04:00\n2026-03-10T02:30:00-04:00\n"
    );
}

#[test]
fn defaults_to_shanghai_and_five_times() {
    let out = sop(&[
        "cron",
        "next",
        "0 9 * * MON",
        "--after",
        "2026-01-01T00:00:00Z",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "2026-01-05T09:00:00+08:00\n2026-01-12T09:00:00+08:00\n2026-01-19T09:00:00+08:00\n\
         2026-01-26T09:00:00+08:00\n2026-02-02T09:00:00+08:00\n"
    );
}

#[test]
fn without_after_starts_from_now() {
    let out = sop(&["cron", "next", "* * * * * *", "--count", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l.ends_with("+08:00")), "{lines:?}");
    assert!(lines[0] < lines[1]);
}

#[test]
fn explain_adds_a_description_and_annotations() {
    let out = sop(&[
        "cron",
        "next",
        "0 0 13 * FRI",
        "--after",
        "2026-02-10T00:00:00+08:00",
        "--count",
        "2",
        "--explain",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "# at 00:00 on day 13 of the month or on Friday (Asia/Shanghai)\n\
         2026-02-13T00:00:00+08:00  Fri\n2026-02-20T00:00:00+08:00  Fri\n"
    );
}

#[test]
fn a_bad_expression_shows_a_caret_and_exits_1() {
    let out = sop(&["cron", "next", "0 9 * * MONDAY"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "error: invalid cron expression\n  0 9 * * MONDAY\n          ^^^^^^ unknown day-of-week name \
         `MONDAY`: use three-letter names SUN-SAT; did you mean `MON`?\n"
    );
}

#[test]
fn a_bad_zone_or_start_exits_1() {
    let out = sop(&["cron", "next", "@daily", "--tz", "Mars/Olympus"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown time zone `Mars/Olympus`"),
        "{}",
        stderr(&out)
    );

    let out = sop(&["cron", "next", "@daily", "--after", "yesterday"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid --after `yesterday`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_impossible_schedule_says_so_and_exits_1() {
    let out = sop(&["cron", "next", "0 0 30 2 *"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("never fires"), "{}", stderr(&out));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(sop(&["cron", "next"]).status.code(), Some(2));
    assert_eq!(
        sop(&["cron", "next", "@daily", "--count", "many"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        sop(&["cron", "next", "@daily", "--bogus"]).status.code(),
        Some(2)
    );
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    // Far more output than a pipe buffers, and nobody reading it (like `| head -1`).
    let mut child = Command::new(env!("CARGO_BIN_EXE_sop"))
        .args(["cron", "next", "* * * * * *", "--count", "100000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the sop binary runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("sop exits");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
