//! Plugin key-value storage (token caches and the like).
//!
//! The host always passes the calling plugin's name as the namespace; the guest only ever names
//! keys, so one plugin cannot reach another's entries whatever key it makes up.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;

/// A failure of the backing store. It fails the plugin call that hit it.
#[derive(Debug, thiserror::Error)]
#[error("key-value store: {0}")]
pub struct KvError(pub String);

/// Storage behind the `kv` import, namespaced per plugin.
///
/// Expiry is decided by the caller's clock: `expires_at_ms` is absolute Unix time and `get`
/// receives the current time, so stores never read a clock of their own.
pub trait KvStore: Send + Sync + Debug {
    /// The live value of `key` in `namespace`, if any.
    fn get(&self, namespace: &str, key: &str, now_ms: i64) -> Result<Option<Vec<u8>>, KvError>;
    /// Stores `value`, replacing any previous one; `expires_at_ms` of `None` keeps it until deleted.
    fn set(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        expires_at_ms: Option<i64>,
    ) -> Result<(), KvError>;
    /// Removes `key` from `namespace`; removing a missing key is not an error.
    fn delete(&self, namespace: &str, key: &str) -> Result<(), KvError>;
}

#[derive(Debug, Clone)]
struct Entry {
    value: Vec<u8>,
    expires_at_ms: Option<i64>,
}

/// Keyed by (namespace, key) as separate fields so no key spelling can cross namespaces.
type Entries = HashMap<(String, String), Entry>;

/// An in-memory [`KvStore`]; contents are lost on restart.
#[derive(Debug, Default)]
pub struct MemoryKv {
    entries: Mutex<Entries>,
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Entries>, KvError> {
        self.entries
            .lock()
            .map_err(|_| KvError("in-memory store poisoned by an earlier panic".into()))
    }
}

impl KvStore for MemoryKv {
    fn get(&self, namespace: &str, key: &str, now_ms: i64) -> Result<Option<Vec<u8>>, KvError> {
        let mut entries = self.lock()?;
        let id = (namespace.to_owned(), key.to_owned());
        match entries.get(&id) {
            Some(entry) if entry.expires_at_ms.is_some_and(|at| at <= now_ms) => {
                entries.remove(&id);
                Ok(None)
            }
            Some(entry) => Ok(Some(entry.value.clone())),
            None => Ok(None),
        }
    }

    fn set(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        expires_at_ms: Option<i64>,
    ) -> Result<(), KvError> {
        self.lock()?.insert(
            (namespace.to_owned(), key.to_owned()),
            Entry {
                value,
                expires_at_ms,
            },
        );
        Ok(())
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<(), KvError> {
        self.lock()?.remove(&(namespace.to_owned(), key.to_owned()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_never_share_keys() {
        let kv = MemoryKv::new();
        kv.set("wecom", "token", b"secret".to_vec(), None).unwrap();
        assert_eq!(kv.get("douyin", "token", 0).unwrap(), None);
        assert_eq!(
            kv.get("wecom", "token", 0).unwrap().as_deref(),
            Some(&b"secret"[..])
        );
    }

    #[test]
    fn entries_expire_at_their_deadline() {
        let kv = MemoryKv::new();
        kv.set("p", "k", b"v".to_vec(), Some(1_000)).unwrap();
        assert!(kv.get("p", "k", 999).unwrap().is_some());
        assert_eq!(kv.get("p", "k", 1_000).unwrap(), None);
    }

    #[test]
    fn delete_removes_and_tolerates_missing_keys() {
        let kv = MemoryKv::new();
        kv.set("p", "k", b"v".to_vec(), None).unwrap();
        kv.delete("p", "k").unwrap();
        kv.delete("p", "never-set").unwrap();
        assert_eq!(kv.get("p", "k", 0).unwrap(), None);
    }
}
