//! Batches: every state transition of the engine is one atomic commit.

use sop_clock::Timestamp;

use crate::contact::{Contact, ContactKey};
use crate::event::EventRecord;
use crate::flow::{FlowKey, FlowRecord};
use crate::group::{Group, GroupKey};
use crate::outbox::{IdempotencyKey, OutboxEntry};
use crate::playbook::PlaybookVersion;
use crate::run::{HistoryEntry, Run, RunId, Subject};
use crate::timer::{Subscription, Timer, TimerKey};
use crate::touch::TouchKey;

/// A write. Indexes are maintained by the store; the engine names only domain records.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Inserts or replaces a contact (and moves it in the inactivity index).
    PutContact(Contact),
    DeleteContact(ContactKey),
    /// Inserts or replaces a run (and moves it in the playbook/state and subject indexes).
    PutRun(Run),
    /// Removes a run, its indexes, detail, history, timers and subscriptions.
    DeleteRun(RunId),
    /// Sets the run's detail: opaque bytes owned by the caller (the engine's encoded run
    /// state), kept beside the indexed [`Run`] record.
    PutRunDetail {
        run: RunId,
        detail: Vec<u8>,
    },
    /// Appends to a run's history; the sequence number is assigned at commit.
    AppendHistory {
        run: RunId,
        entry: HistoryEntry,
    },
    /// Sets or moves the timer named by `timer.key`.
    PutTimer(Timer),
    /// Cancels a timer; cancelling a missing timer is not an error.
    CancelTimer(TimerKey),
    Subscribe(Subscription),
    Unsubscribe {
        subject: Subject,
        event: String,
        run: RunId,
    },
    /// Removes every subscription of a run (its wait ended, or it was cancelled).
    UnsubscribeRun(RunId),
    /// Records a platform dedupe id as seen.
    MarkEventSeen {
        source: String,
        dedupe_id: String,
        at: Timestamp,
    },
    /// Retention: forgets dedupe ids seen before `before`.
    ForgetEventsSeenBefore(Timestamp),
    /// Appends to the event log; the sequence number is assigned at commit.
    AppendEvent(EventRecord),
    /// Inserts or replaces the entry at `entry.key`.
    PutOutbox(OutboxEntry),
    /// Counts one touch at `at`.
    RecordTouch {
        key: TouchKey,
        at: Timestamp,
    },
    /// Retention: forgets this bucket's touches before `before`.
    ForgetTouchesBefore {
        key: TouchKey,
        before: Timestamp,
    },
    SetCronLastFire {
        playbook: String,
        trigger: String,
        at: Timestamp,
    },
    KvSet {
        plugin: String,
        key: String,
        value: Vec<u8>,
        expires_at: Option<Timestamp>,
    },
    KvDelete {
        plugin: String,
        key: String,
    },
    /// Removes plugin values expired at `now`.
    KvPurgeExpired {
        now: Timestamp,
    },
    /// Inserts or replaces a customer group.
    PutGroup(Group),
    DeleteGroup(GroupKey),
    /// Records a deployed playbook version (replacing the same id and version).
    PutPlaybook(PlaybookVersion),
    /// Inserts or replaces a flow-control record (and moves it in the due and run indexes).
    PutFlow(FlowRecord),
    /// Removes a flow-control record and its index entries.
    DeleteFlow(FlowKey),
}

/// A condition checked at commit, before anything is written; if one fails the whole batch
/// is refused with [`StoreError::Conflict`](crate::StoreError::Conflict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The dedupe id has not been seen (first delivery of a platform event).
    EventUnseen { source: String, dedupe_id: String },
    /// The run's stored revision is `expected` (`None`: the run does not exist).
    RunRevision { run: RunId, expected: Option<u64> },
    /// No outbox entry exists under this key (the action was never attempted).
    OutboxAbsent(IdempotencyKey),
    /// The subject has no live (active or waiting) run of `playbook` (any version): the
    /// entry rule "one active run per contact", decided atomically with the enrolment.
    NoLiveRun { subject: Subject, playbook: String },
    /// The flow record's stored revision is `expected` (`None`: no record).
    FlowRevision { key: FlowKey, expected: Option<u64> },
}

/// Checks and writes applied all-or-nothing, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub checks: Vec<Check>,
    pub ops: Vec<Op>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a write.
    pub fn op(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }

    /// Adds a check.
    pub fn check(mut self, check: Check) -> Self {
        self.checks.push(check);
        self
    }

    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.checks.is_empty()
    }
}

/// What a commit assigned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// Sequence numbers of `AppendEvent`s, in batch order.
    pub event_seqs: Vec<u64>,
    /// Sequence numbers of `AppendHistory`s, in batch order.
    pub history_seqs: Vec<(RunId, u64)>,
}
