//! The runtime end to end on a virtual clock: a scripted fake plugin host and gate, the
//! memory store (and sled for restarts).

mod batch;
mod bulk;
mod flow;
mod gate;
mod harness;
mod recovery;
mod steps;
mod stories;
