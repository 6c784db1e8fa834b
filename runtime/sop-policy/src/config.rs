//! The operator's policy configuration, embedded by the daemon under `[policy]` in its TOML
//! file. Every field has a documented default, so an empty `[policy]` table is a full policy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sop_dsl::model::{Category, Duration, QuietHours};

/// The whole policy. `PolicyConfig::default()` equals an empty `[policy]` table.
///
/// ```toml
/// [policy]
/// time_zone = "Asia/Shanghai"
/// quiet_hours = "22:00-08:00"
///
/// [[policy.caps]]
/// name = "marketing_per_week"
/// max = 3
/// window = "week"
///
/// [[policy.rate_limits]]
/// plugin = "wecom"
/// limit = "api_per_corp_minute"
/// max = 5000
/// per_seconds = 60
///
/// [[policy.touch_limits]]
/// plugin = "wecom"
/// limit = "mass_send_per_group"
/// max = 28
/// window = "month"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// IANA zone for contacts without one (default `Asia/Shanghai`).
    pub time_zone: String,
    /// Quiet hours for playbooks that set none (default `22:00-08:00`; `off` disables).
    pub quiet_hours: QuietHours,
    /// Whether service replies may be sent during quiet hours (default true: the contact
    /// just wrote to us).
    pub service_passes_quiet_hours: bool,
    /// Whether time-critical actions (a welcome whose code expires in seconds) pass quiet
    /// hours (default true: deferring them would drop them).
    pub time_critical_passes_quiet_hours: bool,
    /// Whether service replies still reach a contact who opted out of marketing (default
    /// true: opting out is about marketing; answering their own question is not).
    pub service_passes_opt_out: bool,
    /// Per-tenant overrides of the time zone and quiet hours.
    pub tenants: BTreeMap<String, TenantPolicy>,
    /// Frequency caps across all playbooks (default: 1 marketing touch a calendar day and 8 a
    /// calendar month per contact per platform account). An explicit list replaces them.
    pub caps: Vec<CapRule>,
    /// Opt-out / opt-in keywords.
    pub consent: ConsentConfig,
    /// Pacing of the manifests' rate limits.
    pub rate: RateConfig,
    /// Operator limits that tighten the manifests' rate limits (never loosen).
    pub rate_limits: Vec<RateOverride>,
    /// Operator replacements of the manifests' touch limits (how often the platform lets one
    /// contact or group be messaged), for a platform rule other than the manifest's.
    pub touch_limits: Vec<TouchOverride>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            time_zone: "Asia/Shanghai".into(),
            quiet_hours: QuietHours::Window {
                start: sop_dsl::model::TimeOfDay {
                    hour: 22,
                    minute: 0,
                },
                end: sop_dsl::model::TimeOfDay { hour: 8, minute: 0 },
            },
            service_passes_quiet_hours: true,
            time_critical_passes_quiet_hours: true,
            service_passes_opt_out: true,
            tenants: BTreeMap::new(),
            caps: default_caps(),
            consent: ConsentConfig::default(),
            rate: RateConfig::default(),
            rate_limits: Vec::new(),
            touch_limits: Vec::new(),
        }
    }
}

fn default_caps() -> Vec<CapRule> {
    vec![
        CapRule {
            name: "marketing_per_day".into(),
            category: Category::Marketing,
            max: 1,
            window: CapWindow::Day,
        },
        CapRule {
            name: "marketing_per_month".into(),
            category: Category::Marketing,
            max: 8,
            window: CapWindow::Month,
        },
    ]
}

/// A tenant's own defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPolicy {
    /// IANA zone for the tenant's contacts without one.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Quiet hours for the tenant's playbooks that set none.
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
}

/// At most `max` touches of `category` per contact per platform account in `window`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapRule {
    /// Shown in decisions and metrics.
    pub name: String,
    /// Which messages count (default marketing).
    #[serde(default)]
    pub category: Category,
    /// Touches allowed in the window (at least 1).
    pub max: u32,
    pub window: CapWindow,
}

/// The period a cap counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CapWindow {
    /// A calendar day in the contact's time zone.
    Day,
    /// A calendar week (Monday to Sunday) in the contact's time zone.
    Week,
    /// A calendar month in the contact's time zone.
    Month,
    /// The last `duration` before now, e.g. `{ rolling = "7d" }`.
    Rolling(Duration),
}

/// Opt-out / opt-in keywords. A contact's message matches when, trimmed of spaces and
/// punctuation, it equals a keyword (ASCII case-insensitive, full-width letters folded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsentConfig {
    /// Default `TD`, `退订`, `取消订阅`, `STOP`, `UNSUBSCRIBE`.
    pub opt_out_keywords: Vec<String>,
    /// Default `订阅`, `START`, `SUBSCRIBE`.
    pub opt_in_keywords: Vec<String>,
}

impl Default for ConsentConfig {
    fn default() -> Self {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect();
        Self {
            opt_out_keywords: words(&["TD", "退订", "取消订阅", "STOP", "UNSUBSCRIBE"]),
            opt_in_keywords: words(&["订阅", "START", "SUBSCRIBE"]),
        }
    }
}

/// How the manifests' documented rate limits are paced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateConfig {
    /// Percent of each documented limit kept in reserve against clock skew and network
    /// jitter (default 2: a 100/min limit is paced at 98/min).
    pub headroom_percent: u8,
    /// Calls that may go back to back before pacing starts (default 1: evenly spaced).
    /// A burst of `b` lowers the paced rate so that no window of the limit's length ever
    /// holds more than its maximum.
    pub burst: u32,
    /// A broadcast send that would find more than this many seconds of paced sends queued
    /// ahead on its account waits in the store (a deferral timer) instead of in memory, and
    /// comes back when about half of that is left ahead (default 30; 0 never parks). Bounds
    /// the memory of a long paced broadcast to this much of each account's pace.
    pub park_after_seconds: u32,
}

impl Default for RateConfig {
    fn default() -> Self {
        Self {
            headroom_percent: 2,
            burst: 1,
            park_after_seconds: 30,
        }
    }
}

/// An operator rate limit. With `limit`, it tightens that manifest limit (it must be at
/// least as strict); without, it adds a limit named `name` for `actions` (all the plugin's
/// actions when empty). `account` restricts it to one platform account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateOverride {
    pub plugin: String,
    #[serde(default)]
    pub account: Option<String>,
    /// A manifest rate limit to tighten.
    #[serde(default)]
    pub limit: Option<String>,
    /// Name of an added limit (required without `limit`).
    #[serde(default)]
    pub name: Option<String>,
    /// Actions an added limit applies to.
    #[serde(default)]
    pub actions: Vec<String>,
    pub max: u32,
    pub per_seconds: u32,
}

/// Replaces a manifest touch limit: at most `max` touches per contact (or group) in `window`.
/// Unlike rate overrides this may loosen: a platform's documented rule can be looser than the
/// conservative default a manifest ships (WeCom's current docs allow a customer or group as
/// many mass messages a month as the month has days; the manifest says one a day).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TouchOverride {
    pub plugin: String,
    /// The manifest touch limit it replaces, e.g. `mass_send_per_group`.
    pub limit: String,
    pub max: u32,
    pub window: CapWindow,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_is_the_default() {
        let c: PolicyConfig = toml::from_str("").unwrap();
        assert_eq!(c, PolicyConfig::default());
        assert_eq!(c.time_zone, "Asia/Shanghai");
        assert_eq!(c.quiet_hours.to_string(), "22:00-08:00");
        assert_eq!(c.caps.len(), 2);
    }

    #[test]
    fn reads_every_field() {
        let text = r#"
            time_zone = "Europe/Berlin"
            quiet_hours = "off"
            service_passes_quiet_hours = false
            [tenants.acme]
            time_zone = "America/New_York"
            quiet_hours = "21:00-09:00"
            [[caps]]
            name = "weekly"
            max = 3
            window = "week"
            [[caps]]
            name = "rolling"
            category = "service"
            max = 10
            window = { rolling = "7d" }
            [consent]
            opt_out_keywords = ["N"]
            [rate]
            headroom_percent = 5
            [[rate_limits]]
            plugin = "wecom"
            limit = "api_per_corp_minute"
            max = 10
            per_seconds = 60
        "#;
        let c: PolicyConfig = toml::from_str(text).unwrap();
        assert_eq!(c.quiet_hours, QuietHours::Off);
        assert!(!c.service_passes_quiet_hours);
        assert!(c.time_critical_passes_quiet_hours);
        assert_eq!(
            c.tenants["acme"].quiet_hours.unwrap().to_string(),
            "21:00-09:00"
        );
        assert_eq!(c.caps[0].window, CapWindow::Week);
        assert_eq!(c.caps[0].category, Category::Marketing);
        assert_eq!(
            c.caps[1].window,
            CapWindow::Rolling(Duration::from_seconds(7 * 86_400))
        );
        assert_eq!(c.consent.opt_out_keywords, vec!["N".to_string()]);
        assert_eq!(
            c.consent.opt_in_keywords,
            ConsentConfig::default().opt_in_keywords
        );
        assert_eq!(c.rate.headroom_percent, 5);
        assert_eq!(
            c.rate_limits[0].limit.as_deref(),
            Some("api_per_corp_minute")
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = toml::from_str::<PolicyConfig>("quiet = \"22:00-08:00\"").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = toml::from_str::<PolicyConfig>("[[caps]]\nname='x'\nmax=1\nwindow='day'\nfoo=1")
            .unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = toml::from_str::<PolicyConfig>("quiet_hours = \"25:00-08:00\"").unwrap_err();
        assert!(e.to_string().contains("25:00"), "{e}");
    }
}
