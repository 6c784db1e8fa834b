//! Reading the emulator's records: counters, callbacks, deliveries.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde_json::Value;
use sop_harness::Http;

/// `/_emulator/counters`.
pub async fn counters(emu: &Http) -> Result<Value> {
    emu.get("/_emulator/counters")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Calls, errors and 45009 answers of one API from a counters document.
pub fn endpoint(counters: &Value, api: &str) -> (u64, u64, u64) {
    let e = &counters["endpoints"][api];
    let n = |k: &str| e[k].as_u64().unwrap_or(0);
    (n("calls"), n("errors"), n("rate_limited"))
}

/// A top-level count of a counters document (`mass_recipients`, `mass_tasks`, ...); an error
/// if the emulator does not keep it.
pub fn counter(counters: &Value, key: &str) -> Result<u64> {
    counters[key]
        .as_u64()
        .with_context(|| format!("the emulator's counters have no `{key}`"))
}

/// 45009 answers over all WeCom APIs.
pub fn rate_limited_total(counters: &Value) -> u64 {
    counters["endpoints"]
        .as_object()
        .map(|m| m.values().filter_map(|e| e["rate_limited"].as_u64()).sum())
        .unwrap_or(0)
}

/// Injects one add-contact event; its callback id and the new contact's id.
pub async fn add_contact(emu: &Http, body: &Value) -> Result<(u64, String)> {
    let reply = emu
        .post_raw("/_emulator/events", body)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let v = reply.ok_json().map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = v["callback_id"].as_u64().context("no callback_id")?;
    let contact = v["external_userid"]
        .as_str()
        .context("no external_userid")?
        .to_owned();
    Ok((id, contact))
}

/// Creation time (ms) of every kept callback, by id.
pub async fn callback_times(emu: &Http) -> Result<HashMap<u64, u64>> {
    let all = emu
        .get("/_emulator/callbacks")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(all
        .as_array()
        .context("callbacks: not a list")?
        .iter()
        .filter_map(|c| Some((c["id"].as_u64()?, c["created_ms"].as_u64()?)))
        .collect())
}

/// Deliveries of `channel` as (recipient, at_ms), in order.
pub async fn deliveries(emu: &Http, channel: &str) -> Result<Vec<(String, u64)>> {
    let all = emu
        .get(&format!("/_emulator/deliveries?channel={channel}"))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(all
        .as_array()
        .context("deliveries: not a list")?
        .iter()
        .filter_map(|d| Some((d["to"].as_str()?.to_owned(), d["at_ms"].as_u64()?)))
        .collect())
}

/// Polls `progress` (every 250 ms) until it reaches `goal`, or stops moving for `stall`, or
/// `deadline` passes; the last value seen.
pub async fn wait_progress<F, Fut>(
    goal: u64,
    stall: Duration,
    deadline: Duration,
    mut progress: F,
) -> Result<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64>>,
{
    let start = Instant::now();
    let mut last = (progress().await?, Instant::now());
    while last.0 < goal {
        if last.1.elapsed() > stall || start.elapsed() > deadline {
            return Ok(last.0);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = progress().await?;
        if now != last.0 {
            last = (now, Instant::now());
        }
    }
    Ok(last.0)
}
