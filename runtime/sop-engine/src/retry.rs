//! Back-off delays: exponential, capped, with jitter taken from a stable hash of the
//! idempotency key and attempt, so a replay waits exactly as long and runs that failed
//! together do not retry together.

use crate::config::RetryPolicy;
use crate::hash::unit_fraction;
use crate::ids::IdempotencyKey;

/// The delay before attempt `failed + 1`, after `failed` transient failures (`failed >= 1`).
pub fn transient_delay_ms(policy: &RetryPolicy, key: &IdempotencyKey, failed: u32) -> u64 {
    let exponent = failed.saturating_sub(1).min(32);
    let full = policy
        .base_delay_ms
        .saturating_mul(1u64 << exponent)
        .min(policy.max_delay_ms);
    // "Equal jitter": at least half the delay, so back-off still grows.
    let half = full / 2;
    let jitter = (unit_fraction(&[key.as_str(), &failed.to_string()]) * half as f64) as u64;
    half + jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_are_capped_and_repeat_exactly() {
        let policy = RetryPolicy::default();
        let key = IdempotencyKey("run-1/send/1".into());
        let delays: Vec<u64> = (1..=10)
            .map(|n| transient_delay_ms(&policy, &key, n))
            .collect();
        for (n, d) in delays.iter().enumerate() {
            let full = (policy.base_delay_ms << n).min(policy.max_delay_ms);
            assert!(
                (full / 2..=full).contains(d),
                "attempt {n}: {d} not in {full}/2..{full}"
            );
        }
        assert!(delays[9] <= policy.max_delay_ms);
        let again: Vec<u64> = (1..=10)
            .map(|n| transient_delay_ms(&policy, &key, n))
            .collect();
        assert_eq!(delays, again);
        let other = transient_delay_ms(&policy, &IdempotencyKey("run-2/send/1".into()), 3);
        assert_ne!(other, delays[2], "jitter differs between runs");
    }
}
