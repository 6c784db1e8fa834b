//! Builds the test guests (`tests/guests`) and the platform plugins (`plugins/wecom`,
//! `plugins/douyin`) for wasm32-wasip2, once per test process each.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const TARGET: &str = "wasm32-wasip2";

/// Path of the built component of guest crate `guest-<name>`.
pub fn guest_wasm(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT
        .get_or_init(build)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    dir.join(format!("guest_{name}.wasm"))
}

/// Path of the built component of the workspace's platform plugin `sop-plugin-<name>`
/// (`wecom`, `douyin`), built from source for wasm32-wasip2 once per test process.
pub fn platform_wasm(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT
        .get_or_init(build_platforms)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    dir.join(format!("sop_plugin_{name}.wasm"))
}

fn build() -> Result<PathBuf, String> {
    let guests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests");
    cargo_wasm(&guests, "sop-plugin-host-guests", &["--locked"])
}

fn build_platforms() -> Result<PathBuf, String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let packages = ["-p", "sop-plugin-wecom", "-p", "sop-plugin-douyin"];
    cargo_wasm(&workspace, "sop-plugin-host-platforms", &packages)
}

/// `cargo build --release --target wasm32-wasip2` in `dir`, into a target dir of its own (the
/// outer `cargo test` holds the lock of its own target dir while tests run).
fn cargo_wasm(dir: &Path, target_name: &str, extra: &[&str]) -> Result<PathBuf, String> {
    // Beside the caller's own target dir when there is one, so CI caches it too.
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d).join(target_name),
        None => dir.join("target").join(target_name),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(dir)
        .args(["build", "--release", "--target", TARGET])
        .args(extra)
        .env("CARGO_TARGET_DIR", &target_dir)
        // Flags meant for the host build must not leak into the guest build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(|e| format!("could not run cargo to build wasm components: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains(TARGET) && stderr.contains("not installed")
            || stderr.contains("can't find crate for `core`")
            || stderr.contains("can't find crate for `std`")
        {
            format!("\n\nThe {TARGET} target is missing: run `rustup target add {TARGET}`.")
        } else {
            String::new()
        };
        return Err(format!(
            "building the wasm32-wasip2 components in {} failed:\n{stderr}{hint}",
            dir.display()
        ));
    }
    Ok(target_dir.join(TARGET).join("release"))
}
