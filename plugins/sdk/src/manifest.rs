//! The manifest as JSON, in the shape the host exposes and `sop validate --plugins` reads
//! (snake_case fields, schemas as JSON values), so a plugin's manifest can be dumped natively.

use serde_json::{Value, json};

use crate::{Audience, Delivery, LimitScope, Manifest, TouchPeriod};

/// A schema string as a JSON value (kept as a string if it does not parse, so the host's
/// own check reports it).
fn schema(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// The manifest as JSON.
pub fn to_json(manifest: &Manifest) -> Value {
    let actions: Vec<Value> = manifest
        .actions
        .iter()
        .map(|a| {
            let mut action = json!({
                "name": a.name,
                "description": a.description,
                "input_schema": schema(&a.input_schema),
                "delivery": match a.delivery {
                    Delivery::AtMostOnce => "at_most_once",
                    Delivery::Idempotent => "idempotent",
                },
                "audience": match a.audience {
                    Audience::None => "none",
                    Audience::Contact => "contact",
                    Audience::Group => "group",
                    Audience::Staff => "staff",
                },
                "asynchronous": a.asynchronous,
                "time_critical": a.time_critical,
                "rate_limits": a.rate_limits,
            });
            if let (Some(batch), Some(object)) = (&a.batch, action.as_object_mut()) {
                object.insert(
                    "batch".to_owned(),
                    json!({ "field": batch.field, "max": batch.max }),
                );
            }
            action
        })
        .collect();
    let events: Vec<Value> = manifest
        .events
        .iter()
        .map(|e| {
            json!({
                "kind": e.kind,
                "description": e.description,
                "attributes_schema": schema(&e.attributes_schema),
            })
        })
        .collect();
    let rate_limits: Vec<Value> = manifest
        .rate_limits
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "scope": match r.scope {
                    LimitScope::Account => "account",
                    LimitScope::Recipient => "recipient",
                },
                "max": r.max,
                "per_seconds": r.per_seconds,
                "error_code": r.error_code,
            })
        })
        .collect();
    let touch_limits: Vec<Value> = manifest
        .touch_limits
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "actions": t.actions,
                "max": t.max,
                "period": match t.period {
                    TouchPeriod::Day => json!("day"),
                    TouchPeriod::Month => json!("month"),
                    TouchPeriod::Rolling(seconds) => json!({ "rolling": seconds }),
                },
            })
        })
        .collect();
    json!({
        "name": manifest.name,
        "version": manifest.version,
        "description": manifest.description,
        "actions": actions,
        "events": events,
        "rate_limits": rate_limits,
        "touch_limits": touch_limits,
        "hosts": manifest.hosts,
        "account_schema": schema(&manifest.account_schema),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActionSpec, RateLimit, TouchLimit};

    #[test]
    fn snake_case_with_schemas_as_values() {
        let manifest = Manifest {
            name: "x".to_owned(),
            version: "0.1.0".to_owned(),
            description: String::new(),
            actions: vec![ActionSpec {
                name: "say".to_owned(),
                description: String::new(),
                input_schema: r#"{"type":"object"}"#.to_owned(),
                delivery: Delivery::AtMostOnce,
                audience: Audience::Contact,
                asynchronous: false,
                time_critical: true,
                rate_limits: vec!["api".to_owned()],
                batch: None,
            }],
            events: vec![],
            rate_limits: vec![RateLimit {
                name: "api".to_owned(),
                scope: LimitScope::Account,
                max: 1,
                per_seconds: 1,
                error_code: None,
            }],
            touch_limits: vec![TouchLimit {
                name: "t".to_owned(),
                actions: vec!["say".to_owned()],
                max: 1,
                period: TouchPeriod::Rolling(60),
            }],
            hosts: vec!["h.example".to_owned()],
            account_schema: "true".to_owned(),
        };
        let value = to_json(&manifest);
        assert_eq!(value["actions"][0]["input_schema"]["type"], "object");
        assert_eq!(value["actions"][0]["delivery"], "at_most_once");
        assert_eq!(value["touch_limits"][0]["period"], json!({"rolling": 60}));
        assert_eq!(value["account_schema"], true);
    }
}
