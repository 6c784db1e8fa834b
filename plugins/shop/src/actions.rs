//! The points ledger over the shop's open API: `credit_points` (idempotent by order) and
//! `get_balance`.
//!
//! API shape: `Authorization: Bearer <api_key>`; JSON answers; errors as
//! `{"error": {"code": "...", "message": "..."}}` with an HTTP status.

use serde::{Deserialize, Serialize};
use sop_plugin_sdk::action::{ActionDef, Actions};
use sop_plugin_sdk::http::{Fetch, check_status, map_fetch_error};
use sop_plugin_sdk::schemars::{self, JsonSchema};
use sop_plugin_sdk::{Delivery, Host, HostLog, InvokeOutcome, PluginError, json};

use crate::config::Config;

/// The API base. The operator may re-point the host (to the emulator); paths stay.
pub const API: &str = "https://shop.example.com";
/// `POST`: credit points to a member.
pub const CREDIT: &str = "/api/v1/points/credit";
/// `GET ?member_id=`: a member's balance.
pub const BALANCE: &str = "/api/v1/points/balance";

/// Most points one credit may carry: a typo in a playbook must not mint millions.
pub const MAX_POINTS: u32 = 1_000_000;

/// One invocation's view of the shop.
pub struct Client<'a> {
    pub host: &'a dyn Host,
    pub config: Config,
    /// The runtime's key for this invocation; the credit's key when there is no order.
    pub idempotency_key: String,
}

impl std::fmt::Debug for Client<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An error answer of the shop API.
#[derive(Debug, Deserialize)]
struct ApiError {
    error: ApiErrorBody,
}

#[derive(Debug, Deserialize)]
struct ApiErrorBody {
    code: String,
    #[serde(default)]
    message: String,
}

impl Client<'_> {
    /// Sends `fetch` with the API key and parses a 2xx answer as `T`; errors mapped from
    /// the transport, the status and the shop's error code.
    fn send<T: for<'de> Deserialize<'de>>(
        &self,
        fetch: Fetch,
        delivery: Delivery,
    ) -> Result<T, PluginError> {
        let fetch = fetch.header("authorization", &format!("Bearer {}", self.config.api_key));
        let request = fetch.request();
        let path = request.url.split('?').next().unwrap_or_default().to_owned();
        let response = self
            .host
            .fetch(&request)
            .map_err(|e| map_fetch_error(&e, delivery, &request))?;
        if let 400..=499 = response.status
            && !matches!(response.status, 401 | 429)
            && let Ok(answer) = serde_json::from_slice::<ApiError>(&response.body)
        {
            return Err(map_error(&path, response.status, &answer.error));
        }
        check_status(&response, delivery, &request)?;
        serde_json::from_slice(&response.body).map_err(|e| {
            // The shop answered 2xx: for an idempotent call, asking again is safe.
            PluginError::transient(format!("{path}: unreadable answer: {e}"))
        })
    }
}

/// The shop's error codes mapped to the runtime's cases.
fn map_error(path: &str, status: u16, error: &ApiErrorBody) -> PluginError {
    let what = format!("{path}: HTTP {status} {}: {}", error.code, error.message);
    match error.code.as_str() {
        "invalid_request" | "invalid_points" => PluginError::invalid_input(what),
        // The member does not exist, or the order was already credited with other points:
        // asking again cannot change either.
        _ => PluginError::permanent(what),
    }
}

/// Input of `credit_points`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditPoints {
    /// The shop's member id (the order event's `member_id`).
    pub member_id: String,
    /// Points to credit, 1 to 1,000,000.
    pub points: u32,
    /// Shown in the member's ledger.
    #[serde(default)]
    pub reason: Option<String>,
    /// The order the points are for: at most one credit per order, however often asked.
    #[serde(default)]
    pub order_id: Option<String>,
}

/// Output of `credit_points`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Credited {
    pub member_id: String,
    /// The balance after the credit.
    pub balance: i64,
    /// False when this order (or key) had been credited before: nothing was added.
    pub credited: bool,
    /// The ledger entry of the credit.
    pub entry_id: String,
}

fn credit_points(client: &Client<'_>, input: CreditPoints) -> Result<InvokeOutcome, PluginError> {
    if input.member_id.trim().is_empty() {
        return Err(PluginError::invalid_input(
            "credit_points: member_id is empty",
        ));
    }
    if input.points == 0 || input.points > MAX_POINTS {
        return Err(PluginError::invalid_input(format!(
            "credit_points: points must be 1 to {MAX_POINTS}, got {}",
            input.points
        )));
    }
    // One credit per order; without an order, one per (run, step, iteration).
    let key = match input.order_id.as_deref().filter(|o| !o.is_empty()) {
        Some(order) => format!("order:{order}"),
        None => format!("sop:{}", client.idempotency_key),
    };
    let body = serde_json::json!({
        "member_id": input.member_id,
        "points": input.points,
        "reason": input.reason.unwrap_or_default(),
        "order_id": input.order_id,
    });
    let credited: Credited = client.send(
        Fetch::post_json(&format!("{API}{CREDIT}"), &body).header("idempotency-key", &key),
        Delivery::Idempotent,
    )?;
    client.host.info(&format!(
        "credited {} points to {} (new: {})",
        input.points, credited.member_id, credited.credited
    ));
    Ok(InvokeOutcome::Done(json::to_json(&credited)))
}

/// Input of `get_balance`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetBalance {
    /// The shop's member id.
    pub member_id: String,
}

/// Output of `get_balance`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Balance {
    pub member_id: String,
    pub balance: i64,
}

fn get_balance(client: &Client<'_>, input: GetBalance) -> Result<InvokeOutcome, PluginError> {
    if input.member_id.trim().is_empty() {
        return Err(PluginError::invalid_input(
            "get_balance: member_id is empty",
        ));
    }
    let balance: Balance = client.send(
        Fetch::get(&format!("{API}{BALANCE}")).query("member_id", &input.member_id),
        Delivery::Idempotent,
    )?;
    Ok(InvokeOutcome::Done(json::to_json(&balance)))
}

/// Every action.
pub fn all<'a>() -> Actions<Client<'a>> {
    Actions::new()
        .action(
            ActionDef::new(
                "credit_points",
                "Credits loyalty points to a member; at most once per order_id. Answers the new \
                 balance and whether this call added the points.",
            )
            .rate_limits(&["api"]),
            credit_points,
        )
        .action(
            ActionDef::new("get_balance", "Reads a member's points balance").rate_limits(&["api"]),
            get_balance,
        )
}
