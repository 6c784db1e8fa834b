//! The sled backend passes the store contract, the model comparison with reopens between
//! operations, and survives reopen.

use proptest::prelude::*;
use sop_store::{conformance, model};
use sop_store_sled::{SledOptions, SledStore, open};
use tempfile::TempDir;

fn fresh(dirs: &mut Vec<TempDir>) -> SledStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path(), &SledOptions::default()).expect("open");
    dirs.push(dir);
    store
}

#[test]
fn sled_store_conforms() {
    let mut dirs = Vec::new();
    conformance::run_all(|| fresh(&mut dirs));
}

#[test]
fn sled_store_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    conformance::survives_reopen(|| open(dir.path(), &SledOptions::default()).unwrap());
}

#[test]
fn a_store_from_a_newer_binary_is_refused() {
    use sop_store::OrderedKv;
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), &SledOptions::default()).unwrap());
    // Stamp the format marker as a future version would.
    let kv = sop_store_sled::SledKv::open(dir.path(), &SledOptions::default()).unwrap();
    let marker = {
        let mut k = vec![0x00];
        k.extend_from_slice(b"format\x00\x01");
        k
    };
    assert_eq!(kv.get(&marker).unwrap(), Some(vec![sop_store::FORMAT]));
    kv.apply(vec![(marker, Some(vec![sop_store::FORMAT + 1]))])
        .unwrap();
    kv.flush().unwrap();
    drop(kv);
    let err = open(dir.path(), &SledOptions::default()).unwrap_err();
    assert!(
        matches!(err, sop_store::StoreError::UnsupportedVersion { .. }),
        "{err}"
    );
}

#[test]
fn a_format_1_store_is_read_and_restamped() {
    use sop_store::{OrderedKv, RunId, Store};
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), &SledOptions::default()).unwrap());
    // What a format-1 binary left: its marker and an uncompressed run detail.
    let kv = sop_store_sled::SledKv::open(dir.path(), &SledOptions::default()).unwrap();
    let marker = {
        let mut k = vec![0x00];
        k.extend_from_slice(b"format\x00\x01");
        k
    };
    let detail_key = {
        let mut k = vec![0x14];
        k.extend_from_slice(&7u64.to_be_bytes());
        k
    };
    let detail = b"\x01{\"status\":\"waiting_event\"}".to_vec();
    let mut v1 = vec![1, detail.len() as u8];
    v1.extend_from_slice(&detail);
    kv.apply(vec![
        (marker.clone(), Some(vec![1])),
        (detail_key, Some(v1)),
    ])
    .unwrap();
    kv.flush().unwrap();
    drop(kv);
    let store = open(dir.path(), &SledOptions::default()).unwrap();
    assert_eq!(store.run_detail(RunId(7)).unwrap(), Some(detail));
    store.flush().unwrap();
    drop(store);
    let kv = sop_store_sled::SledKv::open(dir.path(), &SledOptions::default()).unwrap();
    assert_eq!(kv.get(&marker).unwrap(), Some(vec![sop_store::FORMAT]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn sled_store_matches_the_model_across_reopens(ops in model::ops(true)) {
        let dir = tempfile::tempdir().unwrap();
        model::check(&ops, || open(dir.path(), &SledOptions::default()).unwrap());
    }
}
