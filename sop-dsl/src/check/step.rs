//! Steps: each kind's keys and values, and the step graph edges they make.

use std::collections::BTreeMap;

use crate::code::Code;
use crate::diagnostic::Diagnostic;
use crate::model::{
    ActionStep, Branch, EndStep, GotoStep, Handoff, HandoffStep, IfStep, Outcome, RemoveTagStep,
    SetStep, SplitArm, SplitStep, Step, StepId, StepKind, TagStep, WaitFor, WaitForStep, WaitStep,
    WaitUntilStep,
};
use crate::syntax::{Node, Value};

use super::Ctx;
use super::graph::{Cont, Edge};
use super::read::Map;

const KINDS: &[&str] = &[
    "action",
    "wait",
    "wait_until",
    "wait_for",
    "if",
    "split",
    "set",
    "add_tags",
    "remove_tags",
    "handoff",
    "goto",
    "end",
];
const COMMON: &[&str] = &["id", "name", "policy"];

/// Keys a step of this kind may have besides [`COMMON`].
fn kind_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "action" => &["action", "params", "account", "on_error"],
        "if" => &["if", "then", "else"],
        "wait" => &["wait"],
        "wait_until" => &["wait_until"],
        "wait_for" => &["wait_for"],
        "split" => &["split"],
        "set" => &["set"],
        "add_tags" => &["add_tags"],
        "remove_tags" => &["remove_tags"],
        "handoff" => &["handoff"],
        "goto" => &["goto"],
        _ => &["end"],
    }
}

impl Ctx<'_> {
    pub fn top_steps(&mut self, node: &Node) -> Vec<Step> {
        let steps = self.steps(node, Cont::Exit);
        if node.as_seq().is_some_and(<[Node]>::is_empty) {
            self.push(Diagnostic::new(
                Code::NoSteps,
                node.span.clone(),
                "`steps` is empty",
            ));
        }
        steps
    }

    fn steps(&mut self, node: &Node, cont: Cont) -> Vec<Step> {
        let list = self.graph.new_list(cont);
        self.steps_in(node, list)
    }

    fn steps_in(&mut self, node: &Node, list: usize) -> Vec<Step> {
        let Some(items) = node.as_seq() else {
            self.wrong_type(node, "a list of steps");
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| {
                let index = self
                    .graph
                    .add_step(list, item.span.start..item.span.start + 1);
                self.step(item, index)
            })
            .collect()
    }

    fn step(&mut self, node: &Node, index: usize) -> Option<Step> {
        let kind = self.kind_of(node, "step", KINDS);
        if kind.is_none() {
            // Keep the id so that jumps to this step are not reported as unknown too.
            let id = node.get("id").filter(|n| n.as_str().is_some());
            let graph_id = id.map(|n| (n.as_str().unwrap_or_default().to_string(), n.span.clone()));
            self.graph.set(index, graph_id, true, vec![Edge::Follow]);
            return None;
        }
        let allowed: Vec<&str> = COMMON
            .iter()
            .chain(kind.map_or(&[][..], kind_keys))
            .copied()
            .collect();
        let map = self.map(node, "a step", &allowed)?;
        let id_node = self.require(&map, "id", "every step");
        let id = id_node.and_then(|n| self.identifier(n, "step id"));
        let graph_id = id.clone().zip(id_node.map(|n| n.span.clone()));
        let name = map.get("name").and_then(|n| self.string(n, "step name"));
        let policy = map
            .get("policy")
            .map(|n| self.step_policy(n, "a step policy"));
        let Some(kind) = kind else {
            self.graph.set(index, graph_id, true, vec![Edge::Follow]);
            return None;
        };
        let (step_kind, waits, edges) = self.step_kind(kind, &map, index);
        self.graph.set(index, graph_id, waits, edges);
        if let (Some(StepKind::Action(action)), Some(name)) = (&step_kind, map.get("action")) {
            self.action_fits_playbook(action, name, policy.as_ref());
        }
        Some(Step {
            id: StepId(id?),
            name,
            kind: step_kind?,
            policy,
        })
    }

    /// The step's body; whether it waits; where it may go next.
    fn step_kind(
        &mut self,
        kind: &str,
        map: &Map<'_>,
        index: usize,
    ) -> (Option<StepKind>, bool, Vec<Edge>) {
        let value = map.get(kind).expect("kind key is present");
        let follow = vec![Edge::Follow];
        match kind {
            "action" => {
                let action = self.action(value, map.get("params"), map.get("account"));
                let mut edges = follow;
                let on_error = map.get("on_error").map(|n| {
                    self.has_on_error = true;
                    self.branch(n, index)
                });
                if let Some((_, edge)) = &on_error {
                    edges.push(edge.clone());
                }
                let on_error = on_error.and_then(|(b, _)| b);
                let step = action.map(|a| StepKind::Action(ActionStep { on_error, ..a }));
                (step, false, edges)
            }
            "wait" => {
                let wait = self.duration(value, "wait");
                (
                    wait.map(|wait| StepKind::Wait(WaitStep { wait })),
                    true,
                    follow,
                )
            }
            "wait_until" => {
                let time = self.parsed(value, "time of day", Code::BadTimeOfDay);
                (
                    time.map(|wait_until| StepKind::WaitUntil(WaitUntilStep { wait_until })),
                    true,
                    follow,
                )
            }
            "wait_for" => {
                let (wait_for, mut edges) = self.wait_for(value, index);
                edges.push(Edge::Follow);
                (
                    wait_for.map(|wait_for| StepKind::WaitFor(WaitForStep { wait_for })),
                    true,
                    edges,
                )
            }
            "if" => {
                let condition = self.expression(value, "condition");
                let then = self
                    .require(map, "then", "an `if` step")
                    .map(|n| self.branch(n, index));
                let otherwise = map.get("else").map(|n| self.branch(n, index));
                let mut edges = Vec::new();
                for (_, edge) in then.iter().chain(otherwise.iter()) {
                    edges.push(edge.clone());
                }
                if otherwise.is_none() {
                    edges.push(Edge::Follow);
                }
                let step = match (condition, then) {
                    (Some(condition), Some((Some(then), _))) => Some(StepKind::If(IfStep {
                        condition,
                        then,
                        otherwise: otherwise.and_then(|(b, _)| b),
                    })),
                    _ => None,
                };
                (step, false, edges)
            }
            "split" => {
                let (split, edges) = self.split(value, map, index);
                (
                    split.map(|split| StepKind::Split(SplitStep { split })),
                    false,
                    edges,
                )
            }
            "set" => (
                self.set(value).map(|set| StepKind::Set(SetStep { set })),
                false,
                follow,
            ),
            "add_tags" => {
                let tags = self.string_list(value, "add_tags");
                (
                    tags.map(|add_tags| StepKind::AddTags(TagStep { add_tags })),
                    false,
                    follow,
                )
            }
            "remove_tags" => {
                let tags = self.string_list(value, "remove_tags");
                (
                    tags.map(|remove_tags| StepKind::RemoveTags(RemoveTagStep { remove_tags })),
                    false,
                    follow,
                )
            }
            "handoff" => {
                let (handoff, mut edges) = self.handoff(value, index);
                edges.push(Edge::Follow);
                (
                    handoff.map(|handoff| StepKind::Handoff(HandoffStep { handoff })),
                    true,
                    edges,
                )
            }
            "goto" => match self.identifier(value, "step id") {
                Some(target) => {
                    let edge = Edge::Ref(target.clone(), value.span.clone());
                    (
                        Some(StepKind::Goto(GotoStep {
                            goto: StepId(target),
                        })),
                        false,
                        vec![edge],
                    )
                }
                None => (None, true, vec![]),
            },
            _ => {
                let outcome = self.choice(
                    value,
                    "run outcome",
                    &["completed", "converted", "cancelled"],
                );
                let outcome = outcome.map(|o| match o {
                    "converted" => Outcome::Converted,
                    "cancelled" => Outcome::Cancelled,
                    _ => Outcome::Completed,
                });
                (
                    outcome.map(|end| StepKind::End(EndStep { end })),
                    false,
                    vec![],
                )
            }
        }
    }

    /// A branch: a step id to jump to, or nested steps that continue after `parent`.
    fn branch(&mut self, node: &Node, parent: usize) -> (Option<Branch>, Edge) {
        if node.as_seq().is_some() {
            let list = self.graph.new_list(Cont::After(parent));
            let steps = self.steps_in(node, list);
            return (Some(Branch::Steps(steps)), Edge::List(list));
        }
        match self.identifier(node, "step id") {
            Some(id) => {
                let edge = Edge::Ref(id.clone(), node.span.clone());
                (Some(Branch::Goto(StepId(id))), edge)
            }
            None => (None, Edge::Follow),
        }
    }

    fn wait_for(&mut self, node: &Node, index: usize) -> (Option<WaitFor>, Vec<Edge>) {
        self.has_wait_for = true;
        let Some(map) = self.map(
            node,
            "`wait_for`",
            &["event", "filter", "timeout", "on_timeout"],
        ) else {
            return (None, vec![]);
        };
        let event = self
            .require(&map, "event", "`wait_for`")
            .and_then(|n| self.event_ref(n));
        let filter = map.get("filter").and_then(|n| self.expression(n, "filter"));
        let timeout = match map.get("timeout") {
            Some(n) => self.duration(n, "timeout"),
            None => {
                self.push(
                    Diagnostic::new(Code::MissingTimeout, map.head(), "`wait_for` has no `timeout`: a run could wait forever")
                        .with_help("add e.g. `timeout: 1d`, and `on_timeout:` with the steps to take when nothing arrives"),
                );
                None
            }
        };
        let on_timeout = map.get("on_timeout").map(|n| self.branch(n, index));
        let edges = on_timeout.iter().map(|(_, e)| e.clone()).collect();
        let wait_for = event.zip(timeout).map(|(event, timeout)| WaitFor {
            event,
            filter,
            timeout,
            on_timeout: on_timeout.and_then(|(b, _)| b),
        });
        (wait_for, edges)
    }

    fn split(
        &mut self,
        node: &Node,
        map: &Map<'_>,
        index: usize,
    ) -> (Option<Vec<SplitArm>>, Vec<Edge>) {
        let Some(items) = node.as_seq() else {
            self.wrong_type(node, "a list of arms for `split`");
            return (None, vec![Edge::Follow]);
        };
        let mut arms = Vec::new();
        let mut edges = Vec::new();
        let mut total: i64 = 0;
        let mut all_read = true;
        for item in items {
            let Some(arm) = self.map(item, "a split arm", &["name", "percent", "then"]) else {
                all_read = false;
                continue;
            };
            let name = arm.get("name").and_then(|n| self.string(n, "arm name"));
            let percent = self
                .require(&arm, "percent", "a split arm")
                .and_then(|n| self.integer(n, "percent", 0..=100));
            let then = self
                .require(&arm, "then", "a split arm")
                .map(|n| self.branch(n, index));
            if let Some((_, edge)) = &then {
                edges.push(edge.clone());
            }
            match (percent, then) {
                (Some(percent), Some((Some(then), _))) => {
                    total += percent;
                    arms.push(SplitArm {
                        name,
                        percent: percent as u8,
                        then,
                    });
                }
                _ => all_read = false,
            }
        }
        if items.len() < 2 {
            self.push(
                Diagnostic::new(
                    Code::SplitPercentages,
                    node.span.clone(),
                    "a split needs at least two arms",
                )
                .with_help("for one path, use the steps directly"),
            );
            return (None, edges);
        }
        if all_read && total != 100 {
            let span = map.key_span("split").unwrap_or_else(|| node.span.clone());
            self.push(
                Diagnostic::new(
                    Code::SplitPercentages,
                    span,
                    format!("split percentages add up to {total}, not 100"),
                )
                .with_label(format!("total {total}%")),
            );
            return (None, edges);
        }
        (all_read.then_some(arms), edges)
    }

    fn set(&mut self, node: &Node) -> Option<BTreeMap<String, serde_json::Value>> {
        let entries = match node.as_map() {
            Some(e) if !e.is_empty() => e,
            Some(_) => {
                self.push(Diagnostic::new(
                    Code::InvalidValue,
                    node.span.clone(),
                    "`set` is empty",
                ));
                return None;
            }
            None => {
                self.wrong_type(node, "a mapping of attribute names to values for `set`");
                return None;
            }
        };
        let mut set = BTreeMap::new();
        for (key, value) in entries {
            let mut name = self.identifier(key, "attribute name");
            if let Some(reserved) = name
                .as_deref()
                .filter(|n| ["id", "tags", "owner"].contains(n))
            {
                let help = match reserved {
                    "tags" => "change tags with `add_tags` and `remove_tags`",
                    "owner" => "the owner comes from the platform; set another attribute",
                    _ => "the contact id comes from the platform",
                };
                self.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        key.span.clone(),
                        format!("`{reserved}` cannot be set"),
                    )
                    .with_help(help),
                );
                name = None;
            }
            self.templates_in(value);
            if matches!(value.value, Value::Seq(_) | Value::Map(_)) {
                self.wrong_type(value, "a single value for an attribute");
                continue;
            }
            if let Some(name) = name {
                set.insert(name, value.to_json());
            }
        }
        Some(set)
    }

    fn handoff(&mut self, node: &Node, index: usize) -> (Option<Handoff>, Vec<Edge>) {
        let Some(map) = self.map(node, "`handoff`", &["to", "note", "deadline", "on_missed"])
        else {
            return (None, vec![]);
        };
        let to = match map.get("to") {
            Some(n) => self.template(n, "`to`"),
            None => Some(crate::model::default_handoff_to()),
        };
        let note = map.get("note").and_then(|n| self.template(n, "note"));
        let deadline = match map.get("deadline") {
            Some(n) => self.duration(n, "deadline"),
            None => {
                self.push(
                    Diagnostic::new(Code::MissingKey, map.head(), "`handoff` needs a `deadline`")
                        .with_help("say how soon a human must answer, e.g. `deadline: 30m`, and what `on_missed` does"),
                );
                None
            }
        };
        let on_missed = map.get("on_missed").map(|n| self.branch(n, index));
        let edges = on_missed.iter().map(|(_, e)| e.clone()).collect();
        let handoff = to.zip(deadline).map(|(to, deadline)| Handoff {
            to,
            note,
            deadline,
            on_missed: on_missed.and_then(|(b, _)| b),
        });
        (handoff, edges)
    }

    /// Compiles every string in a value as a template.
    pub fn templates_in(&mut self, node: &Node) {
        match &node.value {
            Value::Str(text, _) => {
                self.compile_template(text, node);
            }
            Value::Seq(items) => items.iter().for_each(|i| self.templates_in(i)),
            Value::Map(entries) => entries.iter().for_each(|(_, v)| self.templates_in(v)),
            _ => {}
        }
    }

    fn action(
        &mut self,
        name: &Node,
        params: Option<&Node>,
        account: Option<&Node>,
    ) -> Option<ActionStep> {
        let action = self.qualified(name, "action");
        let mut values = BTreeMap::new();
        if let Some(params) = params {
            match params.as_map() {
                Some(entries) => {
                    for (key, value) in entries {
                        self.templates_in(value);
                        match key.as_str() {
                            Some(k) => {
                                values.insert(k.to_string(), value.to_json());
                            }
                            None => self.wrong_type(key, "a string parameter name"),
                        }
                    }
                }
                None => self.wrong_type(params, "a mapping for `params`"),
            }
        }
        let account = account.and_then(|node| {
            let id = self.identifier(node, "account id")?;
            if let Some(action) = &action {
                self.check_account(action, &id, node);
            }
            Some(id)
        });
        let action = action?;
        self.check_action(&action, name, params);
        Some(ActionStep {
            action,
            params: values,
            account,
            on_error: None,
        })
    }
}
