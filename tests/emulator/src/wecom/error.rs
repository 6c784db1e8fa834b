//! WeCom error codes used by the emulator.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A WeCom `errcode` with its `errmsg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WxError {
    /// `errcode`.
    pub code: i64,
    /// `errmsg`.
    pub msg: &'static str,
}

impl WxError {
    /// -1: the platform is busy (injected faults).
    pub const SYSTEM_BUSY: Self = Self::new(-1, "system busy");
    /// 40001: wrong corpsecret.
    pub const INVALID_SECRET: Self = Self::new(40001, "invalid credential");
    /// 40013: unknown corpid.
    pub const INVALID_CORPID: Self = Self::new(40013, "invalid corpid");
    /// 40014: unknown or revoked access token.
    pub const INVALID_TOKEN: Self = Self::new(40014, "invalid access_token");
    /// 40050: unknown chat id.
    pub const INVALID_CHAT_ID: Self = Self::new(40050, "invalid chatid");
    /// 40058: a parameter is out of range.
    pub const INVALID_PARAMETER: Self = Self::new(40058, "invalid parameter");
    /// 40068: unknown tag id.
    pub const INVALID_TAG: Self = Self::new(40068, "invalid tagid");
    /// 40096: malformed or unknown external userid.
    pub const INVALID_EXTERNAL_USERID: Self = Self::new(40096, "invalid external userid");
    /// 41001: no access token.
    pub const MISSING_TOKEN: Self = Self::new(41001, "access_token missing");
    /// 41002: no corpid.
    pub const MISSING_CORPID: Self = Self::new(41002, "corpid missing");
    /// 41004: no corpsecret.
    pub const MISSING_SECRET: Self = Self::new(41004, "corpsecret missing");
    /// 41046: no mass-send `msgid` given.
    pub const MISSING_MSGID: Self = Self::new(41046, "msgid missing");
    /// 41047: unknown mass-send `msgid`.
    pub const INVALID_MSGID: Self = Self::new(41047, "invalid msgid");
    /// 41048: nobody the task could be sent to.
    pub const NO_SENDABLE: Self = Self::new(41048, "no customer can be sent to");
    /// 41049: no welcome code.
    pub const MISSING_WELCOME_CODE: Self = Self::new(41049, "welcome_code missing");
    /// 41050: welcome code expired or unknown.
    pub const WELCOME_CODE_EXPIRED: Self = Self::new(41050, "welcome_code expired or invalid");
    /// 41051: welcome code already used.
    pub const WELCOME_CODE_USED: Self = Self::new(41051, "welcome_code has been used");
    /// 42001: the access token has expired.
    pub const TOKEN_EXPIRED: Self = Self::new(42001, "access_token expired");
    /// 45009: API frequency limit.
    pub const FREQUENCY_LIMIT: Self = Self::new(45009, "api freq out of limit");
    /// 47001: body is not valid JSON of the expected shape.
    pub const DATA_FORMAT: Self = Self::new(47001, "data format error");
    /// 60111: unknown staff userid.
    pub const INVALID_USERID: Self = Self::new(60111, "userid not found");
    /// 81013: every recipient of an app message is invalid.
    pub const ALL_RECIPIENTS_INVALID: Self = Self::new(81013, "user & party & tag all invalid");
    /// 84061: not (or no longer) an external contact of this staff member.
    pub const NOT_EXTERNAL_CONTACT: Self = Self::new(84061, "not external contact");

    /// Build one.
    pub const fn new(code: i64, msg: &'static str) -> Self {
        Self { code, msg }
    }
}

impl IntoResponse for WxError {
    fn into_response(self) -> Response {
        Json(json!({"errcode": self.code, "errmsg": self.msg})).into_response()
    }
}
