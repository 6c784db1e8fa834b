//! `sop validate --plugins DIR` with compiled plugins: the real WeCom and Douyin components
//! (built from source for wasm32-wasip2, as the plugin host's tests build them) stand in for
//! their JSON manifests, and a file that is not a plugin component is a clear error.

// The plugin host's test support builds the platform plugins into a target dir of its own;
// sharing the file shares that build too.
#[allow(dead_code)]
#[path = "../../sop-plugin-host/tests/support/guests.rs"]
mod guests;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sop"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("sop runs")
}

/// A fresh directory for one test's plugins, removed when dropped.
struct PluginDir(PathBuf);

impl PluginDir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sop-validate-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn copy(&self, from: &Path, name: &str) -> PathBuf {
        let to = self.0.join(name);
        std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        to
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for PluginDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The directory with the compiled WeCom and Douyin plugins and the shop's JSON manifest.
fn compiled_plugins(test: &str) -> PluginDir {
    let dir = PluginDir::new(test);
    dir.copy(&guests::platform_wasm("wecom"), "wecom.wasm");
    dir.copy(&guests::platform_wasm("douyin"), "douyin.wasm");
    dir.copy(&root().join("playbooks/plugins/shop.json"), "shop.json");
    dir
}

#[test]
fn compiled_plugins_stand_in_for_their_manifests() {
    let dir = compiled_plugins("compiled");
    let out = sop(&["validate", "--plugins", dir.path(), "playbooks"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("7 file(s) checked: 0 error(s), 0 warning(s)"),
        "{stderr}"
    );

    // Without the components the same playbooks name plugins nobody provides: the
    // components, not something else, supplied WeCom's and Douyin's actions and events.
    let json_only = PluginDir::new("json-only");
    json_only.copy(&root().join("playbooks/plugins/shop.json"), "shop.json");
    let out = sop(&["validate", "--plugins", json_only.path(), "playbooks"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("wecom"), "{stderr}");
}

#[test]
fn an_action_the_component_lacks_is_reported() {
    let dir = compiled_plugins("unknown-action");
    let playbook = dir.0.join("typo.yaml");
    let welcome = std::fs::read_to_string(root().join("playbooks/welcome.yaml")).expect("read");
    assert!(welcome.contains("wecom.send_welcome"), "fixture changed");
    std::fs::write(
        &playbook,
        welcome.replace("wecom.send_welcome", "wecom.send_welcom"),
    )
    .expect("write");
    let out = sop(&[
        "validate",
        "--plugins",
        dir.path(),
        playbook.to_str().expect("utf-8"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("send_welcom"), "{stderr}");
    assert!(stderr.contains("send_welcome"), "a suggestion: {stderr}");
}

#[test]
fn a_wasm_file_that_is_no_plugin_is_an_error_naming_it() {
    let dir = PluginDir::new("junk");
    let junk = dir.0.join("broken.wasm");
    std::fs::write(&junk, b"\0asm but not really").expect("write");
    let out = sop(&[
        "validate",
        "--plugins",
        dir.path(),
        "playbooks/order-points.yaml",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&junk.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("not a valid sop plugin component"),
        "{stderr}"
    );
}

#[test]
fn a_plugin_given_twice_is_an_error() {
    let dir = compiled_plugins("twice");
    dir.copy(&root().join("playbooks/plugins/wecom.json"), "wecom.json");
    let out = sop(&[
        "validate",
        "--plugins",
        dir.path(),
        "playbooks/welcome.yaml",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("wecom.wasm"), "{stderr}");
    assert!(stderr.contains("already defined"), "{stderr}");
}
