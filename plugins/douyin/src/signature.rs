//! `X-Douyin-Signature`: hex `sha1(client_secret + raw body)`, compared in constant time.

use sha1::{Digest, Sha1};
use sop_plugin_sdk::webhook::to_hex;
use subtle::ConstantTimeEq;

/// The signature Douyin computes for `body`.
pub fn sign(client_secret: &str, body: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(client_secret.as_bytes());
    hasher.update(body);
    to_hex(&hasher.finalize())
}

/// True if `given` is the signature of `body`. Case-insensitive hex; the comparison takes
/// the same time wherever the first difference is.
pub fn verify(client_secret: &str, body: &[u8], given: &str) -> bool {
    let expected = sign(client_secret, body);
    let given = given.trim().to_ascii_lowercase();
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_sha1_of_secret_then_body() {
        // sha1("abc"), the FIPS 180 test vector, split between secret and body.
        assert_eq!(sign("a", b"bc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert!(verify(
            "a",
            b"bc",
            "A9993E364706816ABA3E25717850C26C9CD0D89D"
        ));
        assert!(!verify(
            "a",
            b"bd",
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        ));
        assert!(!verify("a", b"bc", ""));
    }
}
