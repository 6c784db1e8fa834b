//! New contacts through the welcome playbook: the emulator raises add-contact events at a set
//! rate, signs and posts each callback to the daemon's ingress, and records when the daemon's
//! `send_welcome_msg` for that contact arrives. Latency = delivery `at_ms` − callback
//! `created_ms`, both on the emulator's clock.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::json;
use sop_harness::{Http, World};

use crate::emu;
use crate::load::paced;
use crate::machine;
use crate::setup;
use crate::stats::{Summary, summarize};

const WELCOME_API: &str = "externalcontact/send_welcome_msg";

/// What one welcome run measured.
#[derive(Debug, Clone)]
pub struct WelcomeRun {
    /// Offered callbacks per second.
    pub rate: f64,
    /// Accounts (tenants) the callbacks were spread over.
    pub accounts: u32,
    /// Events injected (and answered by the emulator).
    pub injected: usize,
    /// Injections the emulator refused or that failed.
    pub inject_errors: usize,
    /// Injections the generator started over 100 ms late.
    pub late: u64,
    /// Callback → welcome latency of the welcomed contacts, ms.
    pub latency: Option<Summary>,
    /// Contacts with no welcome delivered by the end.
    pub undelivered: usize,
    /// Welcomes slower than the 20 s code life (also counted when undelivered).
    pub over_20s: usize,
    /// `send_welcome_msg` answers with an error (41050 expired code, …).
    pub welcome_errors: u64,
    /// Callback attempts beyond the first (the daemon answered late or not 2xx).
    pub callback_retries: u64,
    /// Callbacks given up.
    pub callbacks_failed: u64,
    /// Daemon CPU seconds per wall second while the load ran and drained.
    pub daemon_cpu: f64,
    /// Daemon peak RSS, MiB.
    pub daemon_peak_mib: f64,
}

fn err(e: sop_harness::Error) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

async fn welcome_calls(emu: &Http) -> Result<u64> {
    Ok(emu::endpoint(&emu::counters(emu).await?, WELCOME_API).0)
}

/// Accounts needed so that `rate` welcomes a second stay under 80 % of what the daemon's
/// pacing allows per WeCom account ([`setup::WECOM_PACED_CALLS_PER_S`]), two calls per
/// welcome (`send_welcome_msg`, then the channel tag).
pub fn accounts_for(rate: f64) -> u32 {
    let per_account = setup::WECOM_PACED_CALLS_PER_S / 2.0 * 0.8;
    ((rate / per_account).ceil() as u32).max(1)
}

/// The add-contact event for the `i`-th new contact: round robin over the accounts, each
/// callback from its own corp to its own account's webhook.
fn event_for(world: &World, accounts: u32, i: u64) -> serde_json::Value {
    let a = (i % u64::from(accounts)) as u32;
    json!({
        "kind": "add_contact",
        "corp": setup::corp_id(a),
        "callback_url": world.daemon.hook_url("wecom", &setup::account_id(a)),
    })
}

/// Starts a world of `accounts` tenants with the welcome playbook each.
pub async fn world(a: &crate::Args, accounts: u32) -> Result<(World, setup::TempDir)> {
    let (spec, dir) = setup::accounts_spec(a, accounts, 0, 2_000, true, None)?;
    Ok((World::start(spec).await.map_err(err)?, dir))
}

/// Runs `rate` add-contact events per second for `seconds` against a world of
/// [`world`]`(accounts)`.
pub async fn run(world: &World, accounts: u32, rate: f64, seconds: f64) -> Result<WelcomeRun> {
    let emu = world.emulator.http().clone();
    let pid = world.daemon.pid().context("the daemon is not running")?;
    let events: Vec<serde_json::Value> = (0..u64::from(accounts))
        .map(|i| event_for(world, accounts, i))
        .collect();

    // Warm up every account: token, plugin instances, first sled writes.
    let warm = u64::from(accounts).max(20);
    for i in 0..warm {
        emu::add_contact(&emu, &events[(i % u64::from(accounts)) as usize]).await?;
    }
    emu::wait_progress(
        warm,
        Duration::from_secs(30),
        Duration::from_secs(120),
        || welcome_calls(&emu),
    )
    .await?;
    let before = emu::counters(&emu).await?;
    let cpu0 = machine::cpu_seconds(pid).unwrap_or(0.0);
    let t0 = std::time::Instant::now();

    let load = paced(rate, Duration::from_secs_f64(seconds), 512, |i| {
        let emu = emu.clone();
        let event = events[(i % u64::from(accounts)) as usize].clone();
        async move { emu::add_contact(&emu, &event).await }
    })
    .await;
    let mut sent: Vec<(u64, String)> = Vec::with_capacity(load.results.len());
    let mut inject_errors = 0;
    for r in load.results {
        match r {
            Ok(v) => sent.push(v),
            Err(_) => inject_errors += 1,
        }
    }
    // Drain: every welcome sent, or nothing moving for 30 s (after 20 s a code is dead anyway).
    let (calls0, _, _) = emu::endpoint(&before, WELCOME_API);
    emu::wait_progress(
        calls0 + sent.len() as u64,
        Duration::from_secs(30),
        Duration::from_secs(600),
        || welcome_calls(&emu),
    )
    .await?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = machine::cpu_seconds(pid).unwrap_or(0.0) - cpu0;
    let mem = machine::memory(pid);
    let after = emu::counters(&emu).await?;

    let (latencies, undelivered) = latencies(&emu, &sent).await?;
    let over_20s = undelivered + latencies.iter().filter(|&&l| l > 20_000.0).count();
    let (_, e0, _) = emu::endpoint(&before, WELCOME_API);
    let (_, e1, _) = emu::endpoint(&after, WELCOME_API);
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
    let retries = (n(&after, "callback_attempts") - n(&before, "callback_attempts"))
        .saturating_sub(n(&after, "events_generated") - n(&before, "events_generated"));
    Ok(WelcomeRun {
        rate,
        accounts,
        injected: sent.len(),
        inject_errors,
        late: load.late,
        latency: summarize(&latencies),
        undelivered,
        over_20s,
        welcome_errors: e1 - e0,
        callback_retries: retries,
        callbacks_failed: n(&after, "callbacks_failed") - n(&before, "callbacks_failed"),
        daemon_cpu: cpu / wall,
        daemon_peak_mib: mem.map_or(0.0, |m| m.hwm_kib as f64 / 1024.0),
    })
}

/// Callback → welcome latency (ms) of each `(callback id, contact)` injected, and how many
/// got no welcome at all.
pub async fn latencies(emu: &Http, sent: &[(u64, String)]) -> Result<(Vec<f64>, usize)> {
    let created = emu::callback_times(emu).await?;
    let delivered: HashMap<String, u64> =
        emu::deliveries(emu, "welcome").await?.into_iter().collect();
    let mut latencies = Vec::with_capacity(sent.len());
    let mut undelivered = 0;
    for (id, contact) in sent {
        match (created.get(id), delivered.get(contact)) {
            (Some(&c), Some(&d)) => latencies.push(d.saturating_sub(c) as f64),
            _ => undelivered += 1,
        }
    }
    Ok((latencies, undelivered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enough_accounts_for_the_rate() {
        assert_eq!(accounts_for(1.0), 1);
        assert_eq!(accounts_for(16.0), 1);
        assert_eq!(accounts_for(17.0), 2);
        assert_eq!(accounts_for(1000.0), 62);
    }
}
