//! Errors of signing, decryption and envelope parsing.

use std::fmt;

/// Why a WeCom payload was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// The EncodingAESKey is not 43 base64 characters decoding to 32 bytes.
    InvalidAesKey,
    /// `msg_signature` does not match the payload.
    SignatureMismatch,
    /// The encrypted payload is not valid base64.
    InvalidBase64,
    /// The ciphertext is empty or not a whole number of AES blocks.
    InvalidCiphertextLength(usize),
    /// The decrypted padding is malformed (wrong key or tampered payload).
    BadPadding,
    /// The decrypted payload is shorter than its header or declared length.
    Truncated,
    /// The payload was encrypted for another corp or app.
    ReceiveIdMismatch {
        /// The receive id found in the payload.
        got: String,
    },
    /// The decrypted message is not UTF-8.
    InvalidUtf8,
    /// The callback XML has no `<Encrypt>` element.
    MissingEncrypt,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidAesKey => {
                f.write_str("EncodingAESKey must be 43 base64 characters decoding to 32 bytes")
            }
            Self::SignatureMismatch => f.write_str("msg_signature does not match"),
            Self::InvalidBase64 => f.write_str("encrypted payload is not valid base64"),
            Self::InvalidCiphertextLength(n) => {
                write!(f, "ciphertext length {n} is not a positive multiple of 16")
            }
            Self::BadPadding => f.write_str("bad padding after decryption"),
            Self::Truncated => f.write_str("decrypted payload is truncated"),
            Self::ReceiveIdMismatch { got } => {
                write!(f, "payload is for receive id {got:?}, not this app")
            }
            Self::InvalidUtf8 => f.write_str("decrypted message is not UTF-8"),
            Self::MissingEncrypt => f.write_str("callback XML has no <Encrypt> element"),
        }
    }
}

impl std::error::Error for CryptoError {}
