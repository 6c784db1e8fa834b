//! The outcome of a run of the daemon, read back from both sides: what reached people (the
//! emulator's delivery log) and what the daemon recorded (runs and outbox over the admin API).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use sop_harness::{Error, Http};

/// Run states the admin API lists, live ones first.
const STATES: [&str; 6] = [
    "active",
    "waiting",
    "completed",
    "failed",
    "converted",
    "cancelled",
];

/// Outbox states the admin API lists.
const OUTBOX_STATES: [&str; 5] = ["pending", "unknown", "accepted", "failed", "sent"];

/// Largest page of the admin API.
const PAGE: usize = 500;

/// One run, as `GET /api/runs` shows it.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// `r<n>`.
    pub id: String,
    /// Its state (`completed`, `failed`, ...).
    pub state: String,
    /// The step it is at, if any.
    pub step: Option<String>,
    /// Why it ended, if it did.
    pub reason: Option<String>,
}

impl RunSummary {
    /// True while the run is `active` or `waiting`.
    pub fn is_live(&self) -> bool {
        matches!(self.state.as_str(), "active" | "waiting")
    }
}

/// One outbox record.
#[derive(Clone, Debug)]
pub struct OutboxEntry {
    /// `r<run>.<step>.<iteration>`.
    pub key: String,
    /// Its state (`sent`, `unknown`, ...).
    pub state: String,
    /// The reason of a `failed` or `unknown` record.
    pub reason: Option<String>,
    /// The qualified action.
    pub action: String,
    /// Attempts made.
    pub attempts: u64,
}

/// Everything read back after a test.
#[derive(Debug, Default)]
pub struct Audit {
    /// (playbook, contact) → its runs.
    pub runs: BTreeMap<(String, String), Vec<RunSummary>>,
    /// Run id → (playbook, contact).
    pub run_subject: HashMap<String, (String, String)>,
    /// (contact, step) → outbox records of that contact's sends from that step.
    pub outbox: BTreeMap<(String, String), Vec<OutboxEntry>>,
    /// (contact, step) → deliveries the emulator recorded for it.
    pub delivered: BTreeMap<(String, String), usize>,
    /// Deliveries whose content names no step (nothing in these tests sends them).
    pub stray: Vec<Value>,
}

/// Every delivery to a person so far (`/_emulator/export.jsonl`), as
/// `sop_harness::Emulator::deliveries` reads it, from a client that can be shared by tasks.
pub async fn deliveries(emulator: &Http) -> Result<Vec<Value>, Error> {
    let reply = emulator.get_raw("/_emulator/export.jsonl").await?;
    if reply.status != 200 {
        return Err(Error(format!(
            "export.jsonl: status {}: {}",
            reply.status,
            reply.text()
        )));
    }
    reply
        .text()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| Error(format!("export line {l:?}: {e}"))))
        .collect()
}

/// The step a delivery's content names (`step=<id>` in the text).
pub fn step_of(delivery: &Value) -> Option<String> {
    let text = delivery["content"].to_string();
    let start = text.find("step=")? + "step=".len();
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

impl Audit {
    /// Reads the runs of `playbooks`, every outbox record, and the delivery log.
    pub async fn read(admin: &Http, emulator: &Http, playbooks: &[&str]) -> Result<Self, Error> {
        let mut audit = Audit::default();
        for playbook in playbooks {
            for state in STATES {
                let mut after: Option<String> = None;
                loop {
                    let mut path =
                        format!("/api/runs?playbook={playbook}&state={state}&limit={PAGE}");
                    if let Some(a) = &after {
                        path.push_str(&format!("&after={a}"));
                    }
                    let page = admin.get(&path).await?;
                    let runs = page["runs"].as_array().cloned().unwrap_or_default();
                    for run in &runs {
                        let contact = run["subject"]["contact"]
                            .as_str()
                            .ok_or_else(|| Error(format!("a run without a contact: {run}")))?
                            .to_owned();
                        let summary = RunSummary {
                            id: run["id"].as_str().unwrap_or_default().to_owned(),
                            state: run["state"].as_str().unwrap_or_default().to_owned(),
                            step: run["step"].as_str().map(str::to_owned),
                            reason: run["reason"].as_str().map(str::to_owned),
                        };
                        audit.run_subject.insert(
                            summary.id.clone(),
                            ((*playbook).to_owned(), contact.clone()),
                        );
                        audit
                            .runs
                            .entry(((*playbook).to_owned(), contact))
                            .or_default()
                            .push(summary);
                    }
                    match page["next"].as_str() {
                        Some(next) if !runs.is_empty() => after = Some(next.to_owned()),
                        _ => break,
                    }
                }
            }
        }
        for state in OUTBOX_STATES {
            let mut after: Option<String> = None;
            loop {
                let mut path = format!("/api/outbox?state={state}&limit={PAGE}");
                if let Some(a) = &after {
                    path.push_str(&format!("&after={a}"));
                }
                let page = admin.get(&path).await?;
                let entries = page["entries"].as_array().cloned().unwrap_or_default();
                for e in &entries {
                    let key = e["key"].as_str().unwrap_or_default().to_owned();
                    let (run, rest) = key
                        .split_once('.')
                        .ok_or_else(|| Error(format!("outbox key {key}")))?;
                    let step = rest.rsplit_once('.').map_or(rest, |(s, _)| s).to_owned();
                    let Some((_, contact)) = audit.run_subject.get(run) else {
                        continue; // a run of another playbook
                    };
                    let entry = OutboxEntry {
                        key: key.clone(),
                        state: state.to_owned(),
                        // `{"Unknown": {"reason": ...}}`, `{"Failed": {"reason": ...}}`
                        reason: e["state"]
                            .as_object()
                            .and_then(|o| o.values().next())
                            .and_then(|v| v["reason"].as_str())
                            .map(str::to_owned),
                        action: e["action"].as_str().unwrap_or_default().to_owned(),
                        attempts: e["attempts"].as_u64().unwrap_or(0),
                    };
                    audit
                        .outbox
                        .entry((contact.clone(), step))
                        .or_default()
                        .push(entry);
                }
                match page["next"].as_str() {
                    Some(next) if !entries.is_empty() => after = Some(next.to_owned()),
                    _ => break,
                }
            }
        }
        for delivery in deliveries(emulator).await? {
            match (delivery["to"].as_str(), step_of(&delivery)) {
                (Some(to), Some(step)) => {
                    *audit.delivered.entry((to.to_owned(), step)).or_default() += 1;
                }
                _ => audit.stray.push(delivery),
            }
        }
        Ok(audit)
    }

    /// The runs of `playbook` for `contact` (empty when none).
    pub fn runs_of(&self, playbook: &str, contact: &str) -> &[RunSummary] {
        self.runs
            .get(&(playbook.to_owned(), contact.to_owned()))
            .map_or(&[], Vec::as_slice)
    }

    /// How many times `step` reached `contact`.
    pub fn delivered(&self, contact: &str, step: &str) -> usize {
        self.delivered
            .get(&(contact.to_owned(), step.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// The outbox records of `contact`'s sends from `step`.
    pub fn outbox_of(&self, contact: &str, step: &str) -> &[OutboxEntry] {
        self.outbox
            .get(&(contact.to_owned(), step.to_owned()))
            .map_or(&[], Vec::as_slice)
    }

    /// Every outbox record in `state`.
    pub fn outbox_in(&self, state: &str) -> impl Iterator<Item = &OutboxEntry> {
        self.outbox
            .values()
            .flatten()
            .filter(move |e| e.state == state)
    }

    /// Runs still `active` or `waiting`.
    pub fn live_runs(&self) -> impl Iterator<Item = (&(String, String), &RunSummary)> {
        self.runs
            .iter()
            .flat_map(|(k, runs)| runs.iter().map(move |r| (k, r)))
            .filter(|(_, r)| r.is_live())
    }
}
