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
//! Sends of a batched action (docs/engine.md, "Batched sends") carry a hint of their merge
//! key: the send whose turn comes takes the account's other waiting sends with the same
//! hint along ([`Taken::with`]), up to the batch's size, in the same step, so that two
//! places never split one batch between them.
//!
//! Nothing here is durable, and nothing needs to be: a run awaiting a result that has no
//! outbox intent is dispatched again by recovery after a crash, as a spawned task was.
//! Event-driven sends (a welcome) never wait here.

use std::collections::{HashMap, HashSet, VecDeque};
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

/// A waiting send: its run, its subject and, for a batched action, a hash of its merge key
/// with the most members its call may have (equal hashes are checked against the inputs
/// themselves before a call is merged).
#[derive(Debug)]
struct Waiting {
    run: RunId,
    subject: Subject,
    hint: Option<Hint>,
}

/// A batched send's merge-key hash and batch size.
pub(crate) type Hint = (u64, usize);

/// A send taken from the queue, with the sends of its batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Taken {
    pub run: RunId,
    pub subject: Subject,
    /// Sends of the same account and hint, taken along for the same call.
    pub with: Vec<(RunId, Subject)>,
}

#[derive(Debug, Default)]
struct State {
    running: usize,
    waiting: HashMap<AccountKey, VecDeque<Waiting>>,
    /// Accounts with sends waiting, in turn order; the first one's turn is on.
    turns: VecDeque<AccountKey>,
    /// Sends the account at the front has taken in its current turn.
    taken: usize,
    queued: usize,
    /// Runs waiting: a run queued again (its deferral timer fired twice) waits once.
    runs: HashSet<RunId>,
}

impl BulkQueue {
    pub fn new(limit: usize) -> Self {
        BulkQueue {
            limit: limit.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// Queues a send that rides alone (no batch hint: sends of a batched action are
    /// [`enqueue`](Self::enqueue)d). `Some`: a place was free, and the send to start in it is returned
    /// (the oldest of the account whose turn it is, not necessarily this one); it holds the
    /// place until [`finished`](Self::finished) or [`release`](Self::release).
    pub fn offer(&self, account: AccountKey, run: RunId, subject: Subject) -> Option<Taken> {
        let mut st = self.lock();
        st.enqueue(account, run, subject, None);
        let start = self.start_in(&mut st);
        self.report(&st);
        start
    }

    /// Queues sends without starting any: the sends of one commit go in together, so that
    /// the first to start finds the others of its batch waiting ([`start`](Self::start)).
    pub fn enqueue(
        &self,
        sends: impl IntoIterator<Item = (AccountKey, RunId, Subject, Option<Hint>)>,
    ) {
        let mut st = self.lock();
        for (account, run, subject, hint) in sends {
            st.enqueue(account, run, subject, hint);
        }
        self.report(&st);
    }

    /// Starts a waiting send if a place is free: the send to start, holding the place.
    pub fn start(&self) -> Option<Taken> {
        let mut st = self.lock();
        let start = self.start_in(&mut st);
        self.report(&st);
        start
    }

    fn start_in(&self, st: &mut State) -> Option<Taken> {
        if st.running >= self.limit {
            return None;
        }
        let next = st.take_turn();
        if next.is_some() {
            st.running += 1;
        }
        next
    }

    /// A running send ended: the next one to start in its place (it inherits the place), or
    /// `None` when nothing waits (the place is given back).
    pub fn finished(&self) -> Option<Taken> {
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
    fn enqueue(&mut self, account: AccountKey, run: RunId, subject: Subject, hint: Option<Hint>) {
        if !self.runs.insert(run) {
            return;
        }
        let queue = self.waiting.entry(account.clone()).or_default();
        queue.push_back(Waiting { run, subject, hint });
        if queue.len() == 1 {
            self.turns.push_back(account);
        }
        self.queued += 1;
    }

    /// The oldest waiting send of the account whose turn it is; after [`TURN`] sends, or its
    /// last, the account goes to the back of the line (if it has more) or leaves it.
    fn take_turn(&mut self) -> Option<Taken> {
        let account = self.turns.front()?.clone();
        let queue = self.waiting.get_mut(&account)?;
        let next = queue.pop_front().map(|send| {
            let mut with = Vec::new();
            if let Some((hint, size)) = send.hint {
                queue.retain_mut(|other| {
                    let joins = with.len() + 1 < size && other.hint.is_some_and(|h| h.0 == hint);
                    if joins {
                        with.push((other.run, other.subject.clone()));
                    }
                    !joins
                });
            }
            Taken {
                run: send.run,
                subject: send.subject,
                with,
            }
        });
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
        if let Some(taken) = &next {
            self.queued -= 1 + taken.with.len();
            self.runs.remove(&taken.run);
            for (run, _) in &taken.with {
                self.runs.remove(run);
            }
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

    fn alone(n: u64, id: &str) -> Option<Taken> {
        Some(Taken {
            run: run(n),
            subject: subject(id),
            with: Vec::new(),
        })
    }

    #[test]
    fn a_batched_send_takes_its_accounts_sends_of_the_same_hint_along() {
        let q = BulkQueue::new(1);
        let h1 = Some((1, 3));
        q.enqueue([
            (key("a"), run(1), subject("1"), h1),
            (key("b"), run(2), subject("2"), None),
            (key("a"), run(3), subject("3"), h1),
            (key("a"), run(4), subject("4"), Some((2, 3))),
            (key("a"), run(5), subject("5"), h1),
            (key("a"), run(6), subject("6"), h1),
        ]);
        // Queued again (its deferral timer fired twice): it waits once.
        q.enqueue([(key("a"), run(6), subject("6"), h1)]);
        assert_eq!(q.counts(), (0, 6));
        // Three to a call: 1 takes 3 and 5 along; 6 waits for the next one.
        assert_eq!(
            q.start(),
            Some(Taken {
                run: run(1),
                subject: subject("1"),
                with: vec![(run(3), subject("3")), (run(5), subject("5"))],
            })
        );
        assert_eq!(q.counts(), (1, 3));
        assert_eq!(q.start(), None, "one place");
        assert_eq!(q.finished(), alone(4, "4"));
        assert_eq!(q.finished(), alone(6, "6"));
        assert_eq!(q.finished(), alone(2, "2"));
        assert_eq!(q.finished(), None);
        assert_eq!(q.counts(), (0, 0));
    }

    #[test]
    fn sends_start_up_to_the_limit_and_the_rest_wait() {
        let q = BulkQueue::new(2);
        assert_eq!(q.offer(key("a"), run(1), subject("1")), alone(1, "1"));
        assert_eq!(q.offer(key("a"), run(2), subject("2")), alone(2, "2"));
        assert_eq!(q.offer(key("a"), run(3), subject("3")), None);
        assert_eq!(q.counts(), (2, 1));
        // The place passes to the waiting send, then is given back.
        assert_eq!(q.finished(), alone(3, "3"));
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
            .map(|t| t.run.0)
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
        assert_eq!(q.offer(key("d"), run(4), subject("4")), alone(2, "2"));
        assert_eq!(q.counts(), (1, 2));
        assert_eq!(q.finished(), alone(3, "3"));
        assert_eq!(q.finished(), alone(4, "4"));
        assert_eq!(q.finished(), None);
        assert_eq!(q.counts(), (0, 0));
    }
}
