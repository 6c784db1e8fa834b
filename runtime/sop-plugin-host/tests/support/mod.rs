//! Shared test support: guest builds, a loopback HTTP server, host set-up.
#![allow(dead_code)]

pub mod common;
pub mod guests;
pub mod server;
