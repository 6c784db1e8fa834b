//! The redo record: how a multi-key commit stays atomic without `Tree::apply_batch`.
//!
//! sled 0.34's `apply_batch` seals and writes the current log buffer twice per batch (before
//! and after its batch manifest), each write followed by `sync_file_range` on one of sled's
//! IO threads. At the daemon's rate of small commits that was ~11 buffer writes and syncs
//! per welcome, and a flush in progress held the lock every batch needs. Single-key writes
//! do neither: they go into the current buffer, which a flush writes once.
//!
//! So a commit of several writes first stores all of them, encoded, under one key of a tree
//! of its own, then applies them one by one. sled recovers a prefix of its log (recovery
//! stops at the first torn message), so if any write of the commit survives a crash, the
//! record written before it does too; replaying the last record at open completes the
//! commit. The record is only ever the last commit's: a commit that does not write one
//! clears it first, so an older record can never be replayed over newer writes.

use sop_store::{Result, StoreError, Write};

/// The tree that holds the record.
pub(crate) const TREE: &[u8] = b"sop-redo";
/// The record's key in that tree.
pub(crate) const KEY: &[u8] = b"last";
/// Commits whose record would be larger use `apply_batch`: its two buffer writes are small
/// next to the batch, and sled stores values beyond ~128 KiB as separate blob files.
pub(crate) const MAX_BYTES: usize = 64 * 1024;

const FORMAT: u8 = 1;
const PUT: u8 = 1;
const DELETE: u8 = 0;

/// The record's size for `writes`.
pub(crate) fn encoded_len(writes: &[Write]) -> usize {
    1 + 4
        + writes
            .iter()
            .map(|(k, v)| 4 + k.len() + 1 + v.as_ref().map_or(0, |v| 4 + v.len()))
            .sum::<usize>()
}

pub(crate) fn encode(writes: &[Write]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(writes));
    out.push(FORMAT);
    out.extend_from_slice(&len32(writes.len()).to_le_bytes());
    for (key, value) in writes {
        out.extend_from_slice(&len32(key.len()).to_le_bytes());
        out.extend_from_slice(key);
        match value {
            Some(value) => {
                out.push(PUT);
                out.extend_from_slice(&len32(value.len()).to_le_bytes());
                out.extend_from_slice(value);
            }
            None => out.push(DELETE),
        }
    }
    out
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<Write>> {
    let mut input = Reader { bytes };
    let format = input.byte()?;
    if format != FORMAT {
        return Err(corrupt(format!("unknown format {format}")));
    }
    let count = input.len()?;
    // Each write takes at least 5 bytes: a count beyond that is not a record.
    if count > input.bytes.len() / 5 {
        return Err(corrupt(format!("{count} writes in {} bytes", bytes.len())));
    }
    let mut writes = Vec::with_capacity(count);
    for _ in 0..count {
        let key = input.chunk()?.to_vec();
        let value = match input.byte()? {
            PUT => Some(input.chunk()?.to_vec()),
            DELETE => None,
            other => return Err(corrupt(format!("unknown write kind {other}"))),
        };
        writes.push((key, value));
    }
    if !input.bytes.is_empty() {
        return Err(corrupt(format!(
            "{} bytes after the writes",
            input.bytes.len()
        )));
    }
    Ok(writes)
}

fn len32(len: usize) -> u32 {
    // Records are bounded by MAX_BYTES (and sled's own limits) long before this.
    u32::try_from(len).expect("a redo record part under 4 GiB")
}

fn corrupt(reason: String) -> StoreError {
    StoreError::Corrupt {
        table: "redo",
        reason,
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(corrupt(format!(
                "truncated: {n} bytes wanted, {} left",
                self.bytes.len()
            )));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn len(&mut self) -> Result<usize> {
        let raw = self.take(4)?;
        let n = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        Ok(n as usize)
    }

    fn chunk(&mut self) -> Result<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn records_read_back_as_written(writes in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..40),
             proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200))),
            0..20,
        )) {
            let bytes = encode(&writes);
            prop_assert_eq!(bytes.len(), encoded_len(&writes));
            prop_assert_eq!(decode(&bytes).unwrap(), writes);
        }

        #[test]
        fn arbitrary_bytes_are_refused_or_read_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn damaged_records_are_corrupt() {
        let writes = vec![(b"a".to_vec(), Some(b"1".to_vec())), (b"b".to_vec(), None)];
        let bytes = encode(&writes);
        for cut in 0..bytes.len() {
            let err = decode(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, StoreError::Corrupt { table: "redo", .. }),
                "{err}"
            );
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(
            decode(&extra)
                .unwrap_err()
                .to_string()
                .contains("after the writes")
        );
        let mut kind = bytes.clone();
        kind[1 + 4 + 4 + 1] = 7;
        assert!(
            decode(&kind)
                .unwrap_err()
                .to_string()
                .contains("write kind 7")
        );
        let mut format = bytes;
        format[0] = 9;
        assert!(
            decode(&format)
                .unwrap_err()
                .to_string()
                .contains("format 9")
        );
        // A count no record of this length could hold is refused before allocating for it.
        let huge = [&[FORMAT][..], &u32::MAX.to_le_bytes()].concat();
        assert!(decode(&huge).unwrap_err().to_string().contains("writes in"));
    }
}
