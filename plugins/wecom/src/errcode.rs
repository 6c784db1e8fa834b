//! WeCom `errcode`s mapped to the runtime's typed errors.

use sop_plugin_sdk::{Delivery, PluginError};

/// The token was refused: refresh it and retry once.
pub const TOKEN_INVALID: i64 = 40014;
/// The token expired: refresh it and retry once.
pub const TOKEN_EXPIRED: i64 = 42001;

/// Back-off for 45009 (the per-minute API frequency limit): the next window.
const FREQUENCY_BACKOFF_MS: u64 = 60_000;
/// Back-off for 45033 (too many concurrent calls): a moment.
const CONCURRENCY_BACKOFF_MS: u64 = 1_000;

/// True for the codes that mean "get a new access token".
pub fn is_token_error(code: i64) -> bool {
    matches!(code, TOKEN_INVALID | TOKEN_EXPIRED | 41001)
}

/// The typed error for a non-zero `errcode` answered by `api`.
///
/// WeCom answered, so the call was refused without effect: a code we do not know is
/// `permanent` rather than `outcome-unknown`. `-1` (system busy) is the one code that
/// invites a retry.
pub fn map(api: &str, code: i64, errmsg: &str, delivery: Delivery) -> PluginError {
    let what = format!("{api}: errcode {code}: {errmsg}");
    match code {
        45009 => PluginError::rate_limited(FREQUENCY_BACKOFF_MS, what),
        45033 => PluginError::rate_limited(CONCURRENCY_BACKOFF_MS, what),
        -1 => match delivery {
            // "System busy" may come after the work was queued; never repeat a message.
            Delivery::AtMostOnce => PluginError::outcome_unknown(what),
            Delivery::Idempotent => PluginError::transient(what),
        },
        TOKEN_INVALID | TOKEN_EXPIRED | 41001 | 40001 | 40013 | 42009 => {
            PluginError::auth_expired(what)
        }
        // Missing welcome code, bad ids, bad parameters: the input can never succeed.
        41049 | 40003 | 40096 | 40058 | 40068 | 41002 | 41004 | 44004 | 40009 | 40008 => {
            PluginError::invalid_input(what)
        }
        // Expired or used welcome code, no sendable customer, no relationship, no
        // permission, IP not allowed, every recipient invalid: permanent.
        _ => PluginError::permanent(what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_mapping_table() {
        let table = [
            (45009, Delivery::AtMostOnce, "rate-limited"),
            (45033, Delivery::Idempotent, "rate-limited"),
            (40014, Delivery::Idempotent, "auth-expired"),
            (42001, Delivery::AtMostOnce, "auth-expired"),
            (40001, Delivery::Idempotent, "auth-expired"),
            (41049, Delivery::AtMostOnce, "invalid-input"),
            (41050, Delivery::AtMostOnce, "permanent"),
            (41051, Delivery::AtMostOnce, "permanent"),
            (41048, Delivery::AtMostOnce, "permanent"),
            (84061, Delivery::Idempotent, "permanent"),
            (84074, Delivery::Idempotent, "permanent"),
            (81013, Delivery::AtMostOnce, "permanent"),
            (60020, Delivery::Idempotent, "permanent"),
            (-1, Delivery::AtMostOnce, "outcome-unknown"),
            (-1, Delivery::Idempotent, "transient"),
            (99999, Delivery::Idempotent, "permanent"),
        ];
        for (code, delivery, kind) in table {
            assert_eq!(map("api", code, "m", delivery).kind(), kind, "{code}");
        }
    }

    #[test]
    fn rate_limits_carry_a_back_off() {
        let PluginError::RateLimited(info) = map("api", 45009, "freq", Delivery::Idempotent) else {
            panic!("45009 must be rate-limited");
        };
        assert_eq!(info.retry_after_ms, 60_000);
        assert!(info.message.contains("45009"));
    }
}
