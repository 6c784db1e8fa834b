//! The plugins' key-value store, kept in the sop store (its plugin kv table), so what a plugin
//! records survives a restart: WeCom's task per idempotency key (how a mass send cut short by
//! a crash is reconciled instead of marked unknown), its customer-service message cursor,
//! Douyin's refresh token, cached access tokens.
//!
//! Each write is a commit of its own, durable with the store's next flush: at most
//! `flush_every_ms` later, and before any later at-most-once send goes out (its intent waits
//! for a flush). The runtime purges expired entries with its other retention.

use std::sync::Arc;

use sop_plugin_host::{KvError, KvStore};
use sop_store::{Batch, Op, Store, Timestamp};

/// [`KvStore`] over the sop store.
#[derive(Debug, Clone)]
pub struct StoreKv {
    store: Arc<dyn Store>,
}

impl StoreKv {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

fn at(ms: i64) -> Result<Timestamp, KvError> {
    Timestamp::from_timestamp_millis(ms)
        .ok_or_else(|| KvError(format!("time {ms} ms is out of range")))
}

fn kv_error(e: sop_store::StoreError) -> KvError {
    KvError(e.to_string())
}

impl KvStore for StoreKv {
    fn get(&self, namespace: &str, key: &str, now_ms: i64) -> Result<Option<Vec<u8>>, KvError> {
        self.store
            .kv_get(namespace, key, at(now_ms)?)
            .map_err(kv_error)
    }

    fn set(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        expires_at_ms: Option<i64>,
    ) -> Result<(), KvError> {
        let expires_at = expires_at_ms.map(at).transpose()?;
        self.store
            .commit(Batch::new().op(Op::KvSet {
                plugin: namespace.to_owned(),
                key: key.to_owned(),
                value,
                expires_at,
            }))
            .map(drop)
            .map_err(kv_error)
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<(), KvError> {
        self.store
            .commit(Batch::new().op(Op::KvDelete {
                plugin: namespace.to_owned(),
                key: key.to_owned(),
            }))
            .map(drop)
            .map_err(kv_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_expire_and_stay_in_their_namespace() {
        let store: Arc<dyn Store> = Arc::new(sop_store::MemoryStore::new());
        let kv = StoreKv::new(store.clone());
        kv.set("wecom", "task/1", b"r1".to_vec(), Some(2_000))
            .unwrap();
        kv.set("wecom", "token", b"t".to_vec(), None).unwrap();
        assert_eq!(
            kv.get("wecom", "task/1", 1_999).unwrap(),
            Some(b"r1".to_vec())
        );
        assert_eq!(kv.get("wecom", "task/1", 2_000).unwrap(), None, "expired");
        assert_eq!(kv.get("douyin", "token", 0).unwrap(), None, "other plugin");
        kv.delete("wecom", "token").unwrap();
        assert_eq!(kv.get("wecom", "token", 0).unwrap(), None);
        kv.delete("wecom", "never-set").unwrap();
        // In the store itself, where a restarted daemon finds them.
        assert_eq!(
            store.kv_get("wecom", "task/1", at(0).unwrap()).unwrap(),
            Some(b"r1".to_vec())
        );
    }

    #[test]
    fn a_sled_store_keeps_them_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store: Arc<dyn Store> =
                Arc::new(sop_store_sled::open(dir.path(), &Default::default()).unwrap());
            StoreKv::new(store.clone())
                .set("wecom", "kf/cursor", b"c42".to_vec(), None)
                .unwrap();
            store.flush().unwrap();
        }
        let store: Arc<dyn Store> =
            Arc::new(sop_store_sled::open(dir.path(), &Default::default()).unwrap());
        assert_eq!(
            StoreKv::new(store).get("wecom", "kf/cursor", 0).unwrap(),
            Some(b"c42".to_vec())
        );
    }
}
