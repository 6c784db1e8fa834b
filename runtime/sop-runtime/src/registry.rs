//! Deployed playbooks: every version's source lives in the store; checked playbooks are cached
//! by (id, version), so runs finish on the version they started on even after a redeploy.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use sop_clock::Timestamp;
use sop_dsl::model::Step;
use sop_dsl::{Catalog, Playbook};
use sop_store::{Batch, Op, PlaybookVersion, Store};

use crate::error::RuntimeError;

/// One playbook to deploy.
#[derive(Debug, Clone)]
pub struct PlaybookSource {
    /// Where it came from (a file path, `api`).
    pub origin: String,
    /// The YAML.
    pub source: String,
    /// The tenant its runs belong to.
    pub tenant: String,
    /// The platform account its runs act through.
    pub account: String,
}

/// What a deploy did, per playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployReport {
    pub playbooks: Vec<DeployedPlaybook>,
}

/// One deployed playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedPlaybook {
    pub id: String,
    /// The version new runs start on.
    pub version: u32,
    /// False when the source equals the last deployed version's (the version is kept).
    pub changed: bool,
    /// Step ids of the previous version that this one no longer has: runs still on the
    /// previous version keep them; migrating such a run away from one of them fails it.
    pub removed_steps: Vec<String>,
}

/// The version of a playbook new runs start on, with where its runs live.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: String,
    pub version: u32,
    pub tenant: String,
    pub account: String,
    pub playbook: Arc<Playbook>,
    /// When this version was first deployed (schedules count from it).
    pub deployed_at: Timestamp,
}

/// Checked playbooks by id and version, and the current deployments.
#[derive(Debug)]
pub(crate) struct Registry {
    pub catalog: Catalog,
    cache: Mutex<HashMap<(String, u32), Arc<Playbook>>>,
    current: RwLock<BTreeMap<String, Arc<Deployment>>>,
    paused: RwLock<BTreeSet<String>>,
}

impl Registry {
    pub fn new(catalog: Catalog) -> Self {
        Registry {
            catalog,
            cache: Mutex::new(HashMap::new()),
            current: RwLock::new(BTreeMap::new()),
            paused: RwLock::new(BTreeSet::new()),
        }
    }

    /// The checked playbook of a stored version (cached).
    pub fn get(
        &self,
        store: &dyn Store,
        id: &str,
        version: u32,
    ) -> Result<Arc<Playbook>, RuntimeError> {
        let key = (id.to_string(), version);
        if let Some(found) = lock(&self.cache).get(&key) {
            return Ok(found.clone());
        }
        let stored = store
            .playbook(id, version)?
            .ok_or_else(|| RuntimeError::UnknownPlaybook(format!("{id} v{version}")))?;
        let playbook = match self.check(&stored.origin, &stored.source, version) {
            Ok(playbook) => playbook,
            Err(RuntimeError::Invalid(errors)) => {
                // It checked when it was deployed; a plugin upgrade since may have changed an
                // action's schema. Runs in flight must still finish: load it without the
                // catalog's parameter checks.
                let loaded = sop_dsl::load(&stored.source, None);
                if loaded.has_errors() {
                    return Err(RuntimeError::Invalid(errors));
                }
                tracing::warn!(
                    playbook = id,
                    version,
                    ?errors,
                    "stored version no longer checks against the catalog; loaded without it"
                );
                let mut playbook = loaded.playbook;
                playbook.version = version;
                playbook
            }
            Err(other) => return Err(other),
        };
        let playbook = Arc::new(playbook);
        lock(&self.cache).insert(key, playbook.clone());
        Ok(playbook)
    }

    /// Loads and checks a source; the stored version number replaces the YAML's `version`
    /// (the engine matches runs to playbooks by it).
    fn check(&self, origin: &str, source: &str, version: u32) -> Result<Playbook, RuntimeError> {
        let loaded = sop_dsl::load(source, Some(&self.catalog));
        if loaded.has_errors() {
            let errors = loaded
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(|d| {
                    let (line, col) = line_col(source, d.primary.span.start);
                    format!("{origin}:{line}:{col}: {:?}: {}", d.code, d.message)
                })
                .collect();
            return Err(RuntimeError::Invalid(errors));
        }
        let mut playbook = loaded.playbook;
        playbook.version = version;
        Ok(playbook)
    }

    /// Checks every source, then stores changed ones as new versions in one commit.
    pub fn deploy(
        &self,
        store: &dyn Store,
        sources: Vec<PlaybookSource>,
        now: Timestamp,
    ) -> Result<DeployReport, RuntimeError> {
        let mut errors = Vec::new();
        let mut checked = Vec::new();
        let mut seen = BTreeSet::new();
        for source in sources {
            match self.check(&source.origin, &source.source, 0) {
                Ok(playbook) => {
                    if !seen.insert(playbook.id.clone()) {
                        errors.push(format!(
                            "{}: playbook id `{}` is deployed twice",
                            source.origin, playbook.id
                        ));
                    }
                    checked.push((source, playbook));
                }
                Err(RuntimeError::Invalid(mut more)) => errors.append(&mut more),
                Err(other) => return Err(other),
            }
        }
        if !errors.is_empty() {
            return Err(RuntimeError::Invalid(errors));
        }
        let mut batch = Batch::new();
        let mut report = Vec::new();
        let mut deployments = Vec::new();
        for (source, mut playbook) in checked {
            let digest = format!("{:016x}", sop_engine::stable_hash(&[&source.source]));
            let latest = store.playbook_versions(&playbook.id)?.pop();
            let (version, changed, deployed_at) = match &latest {
                Some(last) if last.digest == digest => (last.version, false, last.deployed_at),
                Some(last) => (last.version + 1, true, now),
                None => (1, true, now),
            };
            let removed_steps = match (&latest, changed) {
                (Some(last), true) => match self.get(store, &last.id, last.version) {
                    Ok(previous) => {
                        let now_has = step_ids(&playbook.steps);
                        step_ids(&previous.steps)
                            .into_iter()
                            .filter(|s| !now_has.contains(s))
                            .collect()
                    }
                    // The report is informative: an unreadable old version must not block
                    // deploying a fixed one.
                    Err(error) => {
                        tracing::warn!(playbook = %last.id, version = last.version, %error, "previous version unreadable");
                        Vec::new()
                    }
                },
                _ => Vec::new(),
            };
            if changed {
                batch.push(Op::PutPlaybook(PlaybookVersion {
                    id: playbook.id.clone(),
                    version,
                    source: source.source.clone(),
                    origin: source.origin.clone(),
                    digest,
                    deployed_at: now,
                }));
            }
            playbook.version = version;
            report.push(DeployedPlaybook {
                id: playbook.id.clone(),
                version,
                changed,
                removed_steps,
            });
            deployments.push(Deployment {
                id: playbook.id.clone(),
                version,
                tenant: source.tenant,
                account: source.account,
                playbook: Arc::new(playbook),
                deployed_at,
            });
        }
        if !batch.is_empty() {
            store.commit_durable(batch)?;
        }
        let mut current = write(&self.current);
        let mut cache = lock(&self.cache);
        for deployment in deployments {
            let deployment = Arc::new(deployment);
            cache.insert(
                (deployment.id.clone(), deployment.version),
                deployment.playbook.clone(),
            );
            current.insert(deployment.id.clone(), deployment);
        }
        Ok(DeployReport { playbooks: report })
    }

    /// The current deployments, paused ones included.
    pub fn current(&self) -> Vec<Arc<Deployment>> {
        read(&self.current).values().cloned().collect()
    }

    pub fn deployment(&self, id: &str) -> Option<Arc<Deployment>> {
        read(&self.current).get(id).cloned()
    }

    pub fn is_paused(&self, id: &str) -> bool {
        read(&self.paused).contains(id)
    }

    pub fn set_paused(&self, id: &str, paused: bool) {
        let mut set = write(&self.paused);
        if paused {
            set.insert(id.to_string());
        } else {
            set.remove(id);
        }
    }
}

/// Every step id of a step list, nested steps included, in document order.
pub fn step_ids(steps: &[Step]) -> Vec<String> {
    let mut ids = Vec::new();
    for step in steps {
        ids.push(step.id.0.clone());
        for nested in step.nested() {
            ids.extend(step_ids(nested));
        }
    }
    ids
}

fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = source.get(..offset.min(source.len())).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

// A poisoned lock only means another thread panicked mid-update of a cache; the data is
// still a valid map, so keep going rather than cascade the panic.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}
fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}
