//! `sop preview`: what a playbook will do, in plain words: triggers (with the next cron fire
//! times), audience, entry rules, goals, policy and the step graph.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use sop_dsl::cron::Schedule;
use sop_dsl::model::{AudienceTarget, Branch, Playbook, Repeat, Step, StepKind, Trigger, Zone};
use sop_dsl::render::render_human;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Playbook file (YAML).
    file: PathBuf,
    /// Directory of plugin manifests (`*.json`) to check actions and events against.
    #[arg(long, value_name = "DIR")]
    plugins: Option<PathBuf>,
    /// Compute cron times after this instant (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339")]
    after: Option<String>,
}

pub fn run(args: Args) -> ExitCode {
    let catalog = match super::validate::catalog(args.plugins.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let after = match args.after.as_deref().map(DateTime::parse_from_rfc3339) {
        None => Utc::now(),
        Some(Ok(t)) => t.with_timezone(&Utc),
        Some(Err(e)) => {
            eprintln!("error: --after: {e}");
            return ExitCode::FAILURE;
        }
    };
    let checked = match super::validate::check_file(&args.file, catalog.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for d in &checked.diagnostics {
        eprintln!("{}", render_human(d, &checked.name, &checked.src));
    }
    if checked.diagnostics.iter().any(|d| d.is_error()) {
        eprintln!(
            "{}: not previewed because of the errors above",
            checked.name
        );
        return ExitCode::FAILURE;
    }
    print!("{}", preview(&checked.loaded.playbook, after));
    ExitCode::SUCCESS
}

/// The human summary of a checked playbook.
pub fn preview(p: &Playbook, after: DateTime<Utc>) -> String {
    let mut out = String::new();
    let title = p
        .name
        .as_deref()
        .map(|n| format!(" — {n}"))
        .unwrap_or_default();
    let _ = writeln!(out, "{} v{}{title}", p.id, p.version);
    for (label, value) in [
        ("tenant", &p.tenant),
        ("owner", &p.owner),
        ("about", &p.description),
    ] {
        if let Some(v) = value {
            let _ = writeln!(out, "  {label}: {v}");
        }
    }
    let _ = writeln!(out, "  time zone: {}", p.timezone);
    let _ = writeln!(out, "\nTriggers");
    for t in &p.triggers {
        trigger(&mut out, t, p.timezone, after);
    }
    let _ = writeln!(out, "\nAudience");
    match &p.audience {
        None => {
            let _ = writeln!(out, "  every contact the trigger names");
        }
        Some(a) => {
            let per = match a.target {
                AudienceTarget::Contacts => "one run per contact",
                AudienceTarget::Groups => "one run per customer group",
            };
            let _ = writeln!(out, "  {per}");
            for (label, tags) in [
                ("with any of", &a.tags_any),
                ("with all of", &a.tags_all),
                ("with none of", &a.tags_none),
            ] {
                if !tags.is_empty() {
                    let _ = writeln!(out, "  {label} tags: {}", tags.join(", "));
                }
            }
            if let Some(c) = &a.condition {
                let _ = writeln!(out, "  where {c}");
            }
        }
    }
    let _ = writeln!(out, "\nEntry");
    let repeat = match p.entry.repeat {
        Repeat::Always => "every time a trigger fires".to_string(),
        Repeat::Once => "once per contact, ever".to_string(),
        Repeat::OncePerWindow => format!(
            "at most once per {}",
            p.entry.window.map(|w| w.to_string()).unwrap_or_default()
        ),
    };
    let _ = writeln!(out, "  {repeat}");
    if p.entry.one_active_run {
        let _ = writeln!(out, "  not while a run of this playbook is in progress");
    }
    if !p.goals.is_empty() {
        let _ = writeln!(out, "\nGoals (end the run as converted)");
        for g in &p.goals {
            let filter = g
                .filter
                .as_ref()
                .map(|f| format!(" where {f}"))
                .unwrap_or_default();
            let name = g
                .name
                .as_deref()
                .map(|n| format!("{n}: "))
                .unwrap_or_default();
            let _ = writeln!(out, "  {name}{}{filter}", g.event);
        }
    }
    let _ = writeln!(out, "\nPolicy");
    let quiet = p
        .policy
        .quiet_hours
        .map_or("none".to_string(), |q| q.to_string());
    let _ = writeln!(
        out,
        "  quiet hours {quiet}; category {}; when a frequency cap blocks: {}",
        word(p.policy.category),
        word(p.policy.on_cap)
    );
    let _ = writeln!(out, "\nSteps");
    steps(&mut out, &p.steps, 1);
    out
}

fn trigger(out: &mut String, t: &Trigger, zone: Zone, after: DateTime<Utc>) {
    match t {
        Trigger::Event(e) => {
            let filter = e
                .filter
                .as_ref()
                .map(|f| format!(" where {f}"))
                .unwrap_or_default();
            let _ = writeln!(out, "  on event {}{filter}", e.event);
        }
        Trigger::Cron(c) => {
            let zone = c.timezone.unwrap_or(zone);
            schedule(out, "on schedule", &c.cron, zone, after);
        }
        Trigger::Inactivity(i) => {
            let _ = writeln!(out, "  contacts with no interaction for {}", i.inactive_for);
            schedule(
                out,
                "  checked",
                &i.check,
                i.timezone.unwrap_or(zone),
                after,
            );
        }
        Trigger::Manual(_) => {
            let _ = writeln!(out, "  started by hand or through the API");
        }
    }
}

fn schedule(out: &mut String, label: &str, expr: &str, zone: Zone, after: DateTime<Utc>) {
    let Ok(s) = Schedule::parse(expr) else {
        let _ = writeln!(out, "  {label} `{expr}` (invalid)");
        return;
    };
    let _ = writeln!(out, "  {label} `{expr}`: {} ({})", s.describe(), zone);
    let next: Vec<String> = s
        .iter_after(after.with_timezone(&zone.0))
        .take(3)
        .map(|t| t.to_rfc3339())
        .collect();
    let _ = writeln!(out, "    next: {}", next.join(", "));
}

fn steps(out: &mut String, list: &[Step], depth: usize) {
    let pad = "  ".repeat(depth);
    for s in list {
        let name = s
            .name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let _ = writeln!(out, "{pad}[{}]{name} {}", s.id, describe(&s.kind));
        let branch = |out: &mut String, label: &str, b: &Branch| match b {
            Branch::Goto(id) => {
                let _ = writeln!(out, "{pad}  {label} → {id}");
            }
            Branch::Steps(nested) => {
                let _ = writeln!(out, "{pad}  {label}:");
                steps(out, nested, depth + 2);
            }
        };
        match &s.kind {
            StepKind::WaitFor(w) => {
                if let Some(b) = &w.wait_for.on_timeout {
                    branch(out, "on timeout", b);
                }
            }
            StepKind::If(i) => {
                branch(out, "then", &i.then);
                if let Some(b) = &i.otherwise {
                    branch(out, "else", b);
                }
            }
            StepKind::Split(sp) => {
                for arm in &sp.split {
                    let label = format!("{}% {}", arm.percent, arm.name.as_deref().unwrap_or(""));
                    branch(out, label.trim_end(), &arm.then);
                }
            }
            StepKind::Handoff(h) => {
                if let Some(b) = &h.handoff.on_missed {
                    branch(out, "if missed", b);
                }
            }
            _ => {}
        }
    }
}

fn describe(kind: &StepKind) -> String {
    match kind {
        StepKind::Action(a) => format!("do {}", a.action),
        StepKind::Wait(w) => format!("wait {}", w.wait),
        StepKind::WaitUntil(w) => format!("wait until {}", w.wait_until),
        StepKind::WaitFor(w) => {
            format!("wait up to {} for {}", w.wait_for.timeout, w.wait_for.event)
        }
        StepKind::If(i) => format!("if {}", i.condition),
        StepKind::Split(_) => "split at random".into(),
        StepKind::Set(s) => format!(
            "set {}",
            s.set.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        StepKind::AddTags(t) => format!("add tags {}", t.add_tags.join(", ")),
        StepKind::RemoveTags(t) => format!("remove tags {}", t.remove_tags.join(", ")),
        StepKind::Handoff(h) => {
            format!("hand off to {} within {}", h.handoff.to, h.handoff.deadline)
        }
        StepKind::Goto(g) => format!("go to {}", g.goto),
        StepKind::End(e) => format!("end ({})", word(e.end)),
    }
}

/// The YAML word for an enum value (`contacts`, `marketing`, `defer`).
fn word(value: impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}
