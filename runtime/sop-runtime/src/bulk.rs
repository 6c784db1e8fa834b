//! Admission of bulk sends (runs an operator, a schedule or a scan started): at most
//! `bulk_in_flight` of them are dispatched at once; the rest wait here as a run id and a
//! subject, in a queue per account, and are taken round robin over the accounts, up to
//! [`TURN`] sends an account at a time.
//!
//! Why: a started broadcast used to spawn one dispatch task per run. Each waited (for its
//! rate slot, its lane, a flush) holding its future and invocation, roughly 11 KB by
//! estimate: a 1,000,000-contact broadcast over 500 accounts reached 7.7 GB in 8 minutes. Queued here, a
//! send is its run and subject; its invocation is read back from the run when its turn comes.
//! Round robin keeps every account's pacing supplied however the runs were enrolled (a
//! broadcast enrols account by account). A turn takes several sends of one account because
//! they were enrolled together: their runs lie side by side in the store, and reading them
//! one after another stays in the same pages of its cache.
//!
//! Nothing here is durable, and nothing needs to be: a run awaiting a result that has no
//! outbox intent is dispatched again by recovery after a crash, as a spawned task was.
//! Event-driven sends (a welcome) never wait here.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use sop_store::{RunId, Subject};

/// Sends an account's turn takes, at most. Small enough that 4,096 places cover 256 accounts
/// (10,000 sends/s of WeCom's hourly pace), large enough to read neighbouring runs together.
pub(crate) const TURN: usize = 16;

/// The pacing key of a send: (plugin, account).
pub(crate) type AccountKey = (String, String);

/// Bulk dispatches running and waiting.
#[derive(Debug)]
pub(crate) struct BulkQueue {
    limit: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    running: usize,
    waiting: HashMap<AccountKey, VecDeque<(RunId, Subject)>>,
    /// Accounts with sends waiting, in turn order; the first one's turn is on.
    turns: VecDeque<AccountKey>,
    /// Sends the account at the front has taken in its current turn.
    taken: usize,
    queued: usize,
}

impl BulkQueue {
    pub fn new(limit: usize) -> Self {
        BulkQueue {
            limit: limit.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// Queues a send. `Some`: a place was free, and the send to start in it is returned
    /// (the oldest of the account whose turn it is, not necessarily this one); it holds the
    /// place until [`finished`](Self::finished) or [`release`](Self::release).
    pub fn offer(
        &self,
        account: AccountKey,
        run: RunId,
        subject: Subject,
    ) -> Option<(RunId, Subject)> {
        let mut st = self.lock();
        let queue = st.waiting.entry(account.clone()).or_default();
        queue.push_back((run, subject));
        if queue.len() == 1 {
            st.turns.push_back(account);
        }
        st.queued += 1;
        let start = if st.running < self.limit {
            let next = st.take_turn();
            if next.is_some() {
                st.running += 1;
            }
            next
        } else {
            None
        };
        self.report(&st);
        start
    }

    /// A running send ended: the next one to start in its place (it inherits the place), or
    /// `None` when nothing waits (the place is given back).
    pub fn finished(&self) -> Option<(RunId, Subject)> {
        let mut st = self.lock();
        let next = st.take_turn();
        if next.is_none() {
            st.running = st.running.saturating_sub(1);
        }
        self.report(&st);
        next
    }

    /// Gives a place back without taking the next send (its dispatch was dropped midway: the
    /// runtime is stopping). Sends still waiting start with the next offer.
    pub fn release(&self) {
        let mut st = self.lock();
        st.running = st.running.saturating_sub(1);
        self.report(&st);
    }

    /// (running, waiting).
    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize) {
        let st = self.lock();
        (st.running, st.queued)
    }

    fn report(&self, st: &State) {
        metrics::gauge!("sop_runtime_bulk_running").set(st.running as f64);
        metrics::gauge!("sop_runtime_bulk_waiting").set(st.queued as f64);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// The oldest waiting send of the account whose turn it is; after [`TURN`] sends, or its
    /// last, the account goes to the back of the line (if it has more) or leaves it.
    fn take_turn(&mut self) -> Option<(RunId, Subject)> {
        let account = self.turns.front()?.clone();
        let queue = self.waiting.get_mut(&account)?;
        let next = queue.pop_front();
        let left = queue.len();
        self.taken += 1;
        if left == 0 || self.taken >= TURN {
            self.taken = 0;
            self.turns.pop_front();
            if left == 0 {
                self.waiting.remove(&account);
            } else {
                self.turns.push_back(account);
            }
        }
        if next.is_some() {
            self.queued -= 1;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sop_store::ContactKey;

    fn key(account: &str) -> AccountKey {
        ("wecom".into(), account.into())
    }

    fn subject(id: &str) -> Subject {
        Subject::Contact(ContactKey::new("t", id))
    }

    fn run(n: u64) -> RunId {
        RunId(n)
    }

    #[test]
    fn sends_start_up_to_the_limit_and_the_rest_wait() {
        let q = BulkQueue::new(2);
        assert_eq!(
            q.offer(key("a"), run(1), subject("1")),
            Some((run(1), subject("1")))
        );
        assert_eq!(
            q.offer(key("a"), run(2), subject("2")),
            Some((run(2), subject("2")))
        );
        assert_eq!(q.offer(key("a"), run(3), subject("3")), None);
        assert_eq!(q.counts(), (2, 1));
        // The place passes to the waiting send, then is given back.
        assert_eq!(q.finished(), Some((run(3), subject("3"))));
        assert_eq!(q.counts(), (2, 0));
        assert_eq!(q.finished(), None);
        assert_eq!(q.finished(), None);
        assert_eq!(q.counts(), (0, 0));
        assert!(q.offer(key("a"), run(4), subject("4")).is_some());
    }

    #[test]
    fn waiting_accounts_take_turns_of_several_sends_whatever_the_order_of_arrival() {
        let q = BulkQueue::new(1);
        assert!(q.offer(key("a"), run(0), subject("0")).is_some());
        let turn = TURN as u64;
        // Account a: 2.5 turns' worth, b: 1 turn and 1, c: 1 send.
        for n in 1..=(2 * turn + turn / 2) {
            assert_eq!(q.offer(key("a"), run(n), subject("a")), None);
        }
        for n in 1000..1000 + turn + 1 {
            assert_eq!(q.offer(key("b"), run(n), subject("b")), None);
        }
        assert_eq!(q.offer(key("c"), run(2000), subject("c")), None);
        let order: Vec<u64> = std::iter::from_fn(|| q.finished())
            .map(|(r, _)| r.0)
            .collect();
        let mut expected: Vec<u64> = (1..=turn).collect();
        expected.extend(1000..1000 + turn);
        expected.push(2000);
        expected.extend(turn + 1..=2 * turn);
        expected.push(1000 + turn);
        expected.extend(2 * turn + 1..=2 * turn + turn / 2);
        assert_eq!(order, expected);
        assert_eq!(q.counts(), (0, 0));
    }

    #[test]
    fn a_free_place_goes_to_the_account_whose_turn_it_is() {
        let q = BulkQueue::new(1);
        assert!(q.offer(key("a"), run(1), subject("1")).is_some());
        assert_eq!(q.offer(key("b"), run(2), subject("2")), None);
        assert_eq!(q.offer(key("c"), run(3), subject("3")), None);
        // A dispatch dropped midway gives its place back; the next offer fills it with the
        // oldest waiting send, not with itself.
        q.release();
        assert_eq!(
            q.offer(key("d"), run(4), subject("4")),
            Some((run(2), subject("2")))
        );
        assert_eq!(q.counts(), (1, 2));
        assert_eq!(q.finished(), Some((run(3), subject("3"))));
        assert_eq!(q.finished(), Some((run(4), subject("4"))));
        assert_eq!(q.finished(), None);
        assert_eq!(q.counts(), (0, 0));
    }
}
