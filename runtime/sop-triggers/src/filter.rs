//! An audience (`tags_any`, `tags_all`, `tags_none`, `where`) compiled once and applied to
//! many subjects, with the same variables the engine's entry decision gives the condition.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use minijinja::{Environment, Expression};
use serde_json::{Value, json};
use sop_dsl::Playbook;
use sop_dsl::model::Audience;
use sop_engine::ContactView;

use crate::error::TriggerError;

/// One template environment for every scan: compiling the condition once per scan (not once
/// per subject, as a per-call `decide_enrollment` would) keeps a 10,000-contact scan cheap.
fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(sop_dsl::template::environment)
}

/// A compiled audience.
#[derive(Debug)]
pub(crate) struct Filter<'p> {
    audience: Option<&'p Audience>,
    condition: Option<Expression<'p, 'p>>,
    playbook: Value,
    /// Conditions on groups see the group as `group` as well as `contact`, as in a group run.
    groups: bool,
}

impl<'p> Filter<'p> {
    pub(crate) fn new(playbook: &'p Playbook, id: &str) -> Result<Filter<'p>, TriggerError> {
        let audience = playbook.audience.as_ref();
        let condition = audience
            .and_then(|a| a.condition.as_ref())
            .map(|c| {
                environment().compile_expression(c.as_str()).map_err(|e| {
                    TriggerError::BadCondition {
                        playbook: id.to_owned(),
                        condition: c.as_str().to_owned(),
                        message: e.to_string(),
                    }
                })
            })
            .transpose()?;
        Ok(Filter {
            audience,
            condition,
            playbook: json!({
                "id": playbook.id,
                "version": playbook.version,
                "name": playbook.name,
                "tenant": playbook.tenant,
            }),
            groups: audience.is_some_and(|a| a.target == sop_dsl::model::AudienceTarget::Groups),
        })
    }

    /// Whether the audience admits the subject. `Err` when the condition fails to evaluate
    /// (the subject is then left out and counted by the caller).
    pub(crate) fn admits(&self, view: &ContactView) -> Result<bool, String> {
        let Some(audience) = self.audience else {
            return Ok(true);
        };
        let tags = &view.tags;
        if !audience.tags_any.is_empty() && !audience.tags_any.iter().any(|t| tags.contains(t)) {
            return Ok(false);
        }
        if !audience.tags_all.iter().all(|t| tags.contains(t)) {
            return Ok(false);
        }
        if audience.tags_none.iter().any(|t| tags.contains(t)) {
            return Ok(false);
        }
        let Some(condition) = &self.condition else {
            return Ok(true);
        };
        let value = condition
            .eval(self.scope(view))
            .map_err(|e| format!("cannot evaluate `{}`: {e}", audience_text(audience)))?;
        Ok(value.is_true())
    }

    /// `contact` (and `group`) as the engine builds it: the view, with attributes also
    /// reachable directly (`contact.orders`); the fixed fields win over same-named attributes.
    fn scope(&self, view: &ContactView) -> minijinja::Value {
        let mut subject = serde_json::to_value(view).unwrap_or(Value::Null);
        if let Value::Object(fields) = &mut subject {
            for (name, value) in &view.attributes {
                fields.entry(name.clone()).or_insert_with(|| value.clone());
            }
        }
        let mut vars = BTreeMap::new();
        if self.groups {
            vars.insert("group", subject.clone());
        }
        vars.insert("contact", subject);
        vars.insert("playbook", self.playbook.clone());
        minijinja::Value::from(minijinja::value::Serde(&vars))
    }
}

fn audience_text(audience: &Audience) -> &str {
    audience.condition.as_ref().map_or("", |c| c.as_str())
}
