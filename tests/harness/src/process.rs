//! The two child processes: the emulator and the daemon.

use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::http::Http;
use crate::world::wait_for;
use crate::{Error, fail};

/// How long a process may take to become ready; generous, a loaded 2-core machine compiling
/// WASM plugins in a debug build is slow.
const READY_DEADLINE: Duration = Duration::from_secs(120);

/// A free TCP port on 127.0.0.1 (bound, then released for the child to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("can bind an ephemeral port on 127.0.0.1")
}

/// The last `n` lines of a log file, for error messages.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Spawns `cmd` with stdout and stderr appended to `log`.
fn spawn(mut cmd: Command, log: &Path) -> Result<Child, Error> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| Error(format!("cannot open {}: {e}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(|e| Error(format!("cannot open {}: {e}", log.display())))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    cmd.spawn()
        .map_err(|e| Error(format!("cannot start {cmd:?}: {e}")))
}

fn signal(child: &Child, sig: rustix::process::Signal) -> Result<(), Error> {
    let pid = rustix::process::Pid::from_raw(child.id() as i32)
        .ok_or_else(|| Error("child has no pid".into()))?;
    rustix::process::kill_process(pid, sig)
        .map_err(|e| Error(format!("cannot signal pid {}: {e}", child.id())))
}

/// Waits for `child` to exit, up to `deadline`, without blocking the runtime.
async fn wait_exit(child: &mut Child, deadline: Duration) -> Result<ExitStatus, Error> {
    let start = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if start.elapsed() > deadline => {
                return fail!("pid {} did not exit within {deadline:?}", child.id());
            }
            Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => return fail!("waiting for pid {}: {e}", child.id()),
        }
    }
}

/// The platform emulator as a child process.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    http: Http,
    log: PathBuf,
}

impl Emulator {
    /// Starts `binary --listen 127.0.0.1:port ARGS…`, logging to `log`, and waits until
    /// `/_emulator/health` answers.
    pub async fn start(
        binary: &Path,
        port: u16,
        args: &[String],
        log: &Path,
    ) -> Result<Self, Error> {
        let mut cmd = Command::new(binary);
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(args);
        let child = spawn(cmd, log)?;
        let mut emu = Self {
            child,
            http: Http::new(format!("http://127.0.0.1:{port}")),
            log: log.to_owned(),
        };
        let http = emu.http.clone();
        let ready = wait_for("the emulator to answer", READY_DEADLINE, || {
            let http = http.clone();
            async move {
                http.get_raw("/_emulator/health")
                    .await
                    .ok()
                    .filter(|r| r.status == 200)
            }
        });
        tokio::select! {
            r = ready => r.map(|_| ()),
            status = exited(&mut emu.child) => fail!("the emulator exited ({status}):\n{}", tail(log, 40)),
        }?;
        Ok(emu)
    }

    /// Its base URL, e.g. `http://127.0.0.1:18900`.
    pub fn url(&self) -> &str {
        self.http.base()
    }

    /// A client for its routes.
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// `GET path` as JSON.
    pub async fn get(&self, path: &str) -> Result<Value, Error> {
        self.http.get(path).await
    }

    /// `POST path` with a JSON body, as JSON.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, Error> {
        self.http.post(path, body).await
    }

    /// Every delivery to a person so far, in order (`/_emulator/export.jsonl`).
    pub async fn deliveries(&self) -> Result<Vec<Value>, Error> {
        let reply = self.http.get_raw("/_emulator/export.jsonl").await?;
        if reply.status != 200 {
            return fail!("export.jsonl: status {}: {}", reply.status, reply.text());
        }
        reply
            .text()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| Error(format!("export line {l:?}: {e}"))))
            .collect()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Completes when `child` has exited (polls; used to race readiness against a crash).
async fn exited(child: &mut Child) -> String {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.to_string(),
            Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => return format!("cannot wait: {e}"),
        }
    }
}

/// The daemon (`sop run --config …`) as a child process that can be killed and restarted on
/// the same config and data dir.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    binary: PathBuf,
    config: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    admin: Http,
    ingress: String,
    starts: u32,
}

impl Daemon {
    /// Starts `binary run --config CONFIG ARGS…` with `env`, logging to `log`, and waits until
    /// its admin listener's `/readyz` says ready. `admin_port` and `ingress_port` must be the
    /// ones the config names.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        binary: &Path,
        config: &Path,
        args: &[String],
        env: &[(String, String)],
        log: &Path,
        admin_port: u16,
        ingress_port: u16,
    ) -> Result<Self, Error> {
        let mut daemon = Self {
            child: None,
            binary: binary.to_owned(),
            config: config.to_owned(),
            args: args.to_vec(),
            env: env.to_vec(),
            log: log.to_owned(),
            admin: Http::new(format!("http://127.0.0.1:{admin_port}")),
            ingress: format!("http://127.0.0.1:{ingress_port}"),
            starts: 0,
        };
        daemon.restart().await?;
        Ok(daemon)
    }

    /// Starts the daemon again (after [`kill9`](Self::kill9) or [`terminate`](Self::terminate))
    /// and waits until it is ready.
    pub async fn restart(&mut self) -> Result<(), Error> {
        if self.is_running() {
            return fail!("the daemon is still running");
        }
        let mut cmd = Command::new(&self.binary);
        cmd.arg("run")
            .arg("--config")
            .arg(&self.config)
            .args(&self.args);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        self.starts += 1;
        let child = self.child.insert(spawn(cmd, &self.log)?);
        let admin = self.admin.clone();
        let ready = wait_for("the daemon to be ready", READY_DEADLINE, || {
            let admin = admin.clone();
            async move {
                admin
                    .get_raw("/readyz")
                    .await
                    .ok()
                    .filter(|r| r.status == 200)
            }
        });
        tokio::select! {
            r = ready => r.map(|_| ()),
            status = exited(child) => {
                self.child = None;
                fail!("the daemon exited ({status}):\n{}", tail(&self.log, 40))
            }
        }
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the daemon with SIGKILL (no chance to flush anything) and reaps it.
    pub fn kill9(&mut self) -> Result<(), Error> {
        let Some(mut child) = self.child.take() else {
            return fail!("the daemon is not running");
        };
        child
            .kill()
            .map_err(|e| Error(format!("cannot kill the daemon: {e}")))?;
        child
            .wait()
            .map_err(|e| Error(format!("cannot reap the daemon: {e}")))?;
        Ok(())
    }

    /// Sends SIGTERM and waits (up to `deadline`) for a graceful exit.
    pub async fn terminate(&mut self, deadline: Duration) -> Result<ExitStatus, Error> {
        let Some(mut child) = self.child.take() else {
            return fail!("the daemon is not running");
        };
        signal(&child, rustix::process::Signal::TERM)?;
        wait_exit(&mut child, deadline).await
    }

    /// Sends SIGHUP (reload playbooks and config).
    pub fn hangup(&self) -> Result<(), Error> {
        match &self.child {
            Some(c) => signal(c, rustix::process::Signal::HUP),
            None => fail!("the daemon is not running"),
        }
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How many times the process was started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// The admin API client (no token; add one with [`Http::with_token`]).
    pub fn admin(&self) -> &Http {
        &self.admin
    }

    /// The webhook URL for `plugin`'s `account`.
    pub fn hook_url(&self, plugin: &str, account: &str) -> String {
        format!("{}/hooks/{plugin}/{account}", self.ingress)
    }

    /// Its log so far (all starts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The sum of metric `name`'s samples over all label sets; 0 when absent.
    pub async fn metric(&self, name: &str) -> Result<f64, Error> {
        let text = self.admin.get_raw("/metrics").await?.text();
        Ok(text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter(|(series, _)| {
                series
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('{'))
            })
            .filter_map(|(_, v)| v.parse::<f64>().ok())
            .sum())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
