//! Per-API frequency limits in fixed minute and hour windows, plus injected bursts that
//! reject calls regardless of the counts.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A forced run of frequency-limit answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Burst {
    /// Only this API (`None`: every API).
    #[serde(default)]
    pub api: Option<String>,
    /// Reject until this time, Unix milliseconds (`None`: until `calls` are used).
    #[serde(default)]
    pub until_ms: Option<u64>,
    /// Reject this many calls (`None`: until `until_ms`).
    #[serde(default)]
    pub calls: Option<u32>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Window {
    minute: u64,
    minute_count: u32,
    hour: u64,
    hour_count: u32,
}

/// Limits for one platform account (the corp, or the Douyin app).
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    per_hour: u32,
    windows: HashMap<&'static str, Window>,
    bursts: Vec<Burst>,
}

impl RateLimiter {
    /// `per_minute` and `per_hour` calls per API (0 = unlimited).
    pub fn new(per_minute: u32, per_hour: u32) -> Self {
        Self {
            per_minute,
            per_hour,
            windows: HashMap::new(),
            bursts: Vec::new(),
        }
    }

    /// Add a burst of forced rejections.
    pub fn add_burst(&mut self, burst: Burst) {
        self.bursts.push(burst);
    }

    /// Current bursts.
    pub fn bursts(&self) -> &[Burst] {
        &self.bursts
    }

    /// Count a call to `api` at `now_ms`; `false` means it is over the limit (and is not
    /// counted, as the platform does not count rejected calls).
    pub fn allow(&mut self, api: &'static str, now_ms: u64) -> bool {
        if self.in_burst(api, now_ms) {
            return false;
        }
        let minute = now_ms / 60_000;
        let hour = now_ms / 3_600_000;
        let w = self.windows.entry(api).or_default();
        if w.minute != minute {
            w.minute = minute;
            w.minute_count = 0;
        }
        if w.hour != hour {
            w.hour = hour;
            w.hour_count = 0;
        }
        if (self.per_minute > 0 && w.minute_count >= self.per_minute)
            || (self.per_hour > 0 && w.hour_count >= self.per_hour)
        {
            return false;
        }
        w.minute_count += 1;
        w.hour_count += 1;
        true
    }

    fn in_burst(&mut self, api: &str, now_ms: u64) -> bool {
        self.bursts
            .retain(|b| b.until_ms.is_none_or(|t| now_ms < t) && b.calls != Some(0));
        for b in &mut self.bursts {
            if b.api.as_deref().is_some_and(|a| a != api) {
                continue;
            }
            if let Some(n) = b.calls.as_mut() {
                *n -= 1;
            }
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_after_the_minute_limit_and_recovers_next_minute() {
        let mut r = RateLimiter::new(3, 0);
        let t = 120_000;
        assert!(r.allow("a", t));
        assert!(r.allow("a", t + 1));
        assert!(r.allow("a", t + 2));
        assert!(!r.allow("a", t + 3));
        assert!(r.allow("b", t + 3), "limits are per API");
        assert!(r.allow("a", t + 60_000));
    }

    #[test]
    fn hour_limit_spans_minutes() {
        let mut r = RateLimiter::new(0, 2);
        assert!(r.allow("a", 0));
        assert!(r.allow("a", 60_000));
        assert!(!r.allow("a", 120_000));
        assert!(r.allow("a", 3_600_000));
    }

    #[test]
    fn bursts_by_count_and_by_time() {
        let mut r = RateLimiter::new(0, 0);
        r.add_burst(Burst {
            api: Some("a".into()),
            until_ms: None,
            calls: Some(2),
        });
        assert!(!r.allow("a", 0));
        assert!(r.allow("b", 0));
        assert!(!r.allow("a", 0));
        assert!(r.allow("a", 0));
        r.add_burst(Burst {
            api: None,
            until_ms: Some(100),
            calls: None,
        });
        assert!(!r.allow("b", 99));
        assert!(r.allow("b", 100));
    }
}
