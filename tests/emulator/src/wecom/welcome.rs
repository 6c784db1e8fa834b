//! Welcome codes: issued with each add-contact callback, valid for 20 s, usable once.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query as AxQuery, State as AxState};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Query, WxError, call, parse_body};
use crate::app::App;
use crate::ids;
use crate::ledger::NewDelivery;

#[derive(Debug, Clone)]
struct Code {
    contact: u32,
    staff: u32,
    issued_ms: u64,
    used: bool,
}

/// Outstanding welcome codes.
#[derive(Debug, Default)]
pub struct WelcomeCodes {
    codes: HashMap<String, Code>,
    issued: u64,
}

impl WelcomeCodes {
    /// Issue a code for a new friendship; old codes are forgotten once long expired, which the
    /// platform answers the same way (41050).
    pub fn issue(
        &mut self,
        contact: u32,
        staff: u32,
        now_ms: u64,
        ttl_ms: u64,
        salt: u64,
    ) -> String {
        if self.codes.len() > 100_000 {
            self.codes
                .retain(|_, c| c.issued_ms.saturating_add(ttl_ms.saturating_mul(2)) > now_ms);
        }
        self.issued += 1;
        let code = format!("wcEmu{:08}{salt:012x}", self.issued);
        self.codes.insert(
            code.clone(),
            Code {
                contact,
                staff,
                issued_ms: now_ms,
                used: false,
            },
        );
        code
    }

    /// Use a code: the (contact, staff) it was issued for, or why not.
    pub fn redeem(&mut self, code: &str, now_ms: u64, ttl_ms: u64) -> Result<(u32, u32), WxError> {
        if code.is_empty() {
            return Err(WxError::MISSING_WELCOME_CODE);
        }
        let c = self
            .codes
            .get_mut(code)
            .ok_or(WxError::WELCOME_CODE_EXPIRED)?;
        if c.used {
            return Err(WxError::WELCOME_CODE_USED);
        }
        if now_ms >= c.issued_ms.saturating_add(ttl_ms) {
            return Err(WxError::WELCOME_CODE_EXPIRED);
        }
        c.used = true;
        Ok((c.contact, c.staff))
    }
}

#[derive(Deserialize)]
struct SendWelcome {
    #[serde(default)]
    welcome_code: String,
    text: Option<Value>,
    #[serde(default)]
    attachments: Vec<Value>,
}

pub(super) async fn send_welcome_msg(
    AxState(app): AxState<App>,
    AxQuery(q): AxQuery<Query>,
    body: Bytes,
) -> Response {
    call(
        &app,
        "externalcontact/send_welcome_msg",
        &q,
        |st, cfg, now| {
            let req: SendWelcome = parse_body(&body)?;
            if req.attachments.len() > 9 || (req.text.is_none() && req.attachments.is_empty()) {
                return Err(WxError::INVALID_PARAMETER);
            }
            let (contact, staff) =
                st.wecom
                    .welcome
                    .redeem(&req.welcome_code, now, cfg.wecom.welcome_code_ttl_ms)?;
            st.ledger.record(NewDelivery {
                at_ms: now,
                platform: "wecom",
                channel: "welcome",
                call: "externalcontact/send_welcome_msg",
                task: Some(req.welcome_code),
                from: ids::staff_id(staff),
                to: ids::contact_id(contact),
                content: json!({"text": req.text, "attachments": req.attachments}),
            });
            Ok(json!({}))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_for_the_window_and_once() {
        let mut w = WelcomeCodes::default();
        let a = w.issue(1, 2, 1_000, 20_000, 9);
        assert_eq!(w.redeem(&a, 20_999, 20_000), Ok((1, 2)));
        assert_eq!(
            w.redeem(&a, 21_000, 20_000),
            Err(WxError::WELCOME_CODE_USED)
        );
        let b = w.issue(3, 2, 1_000, 20_000, 9);
        assert_ne!(a, b);
        assert_eq!(
            w.redeem(&b, 21_000, 20_000),
            Err(WxError::WELCOME_CODE_EXPIRED)
        );
        assert_eq!(
            w.redeem("nope", 0, 20_000),
            Err(WxError::WELCOME_CODE_EXPIRED)
        );
        assert_eq!(w.redeem("", 0, 20_000), Err(WxError::MISSING_WELCOME_CODE));
    }
}
