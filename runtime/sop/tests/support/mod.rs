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

/// Shared state over `plugins` and a fresh in-memory store.
pub fn shared(plugins: Arc<HostPlugins>) -> (Shared, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = Arc::new(sop_clock::VirtualClock::new(
        "2026-03-02T02:00:00Z".parse().unwrap(),
    ));
    let runtime = Runtime::new(RuntimeDeps {
        store: store.clone(),
        clock,
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
    });
    (shared, store)
}

/// The directory holding the bundled plugins built for wasm32-wasip2 (built once per test
/// process, beside the caller's target dir so that CI caches it; the same dir as the plugin
/// host's tests, so a CI run builds the plugins once).
pub fn plugin_dir() -> PathBuf {
    use std::sync::OnceLock;
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
            let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
                Some(dir) => PathBuf::from(dir).join("sop-plugin-host-platforms"),
                None => root.join("target/sop-plugin-host-platforms"),
            };
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let out = std::process::Command::new(cargo)
                .current_dir(&root)
                .args([
                    "build",
                    "--release",
                    "--locked",
                    "--target",
                    "wasm32-wasip2",
                ])
                .args(["-p", "sop-plugin-wecom", "-p", "sop-plugin-douyin"])
                .env("CARGO_TARGET_DIR", &target_dir)
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .env_remove("CARGO_BUILD_TARGET")
                .output()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "building the plugins failed (rustup target add wasm32-wasip2?):\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok(target_dir.join("wasm32-wasip2/release"))
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}
