//! A clock that moves only when told to.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use chrono::TimeDelta;

use crate::{Clock, Sleep, Timestamp};

/// Virtual time for tests and simulations. Cloning shares the same time.
///
/// [`advance_to`](VirtualClock::advance_to) jumps and wakes every sleeper whose deadline
/// passed, in deadline order (ties in registration order). To let each sleeper observe
/// `now()` equal to its own deadline, use [`run_until`](VirtualClock::run_until), which steps
/// from deadline to deadline and lets woken tasks run in between.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    shared: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    now: Timestamp,
    /// Pending sleepers by (deadline, registration id).
    sleepers: BTreeMap<(Timestamp, u64), Waker>,
    next_id: u64,
    /// Bumped whenever a sleeper registers, wakes or goes away; `settle` watches it.
    activity: u64,
}

impl VirtualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        let state = State {
            now: start,
            sleepers: BTreeMap::new(),
            next_id: 0,
            activity: 0,
        };
        Self {
            shared: Arc::new(Mutex::new(state)),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts
        // and removals), so a poisoned lock is still safe to use.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves time forward by `by` (negative durations are ignored) and wakes due sleepers.
    pub fn advance(&self, by: TimeDelta) {
        let target = self.now() + by.max(TimeDelta::zero());
        self.advance_to(target);
    }

    /// Moves time to `to` if it is later than now, waking every sleeper whose deadline is at
    /// or before `to`, in deadline order. Returns how many were woken.
    pub fn advance_to(&self, to: Timestamp) -> usize {
        let woken = {
            let mut st = self.state();
            if to > st.now {
                st.now = to;
            }
            take_due(&mut st)
        };
        let n = woken.len();
        woken.into_iter().for_each(Waker::wake);
        n
    }

    /// Sets the time, also backwards (to test a stepped system clock). Sleepers whose
    /// deadline is at or before the new time are woken; the others keep waiting.
    pub fn set(&self, to: Timestamp) -> usize {
        let woken = {
            let mut st = self.state();
            st.now = to;
            take_due(&mut st)
        };
        let n = woken.len();
        woken.into_iter().for_each(Waker::wake);
        n
    }

    /// The earliest deadline anyone is sleeping on.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.state().sleepers.keys().next().map(|(d, _)| *d)
    }

    /// How many sleepers are registered.
    pub fn sleepers(&self) -> usize {
        self.state().sleepers.len()
    }

    /// Steps time from deadline to deadline up to `to`, letting the woken tasks run after
    /// each step (see [`settle`](Self::settle)), so each sleeper sees `now()` equal to its own
    /// deadline and the tasks react in deadline order. Sleepers registered by woken tasks are
    /// honoured if they fall before `to`. Returns the number of wake-ups.
    pub async fn run_until(&self, to: Timestamp) -> usize {
        let mut woken = 0;
        self.settle().await;
        while let Some(next) = self.next_deadline().filter(|d| *d <= to) {
            woken += self.advance_to(next);
            self.settle().await;
        }
        self.advance_to(to);
        self.settle().await;
        woken
    }

    /// [`run_until`](Self::run_until) `now() + by`.
    pub async fn run_for(&self, by: TimeDelta) -> usize {
        let to = self.now() + by.max(TimeDelta::zero());
        self.run_until(to).await
    }

    /// Yields to the async runtime until sleepers stop registering and waking, so tasks
    /// woken by the last advance have reached their next await. Deterministic on a
    /// current-thread runtime; on a multi-thread runtime it is a best effort.
    pub async fn settle(&self) {
        let mut quiet_rounds = 0;
        // Bounded so a task that spins on `yield_now` cannot hang a test forever.
        for _ in 0..10_000 {
            let before = self.state().activity;
            tokio::task::yield_now().await;
            if self.state().activity == before {
                quiet_rounds += 1;
                if quiet_rounds >= 3 {
                    return;
                }
            } else {
                quiet_rounds = 0;
            }
        }
    }

    /// A future that completes once the clock reaches `deadline`.
    pub fn sleep(&self, deadline: Timestamp) -> VirtualSleep {
        VirtualSleep {
            shared: Arc::clone(&self.shared),
            deadline,
            registration: None,
        }
    }
}

fn take_due(st: &mut State) -> Vec<Waker> {
    let now = st.now;
    let mut woken = Vec::new();
    while let Some(entry) = st.sleepers.first_entry() {
        if entry.key().0 > now {
            break;
        }
        woken.push(entry.remove());
    }
    if !woken.is_empty() {
        st.activity += 1;
    }
    woken
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        self.state().now
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_> {
        Box::pin(self.sleep(deadline))
    }
}

/// The future behind [`VirtualClock::sleep`]. Dropping it unregisters the sleeper.
#[derive(Debug)]
pub struct VirtualSleep {
    shared: Arc<Mutex<State>>,
    deadline: Timestamp,
    registration: Option<u64>,
}

impl VirtualSleep {
    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Future for VirtualSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        let registration = self.registration;
        let mut st = self.state();
        if st.now >= deadline {
            if let Some(id) = registration {
                st.sleepers.remove(&(deadline, id));
            }
            st.activity += 1;
            drop(st);
            self.registration = None;
            return Poll::Ready(());
        }
        let id = match registration {
            Some(id) => id,
            None => {
                st.next_id += 1;
                st.activity += 1;
                st.next_id
            }
        };
        st.sleepers.insert((deadline, id), cx.waker().clone());
        drop(st);
        self.registration = Some(id);
        Poll::Pending
    }
}

impl Drop for VirtualSleep {
    fn drop(&mut self) {
        if let Some(id) = self.registration.take() {
            let deadline = self.deadline;
            let mut st = self.state();
            if st.sleepers.remove(&(deadline, id)).is_some() {
                st.activity += 1;
            }
        }
    }
}
