//! What a simulation is asked to do, and how it can fail.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sop_clock::Timestamp;
use sop_policy::PolicyConfig;

/// Everything `sop simulate` takes. [`SimulateOptions::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// The playbook to simulate (first) and any others deployed beside it (they share the
    /// gate's caps and touch log, as in production). The report covers all of them.
    pub playbooks: Vec<PathBuf>,
    /// Directory of plugin manifests (`*.json`) the playbooks are checked against.
    pub plugins_dir: PathBuf,
    /// Contacts in the synthetic world at the start.
    pub contacts: u32,
    /// Simulated days.
    pub days: u32,
    /// Seed of the world and of the behaviour model: same seed, same report.
    pub seed: u64,
    /// Virtual start time. Default: Monday 2026-01-05 00:00 in Asia/Shanghai.
    pub start: Timestamp,
    /// Staff members owning the contacts.
    pub staff: u32,
    /// Customer groups (half of them tagged `nurture`).
    pub groups: u32,
    /// The tenant runs belong to (default: the first playbook's `tenant`, else `demo-brand`).
    pub tenant: Option<String>,
    /// The platform account runs act through.
    pub account: String,
    /// The policy gate's configuration (the daemon's `[policy]`).
    pub policy: PolicyConfig,
    /// How the synthetic customers behave.
    pub behaviour: Behaviour,
}

impl SimulateOptions {
    /// Defaults for one playbook file: 1,000 contacts, 30 days, seed 1, `playbooks/plugins`.
    pub fn new(playbook: impl Into<PathBuf>) -> SimulateOptions {
        SimulateOptions {
            playbooks: vec![playbook.into()],
            plugins_dir: PathBuf::from("playbooks/plugins"),
            contacts: 1_000,
            days: 30,
            seed: 1,
            start: default_start(),
            staff: 20,
            groups: 20,
            tenant: None,
            account: "demo-corp".into(),
            policy: PolicyConfig::default(),
            behaviour: Behaviour::default(),
        }
    }
}

/// Monday 2026-01-05 00:00 in Asia/Shanghai.
pub fn default_start() -> Timestamp {
    chrono::DateTime::parse_from_rfc3339("2026-01-05T00:00:00+08:00")
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default()
}

/// The seeded behaviour model: rates are probabilities per contact per day unless stated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    /// New contacts per day, as a share of the starting population (they arrive through a
    /// channel QR code with a welcome code: `wecom.contact_added`).
    pub new_contacts_per_day: f64,
    /// Probability that a delivered message gets a reply.
    pub reply_probability: f64,
    /// Mean delay of a reply, in minutes (exponential, at least one minute).
    pub reply_delay_minutes: f64,
    /// Share of replies that are a menu keyword taken from the playbooks (when they have any).
    pub keyword_share: f64,
    /// Share of replies that are an opt-out keyword (`TD`).
    pub opt_out_share: f64,
    /// Unprompted Douyin private messages.
    pub douyin_messages_per_day: f64,
    /// Paid orders (`shop.order_paid`).
    pub orders_per_day: f64,
    /// Customers deleting their staff member.
    pub deletes_per_day: f64,
    /// Customers joining one of the customer groups (`wecom.group_member_joined`).
    pub group_joins_per_day: f64,
    /// Share of deletions the platform reports (`wecom.staff_deleted_by_contact`); the others
    /// are only found out when a send fails.
    pub deletes_reported: f64,
    /// Share of contacts that are past buyers (`attributes.orders > 0`).
    pub buyers_share: f64,
    /// Share of contacts tagged `live_fan` (live-reminder audience).
    pub live_fan_share: f64,
    /// Share of contacts living outside Asia/Shanghai (quiet hours in their own zone).
    pub abroad_share: f64,
    /// Last interactions at the start are spread over this many days before the start.
    pub silence_spread_days: u32,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            new_contacts_per_day: 0.01,
            reply_probability: 0.3,
            reply_delay_minutes: 120.0,
            keyword_share: 0.6,
            opt_out_share: 0.03,
            douyin_messages_per_day: 0.01,
            orders_per_day: 0.005,
            deletes_per_day: 0.001,
            group_joins_per_day: 0.01,
            deletes_reported: 0.5,
            buyers_share: 0.6,
            live_fan_share: 0.3,
            abroad_share: 0.05,
            silence_spread_days: 60,
        }
    }
}

impl Behaviour {
    /// Rejects probabilities outside 0..=1 and negative rates.
    pub fn validate(&self) -> Result<(), SimulateError> {
        let shares = [
            ("reply_probability", self.reply_probability),
            ("keyword_share", self.keyword_share),
            ("opt_out_share", self.opt_out_share),
            ("douyin_messages_per_day", self.douyin_messages_per_day),
            ("orders_per_day", self.orders_per_day),
            ("deletes_per_day", self.deletes_per_day),
            ("group_joins_per_day", self.group_joins_per_day),
            ("deletes_reported", self.deletes_reported),
            ("buyers_share", self.buyers_share),
            ("live_fan_share", self.live_fan_share),
            ("abroad_share", self.abroad_share),
        ];
        for (name, value) in shares {
            if !(0.0..=1.0).contains(&value) {
                return Err(SimulateError::Options(format!(
                    "behaviour.{name} must be between 0 and 1, got {value}"
                )));
            }
        }
        if !(self.new_contacts_per_day >= 0.0 && self.new_contacts_per_day <= 10.0) {
            return Err(SimulateError::Options(format!(
                "behaviour.new_contacts_per_day must be between 0 and 10, got {}",
                self.new_contacts_per_day
            )));
        }
        if !(self.reply_delay_minutes >= 0.0 && self.reply_delay_minutes.is_finite()) {
            return Err(SimulateError::Options(
                "behaviour.reply_delay_minutes must be a non-negative number".into(),
            ));
        }
        Ok(())
    }
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// Bad options (sizes, rates, missing playbooks).
    #[error("invalid simulation options: {0}")]
    Options(String),
    /// A playbook or the plugins directory could not be read.
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    /// The plugin manifests do not load.
    #[error("plugin catalog: {0}")]
    Catalog(String),
    /// The policy configuration is refused by the gate.
    #[error("policy: {0}")]
    Policy(String),
    /// The runtime refused the playbooks (the deploy check) or failed.
    #[error("runtime: {0}")]
    Runtime(#[from] sop_runtime::RuntimeError),
    /// The in-memory store failed.
    #[error("store: {0}")]
    Store(#[from] sop_store::StoreError),
    /// The simulation's own thread or async runtime failed.
    #[error("simulation: {0}")]
    Internal(String),
}
