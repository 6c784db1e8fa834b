//! Value encoding: one format-version byte, then postcard.
//!
//! Every stored value starts with the version of its encoding. A binary reads every
//! version up to [`FORMAT`]; when a record changes shape, the old struct stays (renamed
//! `...V1`) with a conversion, `FORMAT` is bumped and `decode` dispatches on the byte. A
//! value with a byte above `FORMAT` was written by a newer binary and is refused with a
//! typed error rather than misread.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, StoreError};

/// The newest value format this binary writes and reads.
pub const FORMAT: u8 = 1;

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
        Some((&1, body)) => postcard::from_bytes(body).map_err(|e| StoreError::Corrupt {
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
        Some((&1, body)) => postcard::take_from_bytes::<u64>(body)
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

    #[test]
    fn a_fixed_v1_run_still_decodes() {
        assert_eq!(hex(&encode("run", &sample_run()).unwrap()), RUN_V1);
        let decoded: Run = decode("run", &unhex(RUN_V1)).unwrap();
        assert_eq!(decoded, sample_run());
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
        assert_eq!(hex(&bytes), CONTACT_V1);
        let decoded: Contact = decode("contact", &unhex(CONTACT_V1)).unwrap();
        assert_eq!(decoded, c);
    }

    #[test]
    fn newer_and_damaged_values_are_typed_errors() {
        let mut bytes = encode("run", &sample_run()).unwrap();
        bytes[0] = FORMAT + 1;
        let err = decode::<Run>("run", &bytes).unwrap_err();
        assert!(
            matches!(err, StoreError::UnsupportedVersion { found: 2, .. }),
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
