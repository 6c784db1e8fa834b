//! The gate: consent → quiet hours → frequency caps on admission, then the account's rate
//! limit before the call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono_tz::Tz;
use serde::Serialize;
use sop_clock::{Clock, Timestamp};
use sop_dsl::Catalog;
use sop_dsl::catalog::ActionAudience;
use sop_dsl::model::{CapAction, Category, QuietHours};
use sop_store::{Contact, ContactKey, FriendStatus, Group, Op, Store, StoreError, TouchKey};

use crate::caps::{Cap, Count, category_bucket};
use crate::config::PolicyConfig;
use crate::consent::{ConsentChange, Keywords};
use crate::error::PolicyError;
use crate::limits::Limits;
use crate::local::quiet_until;
use crate::rate::{AccountSnapshot, Lane, Lanes, Priority, Slot};

/// What the gate is asked about: one invocation for one contact or group.
#[derive(Debug, Clone, Copy)]
pub struct GateRequest<'a> {
    pub invocation: &'a sop_engine::Invocation,
    pub tenant: &'a str,
    /// The contact, for contact actions (`None` if the store has no record).
    pub contact: Option<&'a Contact>,
    /// The group, for group actions.
    pub group: Option<&'a Group>,
    pub now: Timestamp,
}

/// The gate's answer. Every variant carries the text for the run's history.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Send. `touches` (`Op::RecordTouch`) are committed by the runtime together with the
    /// outbox intent, so a send is counted exactly when it is attempted.
    Pass { touches: Vec<Op>, decision: String },
    /// Try again at `until` (quiet hours; a cap with `on_cap: defer`). Never dropped.
    Defer { until: Timestamp, reason: String },
    /// Do not send, continue with the next step (opt-out, deleted staff, `on_cap: skip`).
    Skip { reason: String },
    /// Do not send, end the run (`on_cap: end`).
    EndRun { reason: String },
}

impl Admission {
    /// The history text.
    pub fn describe(&self) -> String {
        match self {
            Admission::Pass { decision, .. } => decision.clone(),
            Admission::Defer { until, reason } => {
                format!("deferred until {}: {reason}", until.to_rfc3339())
            }
            Admission::Skip { reason } => format!("skipped: {reason}"),
            Admission::EndRun { reason } => format!("run ended: {reason}"),
        }
    }
}

/// Counters of the gate and every account's limiter, for the admin API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateSnapshot {
    /// Admission decisions by outcome (`passed`, `deferred_quiet_hours`, ...).
    pub decisions: BTreeMap<String, u64>,
    /// Accounts that have acquired or been slowed down at least once.
    pub accounts: Vec<AccountSnapshot>,
}

/// The policy gate every outgoing action passes. Shared by the runtime's workers.
#[derive(Debug)]
pub struct Gate {
    config: PolicyConfig,
    default_zone: Tz,
    tenants: BTreeMap<String, (Option<Tz>, Option<QuietHours>)>,
    caps: Vec<Cap>,
    limits: Limits,
    keywords: Keywords,
    clock: Arc<dyn Clock>,
    /// When this gate started: its limiters refill from empty (restarts never burst).
    started: Timestamp,
    lanes: Lanes,
    decisions: Mutex<BTreeMap<&'static str, u64>>,
}

fn zone(what: &str, name: &str) -> Result<Tz, PolicyError> {
    name.parse().map_err(|_| PolicyError::TimeZone {
        what: what.into(),
        zone: name.into(),
    })
}

/// How an admission ended, for metrics and counters.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Passed,
    Unchecked,
    DeferredQuiet,
    DeferredCap,
    SuppressedOptOut,
    SuppressedDeleted,
    SkippedCap,
    EndedCap,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Unchecked => "passed_unchecked",
            Outcome::DeferredQuiet => "deferred_quiet_hours",
            Outcome::DeferredCap => "deferred_cap",
            Outcome::SuppressedOptOut => "suppressed_opt_out",
            Outcome::SuppressedDeleted => "suppressed_deleted_staff",
            Outcome::SkippedCap => "skipped_cap",
            Outcome::EndedCap => "ended_cap",
        }
    }
}

/// Who a send reaches, as far as caps are concerned.
enum Target<'a> {
    Contact(&'a Contact),
    Group(&'a Group),
}

impl Gate {
    /// Checks the configuration and the catalog's limits; refuses anything unclear.
    pub fn new(
        config: PolicyConfig,
        catalog: &Catalog,
        clock: Arc<dyn Clock>,
    ) -> Result<Gate, PolicyError> {
        let default_zone = zone("policy.time_zone", &config.time_zone)?;
        let mut tenants = BTreeMap::new();
        for (name, t) in &config.tenants {
            let tz = match &t.time_zone {
                Some(z) => Some(zone(&format!("policy.tenants.{name}.time_zone"), z)?),
                None => None,
            };
            tenants.insert(name.clone(), (tz, t.quiet_hours));
        }
        let mut caps = Vec::new();
        for rule in &config.caps {
            if caps.iter().any(|c: &Cap| c.name == rule.name) {
                return Err(PolicyError::Cap {
                    name: rule.name.clone(),
                    problem: "defined twice".into(),
                });
            }
            caps.push(Cap::from_rule(rule)?);
        }
        let limits = Limits::new(catalog, &config.rate_limits)?
            .with_touch_overrides(&config.touch_limits)?;
        let keywords = Keywords::new(&config.consent)?;
        Ok(Gate {
            config,
            default_zone,
            tenants,
            caps,
            limits,
            keywords,
            started: clock.now(),
            clock,
            lanes: Lanes::default(),
            decisions: Mutex::new(BTreeMap::new()),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// consent/opt-out (+ contact deleted the staff) → quiet hours → frequency caps. Reads
    /// the store, writes nothing: a `Pass` carries the touch ops to commit with the outbox
    /// intent.
    pub fn admit(&self, store: &dyn Store, req: &GateRequest<'_>) -> Result<Admission, StoreError> {
        let (admission, outcome) = self.decide(store, req)?;
        let inv = req.invocation;
        metrics::counter!("sop_policy_decisions_total",
            "plugin" => inv.plugin.clone(), "account" => inv.account.clone(),
            "outcome" => outcome.label())
        .increment(1);
        *self
            .decisions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(outcome.label())
            .or_default() += 1;
        // Passes are the bulk of a broadcast: debug; anything held back is worth an info line.
        if matches!(outcome, Outcome::Passed) {
            tracing::debug!(plugin = %inv.plugin, action = %inv.action, account = %inv.account,
                step = %inv.step.as_str(), key = %inv.key, outcome = outcome.label(),
                decision = %admission.describe(), "policy gate");
        } else {
            tracing::info!(plugin = %inv.plugin, action = %inv.action, account = %inv.account,
                step = %inv.step.as_str(), key = %inv.key, outcome = outcome.label(),
                decision = %admission.describe(), "policy gate");
        }
        Ok(admission)
    }

    fn decide(
        &self,
        store: &dyn Store,
        req: &GateRequest<'_>,
    ) -> Result<(Admission, Outcome), StoreError> {
        let inv = req.invocation;
        let category = inv.policy.category;
        let target = match (inv.audience, req.contact, req.group) {
            (ActionAudience::None | ActionAudience::Staff, _, _) => {
                let decision = "passed: not customer-facing".to_string();
                return Ok((pass(vec![], decision), Outcome::Passed));
            }
            (ActionAudience::Contact, Some(c), _) => Target::Contact(c),
            (ActionAudience::Group, _, Some(g)) => Target::Group(g),
            (ActionAudience::Contact | ActionAudience::Group, _, _) => {
                tracing::warn!(plugin = %inv.plugin, action = %inv.action, key = %inv.key,
                    "no contact or group record: consent and caps not checked");
                let decision = "passed: no contact or group record, consent and caps unchecked";
                return Ok((pass(vec![], decision.into()), Outcome::Unchecked));
            }
        };

        // 1. Consent.
        if let Target::Contact(c) = target {
            if c.friend == FriendStatus::DeletedByContact {
                let reason = "the contact deleted the staff member".to_string();
                return Ok((Admission::Skip { reason }, Outcome::SuppressedDeleted));
            }
            if let Some(o) = &c.consent.opted_out
                && (category == Category::Marketing || !self.config.service_passes_opt_out)
            {
                let reason = format!(
                    "opted out at {} by {} via {}",
                    o.at.to_rfc3339(),
                    o.by,
                    o.source
                );
                return Ok((Admission::Skip { reason }, Outcome::SuppressedOptOut));
            }
        }

        // 2. Quiet hours in the recipient's zone.
        let tz = self.zone_of(
            req.tenant,
            req.contact.filter(|_| matches!(target, Target::Contact(_))),
        );
        let quiet = inv
            .policy
            .quiet_hours
            .or_else(|| self.tenants.get(req.tenant).and_then(|t| t.1))
            .unwrap_or(self.config.quiet_hours);
        let exempt = (category == Category::Service && self.config.service_passes_quiet_hours)
            || (inv.time_critical && self.config.time_critical_passes_quiet_hours);
        let quiet_end = |at| {
            if exempt {
                None
            } else {
                quiet_until(quiet, tz, at)
            }
        };
        if let Some(until) = quiet_end(req.now) {
            let reason = format!("quiet hours {quiet} in {tz}");
            return Ok((Admission::Defer { until, reason }, Outcome::DeferredQuiet));
        }

        // 3. Frequency caps. A retry of an admitted send was counted at its first attempt.
        if inv.attempt > 1 {
            let decision = "passed: retry, counted at its first attempt".to_string();
            return Ok((pass(vec![], decision), Outcome::Passed));
        }
        let key = |bucket: &str| match target {
            Target::Contact(c) => TouchKey::new(c.key.clone(), &inv.account, bucket),
            Target::Group(g) => TouchKey::new(group_touch_key(g), &inv.account, bucket),
        };
        let mut caps: Vec<(Cap, TouchKey)> = Vec::new();
        if let Target::Contact(_) = target {
            let bucket = category_bucket(category);
            for cap in self.caps.iter().filter(|c| c.bucket == bucket) {
                caps.push((cap.clone(), key(bucket)));
            }
        }
        if let Some(plugin) = self.limits.plugin(&inv.plugin) {
            for limit in plugin.touch_limits_for(&inv.action) {
                let cap = Cap::from_touch_limit(&inv.plugin, limit);
                let k = key(&cap.bucket);
                caps.push((cap, k));
            }
        }
        let mut counts: Vec<Count> = Vec::with_capacity(caps.len());
        for (cap, k) in &caps {
            counts.push(cap.count(store, k, tz, req.now)?);
        }
        let blocked: Vec<&Count> = counts
            .iter()
            .filter(|c| c.blocked_until.is_some())
            .collect();
        if let Some(next) = blocked.iter().filter_map(|c| c.blocked_until).max() {
            let which: Vec<String> = blocked.iter().map(|c| c.describe()).collect();
            let which = which.join(", ");
            return Ok(match inv.policy.on_cap {
                CapAction::Defer => {
                    // The cap's end may fall in quiet hours: wait for both.
                    let until = quiet_end(next).unwrap_or(next);
                    let reason = format!("frequency cap {which}");
                    (Admission::Defer { until, reason }, Outcome::DeferredCap)
                }
                CapAction::Skip => {
                    let reason = format!("frequency cap {which}");
                    (Admission::Skip { reason }, Outcome::SkippedCap)
                }
                CapAction::End => {
                    let reason = format!("frequency cap {which}");
                    (Admission::EndRun { reason }, Outcome::EndedCap)
                }
            });
        }

        // Passed: count this send in its category's bucket and every platform bucket.
        let mut buckets: Vec<String> = vec![category_bucket(category).to_string()];
        for (cap, _) in &caps {
            if !buckets.contains(&cap.bucket) {
                buckets.push(cap.bucket.clone());
            }
        }
        let touches = buckets
            .iter()
            .map(|b| Op::RecordTouch {
                key: key(b),
                at: req.now,
            })
            .collect();
        let decision = if counts.is_empty() {
            "passed".to_string()
        } else {
            let shown: Vec<String> = counts.iter().map(Count::describe).collect();
            format!("passed: {}", shown.join(", "))
        };
        Ok((pass(touches, decision), Outcome::Passed))
    }

    /// The contact's zone if it names a valid one, else the tenant's, else the default.
    fn zone_of(&self, tenant: &str, contact: Option<&Contact>) -> Tz {
        if let Some(name) = contact.and_then(|c| c.time_zone.as_deref()) {
            match name.parse::<Tz>() {
                Ok(tz) => return tz,
                Err(_) => tracing::warn!(
                    zone = name,
                    "contact has an unknown time zone; using the tenant's"
                ),
            }
        }
        self.tenants
            .get(tenant)
            .and_then(|t| t.0)
            .unwrap_or(self.default_zone)
    }

    /// Rate limit: waits on the injected clock for the account's slot under every limit the
    /// action counts against; time-critical before normal before bulk. Returns how long it
    /// waited. Recipient-scoped limits need [`acquire_for`](Self::acquire_for).
    pub async fn acquire(
        &self,
        plugin: &str,
        account: &str,
        action: &str,
        priority: Priority,
    ) -> Duration {
        self.acquire_for(plugin, account, action, None, priority)
            .await
    }

    /// [`acquire`](Self::acquire), also applying the manifest's recipient-scoped limits to
    /// `recipient` (a platform user or group id).
    pub async fn acquire_for(
        &self,
        plugin: &str,
        account: &str,
        action: &str,
        recipient: Option<&str>,
        priority: Priority,
    ) -> Duration {
        self.lane(plugin, account)
            .acquire(
                self.clock.as_ref(),
                &self.send_limits(plugin, account, action),
                recipient,
                priority,
            )
            .await
    }

    /// [`acquire_for`](Self::acquire_for), except that a bulk send which would find more
    /// than `rate.park_after_seconds` of paced sends queued ahead on its account is not
    /// queued: it gets a time to come back ([`Slot::Park`]), so that a long broadcast waits
    /// in the store rather than in memory.
    pub async fn acquire_or_park(
        &self,
        plugin: &str,
        account: &str,
        action: &str,
        recipient: Option<&str>,
        priority: Priority,
    ) -> Slot {
        let park_after = (priority == Priority::Bulk && self.config.rate.park_after_seconds > 0)
            .then(|| Duration::from_secs(u64::from(self.config.rate.park_after_seconds)));
        self.lane(plugin, account)
            .acquire_or_park(
                self.clock.as_ref(),
                &self.send_limits(plugin, account, action),
                recipient,
                priority,
                park_after,
            )
            .await
    }

    /// The limits a call of `action` on `account` counts against.
    fn send_limits(&self, plugin: &str, account: &str, action: &str) -> Vec<String> {
        self.limits
            .plugin(plugin)
            .map(|p| p.names_for(account, action))
            .unwrap_or_default()
    }

    /// Rate limit for an outcome check of `action` (asking the platform how an asynchronous
    /// send ended): the limits the manifest gives the check (`outcome_` limits the action
    /// lists), else the action's own. At [`Priority::Check`]: after time-critical sends and
    /// replies, before broadcasts.
    pub async fn acquire_outcome_check(
        &self,
        plugin: &str,
        account: &str,
        action: &str,
    ) -> Duration {
        let lane = self.lane(plugin, account);
        let names = self
            .limits
            .plugin(plugin)
            .map(|p| p.names_for_check(account, action))
            .unwrap_or_default();
        lane.acquire(self.clock.as_ref(), &names, None, Priority::Check)
            .await
    }

    /// A platform "slow down" (rate-limited with retry-after): backs the account off, counted.
    pub fn slow_down(&self, plugin: &str, account: &str, retry_after: Duration) {
        self.lane(plugin, account)
            .slow_down(self.clock.now(), retry_after);
        metrics::counter!("sop_policy_slow_down_total",
            "plugin" => plugin.to_string(), "account" => account.to_string())
        .increment(1);
        tracing::warn!(
            plugin,
            account,
            retry_after_ms = retry_after.as_millis() as u64,
            "platform asked to slow down; account backed off"
        );
    }

    /// Opt-out / opt-in keyword in a contact's own message text ("TD", "退订", configurable).
    pub fn consent_keyword(&self, text: &str) -> Option<ConsentChange> {
        self.keywords.match_text(text)
    }

    /// Per-account limiter state and counters for the admin API.
    pub fn snapshot(&self) -> GateSnapshot {
        let now = self.clock.now();
        let decisions = self
            .decisions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        GateSnapshot {
            decisions,
            accounts: self.lanes.all().iter().map(|l| l.snapshot(now)).collect(),
        }
    }

    fn lane(&self, plugin: &str, account: &str) -> Arc<Lane> {
        self.lanes.get_or_insert(plugin, account, || {
            let limits = self
                .limits
                .plugin(plugin)
                .map(|p| p.for_account(account))
                .unwrap_or_default();
            Lane::new(
                plugin,
                account,
                limits,
                &self.config.rate,
                &self.clock,
                self.started,
            )
        })
    }
}

fn pass(touches: Vec<Op>, decision: String) -> Admission {
    Admission::Pass { touches, decision }
}

/// Groups are counted in the touch log under the contact key `group:<id>` of their tenant.
pub fn group_touch_key(group: &Group) -> ContactKey {
    ContactKey::new(group.key.tenant.clone(), format!("group:{}", group.key.id))
}
