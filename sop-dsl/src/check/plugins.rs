//! Plugin actions and events against the catalog of plugin manifests.

use serde_json::Value as Json;

use crate::catalog::ActionAudience;
use crate::code::Code;
use crate::diagnostic::{Diagnostic, suggestion};
use crate::model::{ActionStep, AudienceTarget, QualifiedName, QuietHours, StepPolicy};
use crate::syntax::{Node, Value};

use super::Ctx;

impl Ctx<'_> {
    /// An action step's `account`: the playbook's tenant must have it (any tenant when the
    /// playbook names none), and it must be an account of the action's plugin. Only when the
    /// catalog knows the accounts (the daemon's); `sop validate` cannot tell.
    pub fn check_account(&mut self, action: &QualifiedName, id: &str, node: &Node) {
        let Some(accounts) = self.catalog.and_then(|c| c.accounts.as_ref()) else {
            return;
        };
        let tenants: Vec<(&String, &std::collections::BTreeMap<String, String>)> =
            match &self.tenant {
                Some(tenant) => accounts.get_key_value(tenant).into_iter().collect(),
                None => accounts.iter().collect(),
            };
        let whose = match &self.tenant {
            Some(tenant) => format!("tenant `{tenant}`"),
            None => "no tenant".to_string(),
        };
        let found = tenants.iter().find_map(|(_, of)| of.get(id));
        match found {
            None => {
                let known: Vec<String> = tenants
                    .iter()
                    .flat_map(|(_, of)| of.iter().map(|(a, p)| format!("{a} ({p})")))
                    .collect();
                let mut diagnostic = Diagnostic::new(
                    Code::UnknownAccount,
                    node.span.clone(),
                    format!("{whose} has no platform account `{id}`"),
                );
                let names: Vec<&str> = tenants
                    .iter()
                    .flat_map(|(_, of)| of.keys().map(String::as_str))
                    .collect();
                if let Some(close) = suggestion(id, names.iter().copied()) {
                    diagnostic = diagnostic.with_label(close);
                }
                let help = if known.is_empty() {
                    format!("{whose} has no accounts configured in the daemon")
                } else {
                    format!("the accounts it has: {}", known.join(", "))
                };
                self.push(diagnostic.with_help(help));
            }
            Some(plugin) if plugin != action.plugin() => {
                self.push(
                    Diagnostic::new(
                        Code::AccountPlugin,
                        node.span.clone(),
                        format!(
                            "account `{id}` is a {plugin} account, but `{action}` is a {} action",
                            action.plugin()
                        ),
                    )
                    .with_help(format!(
                        "name one of the tenant's {} accounts, or drop `account:` to act through the run's own account",
                        action.plugin()
                    )),
                );
            }
            Some(_) => {}
        }
    }

    fn note_plugin_use(&mut self, node: &Node) {
        if self.first_plugin_use.is_none() {
            self.first_plugin_use = Some(node.span.clone());
        }
    }

    /// An event type, checked against the catalog when there is one.
    pub fn event_ref(&mut self, node: &Node) -> Option<QualifiedName> {
        let event = self.qualified(node, "event type")?;
        self.note_plugin_use(node);
        let Some(catalog) = self.catalog else {
            return Some(event);
        };
        let Some(plugin) = catalog.plugin(event.plugin()) else {
            self.unknown_plugin(node, event.plugin());
            return Some(event);
        };
        if plugin.event(event.name()).is_none() {
            let kinds = plugin.events.iter().map(|e| e.kind.as_str());
            let mut d = Diagnostic::new(
                Code::UnknownEvent,
                node.span.clone(),
                format!("plugin `{}` has no event `{}`", plugin.name, event.name()),
            )
            .with_help(format!(
                "`{}` emits: {}",
                plugin.name,
                plugin
                    .events
                    .iter()
                    .map(|e| e.kind.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            if let Some(s) = suggestion(event.name(), kinds) {
                d = d.with_label(s);
            }
            self.push(d);
        }
        Some(event)
    }

    fn unknown_plugin(&mut self, node: &Node, name: &str) {
        let Some(catalog) = self.catalog else { return };
        let mut d = Diagnostic::new(
            Code::UnknownPlugin,
            node.span.clone(),
            format!("no plugin is named `{name}`"),
        )
        .with_help(format!(
            "known plugins: {}",
            catalog
                .plugins
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if let Some(s) = suggestion(name, catalog.plugins.keys().map(String::as_str)) {
            d = d.with_label(s);
        }
        self.push(d);
    }

    /// The action exists and its literal parameters fit its input schema.
    pub fn check_action(&mut self, action: &QualifiedName, name: &Node, params: Option<&Node>) {
        self.note_plugin_use(name);
        let Some(catalog) = self.catalog else { return };
        let Some(plugin) = catalog.plugin(action.plugin()) else {
            self.unknown_plugin(name, action.plugin());
            return;
        };
        let Some(spec) = plugin.action(action.name()) else {
            let mut d = Diagnostic::new(
                Code::UnknownAction,
                name.span.clone(),
                format!("plugin `{}` has no action `{}`", plugin.name, action.name()),
            )
            .with_help(format!(
                "`{}` offers: {}",
                plugin.name,
                plugin
                    .actions
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            if let Some(s) = suggestion(
                action.name(),
                plugin.actions.iter().map(|a| a.name.as_str()),
            ) {
                d = d.with_label(s);
            }
            self.push(d);
            return;
        };
        let schema = &spec.input_schema;
        let properties = schema.get("properties").and_then(Json::as_object);
        let closed = schema.get("additionalProperties") == Some(&Json::Bool(false));
        let entries = params.and_then(Node::as_map).unwrap_or(&[]);
        for (key, value) in entries {
            let Some(k) = key.as_str() else { continue };
            match properties.and_then(|p| p.get(k)) {
                Some(property) => self.check_param(action, k, value, property),
                None if closed => {
                    let mut d = Diagnostic::new(
                        Code::UnknownParam,
                        key.span.clone(),
                        format!("`{action}` has no parameter `{k}`"),
                    );
                    if let Some(props) = properties {
                        d = d.with_help(format!(
                            "`{action}` takes: {}",
                            props
                                .keys()
                                .map(String::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                        if let Some(s) = suggestion(k, props.keys().map(String::as_str)) {
                            d = d.with_label(s);
                        }
                    }
                    self.push(d);
                }
                None => {}
            }
        }
        let required = schema.get("required").and_then(Json::as_array);
        for key in required.into_iter().flatten().filter_map(Json::as_str) {
            if !entries.iter().any(|(k, _)| k.as_str() == Some(key)) {
                let span = params.map_or(name.span.clone(), |p| p.span.start..p.span.start + 1);
                let span = if params.is_some_and(|p| p.as_map().is_some_and(|m| !m.is_empty())) {
                    span
                } else {
                    name.span.clone()
                };
                self.push(
                    Diagnostic::new(
                        Code::MissingParam,
                        span,
                        format!("`{action}` needs the parameter `{key}`"),
                    )
                    .with_help(format!(
                        "`{key}`: {}",
                        describe(properties.and_then(|p| p.get(key)))
                    )),
                );
            }
        }
    }

    /// Warnings for actions that do not suit the playbook: a group message in a per-contact
    /// playbook (or the reverse), or a time-critical action that quiet hours could hold back.
    pub fn action_fits_playbook(
        &mut self,
        step: &ActionStep,
        name: &Node,
        policy: Option<&StepPolicy>,
    ) {
        let Some(spec) = self
            .catalog
            .and_then(|c| c.plugin(step.action.plugin()))
            .and_then(|p| p.action(step.action.name()))
        else {
            return;
        };
        let mismatch = match (spec.audience, self.target) {
            (ActionAudience::Group, AudienceTarget::Contacts) => {
                Some(("customer groups", "contacts"))
            }
            (ActionAudience::Contact, AudienceTarget::Groups) => {
                Some(("contacts", "customer groups"))
            }
            _ => None,
        };
        if let Some((reaches, runs)) = mismatch {
            self.push(
                Diagnostic::new(
                    Code::ActionAudience,
                    name.span.clone(),
                    format!(
                        "`{}` messages {reaches}, but this playbook's runs are for {runs}",
                        step.action
                    ),
                )
                .with_help(
                    "check `audience.target`, or that the parameters name the right recipients",
                ),
            );
        }
        let quiet = policy.and_then(|p| p.quiet_hours).or(self.quiet_hours);
        if spec.time_critical
            && let Some(window @ QuietHours::Window { .. }) = quiet
        {
            self.push(
                Diagnostic::new(
                    Code::TimeCriticalQuietHours,
                    name.span.clone(),
                    format!("`{}` is time-critical, but quiet hours {window} could hold it until it expires", step.action),
                )
                .with_help("add `policy: {quiet_hours: \"off\"}` to this step"),
            );
        }
    }

    fn check_param(&mut self, action: &QualifiedName, key: &str, value: &Node, property: &Json) {
        if let Value::Str(text, _) = &value.value
            && (text.contains("{{") || text.contains("{%"))
        {
            return; // its type is known only when rendered
        }
        let types: Vec<&str> = match property.get("type") {
            Some(Json::String(t)) => vec![t.as_str()],
            Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).collect(),
            _ => vec![],
        };
        if !types.is_empty() && !types.iter().any(|t| fits(t, value)) {
            self.push(Diagnostic::new(
                Code::ParamType,
                value.span.clone(),
                format!(
                    "`{key}` of `{action}` must be {}, found {}",
                    types
                        .iter()
                        .map(|t| json_type_name(t))
                        .collect::<Vec<_>>()
                        .join(" or "),
                    value.type_name()
                ),
            ));
            return;
        }
        if let Some(options) = property.get("enum").and_then(Json::as_array)
            && !options.contains(&value.to_json())
        {
            let shown: Vec<String> = options.iter().map(Json::to_string).collect();
            self.push(
                Diagnostic::new(
                    Code::ParamType,
                    value.span.clone(),
                    format!("`{key}` of `{action}` must be one of {}", shown.join(", ")),
                )
                .with_help(describe(Some(property))),
            );
        }
    }
}

fn fits(json_type: &str, node: &Node) -> bool {
    matches!(
        (json_type, &node.value),
        ("string", Value::Str(..))
            | ("integer", Value::Int(_))
            | ("number", Value::Int(_) | Value::Float(_))
            | ("boolean", Value::Bool(_))
            | ("array", Value::Seq(_))
            | ("object", Value::Map(_))
            | ("null", Value::Null)
    )
}

fn describe(property: Option<&Json>) -> String {
    match property
        .and_then(|p| p.get("description"))
        .and_then(Json::as_str)
    {
        Some(text) => text.to_string(),
        None => "see the plugin's input schema".into(),
    }
}

fn json_type_name(json_type: &str) -> &str {
    match json_type {
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "true or false",
        "array" => "a list",
        "object" => "a mapping",
        "null" => "null",
        other => other,
    }
}
