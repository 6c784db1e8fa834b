//! `playbooks/plugins/*.json`, which `sop validate --plugins` and the playbook tests use, are
//! exactly what the WeCom, Douyin and shop plugins describe. Regenerate with
//! `cargo run -q -p sop-plugin-wecom --example wecom-manifest > playbooks/plugins/wecom.json`.

use std::path::PathBuf;

use sop_plugin_sdk::Plugin;

fn committed(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../playbooks/plugins/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn wecom_manifest_is_current() {
    let described = sop_plugin_sdk::manifest::to_json(&sop_plugin_wecom::WeCom::describe());
    assert!(
        committed("wecom") == described,
        "playbooks/plugins/wecom.json is stale"
    );
}

#[test]
fn douyin_manifest_is_current() {
    let described = sop_plugin_sdk::manifest::to_json(&sop_plugin_douyin::Douyin::describe());
    assert!(
        committed("douyin") == described,
        "playbooks/plugins/douyin.json is stale"
    );
}

#[test]
fn shop_manifest_is_current() {
    let described = sop_plugin_sdk::manifest::to_json(&sop_plugin_shop::Shop::describe());
    assert!(
        committed("shop") == described,
        "playbooks/plugins/shop.json is stale: cargo run -q -p sop-plugin-shop --example \
         shop-manifest > playbooks/plugins/shop.json"
    );
}

#[test]
fn bundled_manifests_load_as_a_catalog() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/plugins");
    let catalog = sop_dsl::Catalog::load_dir(&dir).unwrap();
    let names: Vec<&str> = catalog.plugins.keys().map(String::as_str).collect();
    assert_eq!(names, ["douyin", "shop", "wecom"]);
}
