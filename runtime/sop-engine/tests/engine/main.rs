//! Scenario tests of the run interpreter, driven on a virtual clock with a fake plugin.

mod driver;
mod enrollment;
mod on_error;
mod properties;
mod retries;
mod steps;
mod stories;
