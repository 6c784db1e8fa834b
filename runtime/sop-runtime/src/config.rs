//! Runtime settings (the daemon embeds them under `[runtime]`).

use serde::Deserialize;
use sop_engine::EngineConfig;

/// How the runtime runs. Every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Shards (lanes) work is spread over by subject hash: one subject's transitions are
    /// serialised, different subjects proceed in parallel. Default 64: a transition holds its
    /// lane while it reads and commits, which waits on the disk, not only on a core, so
    /// lanes are many more than cores (2 lanes held the daemon to about 200 welcomes/s).
    pub shards: usize,
    /// Due timers read per store page by the timer loop (bounds memory at start-up, when a
    /// downtime left many timers due).
    pub timer_page: usize,
    /// Contacts or groups read per page by manual starts over a whole audience.
    pub audience_page: usize,
    /// Cron and inactivity-check fires missed while sop was down: `skip` (default) or
    /// `catch_up_once`, and the grace period of a late fire (see `docs/triggers.md`).
    pub cron: sop_triggers::CronPolicy,
    /// How long platform dedupe ids are remembered (seconds; default 7 days). A platform
    /// re-delivering an event later than this would be taken as new.
    pub dedupe_retention_seconds: u64,
    /// How often housekeeping forgets old dedupe ids and expired plugin values (seconds;
    /// default 1 hour), so each retention batch stays small.
    pub housekeeping_seconds: u64,
    /// How long to wait before asking again about an accepted action's outcome when the
    /// plugin could not answer (a platform error, no free plugin instance), in seconds;
    /// default 15 minutes. The engine's outcome timeout bounds the whole wait.
    pub outcome_recheck_seconds: u64,
    /// Bulk sends (runs an operator, a schedule or a scan started) dispatched at once;
    /// the rest wait their turn as a run id in a queue per account, taken round robin
    /// (default 4,096). Bounds a broadcast's memory: a waiting dispatch held its future and
    /// invocation (roughly 11 KB by estimate), a queued send is its run id and subject.
    /// Welcomes and other event-driven sends never wait.
    pub bulk_in_flight: usize,
    /// The least time between the starts of two store flushes, in milliseconds (default 5,
    /// at most 1,000; 0 flushes as soon as a wait is asked). Durable waits asked within it
    /// share one flush: under load this trades up to that much latency per durable wait for
    /// far fewer flushes, each of which costs about the same CPU whether it answers one wait
    /// or fifty. An idle daemon's flush starts at once.
    pub flush_interval_ms: u64,
    /// Most members of one batched call (docs/engine.md, "Batched sends"; default 1,000,
    /// within the action's own `max`; 0 or 1 sends every invocation alone). Members share
    /// one intent commit and one result commit, so this bounds how long a batch holds the
    /// store's commit lock.
    pub batch_max: usize,
    /// Retry policy, step budget.
    #[serde(skip)]
    pub engine: EngineConfig,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            shards: 64,
            timer_page: 256,
            audience_page: 500,
            cron: sop_triggers::CronPolicy::default(),
            dedupe_retention_seconds: 7 * 24 * 3600,
            housekeeping_seconds: 3600,
            outcome_recheck_seconds: 15 * 60,
            bulk_in_flight: 4096,
            flush_interval_ms: 5,
            batch_max: 1000,
            engine: EngineConfig::default(),
        }
    }
}
