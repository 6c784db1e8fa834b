//! Value encoding: one format-version byte, then postcard.
//!
//! Every stored value starts with the version of its encoding. A binary reads every
//! version up to [`FORMAT`]; when a record changes shape, the old struct stays (renamed
//! `...V1`) with a conversion, `FORMAT` is bumped and `decode` dispatches on the byte. A
//! value with a byte above `FORMAT` was written by a newer binary and is refused with a
//! typed error rather than misread.
//!
//! Formats: 1 is postcard for every record. 2 keeps every record's shape and adds one
//! encoding for run details (`Op::PutRunDetail` bytes): `2`, the detail's length (varint),
//! then a zstd frame of it. The engine's state is JSON, about 700 bytes a waiting run, and
//! compresses to about half; details are most of a waiting run's bytes, and sled's restart
//! time grows with the bytes in its log. A detail that does not shrink is written as format 1.
//! 3 keeps every record's encoding and adds a variant at the end of `OutboxState`
//! (`PendingMember`), which a format-2 binary could not read: the bump makes such a binary
//! refuse the store instead of failing on one outbox entry.

use std::cell::RefCell;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, StoreError};

/// The newest value format this binary writes and reads.
pub const FORMAT: u8 = 3;

/// zstd level for run details: level 3 (zstd's default) gets within a few per cent of the
/// best ratio on small JSON at a fraction of the CPU.
const DETAIL_LEVEL: i32 = 3;

/// Largest detail this binary will inflate (a damaged length must not allocate gigabytes).
const MAX_DETAIL: u64 = 64 * 1024 * 1024;

pub(crate) fn encode<T: Serialize>(table: &'static str, value: &T) -> Result<Vec<u8>> {
    let mut out = vec![FORMAT];
    let body = postcard::to_stdvec(value)
        .map_err(|e| StoreError::Invalid(format!("cannot encode {table} record: {e}")))?;
    out.extend_from_slice(&body);
    Ok(out)
}

pub(crate) fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        None => Err(StoreError::Corrupt {
            table,
            reason: "empty value".into(),
        }),
        Some((&(1..=3), body)) => postcard::from_bytes(body).map_err(|e| StoreError::Corrupt {
            table,
            reason: e.to_string(),
        }),
        Some((&found, _)) => Err(StoreError::UnsupportedVersion {
            table,
            found,
            supported: FORMAT,
        }),
    }
}

/// Decodes only the leading `u64` of a value (the sequence number of a `(seq, record)`).
pub(crate) fn decode_leading_u64(table: &'static str, bytes: &[u8]) -> Result<u64> {
    match bytes.split_first() {
        Some((&(1..=3), body)) => postcard::take_from_bytes::<u64>(body)
            .map(|(n, _)| n)
            .map_err(|e| StoreError::Corrupt {
                table,
                reason: e.to_string(),
            }),
        Some((&found, _)) => Err(StoreError::UnsupportedVersion {
            table,
            found,
            supported: FORMAT,
        }),
        None => Err(StoreError::Corrupt {
            table,
            reason: "empty value".into(),
        }),
    }
}

thread_local! {
    // zstd contexts are reused: creating one per value was half of the decompression time
    // of a run detail and more of its compression.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn compress(detail: &[u8]) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let compressor = match cell.as_mut() {
            Some(c) => c,
            None => cell.insert(zstd::bulk::Compressor::new(DETAIL_LEVEL)?),
        };
        compressor.compress(detail)
    })
}

fn decompress(frame: &[u8], len: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let decompressor = match cell.as_mut() {
            Some(d) => d,
            None => cell.insert(zstd::bulk::Decompressor::new()?),
        };
        decompressor.decompress(frame, len)
    })
}

/// Encodes run detail bytes: compressed (format 2) when that is smaller, else as format 1.
pub(crate) fn encode_detail(detail: &[u8]) -> Result<Vec<u8>> {
    let frame = compress(detail)
        .map_err(|e| StoreError::Invalid(format!("cannot compress run detail: {e}")))?;
    let mut out = vec![2];
    out.extend_from_slice(
        &postcard::to_stdvec(&(detail.len() as u64))
            .map_err(|e| StoreError::Invalid(format!("cannot encode run detail: {e}")))?,
    );
    out.extend_from_slice(&frame);
    if out.len() < detail.len() + 2 {
        Ok(out)
    } else {
        let mut plain = vec![1];
        plain.extend_from_slice(
            &postcard::to_stdvec(detail)
                .map_err(|e| StoreError::Invalid(format!("cannot encode run detail: {e}")))?,
        );
        Ok(plain)
    }
}

/// Decodes run detail bytes of either format.
pub(crate) fn decode_detail(bytes: &[u8]) -> Result<Vec<u8>> {
    const TABLE: &str = "run detail";
    let corrupt = |reason: String| StoreError::Corrupt {
        table: TABLE,
        reason,
    };
    match bytes.split_first() {
        Some((&2, body)) => {
            let (len, frame) =
                postcard::take_from_bytes::<u64>(body).map_err(|e| corrupt(e.to_string()))?;
            if len > MAX_DETAIL {
                return Err(corrupt(format!("detail of {len} bytes is over the limit")));
            }
            let detail = decompress(frame, len as usize)
                .map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
            if detail.len() as u64 != len {
                return Err(corrupt(format!(
                    "decompressed {} bytes, expected {len}",
                    detail.len()
                )));
            }
            Ok(detail)
        }
        _ => decode(TABLE, bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{Consent, Contact, ContactKey, FriendStatus, OptOut};
    use crate::run::{Run, RunId, RunState, Subject};
    use sop_clock::Timestamp;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_timestamp_millis(ms).unwrap()
    }

    fn sample_run() -> Run {
        let mut variables = serde_json::Map::new();
        variables.insert("coupon".into(), serde_json::json!("C10"));
        Run {
            id: RunId(7),
            playbook: "welcome".into(),
            version: 2,
            subject: Subject::Contact(ContactKey::new("acme", "c1")),
            state: RunState::Waiting,
            step: Some("wait_reply".into()),
            iteration: 1,
            counters: [("retries".to_string(), 2u64)].into(),
            variables,
            reason: None,
            revision: 3,
            created_at: at(1_700_000_000_000),
            updated_at: at(1_700_000_060_000),
        }
    }

    // The exact bytes format 1 writes for `sample_run`. If this test fails, a change broke
    // reading stores written by earlier binaries: add a new format instead.
    const RUN_V1: &str = "01070777656c636f6d6502000461636d6502633101010a776169745f7265706c790101077265747269657302107b22636f75706f6e223a22433130227d000380a0abfef962c0c9b2fef962";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Formats 2 and 3 changed no record's shape: their bytes are format 1's with the new
    /// byte.
    fn as_current(v1: &str) -> String {
        format!("{FORMAT:02x}{}", &v1[2..])
    }

    fn as_v2(v1: &str) -> String {
        format!("02{}", &v1[2..])
    }

    #[test]
    fn a_fixed_v1_run_still_decodes() {
        assert_eq!(
            hex(&encode("run", &sample_run()).unwrap()),
            as_current(RUN_V1)
        );
        for bytes in [RUN_V1.to_string(), as_v2(RUN_V1)] {
            let decoded: Run = decode("run", &unhex(&bytes)).unwrap();
            assert_eq!(decoded, sample_run());
        }
    }

    // A run detail as format 1 wrote it: postcard bytes (length, then the bytes).
    const DETAIL_V1: &str = "010a017b2273223a2277227d";

    #[test]
    fn a_fixed_v1_detail_still_decodes() {
        assert_eq!(
            decode_detail(&unhex(DETAIL_V1)).unwrap(),
            b"\x01{\"s\":\"w\"}"
        );
    }

    #[test]
    fn details_compress_when_that_is_smaller() {
        let json = format!(
            "\x01{{\"status\":\"waiting_event\",\"step\":\"wait_reply\",\"waiting\":{{\"for\":\"event\",\"timer\":\"r1/wait_reply/1/timeout\",\"subscription\":\"r1/wait_reply/1/wait_for\"}},\"pad\":\"{}\"}}",
            "wait_reply/".repeat(20)
        );
        let stored = encode_detail(json.as_bytes()).unwrap();
        assert_eq!(stored[0], 2);
        assert!(
            stored.len() < json.len() / 2,
            "{} of {}",
            stored.len(),
            json.len()
        );
        assert_eq!(decode_detail(&stored).unwrap(), json.as_bytes());
        // Tiny or incompressible details stay format 1, and round-trip too.
        for plain in [&b""[..], b"\x01{}", &[0x8f, 0x11, 0xa3, 0x5c, 0x07]] {
            let stored = encode_detail(plain).unwrap();
            assert_eq!(stored[0], 1);
            assert_eq!(decode_detail(&stored).unwrap(), plain);
        }
    }

    #[test]
    fn damaged_details_are_typed_errors() {
        let stored = encode_detail("wait_reply ".repeat(50).as_bytes()).unwrap();
        assert_eq!(stored[0], 2);
        let mut truncated = stored.clone();
        truncated.truncate(stored.len() - 3);
        assert!(matches!(
            decode_detail(&truncated),
            Err(StoreError::Corrupt { .. })
        ));
        let mut wrong_len = stored.clone();
        wrong_len[1] = wrong_len[1].wrapping_add(1);
        assert!(matches!(
            decode_detail(&wrong_len),
            Err(StoreError::Corrupt { .. })
        ));
        // A length over the limit is refused before allocating.
        let mut huge = vec![2];
        huge.extend_from_slice(&postcard::to_stdvec(&u64::MAX).unwrap());
        assert!(matches!(
            decode_detail(&huge),
            Err(StoreError::Corrupt { .. })
        ));
        let mut newer = stored;
        newer[0] = FORMAT + 1;
        assert!(matches!(
            decode_detail(&newer),
            Err(StoreError::UnsupportedVersion { .. })
        ));
    }

    const CONTACT_V1: &str = "010461636d65026331010a7765636f6d3a61636d6505776d414243027b7d010376697001057a68616e67010d417369612f5368616e6768616901c0bab7fef9620180d5c3fef96207636f6e7461637406e98080e8aea20180a0abfef96280a0abfef962";

    #[test]
    fn a_fixed_v1_contact_still_decodes() {
        let mut c = Contact::new(ContactKey::new("acme", "c1"), at(1_700_000_000_000));
        c.platform_ids.insert("wecom:acme".into(), "wmABC".into());
        c.tags.insert("vip".into());
        c.owner = Some("zhang".into());
        c.time_zone = Some("Asia/Shanghai".into());
        c.last_interaction = Some(at(1_700_000_100_000));
        c.consent = Consent {
            opted_out: Some(OptOut {
                at: at(1_700_000_200_000),
                by: "contact".into(),
                source: "退订".into(),
            }),
        };
        c.friend = FriendStatus::Friend;
        let bytes = encode("contact", &c).unwrap();
        assert_eq!(hex(&bytes), as_current(CONTACT_V1));
        let decoded: Contact = decode("contact", &unhex(CONTACT_V1)).unwrap();
        assert_eq!(decoded, c);
    }

    #[test]
    fn newer_and_damaged_values_are_typed_errors() {
        let mut bytes = encode("run", &sample_run()).unwrap();
        bytes[0] = FORMAT + 1;
        let err = decode::<Run>("run", &bytes).unwrap_err();
        assert!(
            matches!(err, StoreError::UnsupportedVersion { found, .. } if found == FORMAT + 1),
            "{err}"
        );
        assert!(matches!(
            decode::<Run>("run", &[]),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            decode::<Run>("run", &[1, 0xff]),
            Err(StoreError::Corrupt { .. })
        ));
    }
}

#[cfg(test)]
mod outbox_format {
    use super::*;
    use crate::outbox::{Delivery, IdempotencyKey, OutboxEntry, OutboxState};
    use crate::run::RunId;
    use sop_clock::Timestamp;

    fn entry(state: OutboxState) -> OutboxEntry {
        let at = Timestamp::from_timestamp_millis(1_700_000_000_000).unwrap();
        OutboxEntry {
            key: IdempotencyKey::new(RunId(9), "offer", 1),
            action: "wecom.mass_send_contacts".into(),
            account: "acct".into(),
            input_digest: "00ff".into(),
            delivery: Delivery::AtMostOnce,
            state,
            attempts: 1,
            created_at: at,
            updated_at: at,
        }
    }

    // A pending outbox entry as format 2 wrote it. Format 3 added a variant after the others,
    // so this entry's bytes are unchanged apart from the format byte.
    const PENDING_V2: &str = "0209056f6666657201187765636f6d2e6d6173735f73656e645f636f6e74616374730461636374043030666600000180a0abfef96280a0abfef962";

    #[test]
    fn a_fixed_v2_outbox_entry_still_decodes_and_a_member_round_trips() {
        let decoded: OutboxEntry = decode("outbox", &unhex(PENDING_V2)).unwrap();
        assert_eq!(decoded, entry(OutboxState::Pending));
        let bytes = encode("outbox", &decoded).unwrap();
        assert_eq!((bytes[0], &bytes[1..]), (FORMAT, &unhex(PENDING_V2)[1..]));
        let member = entry(OutboxState::PendingMember {
            call: "r9.offer.1/batch".into(),
        });
        let decoded: OutboxEntry = decode("outbox", &encode("outbox", &member).unwrap()).unwrap();
        assert_eq!(decoded, member);
        assert!(decoded.state.is_pending());
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
