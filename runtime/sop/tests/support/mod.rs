//! Shared test wiring: a runtime over the in-memory store on a virtual clock, behind the
//! daemon's shared state.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use sop::config::{AdminConfig, IngressConfig};
use sop::plugins::HostPlugins;
use sop::secret::Secret;
use sop::state::{Live, Parts, Shared, Tokens};
use sop_runtime::{PassThrough, Runtime, RuntimeConfig, RuntimeDeps};
use sop_store::{MemoryStore, Store};

pub const READ: &str = "read-token-for-tests";
pub const ADMIN: &str = "admin-token-for-tests";

/// The bundled manifests (`playbooks/plugins`) as a catalog.
pub fn bundled_catalog() -> sop_dsl::Catalog {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/plugins");
    sop_dsl::Catalog::load_dir(&dir).unwrap()
}

/// Plugins without components: the bundled manifests only.
pub fn manifest_plugins() -> Arc<HostPlugins> {
    Arc::new(HostPlugins::from_parts(BTreeMap::new(), bundled_catalog(), BTreeMap::new()).unwrap())
}

/// Shared state over `plugins` and a fresh in-memory store, the runtime on a virtual clock
/// that the admin API does not know about (as if on the system clock).
pub fn shared(plugins: Arc<HostPlugins>) -> (Shared, Arc<dyn Store>) {
    shared_on(plugins, None)
}

/// [`shared`], the runtime on `manual` when given (the daemon's `--manual-clock`), moved by
/// `POST /api/clock`.
pub fn shared_on(
    plugins: Arc<HostPlugins>,
    manual: Option<sop_clock::VirtualClock>,
) -> (Shared, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = manual
        .clone()
        .unwrap_or_else(|| sop_clock::VirtualClock::new("2026-03-02T02:00:00Z".parse().unwrap()));
    let runtime = Runtime::new(RuntimeDeps {
        store: store.clone(),
        clock: Arc::new(clock),
        plugins: plugins.clone(),
        gate: Arc::new(PassThrough),
        config: RuntimeConfig::default(),
    })
    .unwrap();
    let shared = Shared::new(Parts {
        runtime,
        plugins,
        gate: None,
        live: Live {
            tokens: Tokens {
                read: Some(Secret::new(READ)),
                admin: Some(Secret::new(ADMIN)),
            },
            ingress: IngressConfig::default(),
            admin: AdminConfig::default(),
        },
        metrics: None,
        reload: None,
        manual_clock: manual,
    });
    (shared, store)
}

/// The directory holding the bundled plugins built for wasm32-wasip2 (built once per test
/// process by the end-to-end harness, in the same dir as the plugin host's tests use).
pub fn plugin_dir() -> PathBuf {
    sop_harness::plugin_dir().to_owned()
}
