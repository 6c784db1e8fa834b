//! Rendering templates and evaluating conditions against a run's scope, with the variables the
//! checker allows (`contact`, `event`, `run`, `steps`, `group`, `playbook`).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Utc};
use minijinja::value::Serde;
use minijinja::{Environment, Value as Jinja};
use serde::Serialize;
use serde_json::{Map, Value};
use sop_dsl::Playbook;
use sop_dsl::model::AudienceTarget;
pub use sop_dsl::template::environment;
use sop_dsl::template::{describe_error, excerpt};

use crate::contact::ContactView;
use crate::event::Event;
use crate::run_state::{RunState, SubjectKind};

fn jinja<T: Serialize>(value: T) -> Jinja {
    Jinja::from(Serde(value))
}

/// The variables one evaluation sees.
#[derive(Debug)]
pub struct Scope {
    value: Jinja,
}

impl Scope {
    /// `event` is what templates see as `event`: usually `run.event`, but an incoming event
    /// while a filter decides whether it matches.
    pub fn new(
        playbook: &Playbook,
        run: &RunState,
        event: Option<&Event>,
        contact: &ContactView,
        now: DateTime<Utc>,
    ) -> Self {
        let group = run.subject.kind == SubjectKind::Group;
        Scope::build(playbook, Some(run), event, contact, now, group)
    }

    /// The scope of a trigger filter or audience condition: no run exists yet. A group
    /// playbook's subject is bound as `group` too, as it will be in its runs.
    pub fn for_enrollment(
        playbook: &Playbook,
        event: Option<&Event>,
        contact: &ContactView,
        now: DateTime<Utc>,
    ) -> Self {
        let group = playbook
            .audience
            .as_ref()
            .is_some_and(|a| a.target == AudienceTarget::Groups);
        Scope::build(playbook, None, event, contact, now, group)
    }

    fn build(
        playbook: &Playbook,
        run: Option<&RunState>,
        event: Option<&Event>,
        contact: &ContactView,
        now: DateTime<Utc>,
        group: bool,
    ) -> Self {
        let mut vars = BTreeMap::new();
        let mut contact_value = serde_json::to_value(contact).unwrap_or(Value::Null);
        // Playbooks write `group.materials` as well as `group.attributes.materials`; the
        // fixed fields (id, name, owner, tags) win over attributes of the same name.
        if let Value::Object(fields) = &mut contact_value {
            for (name, value) in &contact.attributes {
                fields.entry(name.clone()).or_insert_with(|| value.clone());
            }
        }
        if group {
            vars.insert("group", jinja(&contact_value));
        }
        vars.insert("contact", jinja(&contact_value));
        if let Some(event) = event {
            vars.insert("event", jinja(event));
        }
        if let Some(run) = run {
            let steps: Map<String, Value> = run
                .outputs
                .iter()
                .map(|(id, output)| (id.clone(), serde_json::json!({ "output": output })))
                .collect();
            vars.insert("steps", jinja(&steps));
            if let Some(error) = &run.error {
                vars.insert("error", jinja(error));
            }
            let started = run.started_at.unwrap_or(now);
            vars.insert(
                "run",
                jinja(serde_json::json!({
                    "id": run.id.as_str(),
                    "started_at": started.to_rfc3339(),
                    "now": now.to_rfc3339(),
                    "weekday": started.weekday().number_from_monday(),
                    "day_of_year": started.ordinal(),
                    "variables": run.variables,
                })),
            );
        }
        vars.insert(
            "playbook",
            jinja(serde_json::json!({
                "id": playbook.id,
                "version": playbook.version,
                "name": playbook.name,
                "tenant": playbook.tenant,
            })),
        );
        Scope {
            value: jinja(&vars),
        }
    }

    /// Renders every string inside `value` as a template; other JSON values stay as they are.
    /// A string that is exactly one `{{ expression }}` keeps the expression's type, so
    /// `points: "{{ cents / 100 | int }}"` gives a number and `to: "{{ list }}"` a list.
    pub fn render_value(&self, env: &Environment<'_>, value: &Value) -> Result<Value, String> {
        Ok(match value {
            Value::String(text) => match single_expression(text) {
                Some(expression) => self.typed(env, expression, text)?,
                None => Value::String(self.render(env, text)?),
            },
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render_value(env, v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_value(env, v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    pub fn render(&self, env: &Environment<'_>, text: &str) -> Result<String, String> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(text.to_string());
        }
        env.render_str(text, &self.value)
            .map_err(|e| render_error(text, &e))
    }

    fn typed(&self, env: &Environment<'_>, expression: &str, text: &str) -> Result<Value, String> {
        let value = env
            .compile_expression(expression)
            .and_then(|e| e.eval(&self.value))
            .map_err(|e| render_error(text, &e))?;
        if value.is_undefined() {
            // As in text: an undefined value renders as nothing.
            return Ok(Value::String(String::new()));
        }
        serde_json::to_value(&value).map_err(|e| format!("cannot render `{}`: {e}", excerpt(text)))
    }

    pub fn condition(&self, env: &Environment<'_>, expression: &str) -> Result<bool, String> {
        let compiled = env
            .compile_expression(expression)
            .map_err(|e| format!("cannot compile `{}`: {e}", excerpt(expression)))?;
        compiled
            .eval(&self.value)
            .map(|v| v.is_true())
            .map_err(|e| {
                format!(
                    "cannot evaluate `{}`: {}",
                    excerpt(expression),
                    describe_error(&e)
                )
            })
    }
}

/// Names the template by its start only (a huge one would flood logs and run history) and
/// the fuel limit as such.
fn render_error(text: &str, error: &minijinja::Error) -> String {
    format!(
        "cannot render `{}`: {}",
        excerpt(text),
        describe_error(error)
    )
}

/// The expression inside `{{ ... }}` when that is the whole string.
fn single_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let nested = inner.contains("{{") || inner.contains("}}") || inner.contains("{%");
    (!nested && !inner.trim().is_empty()).then(|| inner.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::RunId;
    use crate::run_state::Subject;

    fn scope(contact: &ContactView) -> Scope {
        let playbook = sop_dsl::load(
            "id: t\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: a\n    end: completed\n",
            None,
        )
        .playbook;
        let subject = Subject {
            kind: SubjectKind::Contact,
            id: contact.id.clone(),
            account: "acct".into(),
        };
        let now = "2026-03-02T01:00:00Z".parse().unwrap();
        let run = RunState::new(RunId("abcdef123456".into()), &playbook, subject, now);
        Scope::new(&playbook, &run, None, contact, now)
    }

    #[test]
    fn renders_contact_fields_defaults_and_run_slices() {
        let env = environment();
        let mut contact = ContactView::new("wm_1");
        contact.tags.insert("vip".into());
        let s = scope(&contact);
        assert_eq!(
            s.render(&env, "{{ contact.name | default('亲') }}")
                .unwrap(),
            "亲"
        );
        assert_eq!(s.render(&env, "{{ run.id[:4] | upper }}").unwrap(), "ABCD");
        assert!(s.condition(&env, "'vip' in contact.tags").unwrap());
        assert!(!s.condition(&env, "event is defined").unwrap());
        assert!(
            s.condition(&env, "'售后服务' is containing('售后')")
                .unwrap()
        );
    }

    #[test]
    fn a_lone_expression_keeps_its_type_and_text_stays_text() {
        let env = environment();
        let mut contact = ContactView::new("wm_1");
        contact
            .attributes
            .insert("orders".into(), serde_json::json!(3));
        let s = scope(&contact);
        let params = serde_json::json!({
            "n": "{{ contact.orders * 2 }}",
            "list": "{{ [contact.id] }}",
            "text": "orders: {{ contact.orders }}",
            "missing": "{{ contact.nothing }}",
            "literal": 7,
        });
        let out = s.render_value(&env, &params).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"n": 6, "list": ["wm_1"], "text": "orders: 3", "missing": "", "literal": 7})
        );
    }

    #[test]
    fn bad_expressions_are_errors_not_panics() {
        let env = environment();
        let s = scope(&ContactView::new("wm_1"));
        assert!(s.condition(&env, "1 +").is_err());
        assert!(s.render(&env, "{{ 1 + }}").is_err());
    }

    #[test]
    fn runaway_templates_fail_with_a_short_clear_error() {
        let env = environment();
        let s = scope(&ContactView::new("wm_1"));
        // A huge template that loops too long: the error names the limit, not the whole text.
        let template = format!(
            "{}{{% for a in range(100000) %}}{{% for b in range(100000) %}}x{{% endfor %}}{{% endfor %}}",
            "padding ".repeat(100_000)
        );
        let err = s.render(&env, &template).unwrap_err();
        assert!(err.contains("more work than allowed"), "{err}");
        assert!(
            err.len() < 1000,
            "the error repeats the template: {} bytes",
            err.len()
        );
        let err = s
            .render_value(&env, &serde_json::json!("{{ 'ab' * 50000000 }}"))
            .unwrap_err();
        assert!(err.contains("more work than allowed"), "{err}");
        let err = s.condition(&env, "(range(100000) | list | length) * (range(100000) | list | length) > 0 and (range(100000) | map('string') | join) | length > 0").unwrap_err();
        assert!(err.contains("more work than allowed"), "{err}");
    }
}
