//! The durable scheduler: runs the pure engine (`sop-engine`) against the store, the clock,
//! the policy gate and the plugins. See `docs/engine.md`.
