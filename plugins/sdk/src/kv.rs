//! Typed values in the plugin's key-value store.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Host, HostLog};

/// Reads `key` as JSON. A value that no longer parses (written by an older plugin version)
/// is treated as absent and removed, so a cache can never wedge a plugin.
pub fn get_json<T: DeserializeOwned>(host: &dyn Host, key: &str) -> Option<T> {
    let bytes = host.kv_get(key)?;
    match serde_json::from_slice(&bytes) {
        Ok(value) => Some(value),
        Err(e) => {
            host.warn(&format!("dropping unreadable kv entry `{key}`: {e}"));
            host.kv_delete(key);
            None
        }
    }
}

/// Writes `value` as JSON under `key`, expiring after `ttl_ms` if given.
pub fn set_json<T: Serialize + ?Sized>(host: &dyn Host, key: &str, value: &T, ttl_ms: Option<u64>) {
    host.kv_set(key, crate::json::to_json(value).as_bytes(), ttl_ms);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn round_trip_and_expiry() {
        let host = FakeHost::new(1_000);
        set_json(&host, "k", &vec![1, 2], Some(500));
        assert_eq!(get_json::<Vec<i32>>(&host, "k"), Some(vec![1, 2]));
        host.advance_ms(500);
        assert_eq!(get_json::<Vec<i32>>(&host, "k"), None);
    }

    #[test]
    fn unreadable_entries_are_dropped() {
        let host = FakeHost::new(0);
        host.kv_set("k", b"not json", None);
        assert_eq!(get_json::<Vec<i32>>(&host, "k"), None);
        assert_eq!(host.kv_get("k"), None);
    }
}
