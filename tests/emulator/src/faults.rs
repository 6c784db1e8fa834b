//! Fault injection: per-endpoint error rate, 5xx, timeouts, connection resets and added
//! latency, settable at start (config) and at run time (`PUT /_emulator/faults`).
//! Token revocation and rate-limit bursts live with tokens and limits.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::douyin::DyError;
use crate::rng::Rng;
use crate::wecom::WxError;

/// Faults for one endpoint. Rates are probabilities per request, checked in this order:
/// reset, timeout, 5xx, platform error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointFaults {
    /// Answer with the platform's "system busy" error (WeCom -1, Douyin 2100004).
    pub error_rate: f64,
    /// Answer HTTP 503.
    pub status_5xx_rate: f64,
    /// Hold the request for `hang_ms`, then drop the connection without answering.
    pub timeout_rate: f64,
    /// Drop the connection at once without answering.
    pub reset_rate: f64,
    /// Added latency, uniform in `latency_min_ms..=latency_max_ms`.
    pub latency_min_ms: u64,
    /// See `latency_min_ms`.
    pub latency_max_ms: u64,
}

/// All fault settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Applied to every platform endpoint without its own entry.
    pub default: EndpointFaults,
    /// By path, e.g. `/cgi-bin/externalcontact/add_msg_template`.
    pub endpoints: BTreeMap<String, EndpointFaults>,
    /// How long a "timeout" holds the request before dropping it.
    pub hang_ms: u64,
}

/// Fault settings plus the generator that rolls the dice.
#[derive(Debug)]
pub struct FaultState {
    /// Current settings.
    pub config: FaultConfig,
    rng: Rng,
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Serve it normally after `delay`.
    Pass,
    /// Platform error body.
    Error,
    /// HTTP 503.
    Unavailable,
    /// Hang then drop.
    Timeout,
    /// Drop.
    Reset,
}

impl FaultState {
    /// Settings `config`, dice seeded from `seed`.
    pub fn new(config: FaultConfig, seed: u64) -> Self {
        Self {
            config,
            rng: Rng::new(seed ^ 0xFA17),
        }
    }

    /// Decide the fate of a request to `path`, and its added latency.
    pub fn decide(&mut self, path: &str) -> (Action, Duration) {
        if self.config == FaultConfig::default() {
            // The common case: no faults configured, no dice to roll.
            return (Action::Pass, Duration::ZERO);
        }
        let f = self
            .config
            .endpoints
            .get(path)
            .unwrap_or(&self.config.default)
            .clone();
        let latency = if f.latency_max_ms > 0 {
            let lo = f.latency_min_ms.min(f.latency_max_ms);
            lo + self.rng.below(f.latency_max_ms - lo + 1)
        } else {
            0
        };
        let action = if self.rng.chance(f.reset_rate) {
            Action::Reset
        } else if self.rng.chance(f.timeout_rate) {
            Action::Timeout
        } else if self.rng.chance(f.status_5xx_rate) {
            Action::Unavailable
        } else if self.rng.chance(f.error_rate) {
            Action::Error
        } else {
            Action::Pass
        };
        (action, Duration::from_millis(latency))
    }
}

/// Marker in a response's extensions: the server drops the connection instead of answering.
#[derive(Debug, Clone, Copy)]
pub struct ResetConnection;

fn reset() -> Response {
    let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    r.extensions_mut().insert(ResetConnection);
    r
}

/// Apply faults to a request for `path` before it is served: `None` lets it through (after
/// any added latency), `Some` is the answer instead (possibly marked [`ResetConnection`]).
/// The inspection API under `/_emulator` is never faulted.
pub async fn intercept(app: &App, path: &str) -> Option<Response> {
    if path.starts_with("/_emulator") {
        return None;
    }
    let (action, delay) = app.faults().decide(path);
    if action != Action::Pass {
        app.lock().counters.fault(path);
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match action {
        Action::Pass => None,
        Action::Reset => Some(reset()),
        Action::Timeout => {
            let hang = app.faults().config.hang_ms;
            tokio::time::sleep(Duration::from_millis(if hang == 0 { 30_000 } else { hang })).await;
            Some(reset())
        }
        Action::Unavailable => {
            Some((StatusCode::SERVICE_UNAVAILABLE, "503 Service Unavailable").into_response())
        }
        Action::Error if path.starts_with("/cgi-bin/") => {
            Some(WxError::SYSTEM_BUSY.into_response())
        }
        Action::Error if path.starts_with("/api/v1/") => Some(crate::shop::busy()),
        Action::Error => Some(DyError::BUSY.into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_faults_by_default() {
        let mut f = FaultState::new(FaultConfig::default(), 1);
        for _ in 0..100 {
            assert_eq!(
                f.decide("/cgi-bin/gettoken"),
                (Action::Pass, Duration::ZERO)
            );
        }
    }

    #[test]
    fn per_endpoint_rates_override_the_default() {
        let mut cfg = FaultConfig::default();
        cfg.default.error_rate = 1.0;
        cfg.endpoints.insert(
            "/cgi-bin/gettoken".into(),
            EndpointFaults {
                reset_rate: 1.0,
                latency_min_ms: 5,
                latency_max_ms: 5,
                ..EndpointFaults::default()
            },
        );
        let mut f = FaultState::new(cfg, 1);
        assert_eq!(f.decide("/cgi-bin/x").0, Action::Error);
        assert_eq!(
            f.decide("/cgi-bin/gettoken"),
            (Action::Reset, Duration::from_millis(5))
        );
    }

    #[test]
    fn error_rate_is_roughly_honoured() {
        let mut cfg = FaultConfig::default();
        cfg.default.status_5xx_rate = 0.1;
        let mut f = FaultState::new(cfg, 3);
        let n = (0..10_000)
            .filter(|_| f.decide("/x").0 == Action::Unavailable)
            .count();
        assert!((800..1_200).contains(&n), "{n}");
    }
}
