//! `/_emulator/shop/…`: what tests and the traffic generator make the shop do.
//!
//! - `POST /_emulator/shop/orders` `{"external_userid"?, "open_id"?, "amount_cents",
//!   "order_id"?}`: the buyer (a WeCom contact, a Douyin user, or both: the same person)
//!   pays an order; the shop sends `order.paid` (signed, retried like every callback).
//! - `POST /_emulator/shop/webhooks/{callback_id}/redeliver`: the shop sends that event again
//!   (same body and event id, a fresh timestamp and signature), as its retry does.
//! - `POST /_emulator/shop/webhooks/{callback_id}/replay`: someone who captured that request
//!   sends it again byte for byte (same timestamp and signature); answers the receiver's
//!   status and body.
//! - `POST /_emulator/shop/forge` `{"external_userid"?, "open_id"?, "amount_cents",
//!   "secret"?}`: an `order.paid` for an order never placed, signed with a wrong secret;
//!   answers the receiver's status and body. The shop's state does not change.
//! - `GET /_emulator/shop/members/{member_id}`: balance and ledger; `GET /_emulator/shop`:
//!   every member and order.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ShopOrder, api::error, member_id, webhook};
use crate::app::{App, State as AppState};
use crate::delivery::{Outbound, Platform, dispatch, request};
use crate::ids;

pub(super) fn router() -> Router<App> {
    Router::new()
        .route("/_emulator/shop", get(state))
        .route("/_emulator/shop/orders", post(order))
        .route("/_emulator/shop/webhooks/{id}/redeliver", post(redeliver))
        .route("/_emulator/shop/webhooks/{id}/replay", post(replay))
        .route("/_emulator/shop/forge", post(forge))
        .route("/_emulator/shop/members/{id}", get(member))
}

/// Who pays how much.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// The buyer's WeCom contact, if bound.
    #[serde(default)]
    pub external_userid: Option<String>,
    /// The buyer's Douyin user, if known.
    #[serde(default)]
    pub open_id: Option<String>,
    /// Total in fen.
    pub amount_cents: u64,
    /// Defaults to a fresh `o…` id.
    #[serde(default)]
    pub order_id: Option<String>,
    /// Only for `/forge`: the secret to sign with (default: not the shop's).
    #[serde(default)]
    pub secret: Option<String>,
}

/// The person both ids name, checked against the `known` people of the world.
fn buyer(known: usize, req: &OrderRequest) -> Result<u32, String> {
    let index = |parsed: Option<u32>, id: &str| {
        parsed
            .filter(|&i| (i as usize) < known)
            .ok_or_else(|| format!("unknown buyer {id:?}"))
    };
    let wecom = req
        .external_userid
        .as_deref()
        .map(|id| index(ids::parse_contact(id), id))
        .transpose()?;
    let douyin = req
        .open_id
        .as_deref()
        .map(|id| index(ids::parse_open_id(id), id))
        .transpose()?;
    match (wecom, douyin) {
        (Some(a), Some(b)) if a != b => Err("external_userid and open_id are two people".into()),
        (Some(a), _) | (None, Some(a)) => Ok(a),
        (None, None) => Err("an order needs external_userid or open_id".into()),
    }
}

/// The buyer pays: the order is recorded and the member exists from now on. Answers the
/// ids and the `order.paid` webhook to send (the caller holds the state's lock).
pub fn pay_locked(
    st: &mut AppState,
    shop_id: &str,
    now: u64,
    req: &OrderRequest,
) -> Result<(Value, Outbound), String> {
    let person = buyer(st.world.contacts.len(), req)?;
    if req.amount_cents == 0 {
        return Err("amount_cents must be positive".into());
    }
    let shop = &mut st.shop;
    let serial = shop.next();
    let order_id = req
        .order_id
        .clone()
        .unwrap_or_else(|| format!("o{serial:010}"));
    if shop.orders.iter().any(|o| o.order_id == order_id) {
        return Err(format!("order {order_id} exists"));
    }
    let order = ShopOrder {
        order_id,
        member_id: member_id(person),
        amount_cents: req.amount_cents,
        paid_at_ms: now,
        event_id: format!("evt_{serial:012}"),
        wecom_external_userid: req.external_userid.clone(),
        douyin_open_id: req.open_id.clone(),
    };
    shop.members.entry(order.member_id.clone()).or_default();
    shop.orders.push(order.clone());
    let summary = json!({
        "order_id": order.order_id,
        "member_id": order.member_id,
        "event_id": order.event_id,
    });
    let out = Outbound {
        platform: Platform::Shop,
        event: "order.paid".into(),
        payload: webhook::order_paid(shop_id, &order, now),
    };
    Ok((summary, out))
}

/// [`pay_locked`], then the webhook is sent; the answer gains its `callback_id`.
pub fn pay(app: &App, req: &OrderRequest) -> Result<Value, String> {
    let now = app.now_ms();
    let (mut summary, out) = pay_locked(&mut app.lock(), &app.config().shop.shop_id, now, req)?;
    summary["callback_id"] = dispatch(app, out).into();
    Ok(summary)
}

fn bad(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()}))).into_response()
}

async fn order(State(app): State<App>, Json(req): Json<OrderRequest>) -> Response {
    match pay(&app, &req) {
        Ok(v) => Json(v).into_response(),
        Err(e) => bad(e),
    }
}

/// The payload of shop webhook `id`, if it is one and still kept; else the answer why not.
fn shop_payload(app: &App, id: u64) -> Result<String, Box<Response>> {
    let st = app.lock();
    match st.callbacks.get(id) {
        Some(r) if r.platform == Platform::Shop => Ok(r.payload.clone()),
        Some(_) => Err(Box::new(bad(format!(
            "callback {id} is not a shop webhook"
        )))),
        None => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no callback {id}"),
        ))),
    }
}

async fn redeliver(State(app): State<App>, Path(id): Path<u64>) -> Response {
    let payload = match shop_payload(&app, id) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let event = serde_json::from_str::<Value>(&payload)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let again = dispatch(
        &app,
        Outbound {
            platform: Platform::Shop,
            event,
            payload,
        },
    );
    Json(json!({"callback_id": again})).into_response()
}

/// Sends one request to the configured receiver now; answers its status and body.
async fn send_now(app: &App, headers: Vec<(&'static str, String)>, body: String) -> Response {
    let Some(url) = app.config().delivery.shop_url.clone() else {
        return bad("no shop webhook URL configured");
    };
    let timeout = app.config().delivery.timeout_ms;
    match request(
        &app.shared().deliverer.client,
        "POST",
        &url,
        &headers,
        body,
        timeout,
    )
    .await
    {
        Ok((status, body)) => Json(json!({"status": status, "body": body})).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, Json(json!({"error": e}))).into_response(),
    }
}

async fn replay(State(app): State<App>, Path(id): Path<u64>) -> Response {
    let payload = match shop_payload(&app, id) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let Some(timestamp) = app.lock().shop.signed_at.get(&id).cloned() else {
        return bad(format!("callback {id} was never sent"));
    };
    let headers = webhook::headers(&app.config().shop.webhook_secret, &timestamp, &payload);
    send_now(&app, headers, payload).await
}

async fn forge(State(app): State<App>, Json(req): Json<OrderRequest>) -> Response {
    let known = app.lock().world.contacts.len();
    let person = match buyer(known, &req) {
        Ok(p) => p,
        Err(e) => return bad(e),
    };
    let now = app.now_ms();
    let cfg = &app.config().shop;
    let order = ShopOrder {
        order_id: req.order_id.clone().unwrap_or_else(|| "o-forged".into()),
        member_id: member_id(person),
        amount_cents: req.amount_cents,
        paid_at_ms: now,
        event_id: "evt_forged".into(),
        wecom_external_userid: req.external_userid.clone(),
        douyin_open_id: req.open_id.clone(),
    };
    let body = webhook::order_paid(&cfg.shop_id, &order, now);
    let secret = req.secret.clone().unwrap_or_else(|| "forger-secret".into());
    let headers = webhook::headers(&secret, &(now / 1_000).to_string(), &body);
    send_now(&app, headers, body).await
}

async fn member(State(app): State<App>, Path(id): Path<String>) -> Response {
    let st = app.lock();
    match st.shop.members.get(&id) {
        Some(m) => Json(json!({"member_id": id, "balance": m.balance, "entries": m.entries}))
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "member_not_found",
            format!("no member {id:?}"),
        ),
    }
}

async fn state(State(app): State<App>) -> Response {
    let st = app.lock();
    Json(json!({"members": st.shop.members, "orders": st.shop.orders})).into_response()
}
