//! `X-Shop-Signature: v1=<hex>`: HMAC-SHA256 with the webhook secret over
//! `"{X-Shop-Timestamp}.{raw body}"`. Signing the timestamp with the body means a captured
//! request cannot be replayed later with a fresh timestamp.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sop_plugin_sdk::webhook::to_hex;

type HmacSha256 = Hmac<Sha256>;

/// The scheme prefix of the signature header; a future scheme gets another prefix.
pub const SCHEME: &str = "v1=";

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value the shop sends for `body` at `timestamp` (Unix seconds, as text).
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "{SCHEME}{}",
        to_hex(&mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// True if `given` (the header value) signs `body` at `timestamp`. Hex in either case; the
/// comparison takes the same time wherever the first difference is.
pub fn verify(secret: &str, timestamp: &str, body: &[u8], given: &str) -> bool {
    let Some(hex) = given.trim().strip_prefix(SCHEME) else {
        return false;
    };
    let Some(bytes) = from_hex(hex) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&bytes).is_ok()
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // RFC 4231 test case 2 (key "Jefe"): the primitive the signature is built on.
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            to_hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn matches_an_independent_implementation() {
        // Python: hmac.new(b"Jefe", b'1700000000.{"a":1}', hashlib.sha256).hexdigest(); the
        // emulator's shop checks the same vector.
        assert_eq!(
            sign("Jefe", "1700000000", br#"{"a":1}"#),
            "v1=fa5f6481efc59da48b19c9dc10196c9953e5651f8304b3a318b6b87d70272e0a"
        );
    }

    #[test]
    fn signs_timestamp_dot_body() {
        // The same construction by hand: HMAC over "1700000000.{}".
        let mut mac = HmacSha256::new_from_slice(b"s3cret").unwrap();
        mac.update(b"1700000000.{}");
        let expected = format!("v1={}", to_hex(&mac.finalize().into_bytes()));
        assert_eq!(sign("s3cret", "1700000000", b"{}"), expected);
    }

    #[test]
    fn verify_accepts_only_the_exact_signature() {
        let good = sign("s3cret", "1700000000", b"{\"a\":1}");
        assert!(verify("s3cret", "1700000000", b"{\"a\":1}", &good));
        assert!(verify(
            "s3cret",
            "1700000000",
            b"{\"a\":1}",
            &good.to_ascii_uppercase().replace("V1=", "v1=")
        ));
        // Another body, timestamp or secret; no scheme; not hex; truncated.
        assert!(!verify("s3cret", "1700000000", b"{\"a\":2}", &good));
        assert!(!verify("s3cret", "1700000001", b"{\"a\":1}", &good));
        assert!(!verify("other", "1700000000", b"{\"a\":1}", &good));
        assert!(!verify("s3cret", "1700000000", b"{\"a\":1}", &good[3..]));
        assert!(!verify("s3cret", "1700000000", b"{\"a\":1}", "v1=zz"));
        assert!(!verify("s3cret", "1700000000", b"{\"a\":1}", &good[..20]));
        assert!(!verify("s3cret", "1700000000", b"{\"a\":1}", ""));
    }
}
