//! The plugin host: one shared engine and linker, one compiled component and `InstancePre` per
//! plugin, and a fresh store for every call.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Store,
    Trap,
};

use crate::bindings::{Platform, PlatformPre};
use crate::call::{self, SizeCap};
use crate::call_state::{CallState, Phase};
use crate::egress::{EgressPolicy, NetworkConfig};
use crate::error::{CallError, HostError, LoadError};
use crate::fetch::HttpClient;
use crate::kv::{KvStore, MemoryKv};
use crate::limits::PluginLimits;
use crate::manifest::{self, Manifest};
use crate::resolver::{Resolver, SystemResolver};
use crate::{
    Account, Invocation, InvokeOutcome, OutcomeStatus, PluginError, WebhookError, WebhookOutcome,
    WebhookRequest,
};
use sop_clock::{Clock, SystemClock};

/// Engine-wide settings, fixed when the host starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Plugin calls that may run at once (instance pool size). Further calls fail with
    /// [`HostError::Instantiate`] rather than queue inside the host.
    pub max_concurrent_calls: u32,
    /// Largest linear memory any instance may have; per-plugin `memory_bytes` must fit.
    pub pool_memory_bytes: u64,
    /// Fuel between cooperative yields: how long a guest may run before other tasks and the
    /// call's timeout get a chance to run (about 0.1 ms of guest code by default).
    pub fuel_yield_interval: u64,
    /// Bytes of each linear memory slot kept resident between calls and reset in place
    /// (only the pages a call dirtied, found with Linux's `PAGEMAP_SCAN` where the kernel has
    /// it) instead of being released to the kernel and faulted in again by the next call.
    /// Covers a Rust guest's 1 MiB stack plus its data and small heap by default.
    pub keep_resident_bytes: u64,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 64,
            pool_memory_bytes: 256 << 20,
            fuel_yield_interval: 100_000,
            keep_resident_bytes: 2 << 20,
        }
    }
}

/// The operator's settings for one plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginSettings {
    /// Resource limits of each call.
    pub limits: PluginLimits,
    /// Network policy.
    pub network: NetworkConfig,
}

/// Services the host lends to plugins.
#[derive(Debug, Clone)]
pub struct HostServices {
    /// Key-value storage behind `kv`.
    pub kv: Arc<dyn KvStore>,
    /// Time behind `clock.now-ms` and WASI clocks.
    pub clock: Arc<dyn Clock>,
    /// Name resolution for `http.fetch`.
    pub resolver: Arc<dyn Resolver>,
}

impl Default for HostServices {
    fn default() -> Self {
        Self {
            kv: Arc::new(MemoryKv::new()),
            clock: Arc::new(SystemClock),
            resolver: Arc::new(SystemResolver),
        }
    }
}

/// Loads and runs plugins. Share it behind an `Arc`; all methods take `&self`.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<CallState>,
    config: HostConfig,
    services: HostServices,
    http: HttpClient,
    next_call: Arc<AtomicU64>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("config", &self.config)
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

impl PluginHost {
    /// Starts an engine with the pooling allocator and fuel metering.
    pub fn new(config: HostConfig, services: HostServices) -> Result<Self, wasmtime::Error> {
        let mut wasm = Self::engine_config();
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(Self::pool(&config)));
        Self::with_engine(&wasm, config, services)
    }

    /// A host for reading manifests only (see [`crate::describe_file`]): instances allocated on
    /// demand (no pool reserved) and code compiled without optimisation, which takes a
    /// fraction of the time for a component that runs one `describe`.
    pub(crate) fn for_describe() -> Result<Self, wasmtime::Error> {
        let config = HostConfig {
            max_concurrent_calls: 1,
            ..HostConfig::default()
        };
        let mut wasm = Self::engine_config();
        wasm.allocation_strategy(InstanceAllocationStrategy::OnDemand)
            .cranelift_opt_level(OptLevel::None);
        Self::with_engine(&wasm, config, HostServices::default())
    }

    fn pool(config: &HostConfig) -> PoolingAllocationConfig {
        let mut pool = PoolingAllocationConfig::new();
        let n = config.max_concurrent_calls.max(1);
        pool.total_component_instances(n)
            // A Rust component holds a few core instances (main module, shims, fix-ups).
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .total_stacks(n)
            .max_memory_size(usize::try_from(config.pool_memory_bytes).unwrap_or(usize::MAX))
            // Reset used slots in place rather than madvise + page faults on the next call:
            // the two together were about a third of a trivial call (docs/performance.md).
            .linear_memory_keep_resident(
                usize::try_from(config.keep_resident_bytes).unwrap_or(usize::MAX),
            )
            .table_keep_resident(64 << 10)
            .pagemap_scan(Enabled::Auto);
        pool
    }

    fn engine_config() -> Config {
        let mut wasm = Config::new();
        wasm.consume_fuel(true)
            .wasm_component_model(true)
            // We never use the component-model-async APIs; without this every `Store` builds
            // the concurrent-task state and its drop formats an error (with a backtrace when
            // RUST_BACKTRACE is set): about 12 µs of a 50 µs call.
            .concurrency_support(false)
            .max_wasm_stack(1 << 20);
        wasm
    }

    fn with_engine(
        wasm: &Config,
        config: HostConfig,
        services: HostServices,
    ) -> Result<Self, wasmtime::Error> {
        let engine = Engine::new(wasm)?;
        let mut linker = Linker::new(&engine);
        Platform::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)?;
        // Rust's standard library imports a few WASI interfaces; they get a context that
        // grants nothing (see `CallState`'s `WasiView`). Anything else traps if called.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Ok(Self {
            http: HttpClient::new(services.resolver.clone()),
            engine,
            linker,
            config,
            services,
            next_call: Arc::new(AtomicU64::new(1)),
        })
    }

    /// Loads every `*.wasm` in `dir`, in name order. Plugins that fail are reported and skipped;
    /// the others load.
    pub async fn load_dir(
        &self,
        dir: &Path,
        settings: &BTreeMap<String, PluginSettings>,
    ) -> (Vec<Plugin>, Vec<LoadError>) {
        let io = |source| LoadError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .collect(),
            Err(e) => return (Vec::new(), vec![io(e)]),
        };
        paths.sort();
        let (mut plugins, mut errors) = (Vec::<Plugin>::new(), Vec::new());
        for path in paths {
            match self.load_file(&path, settings).await {
                Ok(p) if plugins.iter().any(|q| q.name() == p.name()) => {
                    errors.push(LoadError::Duplicate {
                        path: path.display().to_string(),
                        name: p.name().to_owned(),
                    });
                }
                Ok(p) => plugins.push(p),
                Err(e) => errors.push(e),
            }
        }
        (plugins, errors)
    }

    /// Loads one component file; settings are looked up by the manifest's name.
    pub async fn load_file(
        &self,
        path: &Path,
        settings: &BTreeMap<String, PluginSettings>,
    ) -> Result<Plugin, LoadError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
            path: shown.clone(),
            source,
        })?;
        self.load_bytes(&shown, &bytes, settings).await
    }

    /// Loads a component from memory; `origin` names it in errors.
    pub async fn load_bytes(
        &self,
        origin: &str,
        bytes: &[u8],
        settings: &BTreeMap<String, PluginSettings>,
    ) -> Result<Plugin, LoadError> {
        let compile = |e: wasmtime::Error| LoadError::Compile {
            path: origin.to_owned(),
            message: format!("{e:#}"),
        };
        let component = Component::new(&self.engine, bytes).map_err(compile)?;
        let pre = self.linker.instantiate_pre(&component).map_err(compile)?;
        let pre = PlatformPre::new(pre).map_err(compile)?;
        // `describe` runs under default limits and an empty network policy: it may not call out.
        let probe = self.shared(
            origin.to_owned(),
            Manifest::placeholder(),
            PluginSettings::default(),
            EgressPolicy::deny_all(),
        );
        let described = self
            .describe(&pre, probe)
            .await
            .map_err(|source| LoadError::Describe {
                path: origin.to_owned(),
                source,
            })?;
        let manifest = manifest::from_wit(described).map_err(|problems| LoadError::Manifest {
            path: origin.to_owned(),
            problems,
        })?;
        let settings = settings.get(&manifest.name).cloned().unwrap_or_default();
        let mut problems = settings.limits.problems(self.config.pool_memory_bytes);
        let policy = EgressPolicy::new(&manifest.hosts, &settings.network).unwrap_or_else(|p| {
            problems.extend(p);
            EgressPolicy::deny_all()
        });
        if !problems.is_empty() {
            return Err(LoadError::Config {
                name: manifest.name,
                problems,
            });
        }
        Ok(Plugin {
            shared: self.shared(origin.to_owned(), manifest, settings, policy),
            pre,
            engine: self.engine.clone(),
            fuel_yield_interval: self.config.fuel_yield_interval,
            next_call: self.next_call.clone(),
        })
    }

    fn shared(
        &self,
        origin: String,
        manifest: Manifest,
        settings: PluginSettings,
        policy: EgressPolicy,
    ) -> Arc<PluginShared> {
        Arc::new(PluginShared {
            origin,
            manifest,
            limits: settings.limits,
            policy,
            kv: self.services.kv.clone(),
            clock: self.services.clock.clone(),
            http: self.http.for_plugin(),
        })
    }

    async fn describe(
        &self,
        pre: &PlatformPre<CallState>,
        probe: Arc<PluginShared>,
    ) -> Result<crate::bindings::wit::Manifest, HostError> {
        let runner = Runner {
            shared: probe,
            engine: self.engine.clone(),
            fuel_yield_interval: self.config.fuel_yield_interval,
        };
        let mut store = runner.store(0, None, Phase::Describe)?;
        let timeout = runner.shared.limits.timeout;
        let result = tokio::time::timeout(timeout, async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.sop_plugin_plugin().call_describe(&mut store).await
        })
        .await;
        runner.finish(result, &mut store)
    }
}

/// Everything a call needs that outlives it.
#[derive(Debug)]
pub(crate) struct PluginShared {
    origin: String,
    manifest: Manifest,
    limits: PluginLimits,
    policy: EgressPolicy,
    kv: Arc<dyn KvStore>,
    clock: Arc<dyn Clock>,
    http: HttpClient,
}

impl PluginShared {
    pub fn manifest_name(&self) -> &str {
        if self.manifest.name.is_empty() {
            &self.origin
        } else {
            &self.manifest.name
        }
    }
    pub fn limits(&self) -> &PluginLimits {
        &self.limits
    }
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }
    pub fn kv(&self) -> &dyn KvStore {
        &*self.kv
    }
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }
    pub fn clock_arc(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }
    pub fn http(&self) -> &HttpClient {
        &self.http
    }
}

/// A loaded, checked plugin. Clone it freely; calls on clones run concurrently.
#[derive(Clone)]
pub struct Plugin {
    shared: Arc<PluginShared>,
    pre: PlatformPre<CallState>,
    engine: Engine,
    fuel_yield_interval: u64,
    next_call: Arc<AtomicU64>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.shared.manifest.name)
            .field("origin", &self.shared.origin)
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// The manifest's name.
    pub fn name(&self) -> &str {
        &self.shared.manifest.name
    }

    /// The checked manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.shared.manifest
    }

    /// The limits each call runs under.
    pub fn limits(&self) -> &PluginLimits {
        &self.shared.limits
    }

    fn runner(&self) -> (Runner, u64) {
        let runner = Runner {
            shared: self.shared.clone(),
            engine: self.engine.clone(),
            fuel_yield_interval: self.fuel_yield_interval,
        };
        (runner, self.next_call.fetch_add(1, Ordering::Relaxed))
    }

    /// Performs one action.
    pub async fn invoke(&self, inv: &Invocation) -> Result<InvokeOutcome, CallError<PluginError>> {
        if self.shared.manifest.action(&inv.action).is_none() {
            return Err(HostError::UnknownAction {
                plugin: self.name().to_owned(),
                action: inv.action.clone(),
            }
            .into());
        }
        let wit_inv =
            call::invocation_in(inv, &mut SizeCap::input(self.shared.limits.max_input_bytes))?;
        let (runner, id) = self.runner();
        let mut store = runner.store(id, Some(inv.account.id.clone()), Phase::Call)?;
        let result = tokio::time::timeout(runner.shared.limits.timeout, async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            instance
                .sop_plugin_plugin()
                .call_invoke(&mut store, &wit_inv)
                .await
        })
        .await;
        let mut cap = SizeCap::output(self.shared.limits.max_output_bytes);
        match runner.finish(result, &mut store)? {
            Ok(outcome) => Ok(call::invoke_outcome_out(outcome, &mut cap)?),
            Err(e) => Err(CallError::Plugin(call::plugin_error_out(e, &mut cap)?)),
        }
    }

    /// Asks about an action's outcome (a pending handle, or an idempotency key after a crash).
    pub async fn check_outcome(
        &self,
        account: &Account,
        action: &str,
        idempotency_key: &str,
        handle: Option<&str>,
    ) -> Result<OutcomeStatus, CallError<PluginError>> {
        if self.shared.manifest.action(action).is_none() {
            return Err(HostError::UnknownAction {
                plugin: self.name().to_owned(),
                action: action.to_owned(),
            }
            .into());
        }
        let mut input = SizeCap::input(self.shared.limits.max_input_bytes);
        input.add(idempotency_key.len() + handle.map_or(0, str::len))?;
        let wit_account = call::account_in(account, &mut input)?;
        let handle = handle.map(str::to_owned);
        let (runner, id) = self.runner();
        let mut store = runner.store(id, Some(account.id.clone()), Phase::Call)?;
        let result = tokio::time::timeout(runner.shared.limits.timeout, async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            instance
                .sop_plugin_plugin()
                .call_check_outcome(
                    &mut store,
                    &wit_account,
                    action,
                    idempotency_key,
                    handle.as_deref(),
                )
                .await
        })
        .await;
        let mut cap = SizeCap::output(self.shared.limits.max_output_bytes);
        match runner.finish(result, &mut store)? {
            Ok(status) => Ok(call::outcome_status_out(status, &mut cap)?),
            Err(e) => Err(CallError::Plugin(call::plugin_error_out(e, &mut cap)?)),
        }
    }

    /// Verifies and translates one webhook request.
    pub async fn parse_webhook(
        &self,
        account: &Account,
        request: &WebhookRequest,
    ) -> Result<WebhookOutcome, CallError<WebhookError>> {
        let mut input = SizeCap::input(self.shared.limits.max_input_bytes);
        let wit_account = call::account_in(account, &mut input)?;
        let wit_request = call::webhook_in(request, &mut input)?;
        let (runner, id) = self.runner();
        let mut store = runner.store(id, Some(account.id.clone()), Phase::Call)?;
        let result = tokio::time::timeout(runner.shared.limits.timeout, async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            instance
                .sop_plugin_plugin()
                .call_parse_webhook(&mut store, &wit_account, &wit_request)
                .await
        })
        .await;
        let mut cap = SizeCap::output(self.shared.limits.max_output_bytes);
        let kinds: Vec<String> = self
            .shared
            .manifest
            .events
            .iter()
            .map(|e| e.kind.clone())
            .collect();
        match runner.finish(result, &mut store)? {
            Ok(outcome) => Ok(call::webhook_outcome_out(outcome, &kinds, &mut cap)?),
            Err(e) => Err(CallError::Plugin(call::webhook_error_out(e, &mut cap)?)),
        }
    }
}

/// Builds the store of one call and turns its end into a `HostError` when it failed.
struct Runner {
    shared: Arc<PluginShared>,
    engine: Engine,
    fuel_yield_interval: u64,
}

impl Runner {
    fn store(
        &self,
        id: u64,
        account: Option<String>,
        phase: Phase,
    ) -> Result<Store<CallState>, HostError> {
        let limits = &self.shared.limits;
        let deadline = Instant::now() + limits.timeout;
        let state = CallState::new(self.shared.clone(), id, account, phase, deadline);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        let setup = |e: wasmtime::Error| HostError::Instantiate(format!("{e:#}"));
        store.set_fuel(limits.fuel).map_err(setup)?;
        store
            .fuel_async_yield_interval(Some(self.fuel_yield_interval))
            .map_err(setup)?;
        Ok(store)
    }

    fn finish<R>(
        &self,
        result: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
        store: &mut Store<CallState>,
    ) -> Result<R, HostError> {
        let limits = &self.shared.limits;
        let err = match result {
            Err(_) => {
                return Err(HostError::Timeout {
                    timeout_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
                });
            }
            Ok(Ok(r)) => return Ok(r),
            Ok(Err(e)) => e,
        };
        let state = store.data_mut();
        let host_error = if state.memory.exceeded {
            HostError::MemoryLimit {
                limit_bytes: state.memory.limit,
            }
        } else if let Some(reason) = state.import_failure.take() {
            HostError::Import(reason)
        } else if matches!(err.downcast_ref::<Trap>(), Some(Trap::OutOfFuel)) {
            HostError::OutOfFuel { fuel: limits.fuel }
        } else if err.downcast_ref::<Trap>().is_some() {
            HostError::Trap(short(&format!("{err:#}")))
        } else {
            // Not a trap: instantiation refused (pool exhausted) or a link-time problem.
            HostError::Instantiate(short(&format!("{err:#}")))
        };
        tracing::warn!(plugin = self.shared.manifest_name(), error = %host_error, "plugin call failed");
        Err(host_error)
    }
}

fn short(s: &str) -> String {
    const MAX: usize = 2048;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
