//! The store of the sop runtime: contacts, runs and their history, timers, wait-for-event
//! subscriptions, the event log and dedupe keys, the outbox, frequency-cap touches, cron
//! state, the plugins' key-value store, customer groups and deployed playbook versions.
//!
//! The engine depends on the [`Store`] trait only. Every state transition is one
//! [`Batch`] passed to [`Store::commit`], applied all-or-nothing; see `docs/store.md` for
//! the key layout, encodings, and what the engine can rely on.
//!
//! ```
//! use sop_store::{Batch, MemoryStore, Op, Store, Timer, TimerKey};
//! use sop_clock::{TimeDelta, Timestamp};
//!
//! let store = MemoryStore::new();
//! let run = store.next_run_id().unwrap();
//! let t0 = Timestamp::from_timestamp_millis(1_700_000_000_000).unwrap();
//! let timer = Timer { key: TimerKey::new(run, "wait"), due: t0 + TimeDelta::days(1), step: None };
//! store.commit(Batch::new().op(Op::PutTimer(timer.clone()))).unwrap();
//! assert!(store.due_timers(t0, None, 10).unwrap().is_empty());
//! assert_eq!(store.due_timers(t0 + TimeDelta::days(1), None, 10).unwrap(), vec![timer]);
//! ```
//!
//! # Testing
//! With the `testing` feature, `conformance::run_all` checks any backend against the
//! contract, and `model::check` drives random operation sequences against a backend and a
//! `BTreeMap` model. Every backend calls both from its own tests.

mod batch;
mod codec;
mod contact;
mod error;
mod event;
mod fault;
mod flow;
mod group;
mod kv;
mod memory;
mod outbox;
mod playbook;
mod plugin_kv;
mod run;
mod serde_time;
mod store;
mod timer;
mod touch;
mod write_hook;

#[cfg(feature = "testing")]
pub mod conformance;
#[cfg(feature = "testing")]
pub mod model;

pub use batch::{Batch, Check, Op, Receipt};
pub use codec::FORMAT;
pub use contact::{Consent, Contact, ContactKey, FriendStatus, OptOut};
pub use error::{Result, StoreError};
pub use event::EventRecord;
pub use fault::{FaultyStore, WriteFault, WriteFaults};
pub use flow::{FlowKey, FlowRecord, HeldStart};
pub use group::{Group, GroupKey};
pub use kv::{KvStore, OrderedKv, Pair, Visit, Write};
pub use memory::{MemoryKv, MemoryStore};
pub use outbox::{Delivery, IdempotencyKey, OutboxEntry, OutboxState, OutboxStateKind};
pub use playbook::PlaybookVersion;
pub use plugin_kv::KvEntry;
pub use run::{HistoryEntry, Run, RunId, RunState, RunSummary, Subject};
pub use sop_clock::Timestamp;
pub use store::Store;
pub use timer::{Subscription, Timer, TimerKey};
pub use touch::TouchKey;
pub use write_hook::{HookedStore, WriteHook};
