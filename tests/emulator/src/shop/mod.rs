//! The demo shop: a generic shop platform of our own in the style of Youzan's and Shopify's
//! webhooks (there is no single real shop API to follow), matching `plugins/shop`.
//!
//! - Members and their points ledger. A member exists once they paid an order.
//! - Its open API (`Authorization: Bearer <api_key>`, JSON, errors as
//!   `{"error": {"code", "message"}}` with an HTTP status): `POST /api/v1/points/credit`
//!   (idempotent by the `Idempotency-Key` header: the same key credits once and answers the
//!   first entry again with `credited: false`; the same key with other points is 409) and
//!   `GET /api/v1/points/balance?member_id=`.
//! - Order webhooks to the daemon, signed like the plugin expects ([`webhook`]).
//! - Control routes under `/_emulator/shop/` ([`control`]): pay an order, redeliver an
//!   event as the shop's retry does, replay a captured request byte for byte, send a forged
//!   one, and read a member's ledger.

mod api;
mod control;
pub mod webhook;

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use serde::{Deserialize, Serialize};

use crate::app::App;

pub use control::{OrderRequest, pay, pay_locked};

/// The shop's account on the platform, as the daemon's shop account is configured.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShopConfig {
    /// The shop's id (named in every webhook).
    pub shop_id: String,
    /// The open API's key.
    pub api_key: String,
    /// The secret that signs webhooks (HMAC-SHA256).
    pub webhook_secret: String,
}

impl Default for ShopConfig {
    fn default() -> Self {
        Self {
            shop_id: "demo-shop-001".into(),
            api_key: "emu-shop-key".into(),
            webhook_secret: "emu-shop-webhook-secret".into(),
        }
    }
}

/// One line of a member's points ledger.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// `pe-…`.
    pub entry_id: String,
    /// Points added.
    pub points: i64,
    /// As the caller gave it.
    pub reason: String,
    /// The order it was for, if any.
    pub order_id: Option<String>,
    /// The caller's `Idempotency-Key`.
    pub idempotency_key: String,
    /// When, Unix ms.
    pub at_ms: u64,
}

/// A member of the shop.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Member {
    /// Current points.
    pub balance: i64,
    /// Every credit, oldest first.
    pub entries: Vec<Entry>,
}

/// An order paid in the shop.
#[derive(Debug, Clone, Serialize)]
pub struct ShopOrder {
    /// `o…`.
    pub order_id: String,
    /// The buyer.
    pub member_id: String,
    /// Total in fen.
    pub amount_cents: u64,
    /// When it was paid, Unix ms.
    pub paid_at_ms: u64,
    /// The event announcing it.
    pub event_id: String,
    /// The buyer's WeCom contact, if bound.
    pub wecom_external_userid: Option<String>,
    /// The buyer's Douyin user, if known.
    pub douyin_open_id: Option<String>,
}

/// The shop's share of the emulator state.
#[derive(Debug, Default)]
pub struct ShopState {
    /// Members by id.
    pub members: BTreeMap<String, Member>,
    /// Paid orders, in order.
    pub orders: Vec<ShopOrder>,
    /// Credits by `Idempotency-Key`: (member, entry index).
    credits: HashMap<String, (String, usize)>,
    /// The `X-Shop-Timestamp` each webhook delivery was signed with, by callback id, so a
    /// captured request can be replayed exactly.
    pub(crate) signed_at: HashMap<u64, String>,
    issued: u64,
}

impl ShopState {
    /// The next serial for ids.
    fn next(&mut self) -> u64 {
        self.issued += 1;
        self.issued
    }
}

/// A member's id in the shop for person `i` of the world (the same person is contact
/// `i` on WeCom and user `i` on Douyin).
pub fn member_id(i: u32) -> String {
    format!("mem{i:08}")
}

/// The shop's "try again later" answer (an injected platform error).
pub fn busy() -> axum::response::Response {
    api::error(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "the shop is busy, try again later",
    )
}

/// Routes of the shop's open API and its control routes.
pub fn router() -> Router<App> {
    api::router().merge(control::router())
}
