//! Moving a waiting run to another version of its playbook, by step id mapping. Explicit
//! only: deploys never move runs.

use std::collections::BTreeMap;

use sop_engine::{RunStatus, Waiting};
use sop_store::{Batch, Check, HistoryEntry, Op, RunId, Subscription};

use crate::error::RuntimeError;
use crate::mapping::{encode_state, run_record};
use crate::registry::step_ids;
use crate::runtime::Runtime;

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub run: RunId,
    pub from: u32,
    pub to: u32,
    /// The step the run waits at, before and after the mapping.
    pub step: (String, String),
    /// Steps of the old version the new one does not have (after mapping), for operators.
    pub removed_steps: Vec<String>,
}

impl Runtime {
    /// Moves a run waiting on a timer or an event to version `to` of its playbook. Step ids
    /// are renamed by `mapping` (absent: same id). Refused, with the reason, when the run is
    /// finished, has an invocation in flight, or waits at a step the target lacks or that is
    /// of another kind there.
    pub async fn migrate_run(
        &self,
        run: RunId,
        to: u32,
        mapping: &BTreeMap<String, String>,
    ) -> Result<MigrationReport, RuntimeError> {
        let inner = &self.inner;
        let first = inner
            .store
            .run(run)?
            .ok_or_else(|| RuntimeError::UnknownRun(run.to_string()))?;
        let _lane = inner.lane(&first.subject).await;
        let loaded = inner
            .load(run)?
            .ok_or_else(|| RuntimeError::UnknownRun(run.to_string()))?;
        let target = inner
            .registry
            .get(&*inner.store, &loaded.run.playbook, to)?;
        let mut state = loaded.state.clone();
        let refuse = |why: String| Err(RuntimeError::BadRequest(format!("run {run}: {why}")));
        if !matches!(
            state.status,
            RunStatus::WaitingTimer | RunStatus::WaitingEvent
        ) || matches!(state.waiting, Some(Waiting::Retry { .. }))
        {
            return refuse(format!(
                "only runs waiting on a timer or an event can migrate (it is {:?})",
                state.status
            ));
        }
        let Some(old_step) = state.step.clone() else {
            return refuse("it is at no step".into());
        };
        let rename = |id: &str| mapping.get(id).cloned().unwrap_or_else(|| id.to_string());
        let new_step = rename(&old_step.0);
        let target_index = target.index();
        let old_index = loaded.playbook.index();
        let (Some(old_kind), Some(new_kind)) = (
            old_index
                .get(&old_step.0)
                .map(|s| std::mem::discriminant(&s.kind)),
            target_index
                .get(&new_step)
                .map(|s| std::mem::discriminant(&s.kind)),
        ) else {
            return refuse(format!(
                "step `{old_step}` (as `{new_step}`) does not exist in version {to}; map it to one that does"
            ));
        };
        if old_kind != new_kind {
            return refuse(format!(
                "step `{new_step}` of version {to} is of another kind than `{old_step}`"
            ));
        }
        let target_steps = step_ids(&target.steps);
        let removed_steps = step_ids(&loaded.playbook.steps)
            .into_iter()
            .filter(|s| !target_steps.contains(&rename(s)))
            .collect();
        let from = state.version;
        state.version = to;
        state.step = Some(sop_dsl::model::StepId(new_step.clone()));
        state.iterations = std::mem::take(&mut state.iterations)
            .into_iter()
            .map(|(k, v)| (rename(&k), v))
            .collect();
        state.outputs = std::mem::take(&mut state.outputs)
            .into_iter()
            .map(|(k, v)| (rename(&k), v))
            .collect();
        let now = inner.clock.now();
        state.updated_at = now;
        let subject = loaded.run.subject.clone();
        let mut batch = Batch::new().check(Check::RunRevision {
            run,
            expected: Some(loaded.run.revision),
        });
        // Timers keep their ids (the engine matches them by id); subscriptions follow the
        // target's goals and wait.
        batch.push(Op::UnsubscribeRun(run));
        let mut kinds = BTreeMap::new();
        if let Some(sop_dsl::model::StepKind::WaitFor(wait)) =
            target_index.get(&new_step).map(|s| &s.kind)
            && matches!(state.waiting, Some(Waiting::Event { .. }))
        {
            kinds.insert(wait.wait_for.event.0.clone(), new_step.clone());
        }
        for (position, goal) in target.goals.iter().enumerate() {
            kinds
                .entry(goal.event.0.clone())
                .or_insert_with(|| format!("goal/{position}"));
        }
        for kind in sop_engine::waited_event_kinds(&target) {
            kinds.entry(kind).or_insert_with(|| "keep".to_string());
        }
        for (event, step) in kinds {
            batch.push(Op::Subscribe(Subscription {
                subject: subject.clone(),
                event,
                run,
                step,
            }));
        }
        batch.push(Op::PutRun(run_record(
            &state,
            subject,
            loaded.run.revision + 1,
        )));
        batch.push(Op::PutRunDetail {
            run,
            detail: encode_state(&state)?,
        });
        batch.push(Op::AppendHistory {
            run,
            entry: HistoryEntry {
                at: now,
                step: Some(new_step.clone()),
                input: format!("migrate v{from} → v{to}"),
                outcome: format!("migrated at `{old_step}` → `{new_step}`"),
                gate: None,
            },
        });
        inner.store.commit(batch)?;
        tracing::info!(%run, from, to, "run migrated");
        metrics::counter!("sop_runtime_migrations_total", "playbook" => loaded.run.playbook.clone())
            .increment(1);
        Ok(MigrationReport {
            run,
            from,
            to,
            step: (old_step.0, new_step),
            removed_steps,
        })
    }
}
