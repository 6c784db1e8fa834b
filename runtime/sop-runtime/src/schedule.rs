//! The trigger loop: cron and inactivity-check fires from `sop-triggers`, enrolled through
//! the entry rules, each subject once per fire; the fire's watermark is committed after its
//! last page, so a crash mid-fire repeats the fire and the per-subject keys keep it single.

use std::sync::Arc;

use sop_store::{Batch, Store};
use sop_triggers::{CronFire, Deployed, InactivityCursor};

use crate::error::RuntimeError;
use crate::registry::Deployment;
use crate::runtime::{EnrollRequest, ManualReceipt, Runtime};

impl Runtime {
    /// Sleeps until the next fire of any deployed schedule (or a deploy), then enrols.
    pub(crate) async fn trigger_loop(self) -> Result<(), RuntimeError> {
        let inner = self.inner.clone();
        loop {
            let now = inner.clock.now();
            let deployments: Vec<Arc<Deployment>> = inner
                .registry
                .current()
                .into_iter()
                .filter(|d| !inner.registry.is_paused(&d.id))
                .collect();
            let deployed = deployed(&deployments);
            let fires =
                sop_triggers::due_cron_fires(&*inner.store, &deployed, now, &inner.config.cron)?;
            for fire in fires {
                match self.fire(&fire, &deployments).await {
                    Ok(()) => {}
                    Err(RuntimeError::Store(e)) => return Err(RuntimeError::Store(e)),
                    Err(error) => {
                        // A playbook problem the checker missed: skip this fire, keep the
                        // others going.
                        tracing::error!(playbook = %fire.playbook, %error, "fire skipped");
                        inner.store.commit(Batch::new().op(fire.commit.clone()))?;
                    }
                }
            }
            let next = sop_triggers::next_cron_fire(&deployed, &*inner.store)?;
            match next {
                // Already due (a fire just committed moved its watermark): go round again.
                Some(at) if at <= now => {}
                Some(at) => {
                    tokio::select! {
                        () = inner.clock.sleep_until(at) => {}
                        () = inner.triggers_changed.notified() => {}
                    }
                }
                None => inner.triggers_changed.notified().await,
            }
        }
    }

    /// Enrols one fire's subjects page by page, then commits its watermark.
    async fn fire(
        &self,
        fire: &CronFire,
        deployments: &[Arc<Deployment>],
    ) -> Result<(), RuntimeError> {
        let inner = &self.inner;
        let store: &dyn Store = &*inner.store;
        let page = inner.config.audience_page;
        let mut receipt = ManualReceipt::default();
        if let Some(deployment) = deployments.iter().find(|d| d.id == fire.playbook) {
            let this = deployed(std::slice::from_ref(deployment))[0];
            if let Some(mut pager) = fire.audience(store, this).map_err(trigger_error)? {
                loop {
                    let enrollments = pager.next_page(page)?;
                    if enrollments.is_empty() {
                        break;
                    }
                    self.enroll(requests(enrollments), &mut receipt).await?;
                }
            } else if let Some(mut cursor) = InactivityCursor::for_fire(fire) {
                loop {
                    let (enrollments, next) =
                        sop_triggers::inactive_page(store, &this, &cursor, page)
                            .map_err(trigger_error)?;
                    self.enroll(requests(enrollments), &mut receipt).await?;
                    match next {
                        Some(next) => cursor = next,
                        None => break,
                    }
                }
            }
        }
        inner.store.commit(Batch::new().op(fire.commit.clone()))?;
        tracing::info!(playbook = %fire.playbook, trigger = %fire.trigger, enrolled = receipt.enrolled.len(),
            skipped = receipt.skipped.len(), "schedule fired");
        Ok(())
    }
}

fn deployed(deployments: &[Arc<Deployment>]) -> Vec<Deployed<'_>> {
    deployments
        .iter()
        .map(|d| Deployed {
            id: &d.id,
            version: d.version,
            playbook: &d.playbook,
            tenant: &d.tenant,
            account: &d.account,
            deployed_at: d.deployed_at,
        })
        .collect()
}

fn requests(enrollments: Vec<sop_triggers::Enrollment>) -> Vec<EnrollRequest> {
    enrollments
        .into_iter()
        .map(|e| EnrollRequest {
            playbook: e.playbook.clone(),
            subject: e.store_subject(),
            dedupe: e.dedupe_key(),
            cause: e.cause,
        })
        .collect()
}

fn trigger_error(error: sop_triggers::TriggerError) -> RuntimeError {
    match error {
        sop_triggers::TriggerError::Store(e) => RuntimeError::Store(e),
        other => RuntimeError::BadRequest(other.to_string()),
    }
}
