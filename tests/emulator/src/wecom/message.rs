//! App messages to staff (`message/send`): used for hand-offs and alerts.
//!
//! At most `app_msg_per_member_per_min` messages a minute reach one member (the excess is
//! dropped silently, as documented), and the app has a daily quota of seats x 200.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query as AxQuery, State as AxState};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Query, WxError, call, parse_body};
use crate::app::App;
use crate::calendar::day_of;
use crate::ids;
use crate::ledger::NewDelivery;

/// Per-member minute counters and the daily quota.
#[derive(Debug, Default)]
pub struct AppMessageQuota {
    per_member: HashMap<u32, (u64, u32)>,
    day: u32,
    day_count: u64,
    sent: u64,
}

#[derive(Deserialize)]
struct SendReq {
    #[serde(default)]
    touser: String,
    #[serde(default)]
    toparty: String,
    #[serde(default)]
    totag: String,
    msgtype: String,
    agentid: Value,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

const INVALID_AGENT: WxError = WxError::new(40056, "invalid agentid");

pub(super) async fn send(
    AxState(app): AxState<App>,
    AxQuery(q): AxQuery<Query>,
    body: Bytes,
) -> Response {
    call(&app, "message/send", &q, |st, cfg, now| {
        let req: SendReq = parse_body(&body)?;
        let agent = match &req.agentid {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        if agent != Some(u64::from(cfg.wecom.agent_id)) {
            return Err(INVALID_AGENT);
        }
        let content = req
            .rest
            .get(&req.msgtype)
            .cloned()
            .ok_or(WxError::INVALID_PARAMETER)?;
        let (mut valid, mut invalid) = (Vec::new(), Vec::new());
        if req.touser == "@all" {
            valid.extend(0..st.world.staff);
        } else {
            for u in req.touser.split('|').filter(|u| !u.is_empty()) {
                match ids::parse_staff(u).filter(|&s| st.world.has_staff(s)) {
                    Some(s) if !valid.contains(&s) => valid.push(s),
                    Some(_) => {}
                    None => invalid.push(u.to_owned()),
                }
            }
        }
        // No departments or tags exist in the emulated corp.
        let invalid_party = req.toparty.clone();
        let invalid_tag = req.totag.clone();
        if valid.is_empty() {
            return Err(WxError::ALL_RECIPIENTS_INVALID);
        }
        let quota = &mut st.wecom.app_messages;
        let today = day_of(now);
        if quota.day != today {
            quota.day = today;
            quota.day_count = 0;
        }
        let daily = u64::from(cfg.wecom.licensed_seats) * 200;
        if quota.day_count + valid.len() as u64 > daily {
            return Err(WxError::FREQUENCY_LIMIT);
        }
        quota.day_count += valid.len() as u64;
        quota.sent += 1;
        let msgid = format!("appEmu{:010}", quota.sent);
        let minute = now / 60_000;
        for s in valid {
            let slot = quota.per_member.entry(s).or_insert((minute, 0));
            if slot.0 != minute {
                *slot = (minute, 0);
            }
            if slot.1 >= cfg.wecom.app_msg_per_member_per_min {
                st.counters.app_messages_dropped += 1;
                continue;
            }
            slot.1 += 1;
            st.ledger.record(NewDelivery {
                at_ms: now,
                platform: "wecom",
                channel: "app_message",
                call: "message/send",
                task: Some(msgid.clone()),
                from: format!("agent:{}", cfg.wecom.agent_id),
                to: ids::staff_id(s),
                content: json!({"msgtype": req.msgtype, (req.msgtype.clone()): content}),
            });
        }
        Ok(json!({
            "invaliduser": invalid.join("|"),
            "invalidparty": invalid_party,
            "invalidtag": invalid_tag,
            "unlicenseduser": "",
            "msgid": msgid,
            "response_code": "",
        }))
    })
}
