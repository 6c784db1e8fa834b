//! The report, read back from the store after the simulation: run records, their histories
//! (with the gate's decisions) and the outbox. Nothing is counted on the side, so the report
//! shows what the runtime really recorded.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;
use sop_store::{OutboxState, OutboxStateKind, RunId, RunState, Store};

use crate::behaviour::Traffic;
use crate::options::SimulateError;

/// What every report says first.
pub const MODELLED_NOTE: &str =
    "platform calls are modelled from the synthetic world, not sent through the wasm plugins";

/// Store pages read while building the report.
const PAGE: usize = 1_000;

/// The whole report (serialises to JSON for tools).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub header: Header,
    /// Per deployed playbook, the simulated one first.
    pub playbooks: Vec<PlaybookReport>,
}

/// The simulation's settings and the traffic the customers produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Header {
    pub note: String,
    pub playbooks: Vec<String>,
    pub seed: u64,
    pub days: u32,
    pub contacts_at_start: u32,
    pub contacts_at_end: u32,
    pub groups: u32,
    /// RFC 3339, virtual time.
    pub start: String,
    pub end: String,
    pub traffic: Traffic,
    /// Real time the simulation took, in milliseconds (not part of the determinism).
    pub wall_ms: u64,
}

/// One playbook's runs, steps and gate decisions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaybookReport {
    pub id: String,
    pub runs: RunCounts,
    /// In the order of the playbook's steps (nested steps after their parent).
    pub steps: Vec<StepReport>,
    /// Gate decisions by kind (`passed`, `deferred: quiet hours`, `skipped: frequency cap`, …).
    pub gate: BTreeMap<String, u64>,
    /// Platform failures by reason (from the outbox).
    pub failures: BTreeMap<String, u64>,
}

/// Runs by final (or current) state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    pub started: u64,
    pub completed: u64,
    pub converted: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Still waiting or active when the simulation ended.
    pub live: u64,
}

/// What happened at one step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StepReport {
    pub step: String,
    /// Visits (a run reaching the step).
    pub entered: u64,
    /// Calls the platform took (done, or accepted for later delivery).
    pub sent: u64,
    /// Gate deferrals to the end of quiet hours (the send is retried then).
    pub deferred_quiet_hours: u64,
    /// Blocked by a frequency cap: deferred, skipped, or the run ended.
    pub cap_deferred: u64,
    pub cap_skipped: u64,
    pub cap_ended: u64,
    /// Not sent for consent: opted out, or the contact deleted the staff member.
    pub suppressed: u64,
    /// Calls the platform refused or that failed (outbox failed or unknown).
    pub failed: u64,
    /// Waits resumed by the customer's event (a reply).
    pub replied: u64,
    /// Runs that converted here (a goal reached or an `end: converted`).
    pub converted: u64,
}

/// Builds the per-playbook part of the report from the store.
pub(crate) fn gather(
    store: &dyn Store,
    playbooks: &[(String, Vec<String>)],
) -> Result<Vec<PlaybookReport>, SimulateError> {
    let mut reports = Vec::new();
    let mut owner: HashMap<RunId, usize> = HashMap::new();
    for (position, (id, step_order)) in playbooks.iter().enumerate() {
        let mut report = PlaybookReport {
            id: id.clone(),
            runs: RunCounts::default(),
            steps: step_order
                .iter()
                .map(|s| StepReport {
                    step: s.clone(),
                    ..StepReport::default()
                })
                .collect(),
            gate: BTreeMap::new(),
            failures: BTreeMap::new(),
        };
        for state in RunState::ALL {
            let mut after = None;
            loop {
                let page = store.runs_by_state(id, state, after, PAGE)?;
                let Some(last) = page.last().copied() else {
                    break;
                };
                for run in page {
                    owner.insert(run, position);
                    count_run(&mut report.runs, state);
                    read_history(store, run, state, &mut report)?;
                }
                after = Some(last);
            }
        }
        reports.push(report);
    }
    for kind in [
        OutboxStateKind::Pending,
        OutboxStateKind::Sent,
        OutboxStateKind::Failed,
        OutboxStateKind::Unknown,
        OutboxStateKind::Accepted,
    ] {
        let mut after = None;
        loop {
            let page = store.outbox_in_state(kind, after.as_ref(), PAGE)?;
            let Some(last) = page.last().map(|e| e.key.clone()) else {
                break;
            };
            for entry in page {
                let Some(&position) = owner.get(&entry.key.run) else {
                    continue;
                };
                let report = &mut reports[position];
                let step = step_mut(&mut report.steps, &entry.key.step);
                match &entry.state {
                    OutboxState::Sent { .. } | OutboxState::Accepted { .. } => step.sent += 1,
                    OutboxState::Failed { reason } | OutboxState::Unknown { reason } => {
                        step.failed += 1;
                        *report.failures.entry(reason.clone()).or_default() += 1;
                    }
                    OutboxState::Pending | OutboxState::PendingMember { .. } => {}
                }
            }
            after = Some(last);
        }
    }
    Ok(reports)
}

fn count_run(runs: &mut RunCounts, state: RunState) {
    runs.started += 1;
    match state {
        RunState::Active | RunState::Waiting => runs.live += 1,
        RunState::Completed => runs.completed += 1,
        RunState::Failed => runs.failed += 1,
        RunState::Converted => runs.converted += 1,
        RunState::Cancelled => runs.cancelled += 1,
    }
}

/// Walks one run's history: step visits, gate decisions, resumed waits, the conversion.
fn read_history(
    store: &dyn Store,
    run: RunId,
    state: RunState,
    report: &mut PlaybookReport,
) -> Result<(), SimulateError> {
    let mut after = None;
    let mut previous: Option<String> = None;
    let mut last_step: Option<String> = None;
    loop {
        let page = store.history(run, after, PAGE)?;
        let Some(last) = page.last().map(|(seq, _)| *seq) else {
            break;
        };
        for (_, entry) in page {
            let Some(step_id) = entry.step.clone() else {
                previous = None;
                continue;
            };
            let step = step_mut(&mut report.steps, &step_id);
            if previous.as_deref() != Some(step_id.as_str()) {
                step.entered += 1;
            }
            if let Some(reason) = &entry.gate {
                let kind = gate_kind(&entry.outcome, reason);
                match kind.as_str() {
                    "deferred: quiet hours" => step.deferred_quiet_hours += 1,
                    "deferred: frequency cap" => step.cap_deferred += 1,
                    "skipped: frequency cap" => step.cap_skipped += 1,
                    "run ended: frequency cap" => step.cap_ended += 1,
                    k if k.starts_with("skipped: ") => step.suppressed += 1,
                    _ => {}
                }
                *report.gate.entry(kind).or_default() += 1;
            } else if entry.outcome == "received" {
                step.replied += 1;
            }
            previous = Some(step_id.clone());
            last_step = Some(step_id);
        }
        after = Some(last);
    }
    if state == RunState::Converted {
        let step = last_step.unwrap_or_else(|| "(start)".into());
        step_mut(&mut report.steps, &step).converted += 1;
    }
    Ok(())
}

/// A gate history line as a decision kind: the outcome and the rule, without the details.
fn gate_kind(outcome: &str, reason: &str) -> String {
    let action = if outcome == "passed" {
        return "passed".into();
    } else if outcome.starts_with("deferred") {
        "deferred"
    } else if outcome == "skipped" {
        "skipped"
    } else if outcome == "run ended" {
        "run ended"
    } else {
        outcome
    };
    let rule = if reason.starts_with("quiet hours") {
        "quiet hours"
    } else if reason.starts_with("frequency cap") {
        "frequency cap"
    } else if reason.contains("deleted the staff") {
        "deleted the staff member"
    } else if reason.contains("opted out") || reason.contains("consent") {
        "opted out"
    } else {
        "other"
    };
    format!("{action}: {rule}")
}

fn step_mut<'a>(steps: &'a mut Vec<StepReport>, id: &str) -> &'a mut StepReport {
    let position = match steps.iter().position(|s| s.step == id) {
        Some(p) => p,
        None => {
            // A step of an older version, or a runtime-only line: listed after the others.
            steps.push(StepReport {
                step: id.into(),
                ..StepReport::default()
            });
            steps.len() - 1
        }
    };
    &mut steps[position]
}

impl Report {
    /// The report of one playbook by id.
    pub fn playbook(&self, id: &str) -> Option<&PlaybookReport> {
        self.playbooks.iter().find(|p| p.id == id)
    }
}

impl PlaybookReport {
    /// The report of one step by id.
    pub fn step(&self, id: &str) -> Option<&StepReport> {
        self.steps.iter().find(|s| s.step == id)
    }

    /// Sum of one column over every step.
    pub fn total(&self, column: impl Fn(&StepReport) -> u64) -> u64 {
        self.steps.iter().map(column).sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.header;
        writeln!(f, "sop simulate: {}", h.playbooks.join(", "))?;
        writeln!(f, "NOTE: {}.", h.note)?;
        writeln!(
            f,
            "seed {}, {} days from {} to {}; contacts {} at start, {} at end; {} groups",
            h.seed, h.days, h.start, h.end, h.contacts_at_start, h.contacts_at_end, h.groups
        )?;
        let t = &h.traffic;
        writeln!(
            f,
            "customer traffic: {} new contacts, {} messages ({} opt-out keywords), {} orders, {} deletions, {} group joins",
            t.new_contacts, t.messages, t.opt_out_keywords, t.orders, t.deletions, t.group_joins
        )?;
        writeln!(f, "wall time: {:.2} s", h.wall_ms as f64 / 1000.0)?;
        for playbook in &self.playbooks {
            writeln!(f)?;
            let r = &playbook.runs;
            writeln!(
                f,
                "playbook {}: runs started {}, completed {}, converted {}, failed {}, cancelled {}, still live {}",
                playbook.id, r.started, r.completed, r.converted, r.failed, r.cancelled, r.live
            )?;
            let width = playbook
                .steps
                .iter()
                .map(|s| s.step.chars().count())
                .max()
                .unwrap_or(4)
                .max(4);
            writeln!(
                f,
                "  {:<width$} {:>7} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>7} {:>9}",
                "step",
                "entered",
                "sent",
                "quiet",
                "cap-def",
                "cap-skp",
                "cap-end",
                "suppr",
                "failed",
                "replied",
                "converted"
            )?;
            for s in &playbook.steps {
                writeln!(
                    f,
                    "  {:<width$} {:>7} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>7} {:>9}",
                    s.step,
                    s.entered,
                    s.sent,
                    s.deferred_quiet_hours,
                    s.cap_deferred,
                    s.cap_skipped,
                    s.cap_ended,
                    s.suppressed,
                    s.failed,
                    s.replied,
                    s.converted
                )?;
            }
            if !playbook.gate.is_empty() {
                let decisions: Vec<String> = playbook
                    .gate
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect();
                writeln!(f, "  gate decisions: {}", decisions.join("; "))?;
            }
            if !playbook.failures.is_empty() {
                let failures: Vec<String> = playbook
                    .failures
                    .iter()
                    .map(|(k, v)| format!("{k} ×{v}"))
                    .collect();
                writeln!(f, "  platform failures: {}", failures.join("; "))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_lines_are_classified_by_rule() {
        assert_eq!(
            gate_kind("passed", "passed: marketing_per_day 0/1"),
            "passed"
        );
        assert_eq!(
            gate_kind(
                "deferred until 2026-01-06T00:00:00Z",
                "quiet hours 22:00-08:00 in Asia/Shanghai"
            ),
            "deferred: quiet hours"
        );
        assert_eq!(
            gate_kind("skipped", "frequency cap marketing_per_day 1/1 per day"),
            "skipped: frequency cap"
        );
        assert_eq!(
            gate_kind("skipped", "the contact deleted the staff member"),
            "skipped: deleted the staff member"
        );
        assert_eq!(
            gate_kind("run ended", "frequency cap x"),
            "run ended: frequency cap"
        );
    }
}
