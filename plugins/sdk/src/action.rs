//! Typed action registration: an action is a name, a serde input type and a handler.
//!
//! The registry produces the manifest's [`ActionSpec`]s (with a JSON Schema derived from the
//! input type, so the schema and the parser can never disagree) and dispatches `invoke`
//! calls, turning unreadable input into a clear `invalid-input` error.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::{ActionSpec, Audience, BatchSpec, Delivery, InvokeOutcome, PluginError};

/// The declarative half of an action: everything in its [`ActionSpec`] but the schema.
#[derive(Debug, Clone)]
pub struct ActionDef {
    name: &'static str,
    description: &'static str,
    delivery: Delivery,
    audience: Audience,
    asynchronous: bool,
    time_critical: bool,
    rate_limits: Vec<String>,
    batch: Option<BatchSpec>,
}

impl ActionDef {
    /// A new idempotent action that reaches no one.
    pub fn new(name: &'static str, description: &'static str) -> Self {
        Self {
            name,
            description,
            delivery: Delivery::Idempotent,
            audience: Audience::None,
            asynchronous: false,
            time_critical: false,
            rate_limits: Vec::new(),
            batch: None,
        }
    }

    /// Messages people: never repeated blindly.
    pub fn at_most_once(mut self) -> Self {
        self.delivery = Delivery::AtMostOnce;
        self
    }

    /// Who the action reaches, for the policy gate.
    pub fn audience(mut self, audience: Audience) -> Self {
        self.audience = audience;
        self
    }

    /// The platform answers "accepted"; the outcome comes from `check-outcome`.
    pub fn asynchronous(mut self) -> Self {
        self.asynchronous = true;
        self
    }

    /// Valid only shortly after an event; scheduled ahead of bulk work.
    pub fn time_critical(mut self) -> Self {
        self.time_critical = true;
        self
    }

    /// The manifest rate limits this action draws from.
    pub fn rate_limits(mut self, names: &[&str]) -> Self {
        self.rate_limits = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    /// One call can serve many recipients: the runtime may merge invocations whose inputs are
    /// equal but for `field` (a top-level list of recipient ids in the input, one id each)
    /// into one call listing up to `max` ids. Only for audience contact or group; the host
    /// refuses the plugin otherwise. Outputs may then carry `"recipients": {status: [ids]}`
    /// (`"rejected"` in an `invoke` answer fails those recipients): see docs/plugins.md,
    /// "Batched actions".
    pub fn batch(mut self, field: &str, max: u32) -> Self {
        self.batch = Some(BatchSpec {
            field: field.to_owned(),
            max,
        });
        self
    }

    /// The delivery semantics, used to map transport failures.
    pub fn delivery(&self) -> Delivery {
        self.delivery
    }
}

type Handler<C> = Box<dyn Fn(&C, &str) -> Result<InvokeOutcome, PluginError>>;

struct Registered<C> {
    def: ActionDef,
    input_schema: String,
    handler: Handler<C>,
}

/// The actions of a plugin, generic over the context its handlers receive
/// (typically a client holding the host and the account's parsed configuration).
pub struct Actions<C> {
    actions: Vec<Registered<C>>,
}

impl<C> std::fmt::Debug for Actions<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.actions.iter().map(|a| a.def.name))
            .finish()
    }
}

impl<C> Default for Actions<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C> Actions<C> {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            actions: Vec::new(),
        }
    }

    /// Registers an action whose input is parsed as `I` before `handler` runs.
    pub fn action<I, F>(mut self, def: ActionDef, handler: F) -> Self
    where
        I: DeserializeOwned + JsonSchema + 'static,
        F: Fn(&C, I) -> Result<InvokeOutcome, PluginError> + 'static,
    {
        let name = def.name;
        let input_schema = crate::json::schema_of::<I>();
        let handler: Handler<C> = Box::new(move |ctx, raw| {
            let input: I = crate::json::parse_input(name, raw)?;
            handler(ctx, input)
        });
        self.actions.push(Registered {
            def,
            input_schema,
            handler,
        });
        self
    }

    /// The specs for the manifest, in registration order.
    pub fn specs(&self) -> Vec<ActionSpec> {
        self.actions
            .iter()
            .map(|a| ActionSpec {
                name: a.def.name.to_owned(),
                description: a.def.description.to_owned(),
                input_schema: a.input_schema.clone(),
                delivery: a.def.delivery,
                audience: a.def.audience,
                asynchronous: a.def.asynchronous,
                time_critical: a.def.time_critical,
                rate_limits: a.def.rate_limits.clone(),
                batch: a.def.batch.clone(),
            })
            .collect()
    }

    /// The declaration of `name`, if registered.
    pub fn def(&self, name: &str) -> Option<&ActionDef> {
        self.actions
            .iter()
            .find(|a| a.def.name == name)
            .map(|a| &a.def)
    }

    /// Parses `input` for action `name` and runs its handler.
    pub fn dispatch(&self, ctx: &C, name: &str, input: &str) -> Result<InvokeOutcome, PluginError> {
        let action = self
            .actions
            .iter()
            .find(|a| a.def.name == name)
            .ok_or_else(|| PluginError::invalid_input(format!("unknown action `{name}`")))?;
        (action.handler)(ctx, input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Greet {
        /// Who to greet.
        name: String,
    }

    fn registry() -> Actions<String> {
        Actions::new().action(
            ActionDef::new("greet", "Says hello")
                .at_most_once()
                .audience(Audience::Contact)
                .rate_limits(&["api"]),
            |prefix: &String, input: Greet| {
                Ok(InvokeOutcome::Done(crate::json::to_json(&format!(
                    "{prefix} {}",
                    input.name
                ))))
            },
        )
    }

    #[test]
    fn dispatch_parses_input_and_runs_the_handler() {
        let out = registry()
            .dispatch(&"hello".to_owned(), "greet", r#"{"name":"Li"}"#)
            .unwrap();
        assert_eq!(out, InvokeOutcome::Done(r#""hello Li""#.to_owned()));
    }

    #[test]
    fn bad_input_is_invalid_input_naming_the_action_and_field() {
        let err = registry()
            .dispatch(&String::new(), "greet", r#"{"nam":"Li"}"#)
            .unwrap_err();
        let PluginError::InvalidInput(message) = err else {
            panic!("expected invalid-input, got {err:?}");
        };
        assert!(message.contains("greet"), "{message}");
        assert!(message.contains("nam"), "{message}");
    }

    #[test]
    fn unknown_action_is_invalid_input() {
        let err = registry()
            .dispatch(&String::new(), "shout", "{}")
            .unwrap_err();
        assert_eq!(err, PluginError::invalid_input("unknown action `shout`"));
    }

    #[test]
    fn specs_carry_the_declaration_and_a_derived_schema() {
        let specs = registry().specs();
        assert_eq!(specs.len(), 1);
        let spec = &specs[0];
        assert_eq!(spec.name, "greet");
        assert_eq!(spec.delivery, Delivery::AtMostOnce);
        assert_eq!(spec.audience, Audience::Contact);
        assert_eq!(spec.rate_limits, vec!["api".to_owned()]);
        assert_eq!(spec.batch, None);
        let schema: serde_json::Value = serde_json::from_str(&spec.input_schema).unwrap();
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["required"][0], "name");
        assert_eq!(schema["properties"]["name"]["type"], "string");
    }

    fn manifest_of(actions: Vec<ActionSpec>) -> crate::Manifest {
        crate::Manifest {
            name: "x".to_owned(),
            version: "0.1.0".to_owned(),
            description: String::new(),
            actions,
            events: vec![],
            rate_limits: vec![],
            touch_limits: vec![],
            hosts: vec![],
            account_schema: "true".to_owned(),
        }
    }

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Broadcast {
        contacts: Vec<String>,
        text: String,
    }

    #[test]
    fn batch_is_carried_into_the_spec_and_the_manifest_json() {
        let actions: Actions<()> = Actions::new().action(
            ActionDef::new("broadcast", "Sends one text to many contacts")
                .at_most_once()
                .audience(Audience::Contact)
                .batch("contacts", 500),
            |_: &(), input: Broadcast| {
                Ok(InvokeOutcome::Done(crate::json::to_json(
                    &serde_json::json!({
                        "count": input.contacts.len(), "text": input.text,
                    }),
                )))
            },
        );
        let specs = actions.specs();
        assert_eq!(
            specs[0].batch,
            Some(BatchSpec {
                field: "contacts".to_owned(),
                max: 500
            })
        );
        // The named field is the array property the host checks for.
        let schema: serde_json::Value = serde_json::from_str(&specs[0].input_schema).unwrap();
        assert_eq!(schema["properties"]["contacts"]["type"], "array");
        let json = crate::manifest::to_json(&manifest_of(specs));
        assert_eq!(
            json["actions"][0]["batch"],
            serde_json::json!({"field": "contacts", "max": 500})
        );
        // Unbatched actions have no `batch` key (the host reads its absence as none).
        let json = crate::manifest::to_json(&manifest_of(registry().specs()));
        assert!(json["actions"][0].get("batch").is_none());
    }
}
