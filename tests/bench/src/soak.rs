//! Sustained load (issue #9's load check): new-contact callbacks at a steady rate for many
//! minutes while the daemon's resident memory is sampled, to show that memory stays flat (no
//! leak) and that every callback is answered within WeCom's 5 s (the emulator's callback
//! timeout: an answer later than that, or not 2xx, is a retry).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::machine;
use crate::welcome::{self, WelcomeRun};

/// Resident memory over time: (seconds since the load started, MiB).
pub type Samples = Vec<(f64, f64)>;

/// What a soak run measured.
#[derive(Debug, Clone)]
pub struct SoakRun {
    /// The welcome run the load was (latencies, retries, …).
    pub welcome: WelcomeRun,
    /// The daemon's RSS during the run.
    pub rss: Samples,
    /// What the store and a fresh daemon on it hold after the load.
    pub after: Reopened,
}

/// After the load: the store's size and a new daemon process started on it. A daemon's
/// memory that follows its store comes back when the store is reopened; memory held by the
/// old process alone (a leak, or a cache that had filled) does not.
#[derive(Debug, Clone, Copy)]
pub struct Reopened {
    /// The store directory's size on disk, MiB.
    pub store_mib: f64,
    /// Median RSS of the restarted daemon, idle, after [`SETTLE`], MiB.
    pub rss_mib: f64,
}

/// How long the restarted daemon idles before its memory is read: recovery, plugin loads and
/// the first timer pass are over by then.
const SETTLE: Duration = Duration::from_secs(30);

/// How memory moved between the end of the first minute (warm caches, full pools) and the
/// end of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    /// Median RSS over the second minute, MiB.
    pub settled_mib: f64,
    /// Median RSS over the last minute, MiB.
    pub final_mib: f64,
    /// Least-squares slope over the samples after the first minute, MiB per minute.
    pub slope_mib_per_min: f64,
}

impl Growth {
    /// Flat: the last minute is within `tolerance` (a fraction) of the second.
    pub fn is_flat(&self, tolerance: f64) -> bool {
        self.final_mib <= self.settled_mib * (1.0 + tolerance)
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// The growth of `samples` over a run of `seconds`; `None` when the run is shorter than three
/// minutes or has too few samples to tell.
pub fn growth(samples: &[(f64, f64)], seconds: f64) -> Option<Growth> {
    if seconds < 180.0 {
        return None;
    }
    let within = |from: f64, to: f64| -> Vec<f64> {
        samples
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(_, m)| *m)
            .collect()
    };
    let settled_mib = median(within(60.0, 120.0))?;
    let final_mib = median(within(seconds - 60.0, seconds + 1.0))?;
    let tail: Vec<(f64, f64)> = samples
        .iter()
        .copied()
        .filter(|(t, _)| *t >= 60.0)
        .collect();
    if tail.len() < 3 {
        return None;
    }
    let n = tail.len() as f64;
    let (mean_t, mean_m) = (
        tail.iter().map(|(t, _)| t).sum::<f64>() / n,
        tail.iter().map(|(_, m)| m).sum::<f64>() / n,
    );
    let cov: f64 = tail.iter().map(|(t, m)| (t - mean_t) * (m - mean_m)).sum();
    let var: f64 = tail.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
    let slope_per_s = if var > 0.0 { cov / var } else { 0.0 };
    Some(Growth {
        settled_mib,
        final_mib,
        slope_mib_per_min: slope_per_s * 60.0,
    })
}

/// Runs `rate` callbacks a second for `seconds` over `accounts`, sampling the daemon's RSS
/// every `every`.
pub async fn run(
    a: &crate::Args,
    accounts: u32,
    rate: f64,
    seconds: f64,
    every: Duration,
) -> Result<SoakRun> {
    let (mut world, _dir) = welcome::world(a, accounts).await?;
    let pid = world.daemon.pid().context("the daemon is not running")?;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut samples = Samples::new();
            while !stop.load(Ordering::Relaxed) {
                if let Some(m) = machine::memory(pid) {
                    samples.push((start.elapsed().as_secs_f64(), m.rss_kib as f64 / 1024.0));
                }
                tokio::time::sleep(every).await;
            }
            samples
        })
    };
    // The warm-up inside the welcome run takes a few seconds: the samples' clock starts
    // slightly before the load, which only shifts the first minute's window.
    let welcome = welcome::run(&world, accounts, rate, seconds).await;
    stop.store(true, Ordering::Relaxed);
    let rss = sampler.await.context("the memory sampler")?;
    let welcome = welcome?;
    let after = reopen(&mut world).await?;
    Ok(SoakRun {
        welcome,
        rss,
        after,
    })
}

/// Stops the daemon (SIGTERM), measures its store, starts it again on the same store and
/// reads its memory once it has settled.
async fn reopen(world: &mut sop_harness::World) -> Result<Reopened> {
    let status = world
        .daemon
        .terminate(Duration::from_secs(60))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(
        status.success(),
        "the daemon exited with {status} on SIGTERM"
    );
    let store_mib = dir_bytes(&world.work_dir().join("data/store"))? as f64 / (1024.0 * 1024.0);
    world
        .daemon
        .restart()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let pid = world
        .daemon
        .pid()
        .context("the restarted daemon is not running")?;
    tokio::time::sleep(SETTLE).await;
    let mut samples = Vec::new();
    for _ in 0..5 {
        if let Some(m) = machine::memory(pid) {
            samples.push(m.rss_kib as f64 / 1024.0);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let rss_mib = median(samples).context("cannot read the restarted daemon's memory")?;
    Ok(Reopened { store_mib, rss_mib })
}

/// Bytes the files under `dir` take on disk (allocated blocks, not their apparent length).
fn dir_bytes(dir: &std::path::Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt as _;
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.blocks() * 512
        };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp_then(level: f64, slope_per_min: f64, seconds: f64) -> Samples {
        (0..=(seconds as usize / 10))
            .map(|i| {
                let t = i as f64 * 10.0;
                let m = if t < 60.0 {
                    level * t / 60.0
                } else {
                    level + slope_per_min * (t - 60.0) / 60.0
                };
                (t, m)
            })
            .collect()
    }

    #[test]
    fn a_flat_run_is_flat_after_its_warm_up() {
        let g = growth(&ramp_then(100.0, 0.0, 600.0), 600.0).unwrap();
        assert_eq!((g.settled_mib, g.final_mib), (100.0, 100.0));
        assert!(g.slope_mib_per_min.abs() < 1e-9);
        assert!(g.is_flat(0.05));
    }

    #[test]
    fn a_leak_shows_as_growth_and_slope() {
        let g = growth(&ramp_then(100.0, 2.0, 600.0), 600.0).unwrap();
        assert!((g.slope_mib_per_min - 2.0).abs() < 1e-6, "{g:?}");
        assert!(g.final_mib > 115.0, "{g:?}");
        assert!(!g.is_flat(0.05));
    }

    #[test]
    fn short_or_sparse_runs_tell_nothing() {
        assert_eq!(growth(&ramp_then(100.0, 0.0, 120.0), 120.0), None);
        assert_eq!(growth(&[(0.0, 1.0), (300.0, 1.0)], 300.0), None);
    }
}
