//! Compiling what the processes run: the `sop` and `sop-emulator` binaries and the bundled
//! WASM plugins. Each is built once per test process; cargo makes it a no-op when fresh.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Which cargo profile the binaries come from: tests use the dev profile that
/// `cargo test --workspace` has already built; benchmarks use release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// `target/debug`.
    Debug,
    /// `target/release`.
    Release,
}

/// Paths of the built binaries.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// The daemon and command-line tool.
    pub sop: PathBuf,
    /// The platform emulator.
    pub emulator: PathBuf,
}

/// The workspace root: the nearest directory with a `[workspace]` manifest above the package
/// cargo runs the test in (`CARGO_MANIFEST_DIR` at run time), else above this crate.
///
/// Run time first: several checkouts (git worktrees) sharing one target dir also share this
/// crate's compiled library, and cargo may reuse one compiled in another checkout, whose
/// compile-time path would build and run that checkout's binaries.
pub fn workspace_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(find_workspace_root).clone()
}

fn find_workspace_root() -> PathBuf {
    let here = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    here.ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|manifest| manifest.lines().any(|l| l.trim() == "[workspace]"))
        })
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
            Path::to_path_buf,
        )
        .canonicalize()
        .expect("the workspace root exists")
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target"),
    }
}

/// Runs cargo in the workspace root with `args`, with the caller's build flags removed (a
/// test runner's RUSTFLAGS or target must not leak into these builds).
fn cargo(args: &[&str], target_dir: &Path) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Builds (once per process and profile) and returns the binaries. Panics with cargo's
/// output if the build fails: nothing a test could do would help.
pub fn binaries(profile: Profile) -> &'static Binaries {
    static DEBUG: OnceLock<Binaries> = OnceLock::new();
    static RELEASE: OnceLock<Binaries> = OnceLock::new();
    let (cell, flag, dir) = match profile {
        Profile::Debug => (&DEBUG, None, "debug"),
        Profile::Release => (&RELEASE, Some("--release"), "release"),
    };
    cell.get_or_init(|| {
        let target = target_dir();
        let mut args = vec!["build", "--locked", "-p", "sop", "-p", "sop-emulator"];
        args.extend(["--bin", "sop", "--bin", "sop-emulator"]);
        args.extend(flag);
        cargo(&args, &target).unwrap_or_else(|e| panic!("{e}"));
        let out = target.join(dir);
        Binaries {
            sop: own_copy(&out, "sop"),
            emulator: own_copy(&out, "sop-emulator"),
        }
    })
}

/// The path of this checkout's build of binary `name` in `out`. Cargo links `out/name` to
/// `out/deps/name-HASH`, where the hash covers the package's path: when several checkouts
/// share one target dir, `out/name` is whichever was built last, the hashed file is ours.
fn own_copy(out: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let uplifted = out.join(name);
    let Ok(meta) = std::fs::metadata(&uplifted) else {
        return uplifted;
    };
    // Cargo names the hashed file after the crate, with `_` for `-` (`sop_emulator-HASH`).
    let prefix = format!("{}-", name.replace('-', "_"));
    std::fs::read_dir(out.join("deps"))
        .into_iter()
        .flatten()
        .flatten()
        .find(|e| {
            let file = e.file_name();
            let file = file.to_string_lossy();
            file.strip_prefix(&prefix)
                .is_some_and(|hash| hash.chars().all(|c| c.is_ascii_hexdigit()))
                && e.metadata()
                    .is_ok_and(|m| m.ino() == meta.ino() && m.dev() == meta.dev())
        })
        .map(|e| e.path())
        .unwrap_or(uplifted)
}

/// The directory holding the bundled plugins (`sop_plugin_wecom.wasm`,
/// `sop_plugin_douyin.wasm`, `sop_plugin_shop.wasm`) built for wasm32-wasip2, release. They are built in their own
/// target dir beside the caller's (the same one the plugin host's tests use, so a CI run
/// builds them once). Panics with cargo's output if the build fails.
pub fn plugin_dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = target_dir().join("sop-plugin-host-platforms");
        let args = [
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "-p",
            "sop-plugin-wecom",
            "-p",
            "sop-plugin-douyin",
            "-p",
            "sop-plugin-shop",
        ];
        cargo(&args, &target)
            .map_err(|e| {
                format!("building the plugins failed (rustup target add wasm32-wasip2?): {e}")
            })
            .unwrap_or_else(|e| panic!("{e}"));
        target.join("wasm32-wasip2/release")
    })
}
