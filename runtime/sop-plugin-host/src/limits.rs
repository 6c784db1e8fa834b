//! Per-plugin resource limits, with defaults safe for an untrusted plugin.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one call (`describe`, `invoke`, `check-outcome`, `parse-webhook`) may use.
///
/// Every call gets the full budget afresh in a fresh store; nothing carries over between calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimits {
    /// Linear memory the instance may grow to, in bytes (all memories together).
    pub memory_bytes: u64,
    /// WebAssembly fuel (roughly one unit per instruction): the deterministic CPU budget.
    pub fuel: u64,
    /// Wall-clock time for the whole call, host calls (HTTP) included.
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// Bytes of JSON input, account config and webhook body handed to the plugin.
    pub max_input_bytes: usize,
    /// Bytes of output (JSON texts, webhook response body and events) accepted from the plugin.
    pub max_output_bytes: usize,
    /// HTTP requests one call may make (redirect hops count).
    pub max_http_requests: u32,
    /// Bytes of one HTTP request body the plugin may send.
    pub max_http_request_bytes: usize,
    /// Bytes of one HTTP response body the host reads before answering `too-large`.
    pub max_http_response_bytes: usize,
    /// Length of a key-value key in bytes.
    pub max_kv_key_bytes: usize,
    /// Length of a key-value value in bytes.
    pub max_kv_value_bytes: usize,
    /// Log lines kept per call; further lines are counted and dropped.
    pub max_log_lines: u32,
    /// Length of one log line in bytes; longer lines are truncated.
    pub max_log_line_bytes: usize,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            fuel: 2_000_000_000,
            timeout: Duration::from_secs(15),
            max_input_bytes: 1 << 20,
            max_output_bytes: 1 << 20,
            max_http_requests: 16,
            max_http_request_bytes: 1 << 20,
            max_http_response_bytes: 4 << 20,
            max_kv_key_bytes: 256,
            max_kv_value_bytes: 64 << 10,
            max_log_lines: 256,
            max_log_line_bytes: 4 << 10,
        }
    }
}

impl PluginLimits {
    /// Problems that make these limits unusable with a pool sized for `pool_memory_bytes`.
    pub fn problems(&self, pool_memory_bytes: u64) -> Vec<String> {
        let mut out = Vec::new();
        if self.memory_bytes == 0 || self.memory_bytes > pool_memory_bytes {
            out.push(format!(
                "memory_bytes must be between 1 and the host's per-instance pool size ({pool_memory_bytes}), got {}",
                self.memory_bytes
            ));
        }
        if self.fuel == 0 {
            out.push("fuel must be positive".into());
        }
        if self.timeout.is_zero() {
            out.push("timeout must be positive".into());
        }
        out
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_the_default_pool() {
        assert!(PluginLimits::default().problems(256 << 20).is_empty());
    }

    #[test]
    fn partial_config_keeps_other_defaults() {
        let limits: PluginLimits =
            serde_json::from_str(r#"{"timeout": 250, "fuel": 1000}"#).unwrap();
        assert_eq!(limits.timeout, Duration::from_millis(250));
        assert_eq!(limits.fuel, 1000);
        assert_eq!(limits.memory_bytes, PluginLimits::default().memory_bytes);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_reported() {
        assert!(serde_json::from_str::<PluginLimits>(r#"{"memroy": 1}"#).is_err());
        let limits = PluginLimits {
            memory_bytes: 1 << 40,
            fuel: 0,
            timeout: Duration::ZERO,
            ..PluginLimits::default()
        };
        assert_eq!(limits.problems(256 << 20).len(), 3);
    }
}
