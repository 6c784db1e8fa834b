//! The shop's open API: the points ledger.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::{Entry, Member};
use crate::app::App;

/// An error answer: `{"error": {"code", "message"}}` with `status`.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message.into()}})),
    )
        .into_response()
}

pub(super) fn router() -> Router<App> {
    Router::new()
        .route("/api/v1/points/credit", post(credit))
        .route("/api/v1/points/balance", get(balance))
}

/// The 401 answer, unless the request carries the shop's API key.
fn unauthorised(app: &App, headers: &HeaderMap) -> Option<Response> {
    let expected = format!("Bearer {}", app.config().shop.api_key);
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    (given != Some(expected.as_str())).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong API key",
        )
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Credit {
    member_id: String,
    points: i64,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    order_id: Option<String>,
}

async fn credit(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = unauthorised(&app, &headers) {
        return refused;
    }
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the Idempotency-Key header is required",
        );
    };
    let input: Credit = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request", e.to_string()),
    };
    if input.points <= 0 || input.points > 1_000_000 {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_points",
            format!("points must be 1 to 1000000, got {}", input.points),
        );
    }
    let now = app.now_ms();
    let mut st = app.lock();
    let shop = &mut st.shop;
    if let Some((member, index)) = shop.credits.get(&key).cloned() {
        let m = &shop.members[&member];
        let first = &m.entries[index];
        if member != input.member_id || first.points != input.points {
            return error(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                format!("{key} already credited {} points to {member}", first.points),
            );
        }
        return answer(&member, m, first, false);
    }
    let serial = shop.next();
    let Some(m) = shop.members.get_mut(&input.member_id) else {
        return error(
            StatusCode::NOT_FOUND,
            "member_not_found",
            format!("no member {:?}", input.member_id),
        );
    };
    m.balance += input.points;
    m.entries.push(Entry {
        entry_id: format!("pe-{serial:08}"),
        points: input.points,
        reason: input.reason,
        order_id: input.order_id,
        idempotency_key: key.clone(),
        at_ms: now,
    });
    let index = m.entries.len() - 1;
    let response = answer(&input.member_id, m, &m.entries[index], true);
    shop.credits.insert(key, (input.member_id, index));
    response
}

fn answer(member: &str, m: &Member, entry: &Entry, credited: bool) -> Response {
    Json(json!({
        "member_id": member,
        "balance": m.balance,
        "credited": credited,
        "entry_id": entry.entry_id,
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct BalanceQuery {
    #[serde(default)]
    member_id: String,
}

async fn balance(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<BalanceQuery>,
) -> Response {
    if let Some(refused) = unauthorised(&app, &headers) {
        return refused;
    }
    let st = app.lock();
    match st.shop.members.get(&q.member_id) {
        Some(m) => Json(json!({"member_id": q.member_id, "balance": m.balance})).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "member_not_found",
            format!("no member {:?}", q.member_id),
        ),
    }
}
