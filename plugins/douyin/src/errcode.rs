//! Douyin `error_code`s mapped to the runtime's typed errors.

use sop_plugin_sdk::{Delivery, PluginError};

/// `access_token` unknown or revoked.
pub const TOKEN_INVALID: i64 = 2_190_002;
/// `access_token` expired.
pub const TOKEN_EXPIRED: i64 = 2_190_008;

/// Back-off after "rate too high".
const RATE_BACKOFF_MS: u64 = 60_000;

/// True for the codes that mean "get a new access token".
pub fn is_token_error(code: i64) -> bool {
    matches!(code, TOKEN_INVALID | TOKEN_EXPIRED)
}

/// The typed error for a non-zero `error_code` answered by `api`.
pub fn map(api: &str, code: i64, description: &str, delivery: Delivery) -> PluginError {
    let what = format!("{api}: error_code {code}: {description}");
    match code {
        28_003_018 => PluginError::rate_limited(RATE_BACKOFF_MS, what),
        // Quota used up (reply window closed, daily proactive message spent) and the
        // per-user frequency control: sending again now cannot succeed.
        28_003_017 | 28_003_070 => PluginError::permanent(what),
        TOKEN_INVALID | TOKEN_EXPIRED | 2_190_015 | 10_008 => PluginError::auth_expired(what),
        2_100_005 => PluginError::invalid_input(what),
        // System busy: may come after the platform queued the message.
        2_100_004 => match delivery {
            Delivery::AtMostOnce => PluginError::outcome_unknown(what),
            Delivery::Idempotent => PluginError::transient(what),
        },
        _ => PluginError::permanent(what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_mapping_table() {
        let table = [
            (28_003_017, Delivery::AtMostOnce, "permanent"),
            (28_003_018, Delivery::AtMostOnce, "rate-limited"),
            (28_003_070, Delivery::AtMostOnce, "permanent"),
            (2_190_002, Delivery::Idempotent, "auth-expired"),
            (2_190_008, Delivery::Idempotent, "auth-expired"),
            (2_100_005, Delivery::AtMostOnce, "invalid-input"),
            (2_100_004, Delivery::AtMostOnce, "outcome-unknown"),
            (2_100_004, Delivery::Idempotent, "transient"),
            (28_001_003, Delivery::AtMostOnce, "permanent"),
        ];
        for (code, delivery, kind) in table {
            assert_eq!(map("api", code, "d", delivery).kind(), kind, "{code}");
        }
    }
}
