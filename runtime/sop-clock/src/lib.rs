//! The one source of time for sop: a real clock and a virtual clock for tests and simulations.
