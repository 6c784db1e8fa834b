//! Platform webhooks: `GET|POST /hooks/{plugin}/{account}`.
//!
//! The plugin verifies the request (signature, timestamp, receiver) and translates it; its
//! events are committed durably by [`Runtime::ingest`](sop_runtime::Runtime::ingest) (which
//! also de-duplicates platform retries) *before* the platform gets the plugin's answer, body
//! exactly as the plugin wrote it. A refused request changes nothing. When the whole exchange
//! does not fit the deadline, or the store cannot be written (a full or read-only disk, see
//! [`storage`](crate::storage)), the platform gets 503 and retries.

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::{DateTime, Utc};
use sop_plugin_host::{NormalizedEvent, WebhookError, WebhookRequest};
use sop_runtime::EventSource;

use crate::plugins::HookError;
use crate::state::Shared;

/// The ingress router. `max_body_bytes` is fixed for the router's life.
pub fn router(shared: Shared, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/hooks/{plugin}/{account}", any(hook))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(shared)
}

async fn hook(
    State(shared): State<Shared>,
    Path((plugin, account)): Path<(String, String)>,
    method: Method,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    // Metric labels only take names the operator configured, never raw URL text.
    let plugin_label = if shared.plugins().is_loaded(&plugin) {
        plugin.clone()
    } else {
        "unknown".into()
    };
    let plugin = &plugin;
    if method != Method::GET && method != Method::POST {
        return finish(
            &plugin_label,
            "method_not_allowed",
            started,
            plain(StatusCode::METHOD_NOT_ALLOWED, "GET or POST"),
        );
    }
    let Ok(Query(query)) = query else {
        return finish(
            &plugin_label,
            "bad_request",
            started,
            plain(StatusCode::BAD_REQUEST, "malformed query string"),
        );
    };
    // While the store cannot be written nothing could be committed: the platform retries.
    if !shared.storage().is_writable() {
        return finish(
            &plugin_label,
            "store_unwritable",
            started,
            plain(StatusCode::SERVICE_UNAVAILABLE, "try again"),
        );
    }
    let request = WebhookRequest {
        method: method.to_string(),
        query,
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
    };
    let deadline = shared.live().ingress.timeout();
    let handled = tokio::time::timeout(deadline, handle(&shared, plugin, &account, &request)).await;
    let (outcome, response) = match handled {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(
                plugin,
                account,
                deadline_ms = deadline.as_millis() as u64,
                "webhook not handled in time"
            );
            (
                "timeout",
                plain(StatusCode::SERVICE_UNAVAILABLE, "try again"),
            )
        }
    };
    finish(&plugin_label, outcome, started, response)
}

/// Verifies, parses and commits one request; the outcome label and the answer.
async fn handle(
    shared: &Shared,
    plugin: &str,
    account: &str,
    request: &WebhookRequest,
) -> (&'static str, Response) {
    let (tenant, outcome) = match shared
        .plugins()
        .parse_webhook(plugin, account, request)
        .await
    {
        Ok(parsed) => parsed,
        Err(HookError::UnknownAccount { .. }) => {
            return (
                "unknown_account",
                plain(StatusCode::NOT_FOUND, "unknown account"),
            );
        }
        Err(HookError::Refused(WebhookError::VerificationFailed(why))) => {
            tracing::warn!(plugin, account, reason = %why, "webhook refused: verification failed");
            return (
                "refused",
                plain(StatusCode::FORBIDDEN, "verification failed"),
            );
        }
        Err(HookError::Refused(WebhookError::Malformed(why))) => {
            tracing::warn!(plugin, account, reason = %why, "webhook refused: malformed");
            return ("malformed", plain(StatusCode::BAD_REQUEST, "malformed"));
        }
        Err(HookError::Host(e)) => {
            tracing::error!(plugin, account, error = %e, "webhook parsing failed");
            return (
                "plugin_failed",
                plain(StatusCode::SERVICE_UNAVAILABLE, "try again"),
            );
        }
    };
    if !outcome.events.is_empty() {
        let events = match outcome
            .events
            .into_iter()
            .map(|e| engine_event(plugin, e))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(events) => events,
            Err(why) => {
                tracing::error!(plugin, account, reason = %why, "plugin returned an unusable event");
                return (
                    "plugin_failed",
                    plain(StatusCode::SERVICE_UNAVAILABLE, "try again"),
                );
            }
        };
        let count = events.len() as u64;
        let source = EventSource {
            tenant,
            plugin: plugin.to_owned(),
            account: account.to_owned(),
        };
        match shared.runtime().ingest(&source, events).await {
            Ok(receipt) => {
                metrics::counter!("sop_ingress_events_total", "plugin" => plugin.to_owned(), "account" => account.to_owned())
                    .increment(count);
                if receipt.duplicates > 0 {
                    metrics::counter!("sop_ingress_duplicates_total", "plugin" => plugin.to_owned())
                        .increment(receipt.duplicates as u64);
                }
                tracing::debug!(
                    plugin,
                    account,
                    accepted = receipt.accepted,
                    duplicates = receipt.duplicates,
                    "events committed"
                );
            }
            Err(e) => {
                // Not committed: the platform must retry, so do not answer as it expects.
                tracing::error!(plugin, account, error = %e, "events not committed");
                return (
                    "commit_failed",
                    plain(StatusCode::SERVICE_UNAVAILABLE, "try again"),
                );
            }
        }
    }
    let r = outcome.response;
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    let mut response = (status, r.body).into_response();
    if let Ok(ct) = HeaderValue::from_str(&r.content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    ("ok", response)
}

/// A plugin's normalized event in the engine's words (kind qualified by the plugin).
fn engine_event(plugin: &str, e: NormalizedEvent) -> Result<sop_engine::Event, String> {
    let occurred_at = DateTime::<Utc>::from_timestamp_millis(e.occurred_at_ms)
        .ok_or_else(|| format!("event time {} ms is out of range", e.occurred_at_ms))?;
    Ok(sop_engine::Event {
        kind: format!("{plugin}.{}", e.kind),
        dedupe_id: e.dedupe_id,
        occurred_at,
        contact: e.contact,
        staff: e.staff,
        group: e.group,
        attributes: e.attributes,
    })
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

fn finish(plugin: &str, outcome: &'static str, started: Instant, response: Response) -> Response {
    metrics::counter!("sop_ingress_requests_total", "plugin" => plugin.to_owned(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("sop_ingress_request_seconds", "plugin" => plugin.to_owned())
        .record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_get_the_plugin_prefix_and_a_checked_time() {
        let e = NormalizedEvent {
            kind: "message_received".into(),
            dedupe_id: "m1".into(),
            occurred_at_ms: 1_709_604_000_000,
            contact: Some("wm1".into()),
            staff: None,
            group: None,
            attributes: serde_json::json!({"text": "hi"}),
        };
        let ev = engine_event("wecom", e.clone()).unwrap();
        assert_eq!(ev.kind, "wecom.message_received");
        assert_eq!(ev.occurred_at.timestamp_millis(), 1_709_604_000_000);
        let bad = NormalizedEvent {
            occurred_at_ms: i64::MAX,
            ..e
        };
        assert!(engine_event("wecom", bad).is_err());
    }
}
