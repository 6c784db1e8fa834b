//! Host set-up shared by the integration tests.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sop_clock::{DateTime, VirtualClock};
use sop_plugin_host::{
    Account, HostConfig, HostServices, Invocation, MemoryKv, NetworkConfig, Plugin, PluginHost,
    PluginLimits, PluginSettings, StaticResolver,
};

use super::guests::guest_wasm;

pub const START_MS: i64 = 1_700_000_000_000;

pub struct Fixture {
    pub host: PluginHost,
    pub clock: Arc<VirtualClock>,
}

/// Names the hostile guest calls, mapped to forbidden addresses as a malicious DNS would.
pub fn resolver() -> StaticResolver {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    StaticResolver::new()
        .with("metadata.hostile.example", &[ip("169.254.169.254")])
        .with("intranet.hostile.example", &[ip("10.0.0.1")])
        .with("loop6.hostile.example", &[ip("::1")])
        .with("mapped.hostile.example", &[ip("::ffff:127.0.0.1")])
}

pub fn fixture() -> Fixture {
    let start = DateTime::from_timestamp_millis(START_MS).expect("start time");
    let clock = Arc::new(VirtualClock::new(start));
    let services = HostServices {
        kv: Arc::new(MemoryKv::new()),
        clock: clock.clone(),
        resolver: Arc::new(resolver()),
    };
    let config = HostConfig {
        max_concurrent_calls: 16,
        ..HostConfig::default()
    };
    Fixture {
        host: PluginHost::new(config, services).expect("engine starts"),
        clock,
    }
}

/// Settings that re-point `host` to a loopback base URL, with loopback explicitly allowed.
pub fn repointed(host: &str, base: &str, limits: PluginLimits) -> PluginSettings {
    PluginSettings {
        limits,
        network: NetworkConfig {
            allow_hosts: None,
            repoint: [(host.to_owned(), base.to_owned())].into(),
            allow_private: vec!["127.0.0.1/32".parse().unwrap()],
        },
    }
}

pub async fn load(f: &Fixture, guest: &str, settings: Option<PluginSettings>) -> Plugin {
    let mut map = BTreeMap::new();
    if let Some(s) = settings {
        map.insert(guest.to_owned(), s);
    }
    f.host
        .load_file(&guest_wasm(guest), &map)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `guest` loaded with its API host `api.{guest}.example` re-pointed to `base`, quick limits.
pub async fn load_repointed(f: &Fixture, guest: &str, base: &str) -> Plugin {
    let settings = repointed(&format!("api.{guest}.example"), base, quick_limits());
    load(f, guest, Some(settings)).await
}

pub fn call(action: &str, input: Value) -> Invocation {
    Invocation {
        action: action.into(),
        account: account(),
        input,
        idempotency_key: format!("run-1/{action}"),
    }
}

pub fn account() -> Account {
    Account {
        id: "corp-a".into(),
        config: json!({ "secret": "never-logged" }),
    }
}

pub fn quick_limits() -> PluginLimits {
    PluginLimits {
        timeout: Duration::from_secs(10),
        ..PluginLimits::default()
    }
}
