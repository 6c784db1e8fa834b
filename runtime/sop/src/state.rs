//! What the HTTP servers share: the runtime, the plugins, the gate, the tokens and limits
//! (swappable on reload), and readiness.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use metrics_exporter_prometheus::PrometheusHandle;
use sop_clock::VirtualClock;
use sop_runtime::Runtime;

use crate::config::{AdminConfig, IngressConfig};
use crate::plugins::HostPlugins;
use crate::secret::Secret;
use crate::storage::StorageHealth;

/// Admin API tokens in force.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// Read-only scope.
    pub read: Option<Secret>,
    /// Admin scope (also reads).
    pub admin: Option<Secret>,
}

/// Settings that a reload may change without a restart.
#[derive(Debug, Clone)]
pub struct Live {
    /// Admin tokens.
    pub tokens: Tokens,
    /// Ingress limits (the body limit itself is fixed when the router is built).
    pub ingress: IngressConfig,
    /// Admin limits.
    pub admin: AdminConfig,
}

/// Shared by the ingress and admin servers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shared {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    runtime: Runtime,
    plugins: Arc<HostPlugins>,
    gate: Option<Arc<sop_policy::Gate>>,
    live: RwLock<Live>,
    ready: AtomicBool,
    storage: StorageHealth,
    metrics: Option<PrometheusHandle>,
    reload: Option<tokio::sync::mpsc::Sender<ReloadRequest>>,
    manual_clock: Option<VirtualClock>,
}

/// A reload asked over the admin API; the answer says what happened.
#[derive(Debug)]
pub struct ReloadRequest {
    /// Where to send the outcome (a summary, or why nothing changed).
    pub reply: tokio::sync::oneshot::Sender<Result<serde_json::Value, String>>,
}

/// Parts of [`Shared`].
#[derive(Debug)]
pub struct Parts {
    /// The runtime (writes; its store serves the reads).
    pub runtime: Runtime,
    /// The plugins (webhook parsing, catalog).
    pub plugins: Arc<HostPlugins>,
    /// The policy gate, for its snapshot; none when the runtime runs without one.
    pub gate: Option<Arc<sop_policy::Gate>>,
    /// Reloadable settings.
    pub live: Live,
    /// The Prometheus exporter's handle, when metrics are installed.
    pub metrics: Option<PrometheusHandle>,
    /// Where `POST /api/reload` sends its request; none: reloads are refused.
    pub reload: Option<tokio::sync::mpsc::Sender<ReloadRequest>>,
    /// Whether the runtime's store takes writes (the same health its
    /// [`WatchedStore`](crate::storage::WatchedStore) reports to, if it has one).
    pub storage: StorageHealth,
    /// The clock the runtime reads when the daemon runs on a manual clock (`--manual-clock`,
    /// tests and simulations only); moved by `POST /api/clock`. None: the system clock.
    pub manual_clock: Option<VirtualClock>,
}

impl Shared {
    /// Builds the shared state; not ready until [`set_ready`](Self::set_ready).
    pub fn new(parts: Parts) -> Self {
        Shared {
            inner: Arc::new(Inner {
                runtime: parts.runtime,
                plugins: parts.plugins,
                gate: parts.gate,
                live: RwLock::new(parts.live),
                ready: AtomicBool::new(false),
                storage: parts.storage,
                metrics: parts.metrics,
                reload: parts.reload,
                manual_clock: parts.manual_clock,
            }),
        }
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// The plugins.
    pub fn plugins(&self) -> &Arc<HostPlugins> {
        &self.inner.plugins
    }

    /// The policy gate, if any.
    pub fn gate(&self) -> Option<&Arc<sop_policy::Gate>> {
        self.inner.gate.as_ref()
    }

    /// The reloadable settings now.
    pub fn live(&self) -> Live {
        self.inner
            .live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the reloadable settings.
    pub fn set_live(&self, live: Live) {
        *self.inner.live.write().unwrap_or_else(|e| e.into_inner()) = live;
    }

    /// Whether the daemon serves traffic (recovery done, playbooks deployed, not stopping,
    /// the store takes writes).
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire) && self.inner.storage.is_writable()
    }

    /// Whether the store takes writes, and why not.
    pub fn storage(&self) -> &StorageHealth {
        &self.inner.storage
    }

    /// Marks the daemon ready or not.
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Release);
    }

    /// The Prometheus handle.
    pub fn metrics(&self) -> Option<&PrometheusHandle> {
        self.inner.metrics.as_ref()
    }

    /// The manual clock, when the daemon runs on one.
    pub fn manual_clock(&self) -> Option<&VirtualClock> {
        self.inner.manual_clock.as_ref()
    }

    /// The reload channel.
    pub fn reloader(&self) -> Option<&tokio::sync::mpsc::Sender<ReloadRequest>> {
        self.inner.reload.as_ref()
    }
}
