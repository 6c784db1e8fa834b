//! The one source of time for sop: a real clock and a virtual clock for tests and simulations.
//!
//! Every time decision in the runtime (timers, cron, quiet hours, caps, TTLs) asks a [`Clock`]
//! for "now" and awaits [`Clock::sleep_until`] instead of calling `SystemTime::now`,
//! `Instant::now` or `tokio::time::sleep`. Production wires [`SystemClock`]; tests and
//! `sop simulate` wire [`VirtualClock`], which only moves when told to, so a 30-day story
//! runs in milliseconds and deterministically.
//!
//! ```
//! use sop_clock::{Clock, VirtualClock};
//! use chrono::{TimeDelta, TimeZone, Utc};
//!
//! let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
//! let clock = VirtualClock::new(start);
//! clock.advance(TimeDelta::days(30));
//! assert_eq!(clock.now(), start + TimeDelta::days(30));
//! ```

mod system;
mod virtual_clock;

use std::future::Future;
use std::pin::Pin;

pub use chrono::{DateTime, TimeDelta, Utc};
pub use system::SystemClock;
pub use virtual_clock::{VirtualClock, VirtualSleep};

/// A UTC instant. Local times (cron, quiet hours) are derived from it with a time zone.
pub type Timestamp = DateTime<Utc>;

/// A boxed future returned by [`Clock::sleep_until`]; boxed so the trait stays object-safe
/// and the engine can hold an `Arc<dyn Clock>`.
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Where time comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;

    /// Completes once `now() >= deadline`. A deadline in the past completes at once.
    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_>;

    /// Unix time in milliseconds, as the plugin interface's `now-ms` reports it.
    fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_> {
        (**self).sleep_until(deadline)
    }
}
