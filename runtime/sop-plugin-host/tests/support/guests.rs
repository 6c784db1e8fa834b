//! Builds the test guests (`tests/guests`) for wasm32-wasip2 once per test process.

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

fn build() -> Result<PathBuf, String> {
    let guests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests");
    // Beside the caller's own target dir when there is one, so CI caches it too.
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("sop-plugin-host-guests"),
        None => guests.join("target"),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&guests)
        .args(["build", "--release", "--locked", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir)
        // Flags meant for the host build must not leak into the guest build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(|e| format!("could not run cargo to build the test guests: {e}"))?;
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
            "building the test guests in {} failed:\n{stderr}{hint}",
            guests.display()
        ));
    }
    Ok(target_dir.join(TARGET).join("release"))
}
