//! What plugins offer: actions with input schemas, and event kinds. The checker uses it to check
//! action names and parameters and event types.
//!
//! The JSON form is the WIT `manifest` record (`plugins/wit/plugin.wit`) in snake_case, with
//! `input_schema` and `attributes_schema` as JSON objects rather than JSON text. A later step
//! builds the catalog from the WASM plugins' `describe`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Every known plugin, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub plugins: BTreeMap<String, PluginSpec>,
    /// The platform accounts the daemon serves, when known: tenant → account id → plugin.
    /// With it the checker refuses an action step's `account:` that the playbook's tenant
    /// does not have, or that belongs to another plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<BTreeMap<String, BTreeMap<String, String>>>,
}

/// One plugin's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginSpec {
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub actions: Vec<ActionSpec>,
    #[serde(default)]
    pub events: Vec<EventSpec>,
    /// Kept as written; the runtime reads these, the checker does not.
    #[serde(default)]
    pub rate_limits: Vec<serde_json::Value>,
    #[serde(default)]
    pub touch_limits: Vec<serde_json::Value>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub account_schema: serde_json::Value,
}

/// An action a plugin performs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the input object.
    #[serde(default)]
    pub input_schema: serde_json::Value,
    pub delivery: Delivery,
    pub audience: ActionAudience,
    #[serde(default)]
    pub asynchronous: bool,
    #[serde(default)]
    pub time_critical: bool,
    #[serde(default)]
    pub rate_limits: Vec<String>,
    /// Present when the runtime may merge invocations of this action into one call
    /// (docs/plugins.md, "Batched actions").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchSpec>,
}

/// How invocations of a batched action are merged: inputs equal but for `field`, a list of
/// recipient ids, become one input whose `field` lists them all, at most `max`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSpec {
    pub field: String,
    pub max: u32,
}

/// How the runtime may repeat an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    AtMostOnce,
    Idempotent,
}

/// Who an action reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionAudience {
    None,
    Contact,
    Group,
    Staff,
}

/// An event kind a plugin emits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSpec {
    pub kind: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub attributes_schema: serde_json::Value,
}

/// Why a catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a plugin manifest: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: plugin `{name}` is already defined by another manifest")]
    Duplicate { path: String, name: String },
}

impl Catalog {
    /// Adds a plugin; refuses a second plugin of the same name, returning that name.
    pub fn insert(&mut self, plugin: PluginSpec) -> Result<(), String> {
        if self.plugins.contains_key(&plugin.name) {
            return Err(plugin.name);
        }
        self.plugins.insert(plugin.name.clone(), plugin);
        Ok(())
    }

    /// Reads every `*.json` manifest in `dir` (not recursive), in name order.
    pub fn load_dir(dir: &Path) -> Result<Catalog, CatalogError> {
        let io = |source| CatalogError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
        paths.sort();
        let mut catalog = Catalog::default();
        for path in paths {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|source| CatalogError::Io {
                path: shown.clone(),
                source,
            })?;
            let plugin: PluginSpec =
                serde_json::from_str(&text).map_err(|source| CatalogError::Json {
                    path: shown.clone(),
                    source,
                })?;
            catalog
                .insert(plugin)
                .map_err(|name| CatalogError::Duplicate { path: shown, name })?;
        }
        Ok(catalog)
    }

    pub fn plugin(&self, name: &str) -> Option<&PluginSpec> {
        self.plugins.get(name)
    }
}

impl PluginSpec {
    pub fn action(&self, name: &str) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.name == name)
    }

    pub fn event(&self, kind: &str) -> Option<&EventSpec> {
        self.events.iter().find(|e| e.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_manifest_in_wit_shape() {
        let json = r#"{
            "name": "shop", "version": "0.1.0", "description": "a shop",
            "actions": [{"name": "credit_points", "description": "",
                         "input_schema": {"type": "object", "required": ["points"]},
                         "delivery": "idempotent", "audience": "none",
                         "asynchronous": false, "time_critical": false, "rate_limits": []}],
            "events": [{"kind": "order_paid", "description": "", "attributes_schema": {}}],
            "rate_limits": [], "touch_limits": [], "hosts": ["shop.example"], "account_schema": {}
        }"#;
        let plugin: PluginSpec = serde_json::from_str(json).unwrap();
        assert_eq!(
            plugin.action("credit_points").unwrap().delivery,
            Delivery::Idempotent
        );
        assert!(plugin.event("order_paid").is_some());
        let mut catalog = Catalog::default();
        catalog.insert(plugin.clone()).unwrap();
        assert!(catalog.insert(plugin).is_err());
    }
}
