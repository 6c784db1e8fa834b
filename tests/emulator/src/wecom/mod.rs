//! WeCom server API at its real paths under `/cgi-bin/`.
//!
//! Every answer is HTTP 200 with JSON `errcode`/`errmsg`, as on the platform. Common checks
//! (access token, frequency limit) run in `call` before the endpoint's own logic.

mod contact;
mod corp_tag;
mod error;
mod groupchat;
pub mod kf;
mod mass_send;
mod message;
mod token;
mod welcome;

pub mod callback;

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::WxError;
pub use mass_send::{
    TaskStatus, Tasks, confirm as mass_send_confirm, settle as mass_send_settle, take_quota,
};
pub use token::Tokens;
pub use welcome::WelcomeCodes;

use crate::app::{App, State};
use crate::config::{Config, WecomConfig};
use crate::rate_limit::RateLimiter;

/// WeCom's share of the emulator state.
#[derive(Debug)]
pub struct WecomState {
    /// Access tokens per app.
    pub tokens: Tokens,
    /// Per-API frequency limits, one limiter per corp (`WecomConfig::corps`).
    pub limiters: Vec<RateLimiter>,
    /// Calls and frequency-limit answers per corp id, for calls with a valid token.
    pub by_corp: Vec<CorpCount>,
    /// Welcome codes issued with add-contact callbacks.
    pub welcome: WelcomeCodes,
    /// Mass-send tasks.
    pub tasks: Tasks,
    /// App message quotas.
    pub app_messages: message::AppMessageQuota,
    /// Customers' messages to the kf account.
    pub kf: kf::KfState,
}

impl WecomState {
    /// Fresh state for `cfg`.
    pub fn new(cfg: &WecomConfig) -> Self {
        Self {
            tokens: Tokens::default(),
            limiters: (0..cfg.corps.max(1))
                .map(|_| RateLimiter::new(cfg.api_limit_per_min, cfg.api_limit_per_hour))
                .collect(),
            by_corp: vec![CorpCount::default(); cfg.corps.max(1) as usize],
            welcome: WelcomeCodes::default(),
            tasks: Tasks::default(),
            app_messages: message::AppMessageQuota::default(),
            kf: kf::KfState::new(cfg),
        }
    }
}

impl WecomState {
    /// The limiter of corp `corp` (an index from `Tokens::check` or `corp_index`).
    pub fn limiter(&mut self, corp: usize) -> &mut RateLimiter {
        &mut self.limiters[corp]
    }
}

/// One corp's API traffic (calls that presented a valid token).
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct CorpCount {
    /// Calls.
    pub calls: u64,
    /// Answered 45009.
    pub rate_limited: u64,
}

/// Routes of the WeCom API.
pub fn router() -> Router<App> {
    Router::new()
        .route("/cgi-bin/gettoken", get(token::gettoken))
        .route("/cgi-bin/externalcontact/get", get(contact::get))
        .route("/cgi-bin/externalcontact/list", get(contact::list))
        .route("/cgi-bin/externalcontact/mark_tag", post(contact::mark_tag))
        .route("/cgi-bin/externalcontact/remark", post(contact::remark))
        .route(
            "/cgi-bin/externalcontact/get_corp_tag_list",
            post(corp_tag::get_corp_tag_list),
        )
        .route(
            "/cgi-bin/externalcontact/add_corp_tag",
            post(corp_tag::add_corp_tag),
        )
        .route(
            "/cgi-bin/externalcontact/del_corp_tag",
            post(corp_tag::del_corp_tag),
        )
        .route(
            "/cgi-bin/externalcontact/send_welcome_msg",
            post(welcome::send_welcome_msg),
        )
        .route(
            "/cgi-bin/externalcontact/add_msg_template",
            post(mass_send::add_msg_template),
        )
        .route(
            "/cgi-bin/externalcontact/get_groupmsg_task",
            post(mass_send::get_groupmsg_task),
        )
        .route(
            "/cgi-bin/externalcontact/get_groupmsg_send_result",
            post(mass_send::get_groupmsg_send_result),
        )
        .route(
            "/cgi-bin/externalcontact/groupchat/list",
            post(groupchat::list),
        )
        .route(
            "/cgi-bin/externalcontact/groupchat/get",
            post(groupchat::get),
        )
        .route("/cgi-bin/message/send", post(message::send))
        .route("/cgi-bin/kf/sync_msg", post(kf::sync_msg))
}

/// Query string as a map (unknown keys are ignored, as the platform does).
pub(crate) type Query = HashMap<String, String>;

/// Run the common checks for `api`, then `f` under the state lock, and answer (serialising
/// after the lock is released).
pub(crate) fn call<T: Serialize>(
    app: &App,
    api: &'static str,
    query: &Query,
    f: impl FnOnce(&mut State, &Config, u64) -> Result<T, WxError>,
) -> Response {
    let now = app.now_ms();
    let result = {
        let mut st = app.lock();
        let st = &mut *st;
        st.counters.call(api);
        // Confirmations that fell due happened before this call, whatever it changes.
        mass_send::settle(st, &app.config().wecom, now);
        let result = st
            .wecom
            .tokens
            .check(query.get("access_token").map(String::as_str), now)
            .and_then(|corp| {
                let allowed = st.wecom.limiter(corp).allow(api, now);
                let count = &mut st.wecom.by_corp[corp];
                count.calls += 1;
                if allowed {
                    Ok(())
                } else {
                    count.rate_limited += 1;
                    Err(WxError::FREQUENCY_LIMIT)
                }
            })
            .and_then(|()| f(st, app.config(), now));
        if let Err(e) = &result {
            st.counters
                .error(api, e.code == WxError::FREQUENCY_LIMIT.code);
        }
        result
    };
    match result {
        Ok(body) => ok(body),
        Err(e) => e.into_response(),
    }
}

#[derive(Serialize)]
struct Ok<T> {
    errcode: i64,
    errmsg: &'static str,
    #[serde(flatten)]
    body: T,
}

/// `{"errcode":0,"errmsg":"ok", ...body}`; `body` must serialise as an object.
pub(crate) fn ok<T: Serialize>(body: T) -> Response {
    Json(Ok {
        errcode: 0,
        errmsg: "ok",
        body,
    })
    .into_response()
}

/// Parse a JSON body; WeCom answers malformed JSON with 47001.
pub(crate) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, WxError> {
    serde_json::from_slice(body).map_err(|_| WxError::DATA_FORMAT)
}
