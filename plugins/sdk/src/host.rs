//! The host calls a plugin may make, behind a trait so platform logic runs natively in tests.
//!
//! Inside the component, [`WasmHost`] forwards to the WIT imports. In unit tests,
//! [`crate::testing::FakeHost`] answers from recorded responses and an in-memory store.

use crate::{FetchError, HttpRequest, HttpResponse, Level};

/// Everything a plugin can ask of the runtime: HTTP, its key-value store, the clock, logs.
pub trait Host {
    /// Sends one HTTP request through the host's filtered client.
    fn fetch(&self, request: &HttpRequest) -> Result<HttpResponse, FetchError>;
    /// Reads a value from the plugin's private store.
    fn kv_get(&self, key: &str) -> Option<Vec<u8>>;
    /// Writes a value; with `ttl_ms` it disappears after that long.
    fn kv_set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>);
    /// Removes a value.
    fn kv_delete(&self, key: &str);
    /// The runtime's clock, Unix milliseconds (virtual in simulations).
    fn now_ms(&self) -> i64;
    /// A structured log line attributed to the current invocation.
    fn log(&self, level: Level, message: &str);
}

/// The real host: the component's imports.
#[derive(Debug, Clone, Copy, Default)]
pub struct WasmHost;

impl Host for WasmHost {
    fn fetch(&self, request: &HttpRequest) -> Result<HttpResponse, FetchError> {
        crate::bindings::sop::plugin::http::fetch(request)
    }

    fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        crate::bindings::sop::plugin::kv::get(key)
    }

    fn kv_set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) {
        crate::bindings::sop::plugin::kv::set(key, value, ttl_ms);
    }

    fn kv_delete(&self, key: &str) {
        crate::bindings::sop::plugin::kv::delete(key);
    }

    fn now_ms(&self) -> i64 {
        crate::bindings::sop::plugin::clock::now_ms()
    }

    fn log(&self, level: Level, message: &str) {
        crate::bindings::sop::plugin::logging::log(level, message);
    }
}

/// Logging shorthands over any [`Host`].
pub trait HostLog {
    /// Logs at `debug`.
    fn debug(&self, message: &str);
    /// Logs at `info`.
    fn info(&self, message: &str);
    /// Logs at `warn`.
    fn warn(&self, message: &str);
}

impl<H: Host + ?Sized> HostLog for H {
    fn debug(&self, message: &str) {
        self.log(Level::Debug, message);
    }

    fn info(&self, message: &str) {
        self.log(Level::Info, message);
    }

    fn warn(&self, message: &str) {
        self.log(Level::Warn, message);
    }
}
