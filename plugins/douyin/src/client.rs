//! Calls to the Douyin open API: the `access-token` header, the `{data, extra}` answer
//! shape, and one retry with a fresh token when Douyin says it is invalid or expired.

use sop_plugin_sdk::http::Fetch;
use sop_plugin_sdk::{Delivery, Host, PluginError};

use crate::config::Config;
use crate::{errcode, token};

/// The API base. The operator may re-point the host (to the emulator); paths stay.
pub const API: &str = "https://open.douyin.com";

/// The `error_code` of an answer: `data.error_code`, else `extra.error_code`, else 0.
pub fn error_of(answer: &serde_json::Value) -> (i64, String) {
    let code_at = |v: &serde_json::Value| v.get("error_code").and_then(serde_json::Value::as_i64);
    let data = answer.get("data").unwrap_or(&serde_json::Value::Null);
    let extra = answer.get("extra").unwrap_or(&serde_json::Value::Null);
    let code = code_at(data)
        .filter(|c| *c != 0)
        .or_else(|| code_at(extra))
        .unwrap_or(0);
    let description = [data, extra]
        .iter()
        .find_map(|v| {
            v.get("description")
                .and_then(serde_json::Value::as_str)
                .filter(|d| !d.is_empty())
        })
        .unwrap_or_default()
        .to_owned();
    (code, description)
}

/// `data` of a successful answer, or the typed error.
pub fn data_of(
    api: &str,
    answer: serde_json::Value,
    delivery: Delivery,
) -> Result<serde_json::Value, PluginError> {
    let (code, description) = error_of(&answer);
    if code != 0 {
        return Err(errcode::map(api, code, &description, delivery));
    }
    let mut data = answer.get("data").cloned().unwrap_or_default();
    if let Some(object) = data.as_object_mut() {
        object.remove("error_code");
        object.remove("description");
    }
    Ok(data)
}

/// A Douyin client for one invocation.
pub struct Client<'a> {
    pub host: &'a dyn Host,
    pub config: Config,
}

impl std::fmt::Debug for Client<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish()
    }
}

impl<'a> Client<'a> {
    /// A client for `config`.
    pub fn new(host: &'a dyn Host, config: Config) -> Self {
        Self { host, config }
    }

    /// `POST {API}{path}?open_id=<enterprise>` with a JSON body; returns `data`.
    pub fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
        delivery: Delivery,
    ) -> Result<serde_json::Value, PluginError> {
        let first = token::get(self.host, &self.config)?;
        let answer = self.send(path, body, &first, delivery)?;
        if errcode::is_token_error(error_of(&answer).0) {
            // Refused before acting: safe to send once more, even a message.
            let fresh = token::refresh(self.host, &self.config)?;
            let answer = self.send(path, body, &fresh, delivery)?;
            return data_of(path, answer, delivery);
        }
        data_of(path, answer, delivery)
    }

    fn send(
        &self,
        path: &str,
        body: &serde_json::Value,
        access_token: &str,
        delivery: Delivery,
    ) -> Result<serde_json::Value, PluginError> {
        Fetch::post_json(&format!("{API}{path}"), body)
            .query("open_id", &self.config.open_id)
            .header("access-token", access_token)
            .send_json(self.host, delivery)
    }
}
