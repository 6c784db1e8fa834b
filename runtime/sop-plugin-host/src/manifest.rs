//! The plugin manifest as the rest of the runtime sees it: the WIT `manifest` record in serde
//! form (snake_case, JSON schemas parsed into `serde_json::Value`), checked at load.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bindings::wit;

/// What a plugin is and what it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Platform name used in playbooks (`wecom.send_welcome`) and webhook URLs.
    pub name: String,
    /// The plugin's own semver version.
    pub version: String,
    /// What the plugin connects.
    pub description: String,
    /// Actions the plugin performs.
    pub actions: Vec<ActionSpec>,
    /// Events it emits from webhooks.
    pub events: Vec<EventSpec>,
    /// Documented platform rate limits.
    pub rate_limits: Vec<RateLimit>,
    /// Documented per-recipient touch limits.
    pub touch_limits: Vec<TouchLimit>,
    /// Hosts the plugin calls.
    pub hosts: Vec<String>,
    /// JSON Schema of the per-account configuration.
    pub account_schema: Value,
}

impl Manifest {
    /// The empty manifest a plugin runs under while `describe` is asked for the real one.
    pub(crate) fn placeholder() -> Self {
        Self {
            name: String::new(),
            version: String::new(),
            description: String::new(),
            actions: Vec::new(),
            events: Vec::new(),
            rate_limits: Vec::new(),
            touch_limits: Vec::new(),
            hosts: Vec::new(),
            account_schema: Value::Bool(true),
        }
    }

    /// The action called `name`, if declared.
    pub fn action(&self, name: &str) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.name == name)
    }
}

/// An action the plugin can perform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionSpec {
    /// Stable name used by playbooks.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of the input object.
    pub input_schema: Value,
    /// How the runtime may repeat it.
    pub delivery: Delivery,
    /// Who it reaches.
    pub audience: Audience,
    /// Whether the real outcome comes later through `check-outcome`.
    pub asynchronous: bool,
    /// Whether it is only valid shortly after an event.
    pub time_critical: bool,
    /// Rate limits it draws from.
    pub rate_limits: Vec<String>,
    /// Present when the runtime may merge invocations into one call (docs/plugins.md,
    /// "Batched actions").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchSpec>,
}

/// How invocations of a batched action are merged: inputs equal but for `field`, a list of
/// recipient ids, become one input whose `field` lists them all, at most `max`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSpec {
    /// The top-level input property (a JSON array) holding the recipient ids.
    pub field: String,
    /// The most ids one call may carry.
    pub max: u32,
}

/// How the runtime may repeat an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Never repeated blindly.
    AtMostOnce,
    /// Safe to retry.
    Idempotent,
}

/// Who an action reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// No customer.
    None,
    /// One or more customers.
    Contact,
    /// A customer group.
    Group,
    /// The brand's own staff.
    Staff,
}

/// An event kind the plugin emits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSpec {
    /// Normalized kind.
    pub kind: String,
    /// What it means.
    pub description: String,
    /// JSON Schema of the event's attributes.
    pub attributes_schema: Value,
}

/// What a limit is counted per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitScope {
    /// Per platform account.
    Account,
    /// Per recipient.
    Recipient,
}

/// At most `max` calls per `per_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Name actions refer to.
    pub name: String,
    /// What it is counted per.
    pub scope: LimitScope,
    /// Calls allowed per window.
    pub max: u32,
    /// Window length.
    pub per_seconds: u32,
    /// The platform error produced when exceeded.
    pub error_code: Option<String>,
}

/// How a touch limit's period is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TouchPeriod {
    /// A calendar day in the recipient's time zone.
    Day,
    /// A calendar month in the recipient's time zone.
    Month,
    /// A rolling window of this many seconds.
    Rolling(u64),
}

/// How often one recipient may be messaged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TouchLimit {
    /// Its name.
    pub name: String,
    /// Actions that count against it.
    pub actions: Vec<String>,
    /// Touches allowed per period.
    pub max: u32,
    /// The period.
    pub period: TouchPeriod,
}

/// Converts the guest's record, checking it on the way; every problem is reported.
pub fn from_wit(m: wit::Manifest) -> Result<Manifest, Vec<String>> {
    let mut problems = Vec::new();
    let mut schema = |what: String, text: &str| match serde_json::from_str::<Value>(text) {
        Ok(v @ (Value::Object(_) | Value::Bool(_))) => v,
        Ok(_) => {
            problems.push(format!(
                "{what}: a JSON Schema must be an object or a boolean"
            ));
            Value::Null
        }
        Err(e) => {
            problems.push(format!("{what}: not valid JSON: {e}"));
            Value::Null
        }
    };
    let account_schema = schema("account_schema".into(), &m.account_schema);
    let actions = m
        .actions
        .into_iter()
        .map(|a| ActionSpec {
            input_schema: schema(format!("action {:?} input_schema", a.name), &a.input_schema),
            name: a.name,
            description: a.description,
            delivery: match a.delivery {
                wit::Delivery::AtMostOnce => Delivery::AtMostOnce,
                wit::Delivery::Idempotent => Delivery::Idempotent,
            },
            audience: match a.audience {
                wit::Audience::None => Audience::None,
                wit::Audience::Contact => Audience::Contact,
                wit::Audience::Group => Audience::Group,
                wit::Audience::Staff => Audience::Staff,
            },
            asynchronous: a.asynchronous,
            time_critical: a.time_critical,
            rate_limits: a.rate_limits,
            batch: a.batch.map(|b| BatchSpec {
                field: b.field,
                max: b.max,
            }),
        })
        .collect();
    let events = m
        .events
        .into_iter()
        .map(|e| EventSpec {
            attributes_schema: schema(
                format!("event {:?} attributes_schema", e.kind),
                &e.attributes_schema,
            ),
            kind: e.kind,
            description: e.description,
        })
        .collect();
    let manifest = Manifest {
        name: m.name,
        version: m.version,
        description: m.description,
        actions,
        events,
        rate_limits: m
            .rate_limits
            .into_iter()
            .map(|r| RateLimit {
                name: r.name,
                scope: match r.scope {
                    wit::LimitScope::Account => LimitScope::Account,
                    wit::LimitScope::Recipient => LimitScope::Recipient,
                },
                max: r.max,
                per_seconds: r.per_seconds,
                error_code: r.error_code,
            })
            .collect(),
        touch_limits: m
            .touch_limits
            .into_iter()
            .map(|t| TouchLimit {
                name: t.name,
                actions: t.actions,
                max: t.max,
                period: match t.period {
                    wit::TouchPeriod::Day => TouchPeriod::Day,
                    wit::TouchPeriod::Month => TouchPeriod::Month,
                    wit::TouchPeriod::Rolling(s) => TouchPeriod::Rolling(s),
                },
            })
            .collect(),
        hosts: m.hosts,
        account_schema,
    };
    problems.extend(check(&manifest));
    if problems.is_empty() {
        Ok(manifest)
    } else {
        Err(problems)
    }
}

/// Every rule the manifest breaks (schemas are checked during conversion).
pub fn check(m: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    if !is_identifier(&m.name) {
        out.push(format!(
            "name {:?} must be lowercase ASCII letters, digits and `_`, starting with a letter, at most 32 characters",
            m.name
        ));
    }
    if !is_semver(&m.version) {
        out.push(format!(
            "version {:?} is not semver (e.g. 1.2.3)",
            m.version
        ));
    }
    unique(&mut out, "action", m.actions.iter().map(|a| &a.name));
    unique(&mut out, "event kind", m.events.iter().map(|e| &e.kind));
    unique(
        &mut out,
        "rate limit",
        m.rate_limits.iter().map(|r| &r.name),
    );
    unique(
        &mut out,
        "touch limit",
        m.touch_limits.iter().map(|t| &t.name),
    );
    let limits: BTreeSet<&str> = m.rate_limits.iter().map(|r| r.name.as_str()).collect();
    let actions: BTreeSet<&str> = m.actions.iter().map(|a| a.name.as_str()).collect();
    for a in &m.actions {
        if !is_identifier(&a.name) {
            out.push(format!(
                "action name {:?} is not a lowercase identifier",
                a.name
            ));
        }
        for l in &a.rate_limits {
            if !limits.contains(l.as_str()) {
                out.push(format!(
                    "action {:?} draws from undeclared rate limit {l:?}",
                    a.name
                ));
            }
        }
        if let Some(batch) = &a.batch {
            check_batch(&mut out, a, batch);
        }
    }
    for e in &m.events {
        if !is_identifier(&e.kind) {
            out.push(format!(
                "event kind {:?} is not a lowercase identifier",
                e.kind
            ));
        }
    }
    for r in &m.rate_limits {
        if r.max == 0 || r.per_seconds == 0 {
            out.push(format!(
                "rate limit {:?}: max and per_seconds must be positive",
                r.name
            ));
        }
        if u64::from(r.per_seconds) > 366 * 86_400 {
            out.push(format!(
                "rate limit {:?}: window longer than a year",
                r.name
            ));
        }
    }
    for t in &m.touch_limits {
        if t.max == 0 || t.period == TouchPeriod::Rolling(0) {
            out.push(format!(
                "touch limit {:?}: max and period must be positive",
                t.name
            ));
        }
        if t.actions.is_empty() {
            out.push(format!("touch limit {:?} names no action", t.name));
        }
        for a in &t.actions {
            if !actions.contains(a.as_str()) {
                out.push(format!(
                    "touch limit {:?} names unknown action {a:?}",
                    t.name
                ));
            }
        }
    }
    if !m.actions.is_empty() && m.hosts.is_empty() {
        out.push("a plugin with actions must list the hosts it calls".into());
    }
    unique(&mut out, "host", m.hosts.iter());
    for h in &m.hosts {
        if !is_host_name(h) {
            out.push(format!(
                "host {h:?} must be a lowercase DNS name without scheme, port or path"
            ));
        }
    }
    out
}

/// A batched action reaches contacts or groups, carries at least one id per call, and names a
/// top-level array property of its input schema (as schemars derives it from a `Vec<_>` field).
fn check_batch(out: &mut Vec<String>, a: &ActionSpec, batch: &BatchSpec) {
    if batch.max == 0 {
        out.push(format!("action {:?}: batch max must be positive", a.name));
    }
    if !matches!(a.audience, Audience::Contact | Audience::Group) {
        out.push(format!(
            "action {:?}: batch needs audience contact or group",
            a.name
        ));
    }
    let property = a
        .input_schema
        .get("properties")
        .and_then(|p| p.get(&batch.field));
    match property {
        None => out.push(format!(
            "action {:?}: batch field {:?} is not a property of the input schema",
            a.name, batch.field
        )),
        Some(p) if p.get("type").and_then(Value::as_str) != Some("array") => out.push(format!(
            "action {:?}: batch field {:?} must have \"type\": \"array\" in the input schema",
            a.name, batch.field
        )),
        Some(_) => {}
    }
}

fn unique<'a>(out: &mut Vec<String>, what: &str, names: impl Iterator<Item = &'a String>) {
    let mut seen = BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            out.push(format!("{what} {n:?} is declared twice"));
        }
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 32
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_semver(s: &str) -> bool {
    let core = s.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A DNS name the network policy can match exactly: labels of `[a-z0-9-]`, at least one dot.
pub(crate) fn is_host_name(s: &str) -> bool {
    s.len() <= 253
        && s.contains('.')
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> wit::Manifest {
        wit::Manifest {
            name: "wecom".into(),
            version: "0.1.0".into(),
            description: "WeCom".into(),
            actions: vec![wit::ActionSpec {
                name: "send_welcome".into(),
                description: "welcome".into(),
                input_schema: r#"{"type":"object"}"#.into(),
                delivery: wit::Delivery::AtMostOnce,
                audience: wit::Audience::Contact,
                asynchronous: false,
                time_critical: true,
                rate_limits: vec!["api".into()],
                batch: None,
            }],
            events: vec![wit::EventSpec {
                kind: "contact_added".into(),
                description: "added".into(),
                attributes_schema: "true".into(),
            }],
            rate_limits: vec![wit::RateLimit {
                name: "api".into(),
                scope: wit::LimitScope::Account,
                max: 10_000,
                per_seconds: 60,
                error_code: Some("45009".into()),
            }],
            touch_limits: vec![wit::TouchLimit {
                name: "daily".into(),
                actions: vec!["send_welcome".into()],
                max: 1,
                period: wit::TouchPeriod::Day,
            }],
            hosts: vec!["qyapi.weixin.qq.com".into()],
            account_schema: r#"{"type":"object","required":["corp_id"]}"#.into(),
        }
    }

    #[test]
    fn a_good_manifest_converts_to_snake_case_json() {
        let m = from_wit(good()).unwrap();
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["actions"][0]["delivery"], "at_most_once");
        assert_eq!(json["actions"][0]["input_schema"]["type"], "object");
        assert_eq!(json["touch_limits"][0]["period"], "day");
        assert_eq!(json["rate_limits"][0]["per_seconds"], 60);
        let back: Manifest = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut m = good();
        m.name = "WeCom!".into();
        m.version = "one".into();
        m.actions.push(m.actions[0].clone());
        m.actions[0].input_schema = "{not json".into();
        m.actions[1].input_schema = "[1]".into();
        m.actions[0].rate_limits.push("nope".into());
        m.rate_limits[0].max = 0;
        m.touch_limits[0].actions = vec!["ghost".into()];
        m.hosts = vec!["https://qyapi.weixin.qq.com/".into()];
        let problems = from_wit(m).unwrap_err();
        for needle in [
            "name \"WeCom!\"",
            "not semver",
            "declared twice",
            "not valid JSON",
            "must be an object or a boolean",
            "undeclared rate limit \"nope\"",
            "max and per_seconds must be positive",
            "unknown action \"ghost\"",
            "must be a lowercase DNS name",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(needle)),
                "missing {needle:?} in {problems:#?}"
            );
        }
    }

    /// The input schema schemars derives for a WeCom-like mass send (`contacts: Vec<String>`,
    /// `sender: Option<String>`, `tags: Vec<String>` with `#[serde(default)]`).
    const MASS_SEND_SCHEMA: &str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "MassSend", "type": "object", "additionalProperties": false,
        "properties": {
            "contacts": {"description": "ids", "type": "array", "items": {"type": "string"}},
            "groups": {"default": [], "type": "array", "items": {"type": "string"}},
            "sender": {"default": null, "type": ["string", "null"]},
            "maybe": {"default": null, "type": ["array", "null"], "items": {"type": "string"}}
        },
        "required": ["contacts"]
    }"#;

    fn batched(audience: wit::Audience, field: &str, max: u32) -> wit::Manifest {
        let mut m = good();
        m.actions.push(wit::ActionSpec {
            name: "mass_send".into(),
            description: "mass send".into(),
            input_schema: MASS_SEND_SCHEMA.into(),
            delivery: wit::Delivery::AtMostOnce,
            audience,
            asynchronous: true,
            time_critical: false,
            rate_limits: vec!["api".into()],
            batch: Some(wit::BatchSpec {
                field: field.into(),
                max,
            }),
        });
        m
    }

    #[test]
    fn a_batched_action_keeps_its_batch_in_the_json_shape() {
        let m = from_wit(batched(wit::Audience::Contact, "contacts", 10_000)).unwrap();
        assert_eq!(
            m.action("mass_send").unwrap().batch,
            Some(BatchSpec {
                field: "contacts".into(),
                max: 10_000
            })
        );
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json["actions"][1]["batch"],
            serde_json::json!({"field": "contacts", "max": 10_000})
        );
        // Unbatched actions have no `batch` key, and JSON without one reads as unbatched.
        assert!(json["actions"][0].get("batch").is_none());
        let back: Manifest = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.actions[0].batch, None);

        let groups = from_wit(batched(wit::Audience::Group, "groups", 2_000)).unwrap();
        assert_eq!(groups.actions[1].batch.as_ref().unwrap().field, "groups");
    }

    #[test]
    fn a_batch_needs_a_positive_max() {
        let problems = from_wit(batched(wit::Audience::Contact, "contacts", 0)).unwrap_err();
        assert_eq!(
            problems,
            ["action \"mass_send\": batch max must be positive"]
        );
    }

    #[test]
    fn a_batch_needs_audience_contact_or_group() {
        for audience in [wit::Audience::None, wit::Audience::Staff] {
            let problems = from_wit(batched(audience, "contacts", 100)).unwrap_err();
            assert_eq!(
                problems,
                ["action \"mass_send\": batch needs audience contact or group"]
            );
        }
    }

    #[test]
    fn a_batch_field_must_be_an_array_property_of_the_input() {
        let problems = from_wit(batched(wit::Audience::Contact, "recipients", 100)).unwrap_err();
        assert_eq!(
            problems,
            [
                "action \"mass_send\": batch field \"recipients\" is not a property of the input schema"
            ]
        );
        for field in ["sender", "maybe"] {
            let problems = from_wit(batched(wit::Audience::Contact, field, 100)).unwrap_err();
            assert_eq!(
                problems,
                [format!(
                    "action \"mass_send\": batch field {field:?} must have \"type\": \"array\" in the input schema"
                )]
            );
        }
        // A schema without properties (`true`, or an object schema naming none) has no field.
        let mut m = batched(wit::Audience::Contact, "contacts", 100);
        m.actions[1].input_schema = "true".into();
        let problems = from_wit(m).unwrap_err();
        assert_eq!(
            problems,
            [
                "action \"mass_send\": batch field \"contacts\" is not a property of the input schema"
            ]
        );
    }

    #[test]
    fn every_batch_problem_is_reported_at_once() {
        let problems = from_wit(batched(wit::Audience::Staff, "nope", 0)).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:#?}");
    }

    #[test]
    fn actions_need_hosts() {
        let mut m = good();
        m.hosts.clear();
        let problems = from_wit(m).unwrap_err();
        assert_eq!(
            problems,
            ["a plugin with actions must list the hosts it calls"]
        );
    }
}
