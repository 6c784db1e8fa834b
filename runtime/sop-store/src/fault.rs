//! A store that fails its writes on demand, for tests of how callers react to a full or
//! read-only disk: sled reports such failures on a write (or flush) while reads keep
//! working, and so does this wrapper.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Result, StoreError};
use crate::store::Store;
use crate::write_hook::{HookedStore, WriteHook};

/// Which write failure [`FaultyStore`] injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// `ENOSPC`: [`StoreError::DiskFull`].
    DiskFull,
    /// `EROFS`/`EACCES`: [`StoreError::ReadOnly`].
    ReadOnly,
}

impl WriteFault {
    fn error(self) -> StoreError {
        match self {
            WriteFault::DiskFull => {
                StoreError::DiskFull("No space left on device (os error 28) [injected]".into())
            }
            WriteFault::ReadOnly => {
                StoreError::ReadOnly("Read-only file system (os error 30) [injected]".into())
            }
        }
    }
}

/// The hook of a [`FaultyStore`]: the fault to inject, if any, and how many writes it
/// refused.
#[derive(Debug, Default)]
pub struct WriteFaults {
    fault: Mutex<Option<WriteFault>>,
    refused: AtomicU64,
}

impl WriteHook for WriteFaults {
    fn before_write(&self) -> Result<()> {
        match *self.fault.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(fault) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(fault.error())
            }
            None => Ok(()),
        }
    }
}

/// Wraps a store; while a fault is set, `commit`, `flush`, `commit_durable` and
/// `next_run_id` fail with it and change nothing. Reads always pass through.
pub type FaultyStore<S> = HookedStore<S, WriteFaults>;

impl<S: Store> HookedStore<S, WriteFaults> {
    /// A wrapper that injects nothing until [`set_fault`](Self::set_fault).
    pub fn new(inner: S) -> Self {
        HookedStore::with_hook(inner, WriteFaults::default())
    }

    /// Starts (`Some`) or stops (`None`) failing writes.
    pub fn set_fault(&self, fault: Option<WriteFault>) {
        *self.hook().fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }

    /// How many writes were refused so far.
    pub fn refused(&self) -> u64 {
        self.hook().refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, Contact, ContactKey, MemoryStore, Op};

    #[test]
    fn writes_fail_while_the_fault_is_set_and_nothing_changes() {
        let store = FaultyStore::new(MemoryStore::new());
        let key = ContactKey::new("t", "c1");
        let now = "2026-03-02T02:00:00Z".parse().unwrap();
        let put =
            |id: &str| Batch::new().op(Op::PutContact(Contact::new(ContactKey::new("t", id), now)));
        store.commit(put("c1")).unwrap();
        store.set_fault(Some(WriteFault::DiskFull));
        assert!(matches!(
            store.commit(put("c2")),
            Err(StoreError::DiskFull(_))
        ));
        assert!(matches!(store.flush(), Err(StoreError::DiskFull(_))));
        store.set_fault(Some(WriteFault::ReadOnly));
        assert!(matches!(store.next_run_id(), Err(StoreError::ReadOnly(_))));
        // Reads keep working; the refused write left nothing behind.
        assert!(store.contact(&key).unwrap().is_some());
        assert!(
            store
                .contact(&ContactKey::new("t", "c2"))
                .unwrap()
                .is_none()
        );
        assert_eq!(store.refused(), 3);
        store.set_fault(None);
        store.commit(put("c2")).unwrap();
        assert!(
            store
                .contact(&ContactKey::new("t", "c2"))
                .unwrap()
                .is_some()
        );
    }
}
