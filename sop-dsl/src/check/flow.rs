//! `flow:`: per-key concurrency, throttle, rate limit and debounce of starts.

use crate::code::Code;
use crate::diagnostic::Diagnostic;
use crate::model::{Debounce, Entry, Flow, Limit};
use crate::syntax::{Node, Value};

use super::Ctx;

const FLOW_KEYS: &[&str] = &["key", "concurrency", "throttle", "rate_limit", "debounce"];
/// Variables a flow key may read: what exists when a trigger fires, before any run.
const KEY_VARIABLES: &[&str] = &["contact", "group", "event", "playbook"];

impl Ctx<'_> {
    pub fn flow(&mut self, node: &Node, entry: &Entry) -> Option<Flow> {
        let map = self.map(node, "flow", FLOW_KEYS)?;
        let mut flow = Flow {
            key: map.get("key").and_then(|n| self.flow_key(n)),
            ..Flow::default()
        };
        if let Some(n) = map.get("concurrency") {
            flow.concurrency = self.flow_count(n, "concurrency");
        }
        flow.throttle = map.get("throttle").and_then(|n| self.limit(n, "throttle"));
        flow.rate_limit = map
            .get("rate_limit")
            .and_then(|n| self.limit(n, "rate_limit"));
        flow.debounce = map.get("debounce").and_then(|n| self.debounce(n));
        let controls = ["concurrency", "throttle", "rate_limit", "debounce"];
        if !controls.iter().any(|k| map.has(k)) {
            self.push(
                Diagnostic::new(Code::BadFlow, map.head(), "`flow` sets no control").with_help(
                    "add `concurrency`, `throttle`, `rate_limit` or `debounce`, or remove `flow`",
                ),
            );
        }
        if let (Some(n), Some(c)) = (map.get("concurrency"), flow.concurrency)
            && c > 1
            && flow.key.is_none()
            && entry.one_active_run
        {
            self.push(
                Diagnostic::new(
                    Code::FlowConcurrencyNoEffect,
                    n.span.clone(),
                    format!("`concurrency: {c}` per subject, but `entry.one_active_run` allows one live run per subject"),
                )
                .with_help("a second start is refused by the entry rule; use `concurrency: 1` to queue starts, set a `key`, or set `entry.one_active_run: false`"),
            );
        }
        Some(flow)
    }

    /// The key template: compiled, and reading only what exists before a run.
    fn flow_key(&mut self, node: &Node) -> Option<crate::model::Template> {
        let template = self.template(node, "flow key")?;
        if template.0.trim().is_empty() {
            self.push(
                Diagnostic::new(Code::BadFlow, node.span.clone(), "flow key is empty")
                    .with_help("remove `key` to count per contact (or group), or write e.g. `{{ contact.owner }}`"),
            );
            return None;
        }
        let names = self
            .env
            .template_from_str(&template.0)
            .map(|t| t.undeclared_variables(false))
            .unwrap_or_default();
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        let mut ok = true;
        for name in names {
            if KEY_VARIABLES.contains(&name.as_str()) || !super::VARIABLES.contains(&name.as_str())
            {
                // Unknown names were reported by the template check.
                continue;
            }
            ok = false;
            self.push(
                Diagnostic::new(
                    Code::BadFlow,
                    node.span.clone(),
                    format!(
                        "the flow key reads `{name}`, which does not exist before a run starts"
                    ),
                )
                .with_help(format!("a flow key sees: {}", KEY_VARIABLES.join(", "))),
            );
        }
        ok.then_some(template)
    }

    /// A count of at least 1.
    fn flow_count(&mut self, node: &Node, what: &str) -> Option<u32> {
        match node.value {
            Value::Int(0) => {
                self.push(
                    Diagnostic::new(
                        Code::BadFlow,
                        node.span.clone(),
                        format!("`{what}` is zero"),
                    )
                    .with_help("a zero limit would hold every start forever; use at least 1"),
                );
                None
            }
            Value::Int(i) if i < 0 => {
                self.push(Diagnostic::new(
                    Code::BadFlow,
                    node.span.clone(),
                    format!("`{what}` is negative ({i})"),
                ));
                None
            }
            _ => self
                .integer(node, what, 1..=i64::from(u32::MAX))
                .map(|i| i as u32),
        }
    }

    fn limit(&mut self, node: &Node, what: &str) -> Option<Limit> {
        let map = self.map(node, what, &["limit", "per"])?;
        let limit = self
            .require(&map, "limit", what)
            .and_then(|n| self.flow_count(n, &format!("{what}.limit")));
        let per = self
            .require(&map, "per", what)
            .and_then(|n| self.duration(n, &format!("{what}.per")));
        Some(Limit {
            limit: limit?,
            per: per?,
        })
    }

    fn debounce(&mut self, node: &Node) -> Option<Debounce> {
        let map = self.map(node, "debounce", &["period", "max_delay"])?;
        let period = self
            .require(&map, "period", "debounce")
            .and_then(|n| self.duration(n, "debounce.period"));
        let max_delay = map
            .get("max_delay")
            .and_then(|n| self.duration(n, "debounce.max_delay"));
        if let (Some(p), Some(m), Some(n)) = (period, max_delay, map.get("max_delay"))
            && m.as_seconds() < p.as_seconds()
        {
            self.push(
                Diagnostic::new(
                    Code::BadFlow,
                    n.span.clone(),
                    format!("`max_delay` ({m}) is shorter than `period` ({p})"),
                )
                .with_help("the start waits at least `period`; make `max_delay` at least as long"),
            );
            return None;
        }
        Some(Debounce {
            period: period?,
            max_delay,
        })
    }
}
