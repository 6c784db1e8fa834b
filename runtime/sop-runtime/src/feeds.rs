//! Outcomes fed to many runs in one commit.
//!
//! The members of a merged call (`batch.rs`) get their shares of one outcome at about the
//! same moment, and each share fed alone is a commit of its own: a million-contact broadcast
//! made a million commits when its tasks were confirmed. Fed through here, the outcomes
//! waiting when the feeder comes round are advanced into one transaction and committed once,
//! as the call's results are. Nothing waits to be grouped: an outcome that finds no feeder
//! running is fed by its own task (after one yield, so that the members woken by the same
//! answer can queue; alone it goes on its lane, as before); outcomes that
//! arrive while one feeds queue up and go in its next group, so groups grow with the load.
//! A feeder whose own outcome is done hands the queue to a task of its own.
//!
//! The runs are not on their lanes: a run changed meanwhile fails the group's revision check,
//! and then every outcome of the group is fed alone, on its lane, as before.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use sop_engine::Input;
use sop_store::{Op, RunId, StoreError};
use tokio::sync::oneshot;

use crate::error::RuntimeError;
use crate::runtime::{Inner, Loaded};
use crate::tx::Tx;

/// Most outcomes in one commit: bounds how long a group holds the store's commit lock, and
/// keeps a group's writes (14 keys and about 0.9 KB an outcome) under the sled backend's redo
/// record limit (64 KiB), above which a commit takes sled's `apply_batch` and its global lock
/// (`batch.rs`, `RESULTS_PER_COMMIT`).
const GROUP_MAX: usize = 32;

/// An acknowledgement ([`Ack`](crate::runtime::Ack)) that can wait in the queue.
pub(crate) type OwnedAck =
    Box<dyn Fn(&Inner, &Loaded) -> Result<Vec<Op>, RuntimeError> + Send + Sync>;

type Reply = oneshot::Sender<Result<Option<String>, RuntimeError>>;

struct Queued {
    run: RunId,
    input: Input,
    pre: OwnedAck,
    reply: Reply,
}

/// Outcomes waiting for the feeder, and whether it is running.
#[derive(Default)]
pub(crate) struct FeedQueue {
    state: Mutex<(VecDeque<Queued>, bool)>,
}

impl std::fmt::Debug for FeedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.state.lock().map_or(0, |s| s.0.len());
        f.debug_struct("FeedQueue").field("waiting", &n).finish()
    }
}

impl FeedQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, (VecDeque<Queued>, bool)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether outcomes wait; if none does, the feeder stops.
    fn still_waiting(&self) -> bool {
        let mut state = self.lock();
        state.1 = !state.0.is_empty();
        state.1
    }

    /// The next group: the oldest outcomes, one per run (a run's second waits for the next
    /// group, so its inputs stay in order). `None` when nothing waits; the feeder then stops.
    fn next_group(&self) -> Option<Vec<Queued>> {
        let mut state = self.lock();
        if state.0.is_empty() {
            state.1 = false;
            return None;
        }
        // From the front only: a broadcast's outcome phase can queue a million.
        let mut runs = HashSet::new();
        let mut group = Vec::with_capacity(GROUP_MAX);
        let mut later = Vec::new();
        while group.len() < GROUP_MAX && later.len() < GROUP_MAX {
            let Some(queued) = state.0.pop_front() else {
                break;
            };
            if runs.insert(queued.run) {
                group.push(queued);
            } else {
                later.push(queued);
            }
        }
        for queued in later.into_iter().rev() {
            state.0.push_front(queued);
        }
        Some(group)
    }
}

impl Inner {
    /// Feeds `input` to run `id` like [`feed`](Inner::feed), committed together with the
    /// other outcomes waiting at the time.
    pub(crate) async fn feed_grouped(
        self: &Arc<Self>,
        id: RunId,
        input: Input,
        pre: OwnedAck,
    ) -> Result<Option<String>, RuntimeError> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut state = self.feeds.lock();
            state.0.push_back(Queued {
                run: id,
                input,
                pre,
                reply,
            });
            !std::mem::replace(&mut state.1, true)
        };
        let mut answer = answer;
        if start {
            // The other members woken by the same answer are ready to run: let them queue
            // before the first group is taken.
            tokio::task::yield_now().await;
            while let Some(group) = self.feeds.next_group() {
                self.feed_group(group).await;
                // A group's commit does not yield: let plugin calls and requests run between.
                tokio::task::yield_now().await;
                if let Ok(result) = answer.try_recv() {
                    // Others queued meanwhile: they are fed by a task, not on our time.
                    if self.feeds.still_waiting() {
                        tokio::spawn(self.clone().feed_waiting());
                    }
                    return result;
                }
            }
        }
        answer.await.unwrap_or_else(|_| {
            Err(RuntimeError::Store(StoreError::Io(
                "the outcome feeder stopped".into(),
            )))
        })
    }

    /// Feeds every group waiting, until none is.
    async fn feed_waiting(self: Arc<Self>) {
        while let Some(group) = self.feeds.next_group() {
            self.feed_group(group).await;
            tokio::task::yield_now().await;
        }
    }

    async fn feed_group(self: &Arc<Self>, group: Vec<Queued>) {
        if group.len() == 1 {
            return self.feed_each(group).await;
        }
        let now = self.clock.now();
        let mut tx = Tx::new();
        let mut ignored = Vec::with_capacity(group.len());
        for q in &group {
            match self.advance_queued(&mut tx, q, now) {
                Ok(why) => ignored.push(why),
                Err(error) => {
                    // Part of its ops may be in the transaction: each goes alone, and this
                    // one meets its error again there.
                    tracing::debug!(run = %q.run, %error, "grouped outcome failed; fed one by one");
                    return self.feed_each(group).await;
                }
            }
        }
        metrics::histogram!("sop_runtime_feed_group_size").record(group.len() as f64);
        let fed = group.into_iter().zip(ignored);
        match self.commit(tx) {
            Ok(()) => {
                for (q, ignored) in fed {
                    let _ = q.reply.send(Ok(ignored));
                }
            }
            Err(RuntimeError::Store(StoreError::Conflict(reason))) => {
                tracing::debug!(%reason, "grouped outcomes conflicted; fed one by one");
                metrics::counter!("sop_runtime_commit_conflicts_total").increment(1);
                self.feed_each(fed.map(|(q, _)| q).collect()).await;
            }
            Err(RuntimeError::Store(error)) => {
                for (q, _) in fed {
                    let _ = q.reply.send(Err(RuntimeError::Store(error.clone())));
                }
            }
            Err(error) => {
                let message = error.to_string();
                for (q, _) in fed {
                    let _ = q
                        .reply
                        .send(Err(RuntimeError::Store(StoreError::Io(message.clone()))));
                }
            }
        }
    }

    /// Feeds each outcome alone, on its run's lane.
    async fn feed_each(self: &Arc<Self>, group: Vec<Queued>) {
        for q in group {
            let result = self.feed(q.run, &q.input, &*q.pre).await;
            let _ = q.reply.send(result);
        }
    }

    /// One queued outcome advanced into the group's transaction.
    fn advance_queued(
        &self,
        tx: &mut Tx,
        q: &Queued,
        now: sop_clock::Timestamp,
    ) -> Result<Option<String>, RuntimeError> {
        let loaded = self
            .load(q.run)?
            .ok_or_else(|| RuntimeError::UnknownRun(q.run.to_string()))?;
        for op in (q.pre)(self, &loaded)? {
            tx.batch.push(op);
        }
        self.advance_into(tx, &loaded, &q.input, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(
        queue: &FeedQueue,
        run: u64,
    ) -> oneshot::Receiver<Result<Option<String>, RuntimeError>> {
        let (reply, answer) = oneshot::channel();
        let mut state = queue.lock();
        state.0.push_back(Queued {
            run: RunId(run),
            input: Input::TimerFired {
                timer: sop_engine::TimerId(format!("t{run}")),
            },
            pre: Box::new(|_, _| Ok(Vec::new())),
            reply,
        });
        state.1 = true;
        answer
    }

    fn runs(group: &[Queued]) -> Vec<u64> {
        group.iter().map(|q| q.run.0).collect()
    }

    #[test]
    fn groups_take_the_oldest_one_per_run_and_keep_the_rest_in_order() {
        let queue = FeedQueue::default();
        let _answers: Vec<_> = [1, 2, 1, 3, 2, 4]
            .into_iter()
            .chain(100..140)
            .map(|run| queued(&queue, run))
            .collect();
        let first = queue.next_group().unwrap();
        assert_eq!(
            runs(&first)[..6],
            [1, 2, 3, 4, 100, 101],
            "a run's second input waits"
        );
        assert_eq!(first.len(), GROUP_MAX);
        let second = queue.next_group().unwrap();
        assert_eq!(
            runs(&second)[..3],
            [1, 2, 128],
            "the held-back inputs go first"
        );
        let mut rest = runs(&second);
        while let Some(group) = queue.next_group() {
            rest.extend(runs(&group));
        }
        assert_eq!(rest.len(), 2 + 40 - (GROUP_MAX - 4));
        assert!(!queue.lock().1, "the feeder stops when nothing waits");
    }
}
