//! Identifiers the engine derives deterministically, so a replay of the same inputs names the
//! same timers, subscriptions and sends.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $ty(pub String);

        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $ty {
            fn from(text: &str) -> Self {
                $ty(text.to_string())
            }
        }
    };
}

id_type!(
    /// A run, chosen by whoever enrols it (unique per store).
    RunId
);
id_type!(
    /// `run/step/iteration`: the same for every attempt of one send, distinct for every pass
    /// of a loop. Plugins hand it to platforms that de-duplicate; the outbox is keyed by it.
    IdempotencyKey
);
id_type!(
    /// `run/step/iteration/purpose`: one durable timer.
    TimerId
);
id_type!(
    /// `run/step/iteration/wait_for` or `run/goal/N`: one event subscription.
    SubscriptionId
);

impl IdempotencyKey {
    pub fn new(run: &RunId, step: &str, iteration: u32) -> Self {
        IdempotencyKey(format!("{run}/{step}/{iteration}"))
    }
}

/// The purpose of the timer that bounds the wait for an asynchronous action's outcome.
const OUTCOME_DEADLINE: &str = "outcome";

impl TimerId {
    pub fn new(run: &RunId, step: &str, iteration: u32, purpose: &str) -> Self {
        TimerId(format!("{run}/{step}/{iteration}/{purpose}"))
    }

    /// The timer that bounds the wait for the outcome of an accepted action.
    pub fn outcome_deadline(run: &RunId, step: &str, iteration: u32) -> Self {
        Self::new(run, step, iteration, OUTCOME_DEADLINE)
    }

    /// Whether a timer of this name is an outcome deadline (the runtime checks the outcome
    /// once more before feeding it).
    pub fn is_outcome_deadline(name: &str) -> bool {
        name.rsplit('/').next() == Some(OUTCOME_DEADLINE)
    }
}

impl SubscriptionId {
    pub fn wait_for(run: &RunId, step: &str, iteration: u32) -> Self {
        SubscriptionId(format!("{run}/{step}/{iteration}/wait_for"))
    }

    pub fn goal(run: &RunId, index: usize) -> Self {
        SubscriptionId(format!("{run}/goal/{index}"))
    }

    /// The run-long subscription to an event kind its `wait_for` steps wait for.
    pub fn keep(run: &RunId, kind: &str) -> Self {
        SubscriptionId(format!("{run}/keep/{kind}"))
    }
}
