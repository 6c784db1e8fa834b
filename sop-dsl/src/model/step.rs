//! Steps: what a run does, one after another.
//!
//! A step is a mapping with an `id` and one key naming its kind (`action`, `wait`, ...).
//! Branches (`then`, `else`, `on_timeout`, ...) either name a step id to jump to or hold a
//! nested list of steps; a nested list that runs to its end continues after the step that
//! holds it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Duration, Expression, QualifiedName, StepId, StepPolicy, Template, TimeOfDay};

/// One step of a playbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    /// Unique in the playbook; runs are stored at their step id, so keep ids stable.
    pub id: StepId,
    /// Shown in previews and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub kind: StepKind,
    /// Overrides of the playbook policy for this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<StepPolicy>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StepKind {
    Action(ActionStep),
    Wait(WaitStep),
    WaitUntil(WaitUntilStep),
    WaitFor(WaitForStep),
    If(IfStep),
    Split(SplitStep),
    Set(SetStep),
    AddTags(TagStep),
    RemoveTags(RemoveTagStep),
    Handoff(HandoffStep),
    Goto(GotoStep),
    End(EndStep),
}

/// Calls a plugin action, e.g. `wecom.send_welcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActionStep {
    pub action: QualifiedName,
    /// The action's input. Every string in it is a template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
    /// The tenant's platform account the action acts through, e.g. a WeCom alert sent from a
    /// run that acts for a Douyin account. Absent: the account the run acts through. The
    /// gate applies this account's rate limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Where to go when the action fails for good (a permanent error, retries used up, an
    /// asynchronous failure or timeout, an unknown outcome the engine is set to fail on).
    /// Templates there see the failure as `error`. Absent: the run fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<Branch>,
}

/// Pauses the run for a duration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WaitStep {
    pub wait: Duration,
}

/// Pauses the run until the next occurrence of a local time of day (playbook time zone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WaitUntilStep {
    pub wait_until: TimeOfDay,
}

/// Pauses until a matching event arrives, or the timeout passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WaitForStep {
    pub wait_for: WaitFor,
}

/// The event a `wait_for` step waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitFor {
    /// Event type, `plugin.kind`. Only events about the run's contact (or group) count.
    pub event: QualifiedName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Expression>,
    /// Required: a run must never wait forever.
    pub timeout: Duration,
    /// Where to go on timeout. Absent: continue with the next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<Branch>,
}

/// Chooses a branch by a condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IfStep {
    #[serde(rename = "if")]
    pub condition: Expression,
    pub then: Branch,
    /// Absent: continue with the next step.
    #[serde(default, rename = "else", skip_serializing_if = "Option::is_none")]
    pub otherwise: Option<Branch>,
}

/// Sends each run down one arm, at random by percentage (A/B test).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SplitStep {
    /// Percentages add up to 100.
    pub split: Vec<SplitArm>,
}

/// One arm of a split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitArm {
    /// Name shown in reports, e.g. `coupon_10`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub percent: u8,
    pub then: Branch,
}

/// Sets contact attributes. Values are templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SetStep {
    pub set: BTreeMap<String, serde_json::Value>,
}

/// Adds tags to the contact in sop's contact store (use a plugin action to tag on the platform).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TagStep {
    pub add_tags: Vec<String>,
}

/// Removes tags from the contact in sop's contact store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RemoveTagStep {
    pub remove_tags: Vec<String>,
}

/// Hands the conversation to a human and waits for them to answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HandoffStep {
    pub handoff: Handoff,
}

/// A hand-off to a human.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    /// The staff member, a template. Default: the contact's owner.
    #[serde(default = "default_handoff_to")]
    pub to: Template,
    /// Note shown to the staff member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Template>,
    /// The human must answer the contact within this time.
    pub deadline: Duration,
    /// Where to go when the deadline passes unanswered (e.g. an alert). Absent: continue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_missed: Option<Branch>,
}

pub(crate) fn default_handoff_to() -> Template {
    Template("{{ contact.owner }}".into())
}

/// Jumps to another step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GotoStep {
    pub goto: StepId,
}

/// Ends the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EndStep {
    pub end: Outcome,
}

/// How a run ended, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    Converted,
    Cancelled,
}

/// Where a branch goes: a step id, or nested steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Branch {
    Goto(StepId),
    Steps(Vec<Step>),
}

impl Step {
    /// The step's kind as written in YAML.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            StepKind::Action(_) => "action",
            StepKind::Wait(_) => "wait",
            StepKind::WaitUntil(_) => "wait_until",
            StepKind::WaitFor(_) => "wait_for",
            StepKind::If(_) => "if",
            StepKind::Split(_) => "split",
            StepKind::Set(_) => "set",
            StepKind::AddTags(_) => "add_tags",
            StepKind::RemoveTags(_) => "remove_tags",
            StepKind::Handoff(_) => "handoff",
            StepKind::Goto(_) => "goto",
            StepKind::End(_) => "end",
        }
    }

    /// Steps held in this step's branches, in order.
    pub fn nested(&self) -> Vec<&[Step]> {
        let branches: Vec<Option<&Branch>> = match &self.kind {
            StepKind::Action(a) => vec![a.on_error.as_ref()],
            StepKind::WaitFor(w) => vec![w.wait_for.on_timeout.as_ref()],
            StepKind::If(i) => vec![Some(&i.then), i.otherwise.as_ref()],
            StepKind::Split(s) => s.split.iter().map(|a| Some(&a.then)).collect(),
            StepKind::Handoff(h) => vec![h.handoff.on_missed.as_ref()],
            _ => vec![],
        };
        branches
            .into_iter()
            .flatten()
            .filter_map(|b| match b {
                Branch::Steps(steps) => Some(steps.as_slice()),
                Branch::Goto(_) => None,
            })
            .collect()
    }
}
