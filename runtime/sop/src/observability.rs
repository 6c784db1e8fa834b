//! Logs (tracing, text or JSON), Prometheus metrics and the health endpoints.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::state::Shared;

/// How log lines are written (stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event (for log shippers).
    Json,
}

/// Installs the global tracing subscriber: `RUST_LOG` filters (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    // A second install (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Installs the Prometheus recorder behind the `metrics` facade; every crate's metrics are
/// rendered by the returned handle. Installing twice fails (one recorder per process).
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    describe();
    Ok(handle)
}

/// Help texts of the daemon's own metrics.
fn describe() {
    metrics::describe_counter!(
        "sop_ingress_requests_total",
        "Webhook requests by plugin and outcome."
    );
    metrics::describe_counter!(
        "sop_ingress_events_total",
        "Events committed from webhooks, by plugin and account."
    );
    metrics::describe_counter!(
        "sop_ingress_duplicates_total",
        "Webhook events dropped as platform retries."
    );
    metrics::describe_histogram!(
        "sop_ingress_request_seconds",
        "Time to verify, parse and commit one webhook."
    );
    metrics::describe_counter!(
        "sop_plugin_calls_total",
        "Plugin actions by plugin, action and outcome."
    );
    metrics::describe_histogram!("sop_plugin_call_seconds", "Plugin action latency.");
    metrics::describe_counter!(
        "sop_admin_refused_total",
        "Admin API requests refused (missing/wrong token, scope)."
    );
    metrics::describe_gauge!("sop_ready", "1 while the daemon serves traffic.");
    metrics::describe_gauge!(
        "sop_store_writable",
        "0 while the store refuses writes (disk full or read-only), else 1."
    );
}

/// `/metrics`, `/healthz` (the process answers) and `/readyz` (recovered, playbooks deployed,
/// not shutting down). No token: scrapers and supervisors reach them on the admin address.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(shared)
}

async fn metrics_text(State(shared): State<Shared>) -> Response {
    match shared.metrics() {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}

async fn ready(State(shared): State<Shared>) -> Response {
    if shared.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else if let Some(problem) = shared.storage().problem() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the store cannot be written: {problem}"),
        )
            .into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}
