//! The embedded sled implementation of the sop store.
