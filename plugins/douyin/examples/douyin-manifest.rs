//! Prints the Douyin plugin's manifest as JSON, for `sop validate --plugins <dir>`:
//! `cargo run -q -p sop-plugin-douyin --example douyin-manifest > manifests/douyin.json`

use sop_plugin_sdk::Plugin;

fn main() {
    let manifest = sop_plugin_sdk::manifest::to_json(&sop_plugin_douyin::Douyin::describe());
    println!("{manifest:#}");
}
