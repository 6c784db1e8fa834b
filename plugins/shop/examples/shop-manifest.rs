//! Prints the shop plugin's manifest as JSON, for `sop validate --plugins <dir>`:
//! `cargo run -q -p sop-plugin-shop --example shop-manifest > playbooks/plugins/shop.json`

use sop_plugin_sdk::Plugin;

fn main() {
    let manifest = sop_plugin_sdk::manifest::to_json(&sop_plugin_shop::Shop::describe());
    println!("{manifest:#}");
}
