//! Douyin open platform: OAuth tokens and the enterprise IM APIs at their real paths.
//!
//! Answers use Douyin's `{"data":{..,"error_code","description"},"extra":{..}}` shape with
//! HTTP 200 for platform errors.

mod im;
mod token;

pub mod webhook;

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::config::DouyinConfig;
use crate::rate_limit::RateLimiter;

/// A Douyin `error_code` with its description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DyError {
    /// `error_code`.
    pub code: i64,
    /// `description`.
    pub description: &'static str,
}

impl DyError {
    /// Injected fault: the platform is busy.
    pub const BUSY: Self = Self::new(2_100_004, "系统繁忙，请稍后重试");
    /// A parameter is missing or malformed.
    pub const BAD_PARAMETER: Self = Self::new(2_100_005, "参数不合法");
    /// Unknown or revoked access token.
    pub const INVALID_TOKEN: Self = Self::new(2_190_002, "access_token无效");
    /// Expired access token.
    pub const TOKEN_EXPIRED: Self = Self::new(2_190_008, "access_token过期");
    /// Unknown, used or expired refresh token (emulator's choice of code).
    pub const BAD_REFRESH: Self = Self::new(10_010, "refresh_token过期");
    /// Wrong client key or secret.
    pub const BAD_CLIENT: Self = Self::new(2_190_015, "client_key或client_secret错误");
    /// The user has not authorised proactive messages (emulator's choice of code).
    pub const NOT_AUTHORISED: Self = Self::new(28_001_003, "用户未授权主动私信");
    /// Quota used up: reply window closed or exhausted, daily proactive quota used.
    pub const QUOTA_USED_UP: Self = Self::new(28_003_017, "发送额度已用完");
    /// Calling too fast.
    pub const RATE_TOO_HIGH: Self = Self::new(28_003_018, "请求频率过高");

    /// Build one.
    pub const fn new(code: i64, description: &'static str) -> Self {
        Self { code, description }
    }
}

impl IntoResponse for DyError {
    fn into_response(self) -> Response {
        answer(
            json!({"error_code": self.code, "description": self.description}),
            self.code,
            self.description,
        )
    }
}

/// Success with `data` fields.
pub(crate) fn ok(mut data: Value) -> Response {
    if let Value::Object(m) = &mut data {
        m.insert("error_code".into(), 0.into());
        m.insert("description".into(), "".into());
    }
    answer(data, 0, "")
}

fn answer(data: Value, code: i64, description: &str) -> Response {
    Json(json!({
        "data": data,
        "extra": {
            "error_code": code,
            "description": description,
            "sub_error_code": 0,
            "sub_description": "",
            "logid": "emu",
            "now": 0,
        },
    }))
    .into_response()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TokenKind {
    Client,
    User,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DyToken {
    kind: TokenKind,
    expires_ms: u64,
    revoked: bool,
}

/// What the emulator knows about one Douyin user's conversation with the enterprise account.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DyUser {
    /// Last message from the user, Unix ms (opens the reply window).
    pub last_msg_ms: Option<u64>,
    /// Last time the user entered the conversation page, Unix ms.
    pub entered_ms: Option<u64>,
    /// Replies sent in the current window.
    pub replies_in_window: u32,
    /// Authorised proactive messages.
    pub authorized: bool,
    /// When they authorised, Unix seconds.
    pub authorized_at_s: u64,
    /// Day of `proactive_count`.
    pub proactive_day: u32,
    /// Proactive messages sent on `proactive_day`.
    pub proactive_count: u32,
}

/// Douyin's share of the emulator state.
#[derive(Debug)]
pub struct DouyinState {
    pub(crate) tokens: HashMap<String, DyToken>,
    pub(crate) limiter: RateLimiter,
    /// Users by contact index.
    pub users: HashMap<u32, DyUser>,
    pub(crate) sent: HashMap<String, (u32, bool)>,
    /// Refresh tokens and their expiry (Unix ms); each is replaced when used.
    pub(crate) refresh: HashMap<String, u64>,
    pub(crate) issued: u64,
}

impl DouyinState {
    /// Fresh state for `cfg`.
    pub fn new(cfg: &DouyinConfig) -> Self {
        Self {
            tokens: HashMap::new(),
            limiter: RateLimiter::new(cfg.send_limit_per_min, 0),
            users: HashMap::new(),
            sent: HashMap::new(),
            refresh: HashMap::new(),
            issued: 0,
        }
    }

    /// Expire every token now; returns how many.
    pub fn expire_tokens(&mut self, now_ms: u64) -> usize {
        let mut n = 0;
        for t in self.tokens.values_mut().filter(|t| t.expires_ms > now_ms) {
            t.expires_ms = now_ms;
            n += 1;
        }
        n
    }

    /// Revoke every token; returns how many.
    pub fn revoke_tokens(&mut self) -> usize {
        let mut n = 0;
        for t in self.tokens.values_mut().filter(|t| !t.revoked) {
            t.revoked = true;
            n += 1;
        }
        n
    }

    /// Tokens for inspection.
    pub fn tokens(&self) -> Value {
        serde_json::to_value(&self.tokens).unwrap_or(Value::Null)
    }

    /// Rate limiter of the send API (for bursts).
    pub fn limiter_mut(&mut self) -> &mut RateLimiter {
        &mut self.limiter
    }
}

/// Routes of the Douyin API.
pub fn router() -> Router<App> {
    Router::new()
        .route(
            "/oauth/client_token/",
            post(token::client_token).get(token::client_token),
        )
        .route("/oauth/access_token/", post(token::access_token))
        .route("/oauth/refresh_token/", post(token::refresh_token))
        .route("/im/send/msg/", post(im::send_msg))
        .route("/im/send/msg/group/", post(im::send_group_msg))
        .route("/im/recall/msg/", post(im::recall_msg))
        .route("/im/authorize/user_list/", post(im::authorize_user_list))
}
