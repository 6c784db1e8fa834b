//! JSON in and out: inputs parsed with errors that name the action and the field,
//! outputs serialized without panicking.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{PluginError, WebhookError};

/// Parses an action's input, answering `invalid-input` with serde's reason and position.
pub fn parse_input<T: DeserializeOwned>(action: &str, raw: &str) -> Result<T, PluginError> {
    serde_json::from_str(raw)
        .map_err(|e| PluginError::invalid_input(format!("input of `{action}`: {e}")))
}

/// Parses an account's configuration; a bad one is the operator's to fix, so `permanent`.
pub fn parse_config<T: DeserializeOwned>(raw: &str) -> Result<T, PluginError> {
    serde_json::from_str(raw)
        .map_err(|e| PluginError::permanent(format!("account configuration: {e}")))
}

/// Parses an account's configuration while verifying a webhook: without it nothing can be
/// verified, so `verification-failed`.
pub fn parse_webhook_config<T: DeserializeOwned>(raw: &str) -> Result<T, WebhookError> {
    serde_json::from_str(raw)
        .map_err(|e| WebhookError::verification_failed(format!("account configuration: {e}")))
}

/// Serializes an output value. Serializing plain data cannot fail; if it ever did, the
/// reason is returned as a JSON string rather than a panic.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        serde_json::Value::String(format!("unserializable output: {e}")).to_string()
    })
}

/// The JSON Schema (draft 2020-12) of `T`, as text for the manifest.
pub fn schema_of<T: JsonSchema>() -> String {
    to_json(&schemars::schema_for!(T))
}
