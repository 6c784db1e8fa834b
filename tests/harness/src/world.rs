//! A daemon and an emulator wired to each other, in a scratch directory.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::build::{Profile, binaries, plugin_dir, workspace_root};
use crate::http::Http;
use crate::process::{Daemon, Emulator, free_port};
use crate::{Error, fail};

/// The admin token the demo config reads from `@WORK@/admin.token`.
pub const DEMO_ADMIN_TOKEN: &str = "demo-admin-token";

/// What to start.
#[derive(Clone, Debug)]
pub struct WorldSpec {
    /// Debug for tests, release for benchmarks.
    pub profile: Profile,
    /// The daemon's config with placeholders: `@ROOT@` (workspace root), `@WORK@` (scratch
    /// dir, holding `plugins/`, `admin.token` and the data dir), `@PLAYBOOKS@`, `@EMU@`,
    /// `@INGRESS@`, `@ADMIN@` (ports).
    pub config_template: String,
    /// The playbooks directory the daemon deploys.
    pub playbooks: PathBuf,
    /// Extra arguments to `sop run`.
    pub daemon_args: Vec<String>,
    /// Environment of the daemon (credentials, `RUST_LOG`).
    pub daemon_env: Vec<(String, String)>,
    /// Arguments to the emulator besides `--listen` and the webhook URLs.
    pub emulator_args: Vec<String>,
    /// Keep the scratch dir after the test (also with `SOP_HARNESS_KEEP=1`).
    pub keep: bool,
}

impl WorldSpec {
    /// The demo's setup (`runtime/sop/demo/sop.toml.in`): one tenant with a WeCom, a Douyin
    /// and a shop account on the emulator's default credentials, the bundled playbooks and plugins,
    /// quiet hours off, an emulator with no synthetic traffic.
    pub fn demo() -> Self {
        let root = workspace_root();
        let template = root.join("runtime/sop/demo/sop.toml.in");
        Self {
            profile: Profile::Debug,
            config_template: std::fs::read_to_string(&template)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", template.display())),
            playbooks: root.join("playbooks"),
            daemon_args: Vec::new(),
            daemon_env: [
                ("DEMO_WECOM_SECRET", "emu-secret"),
                ("DEMO_WECOM_TOKEN", "emuToken"),
                (
                    "DEMO_WECOM_AES_KEY",
                    "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
                ),
                ("DEMO_DOUYIN_SECRET", "emu-douyin-secret"),
                ("DEMO_DOUYIN_CODE", "demo-code"),
                ("DEMO_SHOP_API_KEY", "emu-shop-key"),
                ("DEMO_SHOP_WEBHOOK_SECRET", "emu-shop-webhook-secret"),
                ("RUST_LOG", "info"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            emulator_args: vec!["--seed".into(), "7".into(), "--rate".into(), "0".into()],
            keep: false,
        }
    }
}

/// Starts of the two processes tried when a port was taken meanwhile.
const PORT_ATTEMPTS: u32 = 3;

/// A running daemon and emulator. Dropping it kills both and removes the scratch dir.
#[derive(Debug)]
pub struct World {
    /// The emulator (dropped after the daemon).
    pub emulator: Emulator,
    /// The daemon.
    pub daemon: Daemon,
    /// The admin API with the admin token.
    pub admin: Http,
    work: tempfile::TempDir,
}

impl World {
    /// Builds what is needed, renders the config, starts the daemon, waits until it is
    /// ready, then starts the emulator pointed at its webhooks.
    pub async fn start(spec: WorldSpec) -> Result<Self, Error> {
        let bins = binaries(spec.profile).clone();
        let plugins = plugin_dir();
        let work = tempfile::Builder::new()
            .prefix("sop-world-")
            .tempdir()
            .map_err(|e| Error(format!("cannot make a scratch dir: {e}")))?;
        let dir = work.path();
        let io = |what: &str, e: std::io::Error| Error(format!("{what}: {e}"));
        std::fs::create_dir_all(dir.join("plugins")).map_err(|e| io("plugins dir", e))?;
        for wasm in [
            "sop_plugin_wecom.wasm",
            "sop_plugin_douyin.wasm",
            "sop_plugin_shop.wasm",
        ] {
            std::fs::copy(plugins.join(wasm), dir.join("plugins").join(wasm))
                .map_err(|e| io(wasm, e))?;
        }
        // The binaries are linked (or copied) into the scratch dir: the target dir is shared,
        // and a build from another checkout replaces `target/debug/sop` in place, so a
        // restart of the daemon could otherwise run another version than the one started.
        std::fs::create_dir_all(dir.join("bin")).map_err(|e| io("bin dir", e))?;
        let pin = |from: &std::path::Path| -> Result<PathBuf, Error> {
            let name = from.file_name().unwrap_or_default();
            let to = dir.join("bin").join(name);
            std::fs::hard_link(from, &to)
                .or_else(|_| std::fs::copy(from, &to).map(|_| ()))
                .map_err(|e| io(&from.display().to_string(), e))?;
            Ok(to)
        };
        let bins = crate::build::Binaries {
            sop: pin(&bins.sop)?,
            emulator: pin(&bins.emulator)?,
        };
        std::fs::write(dir.join("admin.token"), DEMO_ADMIN_TOKEN)
            .map_err(|e| io("admin.token", e))?;
        // A port found free may be taken before the process binds it (another test's
        // listener, an outgoing connection's ephemeral port): start again on fresh ports.
        let mut attempt = 1;
        let (daemon, emulator) = loop {
            match Self::start_processes(&spec, &bins, dir).await {
                Err(e) if attempt < PORT_ATTEMPTS && e.0.contains("Address already in use") => {
                    eprintln!("sop-harness: a port was taken meanwhile, starting again: {e}");
                    attempt += 1;
                }
                started => break started?,
            }
        };
        let admin = daemon.admin().with_token(DEMO_ADMIN_TOKEN);
        let mut work = work;
        if spec.keep || std::env::var_os("SOP_HARNESS_KEEP").is_some() {
            work.disable_cleanup(true);
            eprintln!("sop-harness: keeping {}", work.path().display());
        }
        Ok(Self {
            emulator,
            daemon,
            admin,
            work,
        })
    }

    /// Renders the config on fresh ports and starts the daemon, then the emulator.
    async fn start_processes(
        spec: &WorldSpec,
        bins: &crate::build::Binaries,
        dir: &std::path::Path,
    ) -> Result<(Daemon, Emulator), Error> {
        let io = |what: &str, e: std::io::Error| Error(format!("{what}: {e}"));
        let (emu, ingress, admin) = (free_port(), free_port(), free_port());
        let config = spec
            .config_template
            .replace("@ROOT@", &workspace_root().display().to_string())
            .replace("@WORK@", &dir.display().to_string())
            .replace("@PLAYBOOKS@", &spec.playbooks.display().to_string())
            .replace("@EMU@", &emu.to_string())
            .replace("@INGRESS@", &ingress.to_string())
            .replace("@ADMIN@", &admin.to_string());
        let config_path = dir.join("sop.toml");
        std::fs::write(&config_path, config).map_err(|e| io("sop.toml", e))?;

        let daemon = Daemon::start(
            &bins.sop,
            &config_path,
            &spec.daemon_args,
            &spec.daemon_env,
            &dir.join("sop.log"),
            admin,
            ingress,
        )
        .await?;
        let mut args = spec.emulator_args.clone();
        args.extend([
            "--wecom-callback".to_owned(),
            daemon.hook_url("wecom", "demo-wecom"),
            "--douyin-webhook".to_owned(),
            daemon.hook_url("douyin", "demo-douyin"),
            "--shop-webhook".to_owned(),
            daemon.hook_url("shop", "demo-shop"),
        ]);
        let emulator =
            Emulator::start(&bins.emulator, emu, &args, &dir.join("emulator.log")).await?;
        Ok((daemon, emulator))
    }

    /// The scratch dir (config, logs, plugins, data dir).
    pub fn work_dir(&self) -> &std::path::Path {
        self.work.path()
    }

    /// Both logs, for a failing test's message.
    pub fn logs(&self) -> String {
        format!(
            "--- sop.log (tail) ---\n{}\n--- emulator.log (tail) ---\n{}",
            crate::process::tail(&self.work.path().join("sop.log"), 60),
            crate::process::tail(&self.work.path().join("emulator.log"), 30)
        )
    }
}

/// Moves the manual clocks of an emulator and a daemon (both started with `--manual-clock`)
/// forward by `ms`: the platform first, so that when the daemon's timers fire and it calls
/// the platform, the platform is already at the new time. Takes the two clients (the
/// emulator's and the daemon's admin API) so that a spawned task can drive the clocks.
pub async fn advance_clocks(emulator: &Http, admin: &Http, ms: u64) -> Result<(), Error> {
    let step = serde_json::json!({ "advance_ms": ms });
    emulator.post("/_emulator/clock", &step).await?;
    admin.post("/api/clock", &step).await?;
    Ok(())
}

/// Polls `check` every 50 ms until it returns `Some`, or fails after `deadline` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if start.elapsed() > deadline {
            return fail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
