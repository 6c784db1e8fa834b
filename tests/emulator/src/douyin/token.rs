//! `oauth/client_token/` (app token) and `oauth/access_token/` (the enterprise account's
//! user token, which the IM APIs require in the `access-token` header).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{DyError, DyToken, TokenKind, ok};
use crate::app::{App, State};
use crate::config::DouyinConfig;

/// Parameters may come as query, form or JSON body.
fn params(query: HashMap<String, String>, body: &[u8]) -> HashMap<String, String> {
    let mut p = query;
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_slice::<serde_json::Value>(body) {
        for (k, v) in m {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            p.insert(k, v);
        }
    } else if let Ok(text) = std::str::from_utf8(body) {
        for pair in text.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            p.insert(k.to_owned(), v.to_owned());
        }
    }
    p
}

fn issue(st: &mut State, kind: TokenKind, ttl_s: u64, now: u64) -> String {
    st.douyin.issued += 1;
    let prefix = match kind {
        TokenKind::Client => "clt",
        TokenKind::User => "act",
    };
    let token = format!(
        "{prefix}.emu{:06}{:016x}",
        st.douyin.issued,
        st.rng.next_u64()
    );
    st.douyin.tokens.insert(
        token.clone(),
        DyToken {
            kind,
            expires_ms: now.saturating_add(ttl_s.saturating_mul(1_000)),
            revoked: false,
        },
    );
    token
}

pub(super) async fn client_token(
    AxState(app): AxState<App>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let p = params(q, &body);
    let cfg = &app.config().douyin;
    let now = app.now_ms();
    let mut st = app.lock();
    st.counters.call("oauth/client_token");
    if p.get("grant_type").map(String::as_str) != Some("client_credential") {
        st.counters.error("oauth/client_token", false);
        return DyError::BAD_PARAMETER.into_response();
    }
    if p.get("client_key") != Some(&cfg.client_key)
        || p.get("client_secret") != Some(&cfg.client_secret)
    {
        st.counters.error("oauth/client_token", false);
        return DyError::BAD_CLIENT.into_response();
    }
    let token = issue(&mut st, TokenKind::Client, cfg.token_ttl_s, now);
    ok(json!({"access_token": token, "expires_in": cfg.token_ttl_s}))
}

pub(super) async fn access_token(
    AxState(app): AxState<App>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let p = params(q, &body);
    let cfg = &app.config().douyin;
    let now = app.now_ms();
    let mut st = app.lock();
    st.counters.call("oauth/access_token");
    let code_ok = p.get("code").is_some_and(|c| !c.is_empty());
    if p.get("grant_type").map(String::as_str) != Some("authorization_code") || !code_ok {
        st.counters.error("oauth/access_token", false);
        return DyError::BAD_PARAMETER.into_response();
    }
    if p.get("client_key") != Some(&cfg.client_key)
        || p.get("client_secret") != Some(&cfg.client_secret)
    {
        st.counters.error("oauth/access_token", false);
        return DyError::BAD_CLIENT.into_response();
    }
    user_grant(&mut st, cfg, now)
}

/// A user access token with a fresh refresh token (valid 30 days).
fn user_grant(st: &mut State, cfg: &DouyinConfig, now: u64) -> Response {
    let token = issue(st, TokenKind::User, cfg.token_ttl_s, now);
    let refresh = format!("rft.emu{:016x}", st.rng.next_u64());
    let refresh_ttl_s: u64 = 30 * 86_400;
    st.douyin
        .refresh
        .insert(refresh.clone(), now.saturating_add(refresh_ttl_s * 1_000));
    ok(json!({
        "access_token": token,
        "expires_in": cfg.token_ttl_s,
        "open_id": cfg.enterprise_open_id,
        "refresh_token": refresh,
        "refresh_expires_in": refresh_ttl_s,
        "scope": "im.direct_message,im.group_message,im.recall_message",
    }))
}

pub(super) async fn refresh_token(
    AxState(app): AxState<App>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    const API: &str = "oauth/refresh_token";
    let p = params(q, &body);
    let cfg = &app.config().douyin;
    let now = app.now_ms();
    let mut st = app.lock();
    st.counters.call(API);
    if p.get("grant_type").map(String::as_str) != Some("refresh_token") {
        st.counters.error(API, false);
        return DyError::BAD_PARAMETER.into_response();
    }
    if p.get("client_key") != Some(&cfg.client_key) {
        st.counters.error(API, false);
        return DyError::BAD_CLIENT.into_response();
    }
    // Douyin rotates refresh tokens: the one presented is used up.
    let presented = p
        .get("refresh_token")
        .map(String::as_str)
        .unwrap_or_default();
    match st.douyin.refresh.remove(presented) {
        Some(expires) if now < expires => user_grant(&mut st, cfg, now),
        _ => {
            st.counters.error(API, false);
            DyError::BAD_REFRESH.into_response()
        }
    }
}

/// Check the `access-token` header of an IM call: a valid user token.
pub(super) fn check(st: &State, headers: &HeaderMap, now: u64) -> Result<(), DyError> {
    let token = headers
        .get("access-token")
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
        .ok_or(DyError::INVALID_TOKEN)?;
    let t = st.douyin.tokens.get(token).ok_or(DyError::INVALID_TOKEN)?;
    if t.revoked || t.kind != TokenKind::User {
        return Err(DyError::INVALID_TOKEN);
    }
    if now >= t.expires_ms {
        return Err(DyError::TOKEN_EXPIRED);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_from_query_form_and_json() {
        let q = HashMap::from([("a".to_owned(), "1".to_owned())]);
        let p = params(q.clone(), b"b=2&c=3");
        assert_eq!(p["a"], "1");
        assert_eq!(p["c"], "3");
        let p = params(q, br#"{"b":"x","n":5}"#);
        assert_eq!(p["b"], "x");
        assert_eq!(p["n"], "5");
    }
}
