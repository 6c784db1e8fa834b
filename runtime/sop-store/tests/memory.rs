//! The in-memory backend passes the conformance suite and the model comparison.

use proptest::prelude::*;
use sop_store::{MemoryStore, conformance, model};

#[test]
fn memory_store_conforms() {
    conformance::run_all(MemoryStore::new);
}

#[test]
fn memory_store_survives_reopen_of_a_shared_handle() {
    // Memory has no disk; "reopen" hands out the same store to exercise the suite's logic.
    let store = std::sync::Arc::new(MemoryStore::new());
    conformance::survives_reopen(|| std::sync::Arc::clone(&store));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn memory_store_matches_the_model(ops in model::ops(false)) {
        model::check(&ops, MemoryStore::new);
    }
}
