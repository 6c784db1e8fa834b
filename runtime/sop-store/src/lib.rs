//! The store trait of the sop runtime (contacts, runs, timers, events, outbox, counters), an in-memory implementation and the conformance suite every backend must pass.
