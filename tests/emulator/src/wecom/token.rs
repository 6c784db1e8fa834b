//! `gettoken` and access-token checks: tokens last `token_ttl_s`, a repeat call inside the
//! window returns the same token, and the inspection API can expire or revoke them early.

use std::collections::HashMap;

use axum::extract::{Query as AxQuery, State as AxState};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::{Query, WxError, ok};
use crate::app::App;

/// One issued token.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    /// Which corp it belongs to (0 = the first; see `WecomConfig::corps`).
    pub corp: usize,
    /// Which secret (app) it was issued to.
    pub app: usize,
    /// Issue time, Unix milliseconds.
    pub issued_ms: u64,
    /// Expiry, Unix milliseconds.
    pub expires_ms: u64,
    /// Revoked tokens answer 40014.
    pub revoked: bool,
}

/// All tokens ever issued (kept so an old token answers 42001, not 40014).
#[derive(Debug, Default)]
pub struct Tokens {
    by_token: HashMap<String, TokenInfo>,
    current: HashMap<(usize, usize), String>,
    issued: u64,
}

impl Tokens {
    /// Token for app `app` of the first corp: the current one if still valid, else a new one.
    pub fn issue(&mut self, app: usize, ttl_s: u64, now_ms: u64, salt: u64) -> (String, u64) {
        self.issue_for(0, app, ttl_s, now_ms, salt)
    }

    /// Token for app `app` of corp `corp`: the current one if still valid, else a new one.
    pub fn issue_for(
        &mut self,
        corp: usize,
        app: usize,
        ttl_s: u64,
        now_ms: u64,
        salt: u64,
    ) -> (String, u64) {
        if let Some(t) = self.current.get(&(corp, app))
            && let Some(info) = self.by_token.get(t)
            && !info.revoked
            && now_ms < info.expires_ms
        {
            return (t.clone(), (info.expires_ms - now_ms) / 1_000);
        }
        self.issued += 1;
        let token = format!("emu{app}x{:06}x{salt:016x}", self.issued);
        let info = TokenInfo {
            corp,
            app,
            issued_ms: now_ms,
            expires_ms: now_ms.saturating_add(ttl_s.saturating_mul(1_000)),
            revoked: false,
        };
        self.by_token.insert(token.clone(), info);
        self.current.insert((corp, app), token.clone());
        (token, ttl_s)
    }

    /// Check a token presented with a call; the corp it belongs to.
    pub fn check(&self, token: Option<&str>, now_ms: u64) -> Result<usize, WxError> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(WxError::MISSING_TOKEN)?;
        let info = self.by_token.get(token).ok_or(WxError::INVALID_TOKEN)?;
        if info.revoked {
            return Err(WxError::INVALID_TOKEN);
        }
        if now_ms >= info.expires_ms {
            return Err(WxError::TOKEN_EXPIRED);
        }
        Ok(info.corp)
    }

    /// Expire every valid token now (the platform may do this early). Returns how many.
    pub fn expire_all(&mut self, now_ms: u64) -> usize {
        let mut n = 0;
        for info in self.by_token.values_mut() {
            if info.expires_ms > now_ms {
                info.expires_ms = now_ms;
                n += 1;
            }
        }
        n
    }

    /// Revoke every token (calls answer 40014). Returns how many.
    pub fn revoke_all(&mut self) -> usize {
        let mut n = 0;
        for info in self.by_token.values_mut() {
            if !info.revoked {
                info.revoked = true;
                n += 1;
            }
        }
        n
    }

    /// All tokens, for inspection.
    pub fn all(&self) -> impl Iterator<Item = (&String, &TokenInfo)> {
        self.by_token.iter()
    }
}

pub(super) async fn gettoken(AxState(app): AxState<App>, AxQuery(q): AxQuery<Query>) -> Response {
    const API: &str = "gettoken";
    let now = app.now_ms();
    let cfg = &app.config().wecom;
    let mut st = app.lock();
    st.counters.call(API);
    let result = (|| {
        let corpid = q.get("corpid").filter(|s| !s.is_empty());
        let secret = q.get("corpsecret").filter(|s| !s.is_empty());
        let corpid = corpid.ok_or(WxError::MISSING_CORPID)?;
        let secret = secret.ok_or(WxError::MISSING_SECRET)?;
        let corp = cfg.corp_index(corpid).ok_or(WxError::INVALID_CORPID)?;
        let app_idx = cfg
            .secrets
            .iter()
            .position(|s| s == secret)
            .ok_or(WxError::INVALID_SECRET)?;
        if !st.wecom.limiter(corp).allow(API, now) {
            return Err(WxError::FREQUENCY_LIMIT);
        }
        Ok((corp, app_idx))
    })();
    match result {
        Ok((corp, app_idx)) => {
            let salt = st.rng.next_u64();
            let (token, expires_in) =
                st.wecom
                    .tokens
                    .issue_for(corp, app_idx, cfg.token_ttl_s, now, salt);
            ok(json!({"access_token": token, "expires_in": expires_in}))
        }
        Err(e) => {
            st.counters.error(API, e == WxError::FREQUENCY_LIMIT);
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_token_inside_the_window_new_one_after() {
        let mut t = Tokens::default();
        let (a, ttl) = t.issue(0, 7_200, 0, 1);
        assert_eq!(ttl, 7_200);
        let (b, left) = t.issue(0, 7_200, 1_000_000, 2);
        assert_eq!(a, b);
        assert_eq!(left, 7_200 - 1_000);
        let (c, _) = t.issue(0, 7_200, 7_200_000, 3);
        assert_ne!(a, c);
        assert_eq!(t.check(Some(&a), 7_200_000), Err(WxError::TOKEN_EXPIRED));
        assert_eq!(t.check(Some(&c), 7_200_000), Ok(0));
    }

    #[test]
    fn tokens_are_per_app() {
        let mut t = Tokens::default();
        let (a, _) = t.issue(0, 10, 0, 1);
        let (b, _) = t.issue(1, 10, 0, 1);
        assert_ne!(a, b);
    }

    #[test]
    fn tokens_are_per_corp_and_name_their_corp() {
        let mut t = Tokens::default();
        let (a, _) = t.issue_for(0, 0, 10, 0, 1);
        let (b, _) = t.issue_for(3, 0, 10, 0, 1);
        assert_ne!(a, b);
        assert_eq!(
            t.issue_for(3, 0, 10, 1, 2).0,
            b,
            "the same inside its window"
        );
        assert_eq!(t.check(Some(&a), 1), Ok(0));
        assert_eq!(t.check(Some(&b), 1), Ok(3));
    }

    #[test]
    fn missing_unknown_expired_revoked() {
        let mut t = Tokens::default();
        let (a, _) = t.issue(0, 10, 0, 1);
        assert_eq!(t.check(None, 0), Err(WxError::MISSING_TOKEN));
        assert_eq!(t.check(Some(""), 0), Err(WxError::MISSING_TOKEN));
        assert_eq!(t.check(Some("nope"), 0), Err(WxError::INVALID_TOKEN));
        assert_eq!(t.expire_all(5), 1);
        assert_eq!(t.check(Some(&a), 5), Err(WxError::TOKEN_EXPIRED));
        let (b, _) = t.issue(0, 10, 5, 2);
        assert_ne!(a, b, "an early-expired token is replaced");
        t.revoke_all();
        assert_eq!(t.check(Some(&b), 6), Err(WxError::INVALID_TOKEN));
    }
}
