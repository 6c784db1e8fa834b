//! The plugin manifests' documented limits (rate limits and touch limits), read from the
//! catalog's JSON values, and the operator's overrides applied to them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sop_dsl::Catalog;

use crate::config::{CapWindow, RateOverride, TouchOverride};
use crate::error::PolicyError;

/// Manifest rate limits named so count an action's outcome checks (`check-outcome`: the
/// queries an asynchronous send's result needs, on other platform APIs than the send), not
/// its calls. An action lists them with its own limits.
pub const OUTCOME_PREFIX: &str = "outcome_";

fn is_outcome(name: &str) -> bool {
    name.starts_with(OUTCOME_PREFIX)
}

/// What a rate limit is counted per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitScope {
    /// Per platform account.
    Account,
    /// Per recipient (a contact, a group, a staff member).
    Recipient,
}

/// A manifest rate limit (`{name, scope, max, per_seconds, error_code}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct ManifestRateLimit {
    name: String,
    scope: LimitScope,
    max: u32,
    per_seconds: u32,
    #[serde(default)]
    error_code: Option<String>,
}

/// How a manifest touch limit's period is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TouchPeriod {
    Day,
    Week,
    Month,
    /// Seconds.
    Rolling(u64),
}

/// A manifest touch limit (`{actions, max, name, period}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct TouchLimit {
    pub name: String,
    pub actions: Vec<String>,
    pub max: u32,
    pub period: TouchPeriod,
}

/// One rate limit as enforced: the manifest's (or the operator's added) limit, tightened by
/// the operator's overrides for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub name: String,
    pub scope: LimitScope,
    pub max: u32,
    pub per_seconds: u32,
    /// The platform error this limit produces when exceeded.
    pub error_code: Option<String>,
    /// Where it comes from: `manifest`, `manifest+config`, `config`.
    pub origin: &'static str,
}

/// One plugin's limits.
#[derive(Debug, Default)]
pub(crate) struct PluginLimits {
    rate: BTreeMap<String, RateLimit>,
    /// Action → names of the rate limits it counts against.
    actions: BTreeMap<String, Vec<String>>,
    pub touch: Vec<TouchLimit>,
    overrides: Vec<RateOverride>,
}

/// Every plugin's limits, by plugin name.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    plugins: BTreeMap<String, PluginLimits>,
}

impl Limits {
    pub(crate) fn new(catalog: &Catalog, overrides: &[RateOverride]) -> Result<Self, PolicyError> {
        let mut plugins = BTreeMap::new();
        for (name, spec) in &catalog.plugins {
            let problem = |problem: String| PolicyError::Manifest {
                plugin: name.clone(),
                problem,
            };
            let mut limits = PluginLimits::default();
            for value in &spec.rate_limits {
                let l: ManifestRateLimit = serde_json::from_value(value.clone())
                    .map_err(|e| problem(format!("rate limit {value}: {e}")))?;
                if l.max == 0 || l.per_seconds == 0 {
                    return Err(problem(format!(
                        "rate limit `{}`: max and per_seconds must be positive",
                        l.name
                    )));
                }
                let limit = RateLimit {
                    name: l.name.clone(),
                    scope: l.scope,
                    max: l.max,
                    per_seconds: l.per_seconds,
                    error_code: l.error_code,
                    origin: "manifest",
                };
                if limits.rate.insert(l.name.clone(), limit).is_some() {
                    return Err(problem(format!("rate limit `{}` is defined twice", l.name)));
                }
            }
            for action in &spec.actions {
                for used in &action.rate_limits {
                    if !limits.rate.contains_key(used) {
                        return Err(problem(format!(
                            "action `{}` names unknown rate limit `{used}`",
                            action.name
                        )));
                    }
                }
                limits
                    .actions
                    .insert(action.name.clone(), action.rate_limits.clone());
            }
            for value in &spec.touch_limits {
                let t: TouchLimit = serde_json::from_value(value.clone())
                    .map_err(|e| problem(format!("touch limit {value}: {e}")))?;
                if t.max == 0 || t.period == TouchPeriod::Rolling(0) {
                    return Err(problem(format!(
                        "touch limit `{}`: max and period must be positive",
                        t.name
                    )));
                }
                limits.touch.push(t);
            }
            plugins.insert(name.clone(), limits);
        }
        for o in overrides {
            let problem = |problem: String| PolicyError::RateOverride {
                plugin: o.plugin.clone(),
                problem,
            };
            let Some(limits) = plugins.get_mut(&o.plugin) else {
                return Err(problem("no such plugin in the catalog".into()));
            };
            if o.max == 0 || o.per_seconds == 0 {
                return Err(problem("max and per_seconds must be positive".into()));
            }
            match (&o.limit, &o.name) {
                (Some(limit), None) => {
                    let Some(base) = limits.rate.get(limit) else {
                        return Err(problem(format!("no manifest rate limit `{limit}`")));
                    };
                    if !o.actions.is_empty() {
                        return Err(problem(format!(
                            "`actions` belongs to added limits; `{limit}` applies where the manifest says"
                        )));
                    }
                    if !tighter_or_equal(o.max, o.per_seconds, base.max, base.per_seconds) {
                        return Err(problem(format!(
                            "{}/{}s would loosen `{limit}` ({}/{}s); overrides may only tighten",
                            o.max, o.per_seconds, base.max, base.per_seconds
                        )));
                    }
                }
                (None, Some(name)) => {
                    if limits.rate.contains_key(name) {
                        return Err(problem(format!(
                            "added limit `{name}` has a manifest limit's name; use `limit` to tighten it"
                        )));
                    }
                    for action in &o.actions {
                        if !limits.actions.contains_key(action) {
                            return Err(problem(format!("no action `{action}`")));
                        }
                    }
                }
                _ => {
                    return Err(problem(
                        "set exactly one of `limit` (tighten a manifest limit) or `name` (add a limit)"
                            .into(),
                    ));
                }
            }
            limits.overrides.push(o.clone());
        }
        Ok(Self { plugins })
    }

    /// Replaces manifest touch limits with the operator's.
    pub(crate) fn with_touch_overrides(
        mut self,
        overrides: &[TouchOverride],
    ) -> Result<Self, PolicyError> {
        for o in overrides {
            let problem = |problem: String| PolicyError::TouchOverride {
                plugin: o.plugin.clone(),
                problem,
            };
            let Some(limits) = self.plugins.get_mut(&o.plugin) else {
                return Err(problem("no such plugin in the catalog".into()));
            };
            let known: Vec<String> = limits.touch.iter().map(|t| t.name.clone()).collect();
            let Some(limit) = limits.touch.iter_mut().find(|t| t.name == o.limit) else {
                return Err(problem(format!(
                    "no manifest touch limit `{}` (it has: {})",
                    o.limit,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            };
            if o.max == 0 {
                return Err(problem(format!(
                    "`{}`: max must be at least 1 (remove the playbooks instead)",
                    o.limit
                )));
            }
            limit.max = o.max;
            limit.period = match o.window {
                CapWindow::Day => TouchPeriod::Day,
                CapWindow::Week => TouchPeriod::Week,
                CapWindow::Month => TouchPeriod::Month,
                CapWindow::Rolling(d) if d.as_seconds() == 0 => {
                    return Err(problem(format!(
                        "`{}`: a rolling window must be longer than 0s",
                        o.limit
                    )));
                }
                CapWindow::Rolling(d) => TouchPeriod::Rolling(d.as_seconds()),
            };
        }
        Ok(self)
    }

    pub(crate) fn plugin(&self, plugin: &str) -> Option<&PluginLimits> {
        self.plugins.get(plugin)
    }
}

/// At most as many calls in a burst and at most the same rate.
fn tighter_or_equal(max: u32, per: u32, base_max: u32, base_per: u32) -> bool {
    max <= base_max && u64::from(max) * u64::from(base_per) <= u64::from(base_max) * u64::from(per)
}

impl PluginLimits {
    /// Every limit enforced for `account`: manifest limits tightened by matching overrides,
    /// plus the operator's added limits.
    pub(crate) fn for_account(&self, account: &str) -> Vec<RateLimit> {
        let applies = |o: &&RateOverride| o.account.as_deref().is_none_or(|a| a == account);
        let mut out: Vec<RateLimit> = self
            .rate
            .values()
            .map(|base| {
                let mut limit = base.clone();
                for o in self.overrides.iter().filter(applies) {
                    if o.limit.as_deref() == Some(base.name.as_str())
                        && tighter_or_equal(o.max, o.per_seconds, limit.max, limit.per_seconds)
                    {
                        limit.max = o.max;
                        limit.per_seconds = o.per_seconds;
                        limit.origin = "manifest+config";
                    }
                }
                limit
            })
            .collect();
        for o in self.overrides.iter().filter(applies) {
            if let (None, Some(name)) = (&o.limit, &o.name) {
                out.push(RateLimit {
                    name: name.clone(),
                    scope: LimitScope::Account,
                    max: o.max,
                    per_seconds: o.per_seconds,
                    error_code: None,
                    origin: "config",
                });
            }
        }
        out
    }

    /// Names of the limits `action` counts against on `account`. An action the manifest does
    /// not list counts against every account-scoped limit (the safe side).
    pub(crate) fn names_for(&self, account: &str, action: &str) -> Vec<String> {
        let mut names: Vec<String> = match self.actions.get(action) {
            Some(names) => names.iter().filter(|n| !is_outcome(n)).cloned().collect(),
            None => self
                .rate
                .values()
                .filter(|l| l.scope == LimitScope::Account && !is_outcome(&l.name))
                .map(|l| l.name.clone())
                .collect(),
        };
        for o in &self.overrides {
            if let (None, Some(name)) = (&o.limit, &o.name)
                && o.account.as_deref().is_none_or(|a| a == account)
                && (o.actions.is_empty() || o.actions.iter().any(|a| a == action))
                && !names.contains(name)
            {
                names.push(name.clone());
            }
        }
        names
    }

    /// Names of the limits an outcome check of `action` counts against: the `outcome_`
    /// limits the action lists, else (the safe side) the same as its calls.
    pub(crate) fn names_for_check(&self, account: &str, action: &str) -> Vec<String> {
        let outcome: Vec<String> = self
            .actions
            .get(action)
            .map(|names| names.iter().filter(|n| is_outcome(n)).cloned().collect())
            .unwrap_or_default();
        if outcome.is_empty() {
            self.names_for(account, action)
        } else {
            outcome
        }
    }

    /// The touch limits `action` counts against.
    pub(crate) fn touch_limits_for<'a>(
        &'a self,
        action: &'a str,
    ) -> impl Iterator<Item = &'a TouchLimit> + 'a {
        self.touch
            .iter()
            .filter(move |t| t.actions.iter().any(|a| a == action))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The WeCom and Douyin manifests shipped with the example playbooks.
    pub(crate) fn catalog() -> Catalog {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../playbooks/plugins");
        Catalog::load_dir(std::path::Path::new(dir)).unwrap()
    }

    fn over(limit: Option<&str>, name: Option<&str>, max: u32, per: u32) -> RateOverride {
        RateOverride {
            plugin: "wecom".into(),
            account: Some("acme".into()),
            limit: limit.map(Into::into),
            name: name.map(Into::into),
            actions: vec![],
            max,
            per_seconds: per,
        }
    }

    #[test]
    fn touch_overrides_replace_a_manifest_limit_and_refuse_unknown_ones() {
        let monthly = TouchOverride {
            plugin: "wecom".into(),
            limit: "mass_send_per_group".into(),
            max: 28,
            window: CapWindow::Month,
        };
        let limits = Limits::new(&catalog(), &[])
            .unwrap()
            .with_touch_overrides(std::slice::from_ref(&monthly))
            .unwrap();
        let wecom = limits.plugin("wecom").unwrap();
        let group: Vec<_> = wecom.touch_limits_for("mass_send_groups").collect();
        assert_eq!((group[0].max, group[0].period), (28, TouchPeriod::Month));
        let contact: Vec<_> = wecom.touch_limits_for("mass_send_contacts").collect();
        assert_eq!((contact[0].max, contact[0].period), (1, TouchPeriod::Day));

        let refused = |o: TouchOverride| {
            Limits::new(&catalog(), &[])
                .unwrap()
                .with_touch_overrides(&[o])
                .unwrap_err()
                .to_string()
        };
        let e = refused(TouchOverride {
            limit: "mass_send_per_grup".into(),
            ..monthly.clone()
        });
        assert!(
            e.contains("no manifest touch limit `mass_send_per_grup`")
                && e.contains("mass_send_per_group"),
            "{e}"
        );
        let e = refused(TouchOverride {
            plugin: "wechat".into(),
            ..monthly.clone()
        });
        assert!(e.contains("no such plugin"), "{e}");
        let e = refused(TouchOverride { max: 0, ..monthly });
        assert!(e.contains("at least 1"), "{e}");
    }

    #[test]
    fn reads_the_shipped_manifests() {
        let limits = Limits::new(&catalog(), &[]).unwrap();
        let wecom = limits.plugin("wecom").unwrap();
        assert_eq!(
            wecom.names_for("acme", "send_welcome"),
            vec!["api_per_corp_minute", "api_per_corp_hour"]
        );
        assert_eq!(wecom.for_account("acme").len(), 5);
        // A mass send's outcome check counts against the query limits, not the send's.
        assert_eq!(
            wecom.names_for("acme", "mass_send_contacts"),
            vec!["api_per_corp_minute", "api_per_corp_hour"]
        );
        assert_eq!(
            wecom.names_for_check("acme", "mass_send_contacts"),
            vec![
                "outcome_query_per_corp_minute",
                "outcome_query_per_corp_hour"
            ]
        );
        // An action without outcome limits: its check counts like its calls (the safe side).
        assert_eq!(
            wecom.names_for_check("acme", "send_welcome"),
            wecom.names_for("acme", "send_welcome")
        );
        // An unknown action counts against every account limit but the outcome ones.
        assert_eq!(
            wecom.names_for("acme", "nope"),
            vec!["api_per_corp_hour", "api_per_corp_minute"]
        );
        let touch: Vec<_> = wecom.touch_limits_for("mass_send_groups").collect();
        assert_eq!(touch[0].name, "mass_send_per_group");
        let douyin = limits.plugin("douyin").unwrap();
        assert_eq!(douyin.touch_limits_for("send_proactive").count(), 2);
        assert_eq!(douyin.touch_limits_for("reply").count(), 0);
    }

    #[test]
    fn overrides_only_tighten() {
        let tight = over(Some("api_per_corp_minute"), None, 100, 60);
        let limits = Limits::new(&catalog(), &[tight]).unwrap();
        let wecom = limits.plugin("wecom").unwrap();
        let minute = |account| {
            wecom
                .for_account(account)
                .into_iter()
                .find(|l| l.name == "api_per_corp_minute")
                .unwrap()
        };
        assert_eq!(
            (minute("acme").max, minute("acme").origin),
            (100, "manifest+config")
        );
        assert_eq!(minute("other").max, 10_000);

        let loose = over(Some("api_per_corp_minute"), None, 20_000, 60);
        let e = Limits::new(&catalog(), &[loose]).unwrap_err();
        assert!(e.to_string().contains("only tighten"), "{e}");
        // Same count over a shorter period is a higher rate.
        let faster = over(Some("api_per_corp_minute"), None, 10_000, 30);
        assert!(Limits::new(&catalog(), &[faster]).is_err());
    }

    #[test]
    fn added_limits_apply_to_their_actions() {
        let mut bulk = over(None, Some("bulk"), 10, 60);
        bulk.actions = vec!["mass_send_contacts".into()];
        let limits = Limits::new(&catalog(), &[bulk]).unwrap();
        let wecom = limits.plugin("wecom").unwrap();
        assert!(
            wecom
                .names_for("acme", "mass_send_contacts")
                .contains(&"bulk".to_string())
        );
        assert!(
            !wecom
                .names_for("acme", "send_welcome")
                .contains(&"bulk".to_string())
        );
        assert!(
            !wecom
                .names_for("other", "mass_send_contacts")
                .contains(&"bulk".to_string())
        );
    }

    #[test]
    fn bad_overrides_and_manifests_are_refused() {
        for o in [
            over(Some("nope"), None, 1, 60),
            over(None, None, 1, 60),
            over(Some("api_per_corp_minute"), Some("x"), 1, 60),
            over(None, Some("api_per_corp_hour"), 1, 60),
            over(None, Some("x"), 0, 60),
            RateOverride {
                plugin: "nope".into(),
                ..over(None, Some("x"), 1, 60)
            },
        ] {
            assert!(
                Limits::new(&catalog(), std::slice::from_ref(&o)).is_err(),
                "{o:?}"
            );
        }
        let mut catalog = catalog();
        let wecom = catalog.plugins.get_mut("wecom").unwrap();
        wecom
            .touch_limits
            .push(serde_json::json!({"name": "x", "max": 1}));
        let e = Limits::new(&catalog, &[]).unwrap_err();
        assert!(e.to_string().contains("touch limit"), "{e}");
    }
}
