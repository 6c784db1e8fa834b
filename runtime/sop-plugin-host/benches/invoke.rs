//! Cost of one trivial plugin call: fresh store + instantiate + `invoke("echo")` + drop.
//!
//! `cargo bench -p sop-plugin-host --bench invoke` prints the median and p99 in µs.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use sop_plugin_host::{Account, HostConfig, HostServices, Invocation, PluginHost};

const WARMUP: usize = 2_000;
const ITERATIONS: usize = 20_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let mut config = HostConfig::default();
        // `SOP_BENCH_KEEP_RESIDENT=<bytes>` sweeps the pool's keep-resident size.
        if let Some(bytes) = std::env::var("SOP_BENCH_KEEP_RESIDENT")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config.keep_resident_bytes = bytes;
        }
        let host = PluginHost::new(config.clone(), HostServices::default()).expect("engine");
        let path = support::guests::guest_wasm("good");
        let plugin = host
            .load_file(&path, &BTreeMap::new())
            .await
            .expect("load good guest");
        let call = Invocation {
            action: "echo".into(),
            account: Account {
                id: "bench".into(),
                config: json!({}),
            },
            input: json!({}),
            idempotency_key: "bench".into(),
        };
        for _ in 0..WARMUP {
            plugin.invoke(&call).await.expect("echo");
        }
        let mut samples: Vec<Duration> = Vec::with_capacity(ITERATIONS);
        for _ in 0..ITERATIONS {
            let start = Instant::now();
            let out = plugin.invoke(&call).await;
            samples.push(start.elapsed());
            out.expect("echo");
        }
        samples.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let median = us(samples[samples.len() / 2]);
        let p99 = us(samples[samples.len() * 99 / 100]);
        let mean = us(samples.iter().sum::<Duration>()) / samples.len() as f64;
        println!(
            "plugin invoke (instantiate + call + drop), {ITERATIONS} iterations, \
             keep_resident {} KiB: median {median:.1} µs, p99 {p99:.1} µs, mean {mean:.1} µs",
            config.keep_resident_bytes >> 10
        );
    });
}
