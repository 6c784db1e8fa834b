//! `sop run`: wires the store, the plugin host, the policy gate and the runtime, serves the
//! ingress and the admin API, reloads on SIGHUP (or `POST /api/reload`) and shuts down
//! gracefully on SIGTERM/SIGINT.
//!
//! Start-up order: config → data-dir lock → store → plugins → gate → runtime → playbooks
//! deployed → listeners bound → runtime serving → ready. Shutdown: not ready → ingress stops
//! accepting and finishes its requests → runtime parks and flushes → admin stops → lock freed.

use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use sop_clock::{Clock, SystemClock, VirtualClock};
use sop_plugin_host::{HostServices, PluginHost};
use sop_runtime::{PlaybookSource, Plugins, Runtime, RuntimeDeps, RuntimeError};
use sop_store::Store;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::lock::DataDirLock;
use crate::plugins::HostPlugins;
use crate::state::{Live, Parts, ReloadRequest, Shared, Tokens};
use crate::storage::{StorageHealth, WatchedStore};

/// How often an unwritable store is probed with a small write.
const STORE_PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// A running daemon's pieces, for `run` and for tests that drive it in-process.
#[derive(Debug)]
pub struct Daemon {
    /// The shared state the servers use.
    pub shared: Shared,
    /// The configuration in force.
    pub config: Config,
    /// Reload requests from the admin API.
    pub reloads: mpsc::Receiver<ReloadRequest>,
    _lock: DataDirLock,
}

/// Why the daemon could not start.
pub type StartError = String;

impl Daemon {
    /// Builds everything up to (not including) the listeners: lock, store, plugins, gate,
    /// runtime, deployed playbooks. `metrics` is the installed exporter, if any.
    /// `manual_clock`: run on this clock instead of the system clock (tests and simulations
    /// only); the runtime, the gate and the plugins all read it, `POST /api/clock` moves it.
    pub async fn build(
        config: Config,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
        manual_clock: Option<VirtualClock>,
    ) -> Result<Daemon, StartError> {
        let lock = DataDirLock::acquire(&config.file.data_dir)?;
        let store_dir = config.file.data_dir.join("store");
        let sled: Arc<dyn Store> = Arc::new(
            sop_store_sled::open(&store_dir, &config.file.storage.sled_options())
                .map_err(|e| format!("cannot open the store in {}: {e}", store_dir.display()))?,
        );
        let storage = StorageHealth::default();
        let store: Arc<dyn Store> = Arc::new(WatchedStore::with_hook(sled, storage.clone()));
        let clock: Arc<dyn Clock> = match &manual_clock {
            Some(manual) => {
                tracing::warn!(now = %manual.now(), "running on a manual clock (tests and simulations only)");
                Arc::new(manual.clone())
            }
            None => Arc::new(SystemClock),
        };
        // Plugins read the same time (token expiry, signatures) as the runtime, and keep their
        // key-value data in the store, so it survives a restart.
        let services = HostServices {
            clock: clock.clone(),
            kv: Arc::new(crate::plugin_kv::StoreKv::new(store.clone())),
            ..HostServices::default()
        };
        let host = PluginHost::new(config.file.plugins.host.clone(), services)
            .map_err(|e| format!("cannot start the plugin host: {e:#}"))?;
        let plugins = Arc::new(
            HostPlugins::load(&host, &config)
                .await
                .map_err(|e| e.to_string())?,
        );
        let gate = Arc::new(
            sop_policy::Gate::new(config.file.policy.clone(), plugins.catalog(), clock.clone())
                .map_err(|e| format!("policy: {e}"))?,
        );
        let runtime = Runtime::new(RuntimeDeps {
            store,
            clock,
            plugins: plugins.clone(),
            gate: gate.clone(),
            config: config.file.runtime.clone(),
        })
        .map_err(|e| format!("runtime: {e}"))?;
        let sources = read_playbooks(&config)?;
        let report = runtime
            .deploy(sources)
            .map_err(|e| format!("playbooks in {}: {e}", config.file.playbooks.display()))?;
        tracing::info!(
            playbooks = report.playbooks.len(),
            plugins = ?plugins.loaded().collect::<Vec<_>>(),
            "deployed"
        );
        let (reload_tx, reloads) = mpsc::channel(4);
        let shared = Shared::new(Parts {
            runtime,
            plugins,
            gate: Some(gate),
            live: live(&config),
            metrics,
            reload: Some(reload_tx),
            storage,
            manual_clock,
        });
        Ok(Daemon {
            shared,
            config,
            reloads,
            _lock: lock,
        })
    }

    /// Serves until SIGTERM/SIGINT (or `stop` resolves, for tests), reloading on SIGHUP.
    pub async fn serve(
        mut self,
        stop: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), StartError> {
        let listen = self.config.file.listen.clone();
        let ingress_listener = TcpListener::bind(listen.ingress)
            .await
            .map_err(|e| format!("listen.ingress {}: {e}", listen.ingress))?;
        let admin_listener = TcpListener::bind(listen.admin)
            .await
            .map_err(|e| format!("listen.admin {}: {e}", listen.admin))?;
        let shared = self.shared.clone();
        let ingress_app =
            crate::ingress::router(shared.clone(), self.config.file.ingress.max_body_bytes);
        let admin_app = crate::admin::router(shared.clone(), self.config.file.admin.max_body_bytes)
            .merge(crate::observability::router(shared.clone()));

        let (stop_ingress, ingress_stopped) = watch::channel(false);
        let (stop_runtime, runtime_stopped) = watch::channel(false);
        let (stop_admin, admin_stopped) = watch::channel(false);
        let ingress = tokio::spawn(
            axum::serve(ingress_listener, ingress_app)
                .with_graceful_shutdown(wait_true(ingress_stopped))
                .into_future(),
        );
        let admin = tokio::spawn(
            axum::serve(admin_listener, admin_app)
                .with_graceful_shutdown(wait_true(admin_stopped))
                .into_future(),
        );
        let mut serving = tokio::spawn(serve_runtime(
            shared.runtime().clone(),
            shared.storage().clone(),
            runtime_stopped,
        ));
        let probing = tokio::spawn(crate::storage::watch(
            shared.runtime().store().clone(),
            shared.storage().clone(),
            Arc::new(SystemClock),
            STORE_PROBE_EVERY,
        ));
        shared.set_ready(true);
        metrics::gauge!("sop_ready").set(1.0);
        metrics::gauge!("sop_store_writable").set(1.0);
        tracing::info!(ingress = %listen.ingress, admin = %listen.admin, "sop is serving");
        // The start-up's scratch (plugin compilation, deployment) is free by now.
        crate::memory::release_free();

        let mut hangup = signal(tokio::signal::unix::SignalKind::hangup())?;
        let mut terminate = signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut interrupt = signal(tokio::signal::unix::SignalKind::interrupt())?;
        tokio::pin!(stop);
        let mut runtime_result = None;
        loop {
            tokio::select! {
                _ = hangup.recv() => {
                    match self.reload() {
                        Ok(summary) => tracing::info!(%summary, "reloaded on SIGHUP"),
                        Err(why) => tracing::error!(%why, "reload refused; the old configuration stays"),
                    }
                }
                Some(request) = self.reloads.recv() => {
                    let _ = request.reply.send(self.reload());
                }
                _ = terminate.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
                _ = interrupt.recv() => { tracing::info!("SIGINT: shutting down"); break; }
                () = &mut stop => { tracing::info!("stop requested: shutting down"); break; }
                result = &mut serving => {
                    // The runtime stopped by itself: that is fatal.
                    runtime_result = Some(result);
                    break;
                }
            }
        }
        shared.set_ready(false);
        metrics::gauge!("sop_ready").set(0.0);
        // Ingress first: in-flight callbacks finish committing, new ones are refused.
        let _ = stop_ingress.send(true);
        log_join("ingress", ingress.await);
        let _ = stop_runtime.send(true);
        let result = match runtime_result {
            Some(r) => r,
            None => serving.await,
        };
        probing.abort();
        let _ = stop_admin.send(true);
        log_join("admin", admin.await);
        let flushed = shared.runtime().store().flush();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("runtime stopped: {e}")),
            Err(e) => return Err(format!("runtime task failed: {e}")),
        }
        flushed.map_err(|e| format!("final store flush: {e}"))?;
        tracing::info!("sop stopped");
        Ok(())
    }

    /// Re-reads the configuration and the playbooks; validates everything first and keeps
    /// the old on any error. Tokens, ingress timeout and playbooks change at once; settings
    /// that need a restart are named in the summary.
    pub fn reload(&mut self) -> Result<Value, String> {
        let new = Config::load(&self.config.path).map_err(|e| e.to_string())?;
        let needs_restart = restart_only_changes(&self.config, &new);
        let sources = read_playbooks(&new)?;
        for s in &sources {
            if !self.shared.plugins().accounts().contains_key(&s.account) {
                return Err(format!(
                    "{}: account {} is new; adding accounts needs a restart",
                    s.origin, s.account
                ));
            }
        }
        let report = self
            .shared
            .runtime()
            .deploy(sources)
            .map_err(|e| e.to_string())?;
        self.shared.set_live(live(&new));
        // Keep the settings in force for what did not change live.
        let mut kept = self.config.clone();
        kept.file.playbooks = new.file.playbooks.clone();
        kept.file.ingress = new.file.ingress.clone();
        kept.file.admin = new.file.admin.clone();
        kept.read_token = new.read_token.clone();
        kept.admin_token = new.admin_token.clone();
        self.config = kept;
        metrics::counter!("sop_reloads_total").increment(1);
        crate::memory::release_free();
        Ok(json!({
            "deployed": crate::admin::deploy_json(&report)["playbooks"],
            "needs_restart": needs_restart,
        }))
    }
}

/// The reloadable part of a configuration.
fn live(config: &Config) -> Live {
    Live {
        tokens: Tokens {
            read: config.read_token.clone(),
            admin: config.admin_token.clone(),
        },
        ingress: config.file.ingress.clone(),
        admin: config.file.admin.clone(),
    }
}

/// Keys whose change only a restart applies.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&old.file, &new.file);
    let mut out = Vec::new();
    let dbg = |x: &dyn std::fmt::Debug| format!("{x:?}");
    if a.data_dir != b.data_dir {
        out.push("data_dir");
    }
    if a.listen.ingress != b.listen.ingress || a.listen.admin != b.listen.admin {
        out.push("listen");
    }
    if a.ingress.max_body_bytes != b.ingress.max_body_bytes
        || a.admin.max_body_bytes != b.admin.max_body_bytes
    {
        out.push("max_body_bytes");
    }
    if dbg(&a.plugins) != dbg(&b.plugins) || a.plugin != b.plugin {
        out.push("plugins");
    }
    if a.policy != b.policy {
        out.push("policy");
    }
    if dbg(&a.runtime) != dbg(&b.runtime) {
        out.push("runtime");
    }
    if a.storage.cache_mib != b.storage.cache_mib {
        out.push("storage");
    }
    // Compared without printing: account JSON holds credentials.
    let accounts = |c: &Config| -> BTreeMap<String, (String, String, Value)> {
        c.accounts
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    (v.tenant.clone(), v.plugin.clone(), v.config.clone()),
                )
            })
            .collect()
    };
    if accounts(old) != accounts(new) {
        out.push("tenants.*.accounts");
    }
    out
}

/// Every playbook file in the configured directory, with the tenant and account it runs for.
/// All problems are reported together.
pub fn read_playbooks(config: &Config) -> Result<Vec<PlaybookSource>, String> {
    let dir = &config.file.playbooks;
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("playbooks directory {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    let mut sources = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        let origin = path.display().to_string();
        let source = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("{origin}: {e}"));
                continue;
            }
        };
        // Only the id and tenant are needed here; the runtime checks the playbook fully.
        let loaded = sop_dsl::load(&source, None);
        let pb = &loaded.playbook;
        if pb.id.is_empty() {
            problems.push(format!("{origin}: not a playbook (no id)"));
            continue;
        }
        match config.playbook_account(&pb.id, pb.tenant.as_deref()) {
            Ok((tenant, account)) => sources.push(PlaybookSource {
                origin,
                source,
                tenant,
                account,
            }),
            Err(e) => problems.push(format!("{origin}: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(sources)
    } else {
        Err(format!("playbooks:\n  - {}", problems.join("\n  - ")))
    }
}

/// Serves the runtime. Whenever the store stops taking writes, the runtime stops too (if
/// its own write failed, it already has), waits until the store takes writes again (see
/// [`crate::storage::watch`]) and serves again: recovery runs once more from what the store
/// holds. That matters even when the failed write was not the runtime's: a commit reported
/// failed may still have reached the disk (its flush failed, not its write), and the store
/// reopened after the outage holds what the disk holds, so a run that only recovery knows
/// about is picked up. Other errors end it.
pub async fn serve_runtime(
    runtime: Runtime,
    storage: StorageHealth,
    stop: watch::Receiver<bool>,
) -> Result<(), RuntimeError> {
    loop {
        let outage = storage.outage_after(storage.outages());
        let result = runtime
            .serve(async {
                tokio::select! {
                    () = wait_true(stop.clone()) => {}
                    () = outage => {}
                }
            })
            .await;
        let stopping = *stop.borrow();
        // A write fault here was already noted by the store's watch, and the probe may have
        // seen a successful write since: noting it again would mark a store that takes
        // writes as failed until the next probe.
        let why = match result {
            Err(RuntimeError::Store(e)) if e.is_write_fault() => e.to_string(),
            Ok(()) if !stopping => storage.problem().unwrap_or_default(),
            other => return other,
        };
        if stopping {
            return Ok(());
        }
        tracing::error!(
            error = %why,
            "the runtime is paused: the store cannot be written; it restarts from the store once it can"
        );
        tokio::select! {
            () = storage.writable() => {
                tracing::info!("the store takes writes again: the runtime restarts from it");
            }
            () = wait_true(stop.clone()) => return Ok(()),
        }
    }
}

fn signal(
    kind: tokio::signal::unix::SignalKind,
) -> Result<tokio::signal::unix::Signal, StartError> {
    tokio::signal::unix::signal(kind).map_err(|e| format!("cannot handle signals: {e}"))
}

async fn wait_true(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

fn log_join(what: &str, r: Result<std::io::Result<()>, tokio::task::JoinError>) {
    match r {
        Ok(Ok(())) => tracing::info!(server = what, "stopped"),
        Ok(Err(e)) => tracing::error!(server = what, error = %e, "server failed"),
        Err(e) => tracing::error!(server = what, error = %e, "server task failed"),
    }
}

/// Loads the configuration, installs logging and metrics, builds and serves the daemon
/// (on a manual clock when given one; see [`Daemon::build`]).
pub async fn run(config_path: &Path, manual_clock: Option<VirtualClock>) -> Result<(), StartError> {
    let config = Config::load(config_path).map_err(|e| e.to_string())?;
    let metrics = crate::observability::install_metrics()?;
    let daemon = Daemon::build(config, Some(metrics), manual_clock).await?;
    daemon.serve(std::future::pending()).await
}
