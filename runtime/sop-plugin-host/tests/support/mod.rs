//! Shared test support: guest and platform-plugin builds, loopback HTTP servers, host set-up.
#![allow(dead_code)]

pub mod common;
pub mod guests;
pub mod server;
pub mod web;
