//! Wiring and the clock loop: the real runtime, store, gate and engine on a virtual clock,
//! time moved straight to the next thing that happens (a due timer, a rate-limit slot, a
//! customer's event, a day's planning), never slept through.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sop_clock::{Clock, TimeDelta, Timestamp, VirtualClock};
use sop_dsl::Catalog;
use sop_runtime::{EventSource, PlaybookSource, Runtime, RuntimeConfig, RuntimeDeps, step_ids};
use sop_store::{MemoryStore, Store};

use crate::behaviour::{Customers, local_day_start, lock, to_event};
use crate::options::{SimulateError, SimulateOptions};
use crate::platform::SimPlugins;
use crate::report::{Header, MODELLED_NOTE, Report, gather};
use crate::world::{Platform, keywords, load};

/// Largest population and longest period accepted (memory and patience).
const MAX_CONTACTS: u32 = 1_000_000;
const MAX_DAYS: u32 = 366;

/// Runs the simulation and returns its report. Blocks the calling thread; the simulation
/// runs on a thread of its own with a single-threaded async runtime, so it is deterministic
/// and may be called from inside or outside an async context.
pub fn simulate(options: SimulateOptions) -> Result<Report, SimulateError> {
    check(&options)?;
    std::thread::Builder::new()
        .name("sop-simulate".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| SimulateError::Internal(format!("async runtime: {e}")))?;
            runtime.block_on(run(options))
        })
        .map_err(|e| SimulateError::Internal(format!("thread: {e}")))?
        .join()
        .map_err(|_| SimulateError::Internal("the simulation thread panicked".into()))?
}

fn check(options: &SimulateOptions) -> Result<(), SimulateError> {
    if options.playbooks.is_empty() {
        return Err(SimulateError::Options("no playbook to simulate".into()));
    }
    if options.contacts > MAX_CONTACTS {
        return Err(SimulateError::Options(format!(
            "--contacts must be at most {MAX_CONTACTS}, got {}",
            options.contacts
        )));
    }
    if options.days == 0 || options.days > MAX_DAYS {
        return Err(SimulateError::Options(format!(
            "--days must be between 1 and {MAX_DAYS}, got {}",
            options.days
        )));
    }
    if options.account.trim().is_empty() {
        return Err(SimulateError::Options(
            "the account must not be empty".into(),
        ));
    }
    options.behaviour.validate()
}

fn read(path: &Path) -> Result<String, SimulateError> {
    std::fs::read_to_string(path).map_err(|e| SimulateError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

async fn run(options: SimulateOptions) -> Result<Report, SimulateError> {
    let wall = Instant::now();
    let sources = options
        .playbooks
        .iter()
        .map(|p| read(p).map(|s| (p.display().to_string(), s)))
        .collect::<Result<Vec<_>, _>>()?;
    if !options.plugins_dir.is_dir() {
        return Err(SimulateError::Read {
            path: options.plugins_dir.display().to_string(),
            reason: "not a directory of plugin manifests".into(),
        });
    }
    let catalog = Catalog::load_dir(&options.plugins_dir)
        .map_err(|e| SimulateError::Catalog(e.to_string()))?;
    let tenant = options.tenant.clone().unwrap_or_else(|| {
        sop_dsl::load(&sources[0].1, None)
            .playbook
            .tenant
            .unwrap_or_else(|| "demo-brand".into())
    });

    let clock = VirtualClock::new(options.start);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let platform = Platform::generate(&options);
    load(&*store, &platform, &options, &tenant)?;
    let texts: Vec<String> = sources.iter().map(|(_, s)| s.clone()).collect();
    let customers = Arc::new(Customers::new(
        options.behaviour.clone(),
        options.seed,
        keywords(&texts),
        options.contacts,
    ));
    let platform = Arc::new(Mutex::new(platform));
    let gate = sop_policy::Gate::new(options.policy.clone(), &catalog, Arc::new(clock.clone()))
        .map_err(|e| SimulateError::Policy(e.to_string()))?;
    let plugins = Arc::new(SimPlugins::new(
        catalog,
        clock.clone(),
        platform.clone(),
        customers.clone(),
    ));
    let rt = Runtime::new(RuntimeDeps {
        store: store.clone(),
        clock: Arc::new(clock.clone()),
        plugins: plugins.clone(),
        gate: Arc::new(gate),
        config: RuntimeConfig::default(),
    })?;
    let deployed = rt.deploy(
        sources
            .into_iter()
            .map(|(origin, source)| PlaybookSource {
                origin,
                source,
                tenant: tenant.clone(),
                account: options.account.clone(),
            })
            .collect(),
    )?;
    let mut order = Vec::new();
    for playbook in &deployed.playbooks {
        let steps = rt
            .deployment(&playbook.id)
            .map(|d| step_ids(&d.playbook.steps))
            .unwrap_or_default();
        order.push((playbook.id.clone(), steps));
    }

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = {
        let rt = rt.clone();
        tokio::spawn(async move {
            rt.serve(async {
                let _ = stopped.await;
            })
            .await
        })
    };
    let driver = Driver {
        rt: &rt,
        clock: &clock,
        plugins: &plugins,
        platform: &platform,
        customers: &customers,
        tenant: &tenant,
        account: &options.account,
    };
    let end = options.start + TimeDelta::days(i64::from(options.days));
    let outcome = driver.drive(options.start, end).await;
    let _ = stop.send(());
    // The serve loop ends at the next poll; plugin calls still waiting for a rate-limit slot
    // past the end are dropped with the async runtime.
    let served = serving.await;
    outcome?;
    match served {
        Ok(result) => result?,
        Err(e) => return Err(SimulateError::Internal(format!("serve task: {e}"))),
    }

    let playbooks = gather(&*store, &order)?;
    let contacts_at_end = u32::try_from(lock(&platform).world.contacts.len()).unwrap_or(u32::MAX);
    let traffic = lock(&customers.traffic).clone();
    Ok(Report {
        header: Header {
            note: MODELLED_NOTE.into(),
            playbooks: order.iter().map(|(id, _)| id.clone()).collect(),
            seed: options.seed,
            days: options.days,
            contacts_at_start: options.contacts,
            contacts_at_end,
            groups: options.groups,
            start: options.start.to_rfc3339(),
            end: end.to_rfc3339(),
            traffic,
            wall_ms: u64::try_from(wall.elapsed().as_millis()).unwrap_or(u64::MAX),
        },
        playbooks,
    })
}

/// Moves the world and the clock forward.
struct Driver<'a> {
    rt: &'a Runtime,
    clock: &'a VirtualClock,
    plugins: &'a SimPlugins,
    platform: &'a Mutex<Platform>,
    customers: &'a Customers,
    tenant: &'a str,
    account: &'a str,
}

impl Driver<'_> {
    async fn drive(&self, start: Timestamp, end: Timestamp) -> Result<(), SimulateError> {
        let mut next_plan = local_day_start(start);
        self.settle().await;
        loop {
            let now = self.clock.now();
            if next_plan <= now && next_plan < end {
                self.customers
                    .plan_day(next_plan, now, &lock(self.platform));
                next_plan += TimeDelta::days(1);
                continue;
            }
            let due = lock(&self.customers.agenda).take_due(now);
            if !due.is_empty() {
                for (at, happening) in due {
                    let event = to_event(&happening, at, &mut lock(self.platform), self.customers);
                    if let Some((plugin, event)) = event {
                        let source = EventSource {
                            tenant: self.tenant.into(),
                            plugin: plugin.into(),
                            account: self.account.into(),
                        };
                        self.rt.ingest(&source, vec![event]).await?;
                        self.settle().await;
                    }
                }
                continue;
            }
            if now >= end {
                return Ok(());
            }
            let mut next = end;
            if next_plan < end {
                next = next.min(next_plan);
            }
            if let Some(at) = lock(&self.customers.agenda).next_at() {
                next = next.min(at);
            }
            if let Some(at) = self.clock.next_deadline() {
                next = next.min(at);
            }
            self.clock.advance_to(next.max(now));
            self.settle().await;
        }
    }

    /// Lets every task the last step woke run until nothing moves any more: no plugin call
    /// answered and no sleeper added or removed during a whole settling round.
    async fn settle(&self) {
        let signature = || {
            (
                self.plugins
                    .answered
                    .load(std::sync::atomic::Ordering::Relaxed),
                self.clock.sleepers(),
                self.clock.next_deadline(),
            )
        };
        let mut last = signature();
        loop {
            self.clock.settle().await;
            let now = signature();
            if now == last {
                return;
            }
            last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_options_are_refused_with_a_reason() {
        let mut options = SimulateOptions::new("playbooks/welcome.yaml");
        options.days = 0;
        let error = simulate(options).unwrap_err();
        assert!(error.to_string().contains("--days"), "{error}");
        let mut options = SimulateOptions::new("/nonexistent/playbook.yaml");
        options.days = 1;
        let error = simulate(options).unwrap_err();
        assert!(error.to_string().contains("cannot read"), "{error}");
        let mut options = SimulateOptions::new("x.yaml");
        options.behaviour.reply_probability = 1.5;
        assert!(
            simulate(options)
                .unwrap_err()
                .to_string()
                .contains("reply_probability")
        );
    }
}
