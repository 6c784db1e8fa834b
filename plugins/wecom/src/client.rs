//! Calls to the WeCom server API: token injection, `errcode` checks, and one retry with a
//! fresh token when WeCom says the token is invalid or expired.

use serde::Serialize;
use sop_plugin_sdk::http::Fetch;
use sop_plugin_sdk::{Delivery, Host, PluginError};

use crate::config::Config;
use crate::{errcode, token};

/// The API base. The operator may re-point the host (to the emulator); the path stays.
pub const API: &str = "https://qyapi.weixin.qq.com/cgi-bin";

/// Maps a non-zero `errcode` in `answer` to a typed error.
pub fn check_errcode(
    api: &str,
    answer: &serde_json::Value,
    delivery: Delivery,
) -> Result<(), PluginError> {
    let code = answer
        .get("errcode")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0);
    if code == 0 {
        return Ok(());
    }
    let errmsg = answer
        .get("errmsg")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    Err(errcode::map(api, code, errmsg, delivery))
}

/// A WeCom client for one invocation: the host and the account.
pub struct Client<'a> {
    pub host: &'a dyn Host,
    pub config: Config,
    /// The invocation's key, when there is one, to remember what it created.
    pub idempotency_key: Option<String>,
}

impl std::fmt::Debug for Client<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish()
    }
}

enum Body<'b> {
    None(&'b [(&'b str, &'b str)]),
    Json(&'b serde_json::Value),
}

impl<'a> Client<'a> {
    /// A client for `config`.
    pub fn new(host: &'a dyn Host, config: Config, idempotency_key: Option<String>) -> Self {
        Self {
            host,
            config,
            idempotency_key,
        }
    }

    /// `GET {API}/{api}?access_token=…&query…`, the answer checked for `errcode`.
    pub fn get(
        &self,
        api: &str,
        query: &[(&str, &str)],
        delivery: Delivery,
    ) -> Result<serde_json::Value, PluginError> {
        self.call(api, Body::None(query), delivery)
    }

    /// `POST {API}/{api}?access_token=…` with a JSON body, the answer checked for `errcode`.
    pub fn post<B: Serialize + ?Sized>(
        &self,
        api: &str,
        body: &B,
        delivery: Delivery,
    ) -> Result<serde_json::Value, PluginError> {
        let body = serde_json::to_value(body)
            .map_err(|e| PluginError::invalid_input(format!("{api}: request body: {e}")))?;
        self.call(api, Body::Json(&body), delivery)
    }

    /// Like [`Client::post`], but answers WeCom's refusal as the raw answer (with its
    /// `errcode`) rather than an error, for callers that react to one code themselves.
    /// Transport failures and token problems are still errors.
    pub fn post_unchecked<B: Serialize + ?Sized>(
        &self,
        api: &str,
        body: &B,
        delivery: Delivery,
    ) -> Result<serde_json::Value, PluginError> {
        let body = serde_json::to_value(body)
            .map_err(|e| PluginError::invalid_input(format!("{api}: request body: {e}")))?;
        self.call_unchecked(api, &Body::Json(&body), delivery)
    }

    fn call(
        &self,
        api: &str,
        body: Body<'_>,
        delivery: Delivery,
    ) -> Result<serde_json::Value, PluginError> {
        let answer = self.call_unchecked(api, &body, delivery)?;
        check_errcode(api, &answer, delivery)?;
        Ok(answer)
    }

    fn call_unchecked(
        &self,
        api: &str,
        body: &Body<'_>,
        delivery: Delivery,
    ) -> Result<serde_json::Value, PluginError> {
        let first = token::get(self.host, &self.config)?;
        let answer = self.send(api, body, &first, delivery)?;
        match self.token_error(&answer) {
            // WeCom refused the token before doing anything, so even an at-most-once
            // message is safe to send again with a new one.
            Some(_) => {
                let fresh = token::refresh(self.host, &self.config)?;
                let answer = self.send(api, body, &fresh, delivery)?;
                // A fresh token refused again is an account problem, not the caller's.
                if self.token_error(&answer).is_some() {
                    check_errcode(api, &answer, delivery)?;
                }
                Ok(answer)
            }
            None => Ok(answer),
        }
    }

    fn token_error(&self, answer: &serde_json::Value) -> Option<i64> {
        answer
            .get("errcode")
            .and_then(serde_json::Value::as_i64)
            .filter(|code| errcode::is_token_error(*code))
    }

    fn send(
        &self,
        api: &str,
        body: &Body<'_>,
        access_token: &str,
        delivery: Delivery,
    ) -> Result<serde_json::Value, PluginError> {
        let url = format!("{API}/{api}");
        let fetch = match body {
            Body::None(query) => query
                .iter()
                .fold(Fetch::get(&url), |f, (name, value)| f.query(name, value)),
            Body::Json(json) => Fetch::post_json(&url, json),
        };
        fetch
            .query("access_token", access_token)
            .send_json(self.host, delivery)
    }
}
