//! The inspection and control API under `/_emulator/`: what was delivered, tokens, tasks,
//! counters, config; and levers for tests (clock, token expiry, faults, bursts, events,
//! task confirmation, traffic rate, URL verification).

use sop_clock::{Clock, DateTime, TimeDelta};
use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::app::App;
use crate::delivery::{verify_douyin_url, verify_wecom_url};
use crate::events::{Event, apply};
use crate::faults::FaultConfig;
use crate::ids;
use crate::rate_limit::Burst;
use crate::wecom;

/// Routes of the inspection and control API.
pub fn router() -> Router<App> {
    Router::new()
        .route("/_emulator/health", get(|| async { "ok" }))
        .route("/_emulator/config", get(config))
        .route("/_emulator/world", get(world))
        .route("/_emulator/counters", get(counters))
        .route("/_emulator/tokens", get(tokens))
        .route("/_emulator/tokens/expire", post(expire_tokens))
        .route("/_emulator/tokens/revoke", post(revoke_tokens))
        .route("/_emulator/tasks", get(tasks))
        .route("/_emulator/wecom/tasks/{msgid}/confirm", post(confirm_task))
        .route("/_emulator/deliveries", get(deliveries))
        .route("/_emulator/export.jsonl", get(export))
        .route("/_emulator/callbacks", get(callbacks))
        .route("/_emulator/orders", get(orders))
        .route("/_emulator/clock", get(clock).post(move_clock))
        .route("/_emulator/faults", get(faults).put(set_faults))
        .route("/_emulator/rate_limit/burst", post(burst))
        .route("/_emulator/events", post(event))
        .route("/_emulator/traffic", post(traffic))
        .route("/_emulator/wecom/verify_url", post(wecom_verify))
        .route("/_emulator/douyin/verify_url", post(douyin_verify))
}

fn bad(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"error": msg.into()}))).into_response()
}

/// An optional JSON body: empty means defaults.
fn opt_json<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| format!("bad JSON body: {e}"))
}

fn settle(app: &App) {
    let now = app.now_ms();
    wecom::mass_send_settle(&mut app.lock(), &app.config().wecom, now);
}

async fn config(State(app): State<App>) -> Response {
    let mut v = serde_json::to_value(app.config()).unwrap_or(Value::Null);
    v["faults"] = serde_json::to_value(&app.faults().config).unwrap_or(Value::Null);
    v["traffic"]["rate_per_s"] = app.traffic_rate().into();
    Json(v).into_response()
}

async fn world(State(app): State<App>) -> Response {
    let cfg = app.config();
    let st = app.lock();
    let w = &st.world;
    Json(json!({
        "corp_id": cfg.wecom.corp_id,
        "corp_ids": cfg.wecom.corp_ids(),
        "agent_id": cfg.wecom.agent_id,
        "staff": w.staff,
        "contacts": w.contacts.len(),
        "friends": w.contacts.iter().filter(|c| c.is_friend()).count(),
        "groups": w.groups.len(),
        "tags": w.tags.live_count(),
        "channels": w.channels,
        "douyin_enterprise_open_id": cfg.douyin.enterprise_open_id,
        "douyin_client_key": cfg.douyin.client_key,
        "sample": {
            "staff": ids::staff_id(0),
            "external_userid": ids::contact_id(0),
            "chat_id": ids::chat_id(0),
            "tag_id": ids::tag_id(0),
            "open_id": ids::open_id(0),
        },
    }))
    .into_response()
}

async fn counters(State(app): State<App>) -> Response {
    let st = app.lock();
    let mut v = json!(st.counters);
    // WeCom calls per corp (with a valid token), so many-account runs can see each one.
    let ids = app.config().wecom.corp_ids();
    v["wecom_corps"] = ids
        .into_iter()
        .zip(&st.wecom.by_corp)
        .map(|(id, c)| (id, json!(c)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    Json(v).into_response()
}

async fn tokens(State(app): State<App>) -> Response {
    let st = app.lock();
    let wecom: HashMap<&String, _> = st.wecom.tokens.all().collect();
    Json(json!({"wecom": wecom, "douyin": st.douyin.tokens()})).into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PlatformSel {
    #[serde(default)]
    platform: Option<String>,
}

async fn expire_tokens(State(app): State<App>, body: Bytes) -> Response {
    let sel: PlatformSel = match opt_json(&body) {
        Ok(s) => s,
        Err(e) => return bad(StatusCode::BAD_REQUEST, e),
    };
    let now = app.now_ms();
    let mut st = app.lock();
    let p = sel.platform.as_deref();
    let wecom = if p.is_none_or(|p| p == "wecom") {
        st.wecom.tokens.expire_all(now)
    } else {
        0
    };
    let douyin = if p.is_none_or(|p| p == "douyin") {
        st.douyin.expire_tokens(now)
    } else {
        0
    };
    Json(json!({"expired": {"wecom": wecom, "douyin": douyin}})).into_response()
}

async fn revoke_tokens(State(app): State<App>, body: Bytes) -> Response {
    let sel: PlatformSel = match opt_json(&body) {
        Ok(s) => s,
        Err(e) => return bad(StatusCode::BAD_REQUEST, e),
    };
    let mut st = app.lock();
    let p = sel.platform.as_deref();
    let wecom = if p.is_none_or(|p| p == "wecom") {
        st.wecom.tokens.revoke_all()
    } else {
        0
    };
    let douyin = if p.is_none_or(|p| p == "douyin") {
        st.douyin.revoke_tokens()
    } else {
        0
    };
    Json(json!({"revoked": {"wecom": wecom, "douyin": douyin}})).into_response()
}

async fn tasks(State(app): State<App>) -> Response {
    settle(&app);
    Json(serde_json::to_value(app.lock().wecom.tasks.all()).unwrap_or(Value::Null)).into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfirmReq {
    #[serde(default)]
    userid: Option<String>,
}

async fn confirm_task(State(app): State<App>, Path(msgid): Path<String>, body: Bytes) -> Response {
    settle(&app);
    let req: ConfirmReq = match opt_json(&body) {
        Ok(r) => r,
        Err(e) => return bad(StatusCode::BAD_REQUEST, e),
    };
    let sender = match req.userid.as_deref() {
        Some(u) => match ids::parse_staff(u) {
            Some(s) => Some(s),
            None => return bad(StatusCode::BAD_REQUEST, format!("unknown userid {u:?}")),
        },
        None => None,
    };
    let now = app.now_ms();
    match wecom::mass_send_confirm(&mut app.lock(), &app.config().wecom, &msgid, sender, now) {
        Some(n) => Json(json!({"confirmed_senders": n})).into_response(),
        None => bad(StatusCode::NOT_FOUND, format!("no task {msgid:?}")),
    }
}

#[derive(Deserialize)]
struct DeliveryFilter {
    platform: Option<String>,
    channel: Option<String>,
    to: Option<String>,
    task: Option<String>,
}

async fn deliveries(State(app): State<App>, Query(f): Query<DeliveryFilter>) -> Response {
    settle(&app);
    let st = app.lock();
    let list: Vec<_> = st
        .ledger
        .entries()
        .iter()
        .filter(|d| f.platform.as_deref().is_none_or(|p| p == d.platform))
        .filter(|d| f.channel.as_deref().is_none_or(|c| c == d.channel))
        .filter(|d| f.to.as_deref().is_none_or(|t| t == d.to))
        .filter(|d| {
            f.task
                .as_deref()
                .is_none_or(|t| d.task.as_deref() == Some(t))
        })
        .collect();
    Json(json!(list)).into_response()
}

async fn export(State(app): State<App>) -> Response {
    settle(&app);
    let body = app.lock().ledger.to_jsonl();
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

async fn callbacks(State(app): State<App>) -> Response {
    let st = app.lock();
    let all: Vec<_> = st.callbacks.all().collect();
    Json(json!(all)).into_response()
}

async fn orders(State(app): State<App>) -> Response {
    Json(json!(app.lock().orders)).into_response()
}

async fn clock(State(app): State<App>) -> Response {
    Json(json!({"now_ms": app.now_ms(), "manual": app.shared().manual_clock.is_some()}))
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockReq {
    advance_ms: Option<u64>,
    set_ms: Option<u64>,
}

async fn move_clock(State(app): State<App>, Json(req): Json<ClockReq>) -> Response {
    let Some(clock) = &app.shared().manual_clock else {
        return bad(
            StatusCode::CONFLICT,
            "the emulator runs on the system clock",
        );
    };
    let set = match req.set_ms.map(|t| {
        i64::try_from(t)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
    }) {
        Some(None) => return bad(StatusCode::BAD_REQUEST, "set_ms is out of range"),
        other => other.flatten(),
    };
    let advance = match req
        .advance_ms
        .map(|d| i64::try_from(d).ok().and_then(TimeDelta::try_milliseconds))
    {
        Some(None) => return bad(StatusCode::BAD_REQUEST, "advance_ms is out of range"),
        other => other.flatten(),
    };
    // Check the whole move before making any of it, so a refused request changes nothing.
    let base = set.unwrap_or_else(|| clock.now());
    let Some(target) = base.checked_add_signed(advance.unwrap_or_default()) else {
        return bad(StatusCode::BAD_REQUEST, "the clock would leave its range");
    };
    if set.is_some() {
        clock.set(target);
    } else {
        clock.advance_to(target);
    }
    Json(json!({"now_ms": app.now_ms()})).into_response()
}

async fn faults(State(app): State<App>) -> Response {
    Json(app.faults().config.clone()).into_response()
}

async fn set_faults(State(app): State<App>, Json(cfg): Json<FaultConfig>) -> Response {
    app.faults().config = cfg.clone();
    Json(cfg).into_response()
}

#[derive(Deserialize)]
struct BurstReq {
    #[serde(default)]
    platform: Option<String>,
    #[serde(flatten)]
    burst: Burst,
    #[serde(default)]
    duration_ms: Option<u64>,
}

async fn burst(State(app): State<App>, Json(req): Json<BurstReq>) -> Response {
    let mut b = req.burst;
    if let Some(d) = req.duration_ms {
        b.until_ms = Some(app.now_ms().saturating_add(d));
    }
    if b.until_ms.is_none() && b.calls.is_none() {
        return bad(
            StatusCode::BAD_REQUEST,
            "give calls, until_ms or duration_ms",
        );
    }
    let mut st = app.lock();
    match req.platform.as_deref().unwrap_or("wecom") {
        "wecom" => st
            .wecom
            .limiters
            .iter_mut()
            .for_each(|l| l.add_burst(b.clone())),
        "douyin" => st.douyin.limiter_mut().add_burst(b.clone()),
        other => {
            return bad(
                StatusCode::BAD_REQUEST,
                format!("unknown platform {other:?}"),
            );
        }
    }
    Json(json!({"burst": b})).into_response()
}

async fn event(State(app): State<App>, Json(ev): Json<Event>) -> Response {
    match apply(&app, ev) {
        Ok(v) => Json(v).into_response(),
        Err(e) => bad(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrafficReq {
    rate_per_s: f64,
}

async fn traffic(State(app): State<App>, Json(req): Json<TrafficReq>) -> Response {
    app.set_traffic_rate(req.rate_per_s);
    Json(json!({"rate_per_s": app.traffic_rate()})).into_response()
}

async fn wecom_verify(State(app): State<App>) -> Response {
    match verify_wecom_url(&app).await {
        Ok(echo) => Json(json!({"ok": true, "echo": echo})).into_response(),
        Err(e) => bad(StatusCode::BAD_GATEWAY, e),
    }
}

async fn douyin_verify(State(app): State<App>) -> Response {
    match verify_douyin_url(&app).await {
        Ok(c) => Json(json!({"ok": true, "challenge": c})).into_response(),
        Err(e) => bad(StatusCode::BAD_GATEWAY, e),
    }
}
