//! Enterprise IM: `im/send/msg/`, `im/recall/msg/`, `im/authorize/user_list/`.
//!
//! A reply (`im_reply_msg`) needs a user message inside the reply window and has a per-window
//! allowance; `im_enter_direct_msg` needs a recent entry to the conversation page; proactive
//! messages (`im.direct_message.bind`) need the user's authorisation and fit a daily quota.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{DyError, ok, token, webhook};
use crate::app::{App, State};
use crate::calendar::day_of;
use crate::config::Config;
use crate::delivery::{Outbound, Platform, dispatch};
use crate::ids;
use crate::ledger::NewDelivery;

type Q = HashMap<String, String>;

/// Common checks, then `f`, under the lock.
fn call(
    app: &App,
    api: &'static str,
    headers: &HeaderMap,
    q: &Q,
    f: impl FnOnce(&mut State, &Config, u64) -> Result<Value, DyError>,
) -> Response {
    let now = app.now_ms();
    let cfg = app.config();
    let mut st = app.lock();
    let st = &mut *st;
    st.counters.call(api);
    let result = token::check(st, headers, now)
        .and_then(|()| {
            if q.get("open_id") == Some(&cfg.douyin.enterprise_open_id) {
                Ok(())
            } else {
                Err(DyError::BAD_PARAMETER)
            }
        })
        .and_then(|()| {
            if st.douyin.limiter.allow(api, now) {
                Ok(())
            } else {
                Err(DyError::RATE_TOO_HIGH)
            }
        })
        .and_then(|()| f(st, cfg, now));
    match result {
        Ok(v) => ok(v),
        Err(e) => {
            st.counters.error(api, e == DyError::RATE_TOO_HIGH);
            e.into_response()
        }
    }
}

#[derive(Deserialize)]
struct SendReq {
    #[serde(default)]
    msg_id: String,
    #[serde(default)]
    conversation_id: String,
    to_user_id: String,
    content: Value,
    #[serde(default)]
    scene: Option<String>,
}

pub(super) async fn send_msg(
    AxState(app): AxState<App>,
    Query(q): Query<Q>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The platform echoes the app's own sends as `im_send_msg` webhooks; built under the
    // lock, dispatched after it is released.
    let mut echo = None;
    let response = call(&app, "im/send/msg", &headers, &q, |st, cfg, now| {
        let req: SendReq = serde_json::from_slice(&body).map_err(|_| DyError::BAD_PARAMETER)?;
        let user = ids::parse_open_id(&req.to_user_id)
            .filter(|&u| st.world.contact(u).is_some())
            .ok_or(DyError::BAD_PARAMETER)?;
        let d = &cfg.douyin;
        let scene = req.scene.as_deref().unwrap_or("im_reply_msg");
        let u = st.douyin.users.entry(user).or_default();
        match scene {
            "im_reply_msg" | "im_enter_direct_msg" => {
                let opened = if scene == "im_reply_msg" {
                    u.last_msg_ms
                } else {
                    u.entered_ms
                };
                let open = opened.is_some_and(|t| now < t.saturating_add(d.reply_window_ms));
                if !open || u.replies_in_window >= d.replies_per_window {
                    return Err(DyError::QUOTA_USED_UP);
                }
                u.replies_in_window += 1;
            }
            "im.direct_message.bind" => {
                if !u.authorized {
                    return Err(DyError::NOT_AUTHORISED);
                }
                let today = day_of(now);
                if u.proactive_day != today {
                    u.proactive_day = today;
                    u.proactive_count = 0;
                }
                if u.proactive_count >= d.proactive_per_day {
                    return Err(DyError::QUOTA_USED_UP);
                }
                u.proactive_count += 1;
            }
            _ => return Err(DyError::BAD_PARAMETER),
        }
        st.douyin.issued += 1;
        let server_id = format!("dysent-{:010}", st.douyin.issued);
        st.douyin.sent.insert(server_id.clone(), (user, false));
        let content = json!({
            "conversation_short_id": req.conversation_id,
            "server_message_id": server_id,
            "conversation_type": 1,
            "message_type": "text",
            "content": req.content,
            "source": d.client_key,
            "create_time": now,
            "user_infos": [],
        });
        echo = Some(Outbound {
            platform: Platform::Douyin,
            event: "im_send_msg".into(),
            payload: webhook::event(
                &d.client_key,
                "im_send_msg",
                &d.enterprise_open_id,
                &req.to_user_id,
                &server_id,
                &content,
            ),
        });
        st.ledger.record(NewDelivery {
            at_ms: now,
            platform: "douyin",
            channel: "direct_message",
            call: "im/send/msg",
            task: Some(if req.msg_id.is_empty() {
                server_id.clone()
            } else {
                req.msg_id.clone()
            }),
            from: d.enterprise_open_id.clone(),
            to: req.to_user_id,
            content: json!({"scene": scene, "conversation_id": req.conversation_id, "content": req.content}),
        });
        Ok(json!({"msg_id": server_id}))
    });
    if let Some(out) = echo {
        dispatch(&app, out);
    }
    response
}

#[derive(Deserialize)]
struct GroupSendReq {
    group_id: String,
    content: Value,
}

/// Fan-group id `dyg-<8 digits>`: the emulated fan groups are the world's groups.
fn parse_group(id: &str) -> Option<u32> {
    let digits = id.strip_prefix("dyg-")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(super) async fn send_group_msg(
    AxState(app): AxState<App>,
    Query(q): Query<Q>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call(&app, "im/send/msg/group", &headers, &q, |st, cfg, now| {
        let req: GroupSendReq =
            serde_json::from_slice(&body).map_err(|_| DyError::BAD_PARAMETER)?;
        parse_group(&req.group_id)
            .filter(|&g| (g as usize) < st.world.groups.len())
            .ok_or(DyError::BAD_PARAMETER)?;
        st.douyin.issued += 1;
        let server_id = format!("dygrp-{:010}", st.douyin.issued);
        st.ledger.record(NewDelivery {
            at_ms: now,
            platform: "douyin",
            channel: "group_message",
            call: "im/send/msg/group",
            task: Some(server_id.clone()),
            from: cfg.douyin.enterprise_open_id.clone(),
            to: req.group_id,
            content: req.content,
        });
        Ok(json!({"msg_id": server_id}))
    })
}

#[derive(Deserialize)]
struct RecallReq {
    msg_id: String,
    #[serde(default)]
    conversation_id: String,
}

pub(super) async fn recall_msg(
    AxState(app): AxState<App>,
    Query(q): Query<Q>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call(&app, "im/recall/msg", &headers, &q, |st, cfg, now| {
        let req: RecallReq = serde_json::from_slice(&body).map_err(|_| DyError::BAD_PARAMETER)?;
        let entry = st
            .douyin
            .sent
            .get_mut(&req.msg_id)
            .ok_or(DyError::BAD_PARAMETER)?;
        if entry.1 {
            return Err(DyError::BAD_PARAMETER);
        }
        entry.1 = true;
        let user = entry.0;
        st.ledger.record(NewDelivery {
            at_ms: now,
            platform: "douyin",
            channel: "recall",
            call: "im/recall/msg",
            task: Some(req.msg_id),
            from: cfg.douyin.enterprise_open_id.clone(),
            to: ids::open_id(user),
            content: json!({"conversation_id": req.conversation_id}),
        });
        Ok(json!({}))
    })
}

#[derive(Deserialize, Default)]
struct ListReq {
    #[serde(default)]
    cursor: u64,
    #[serde(default)]
    count: Option<u64>,
}

pub(super) async fn authorize_user_list(
    AxState(app): AxState<App>,
    Query(q): Query<Q>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call(&app, "im/authorize/user_list", &headers, &q, |st, _, _| {
        let req: ListReq = if body.is_empty() {
            ListReq::default()
        } else {
            serde_json::from_slice(&body).map_err(|_| DyError::BAD_PARAMETER)?
        };
        let count = req.count.unwrap_or(20).clamp(1, 100) as usize;
        let mut users: Vec<(u32, u64)> = st
            .douyin
            .users
            .iter()
            .filter(|(_, u)| u.authorized)
            .map(|(&i, u)| (i, u.authorized_at_s))
            .collect();
        users.sort_unstable();
        let start = (req.cursor as usize).min(users.len());
        let end = (start + count).min(users.len());
        let list: Vec<Value> = users[start..end]
            .iter()
            .map(|&(i, at)| json!({"open_id": ids::open_id(i), "authorize_time": at}))
            .collect();
        Ok(json!({"user_list": list, "cursor": end, "has_more": end < users.len()}))
    })
}
