//! The embedded sled implementation of the sop store.
//!
//! All tables live in **one sled tree** under table-prefixed keys (see `docs/store.md`). A
//! commit of several writes is made atomic across a crash by a redo record written before
//! its writes (`redo.rs`), not by sled's `apply_batch`, which writes and syncs two log
//! buffers per batch. Layout, indexes and encodings come from [`sop_store::KvStore`]; this
//! crate only adapts sled to [`OrderedKv`](sop_store::OrderedKv).
//!
//! Durability: sled writes commits to its log at once and fsyncs it every
//! [`SledOptions::flush_every_ms`] in the background; [`Store::flush`](sop_store::Store::flush)
//! (used by `commit_durable`) fsyncs before returning. A crash loses at most the commits of
//! the last flush interval, never part of a commit.
//!
//! ```
//! use sop_store::{Batch, Op, Store};
//! let dir = tempfile::tempdir().unwrap();
//! let store = sop_store_sled::open(dir.path(), &Default::default()).unwrap();
//! store.commit_durable(Batch::new().op(Op::SetCronLastFire {
//!     playbook: "nurture".into(),
//!     trigger: "0".into(),
//!     at: sop_clock::Timestamp::from_timestamp_millis(0).unwrap(),
//! })).unwrap();
//! ```

mod redo;
mod sled_kv;

use std::path::Path;

use sop_store::{KvStore, Result};

pub use sled_kv::{SledKv, SledOptions};

/// The sop store on sled.
pub type SledStore = KvStore<SledKv>;

/// Opens (or creates) the store in directory `path`.
pub fn open(path: &Path, options: &SledOptions) -> Result<SledStore> {
    KvStore::open(SledKv::open(path, options)?)
}
