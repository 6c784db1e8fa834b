//! The per-call store data and the host side of the imports (`http`, `logging`, `kv`, `clock`).
//!
//! A fresh `CallState` lives in a fresh `Store` for exactly one export call and is dropped with
//! it, so nothing a plugin does can leak into the next call except through `kv`.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::sop::plugin::{clock, http, kv, logging, types};
use crate::fetch::FetchBudget;
use crate::host::PluginShared;
use sop_clock::Clock;

/// Which export is running: `describe` must not call the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Describe,
    Call,
}

/// Store data of one call.
pub(crate) struct CallState {
    pub plugin: Arc<PluginShared>,
    pub call_id: u64,
    pub account: Option<String>,
    pub phase: Phase,
    pub memory: MemoryCap,
    pub fetch: FetchBudget,
    /// Set when an import fails the call, so the resulting trap is reported as what it was.
    pub import_failure: Option<String>,
    log_lines: u32,
    table: ResourceTable,
    /// Built on first use: most calls never touch WASI and should not pay for it.
    wasi: Option<WasiCtx>,
}

impl std::fmt::Debug for CallState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallState")
            .field("plugin", &self.plugin.manifest_name())
            .field("call_id", &self.call_id)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl CallState {
    pub fn new(
        plugin: Arc<PluginShared>,
        call_id: u64,
        account: Option<String>,
        phase: Phase,
        deadline: Instant,
    ) -> Self {
        let limits = plugin.limits();
        Self {
            memory: MemoryCap {
                limit: limits.memory_bytes,
                used: 0,
                exceeded: false,
            },
            fetch: FetchBudget {
                requests_left: limits.max_http_requests,
                deadline,
                max_request_bytes: limits.max_http_request_bytes,
                max_response_bytes: limits.max_http_response_bytes,
            },
            plugin,
            call_id,
            account,
            phase,
            import_failure: None,
            log_lines: 0,
            table: ResourceTable::new(),
            wasi: None,
        }
    }

    /// Fails the call from inside an import with a reason the host reports as-is.
    fn fail(&mut self, reason: String) -> wasmtime::Error {
        let err = wasmtime::format_err!("{reason}");
        self.import_failure = Some(reason);
        err
    }

    fn no_host_during_describe(&mut self, import: &str) -> wasmtime::Result<()> {
        if self.phase == Phase::Describe {
            return Err(self.fail(format!("describe must not call the host (called {import})")));
        }
        Ok(())
    }
}

/// Caps all linear memories of one instance together.
#[derive(Debug)]
pub(crate) struct MemoryCap {
    pub limit: u64,
    used: u64,
    pub exceeded: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.used.saturating_add((desired - current) as u64);
        if after > self.limit {
            // Refusing (rather than trapping) lets the guest see an allocation failure; a Rust
            // guest then aborts and the trap is reported as the memory cap thanks to this flag.
            self.exceeded = true;
            return Ok(false);
        }
        self.used = after;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl types::Host for CallState {}

impl http::Host for CallState {
    async fn fetch(
        &mut self,
        req: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::Error>> {
        self.no_host_during_describe("http.fetch")?;
        let plugin = self.plugin.clone();
        let method = req.method.clone();
        let url = req.url.clone();
        let result = plugin
            .http()
            .fetch(plugin.policy(), req, &mut self.fetch)
            .await;
        match &result {
            Ok(r) => tracing::debug!(
                plugin = plugin.manifest_name(), call = self.call_id, %method, %url,
                status = r.status, "plugin http fetch"
            ),
            Err(e) => tracing::info!(
                plugin = plugin.manifest_name(), call = self.call_id, %method, %url,
                error = ?e, "plugin http fetch failed"
            ),
        }
        Ok(result)
    }
}

impl logging::Host for CallState {
    async fn log(&mut self, level: logging::Level, message: String) -> wasmtime::Result<()> {
        self.no_host_during_describe("logging.log")?;
        let limits = self.plugin.limits();
        self.log_lines += 1;
        if self.log_lines > limits.max_log_lines {
            if self.log_lines == limits.max_log_lines + 1 {
                tracing::warn!(
                    plugin = self.plugin.manifest_name(),
                    call = self.call_id,
                    "plugin log line limit reached; dropping the rest of this call's lines"
                );
            }
            return Ok(());
        }
        let message = truncate(&message, limits.max_log_line_bytes);
        let plugin = self.plugin.manifest_name();
        let call = self.call_id;
        let account = self.account.as_deref().unwrap_or("");
        match level {
            logging::Level::Trace => tracing::trace!(plugin, call, account, "{message}"),
            logging::Level::Debug => tracing::debug!(plugin, call, account, "{message}"),
            logging::Level::Info => tracing::info!(plugin, call, account, "{message}"),
            logging::Level::Warn => tracing::warn!(plugin, call, account, "{message}"),
            logging::Level::Error => tracing::error!(plugin, call, account, "{message}"),
        }
        Ok(())
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl kv::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        self.no_host_during_describe("kv.get")?;
        self.check_key(&key)?;
        let now = self.plugin.clock().now_ms();
        let plugin = self.plugin.clone();
        plugin
            .kv()
            .get(plugin.manifest_name(), &key, now)
            .map_err(|e| self.fail(e.to_string()))
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<()> {
        self.no_host_during_describe("kv.set")?;
        self.check_key(&key)?;
        let max = self.plugin.limits().max_kv_value_bytes;
        if value.len() > max {
            return Err(self.fail(format!(
                "kv value of {} bytes exceeds the {max} byte limit",
                value.len()
            )));
        }
        let expires = ttl_ms.map(|ttl| {
            self.plugin
                .clock()
                .now_ms()
                .saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX))
        });
        let plugin = self.plugin.clone();
        plugin
            .kv()
            .set(plugin.manifest_name(), &key, value, expires)
            .map_err(|e| self.fail(e.to_string()))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.no_host_during_describe("kv.delete")?;
        self.check_key(&key)?;
        let plugin = self.plugin.clone();
        plugin
            .kv()
            .delete(plugin.manifest_name(), &key)
            .map_err(|e| self.fail(e.to_string()))
    }
}

impl CallState {
    fn check_key(&mut self, key: &str) -> wasmtime::Result<()> {
        let max = self.plugin.limits().max_kv_key_bytes;
        if key.is_empty() || key.len() > max {
            return Err(self.fail(format!(
                "kv key must be 1 to {max} bytes, got {}",
                key.len()
            )));
        }
        Ok(())
    }
}

impl clock::Host for CallState {
    async fn now_ms(&mut self) -> wasmtime::Result<i64> {
        self.no_host_during_describe("clock.now-ms")?;
        Ok(self.plugin.clock().now_ms())
    }
}

/// WASI for language runtimes only (Rust's `std`, componentize-py's CPython): no preopened
/// directories, an empty environment, no arguments, no sockets, stdio discarded, clocks from the
/// runtime's clock. `wasi:random` is granted (wasmtime-wasi's OS-seeded CSPRNG, fresh per call):
/// output-only, it reveals nothing of the host; see docs/plugin-sandbox.md.
impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let clock = self.plugin.clock_arc();
        let ctx = self.wasi.get_or_insert_with(|| {
            WasiCtx::builder()
                .wall_clock(WallClock(clock.clone()))
                .monotonic_clock(MonotonicClock(clock))
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                // The host allocates the bytes before copying them in, outside the guest's
                // memory cap: keep one request small (seeding needs a few dozen bytes).
                .max_random_size(MAX_RANDOM_BYTES)
                .build()
        });
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

/// Largest `get-random-bytes` request a plugin may make.
const MAX_RANDOM_BYTES: u64 = 64 << 10;

struct WallClock(Arc<dyn Clock>);

impl HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        let now = self.0.now();
        // Before 1970 only on a broken host: report the epoch rather than wrap.
        Duration::new(
            u64::try_from(now.timestamp()).unwrap_or(0),
            now.timestamp_subsec_nanos(),
        )
    }
}

/// Derived from the runtime clock so that virtual time is the only time a plugin sees.
struct MonotonicClock(Arc<dyn Clock>);

impl HostMonotonicClock for MonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.0
            .now()
            .timestamp_nanos_opt()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn memory_cap_counts_all_growth() {
        let mut cap = MemoryCap {
            limit: 100,
            used: 0,
            exceeded: false,
        };
        assert!(cap.memory_growing(0, 60, None).unwrap());
        assert!(cap.memory_growing(60, 100, None).unwrap());
        assert!(!cap.memory_growing(0, 1, None).unwrap());
        assert!(cap.exceeded);
    }
}
