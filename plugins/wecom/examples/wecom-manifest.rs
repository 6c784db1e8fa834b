//! Prints the WeCom plugin's manifest as JSON, for `sop validate --plugins <dir>`:
//! `cargo run -q -p sop-plugin-wecom --example wecom-manifest > manifests/wecom.json`

use sop_plugin_sdk::Plugin;

fn main() {
    let manifest = sop_plugin_sdk::manifest::to_json(&sop_plugin_wecom::WeCom::describe());
    println!("{manifest:#}");
}
