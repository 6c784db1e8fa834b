//! WeCom callback signing and AES encryption (WXBizMsgCrypt).
//!
//! WeCom signs and encrypts every callback it POSTs to an app's callback URL, and the app
//! answers URL verification the same way. This crate implements that scheme in pure Rust so it
//! builds for `wasm32-wasip2` plugins as well as for the emulator:
//!
//! - `msg_signature = sha1(sort([token, timestamp, nonce, encrypt]).join(""))`, lowercase hex;
//! - `AESKey = base64decode(EncodingAESKey + "=")`, AES-256-CBC with IV = first 16 key bytes;
//! - plaintext = 16 random bytes + 4-byte big-endian length + message + receiveid, PKCS#7
//!   padded to a multiple of 32 bytes.
//!
//! There is no random source inside: callers pass the 16 random bytes to [`Crypto::encrypt`].
//!
//! ```
//! use wecom_crypto::Crypto;
//!
//! let crypto = Crypto::new(
//!     "QDG6eK",
//!     "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
//!     "wx5823bf96d3bd56c7",
//! )?;
//! let echo = crypto.verify_url(
//!     "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
//!     "1409659589",
//!     "263014780",
//!     "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
//! )?;
//! assert_eq!(echo, "1616140317555161061");
//! # Ok::<(), wecom_crypto::CryptoError>(())
//! ```

mod cipher;
mod envelope;
mod error;
mod signature;

pub use envelope::{Envelope, build_envelope, cdata, parse_envelope, xml_field};
pub use error::CryptoError;
pub use signature::sign;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

/// The official SDKs decode leniently: the 43rd EncodingAESKey character usually carries
/// non-zero trailing bits (the official sample key does), which strict base64 rejects.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Signing and encryption state for one WeCom app callback configuration.
#[derive(Clone)]
pub struct Crypto {
    token: String,
    key: [u8; 32],
    receive_id: String,
}

impl std::fmt::Debug for Crypto {
    // The key and token are secrets: keep them out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypto")
            .field("receive_id", &self.receive_id)
            .finish_non_exhaustive()
    }
}

impl Crypto {
    /// Build from the values configured in the WeCom admin console.
    ///
    /// `encoding_aes_key` must be the 43-character key; `receive_id` is the corpid (or the
    /// suite id for third-party apps) that decrypted messages must end with.
    pub fn new(token: &str, encoding_aes_key: &str, receive_id: &str) -> Result<Self, CryptoError> {
        if encoding_aes_key.len() != 43 {
            return Err(CryptoError::InvalidAesKey);
        }
        let decoded = LENIENT
            .decode(format!("{encoding_aes_key}="))
            .map_err(|_| CryptoError::InvalidAesKey)?;
        let key: [u8; 32] = decoded.try_into().map_err(|_| CryptoError::InvalidAesKey)?;
        Ok(Self {
            token: token.to_owned(),
            key,
            receive_id: receive_id.to_owned(),
        })
    }

    /// The receive id (corpid) this configuration expects.
    pub fn receive_id(&self) -> &str {
        &self.receive_id
    }

    /// `msg_signature` for the given timestamp, nonce and encrypted payload.
    pub fn sign(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        sign(&self.token, timestamp, nonce, encrypt)
    }

    /// Check a `msg_signature` in constant time.
    pub fn verify_signature(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<(), CryptoError> {
        let expected = self.sign(timestamp, nonce, encrypt);
        if signature::equal(expected.as_bytes(), msg_signature.as_bytes()) {
            Ok(())
        } else {
            Err(CryptoError::SignatureMismatch)
        }
    }

    /// Encrypt `msg` into the base64 `Encrypt` value. `random` is the 16-byte random prefix.
    pub fn encrypt(&self, msg: &str, random: [u8; 16]) -> String {
        let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
        let mut plain = Vec::with_capacity(20 + msg.len() + self.receive_id.len() + 32);
        plain.extend_from_slice(&random);
        plain.extend_from_slice(&len.to_be_bytes());
        plain.extend_from_slice(msg.as_bytes());
        plain.extend_from_slice(self.receive_id.as_bytes());
        cipher::pad(&mut plain);
        cipher::encrypt_cbc(&self.key, &mut plain);
        STANDARD.encode(plain)
    }

    /// Decrypt a base64 `Encrypt` value (or `echostr`) and return the message, checking the
    /// receive id. The signature is not checked here: see [`Crypto::decrypt_verified`].
    pub fn decrypt(&self, encrypt_b64: &str) -> Result<String, CryptoError> {
        let mut data = LENIENT
            .decode(encrypt_b64)
            .map_err(|_| CryptoError::InvalidBase64)?;
        if data.is_empty() || data.len() % 16 != 0 {
            return Err(CryptoError::InvalidCiphertextLength(data.len()));
        }
        cipher::decrypt_cbc(&self.key, &mut data);
        let plain = cipher::unpad(&data)?;
        if plain.len() < 20 {
            return Err(CryptoError::Truncated);
        }
        let len = u32::from_be_bytes([plain[16], plain[17], plain[18], plain[19]]) as usize;
        let rest = &plain[20..];
        if len > rest.len() {
            return Err(CryptoError::Truncated);
        }
        let (msg, receive_id) = rest.split_at(len);
        if receive_id != self.receive_id.as_bytes() {
            return Err(CryptoError::ReceiveIdMismatch {
                got: String::from_utf8_lossy(receive_id).into_owned(),
            });
        }
        String::from_utf8(msg.to_vec()).map_err(|_| CryptoError::InvalidUtf8)
    }

    /// Verify the signature, then decrypt.
    pub fn decrypt_verified(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<String, CryptoError> {
        self.verify_signature(msg_signature, timestamp, nonce, encrypt)?;
        self.decrypt(encrypt)
    }

    /// Answer a callback URL verification: the returned plaintext is the whole response body.
    pub fn verify_url(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        echostr: &str,
    ) -> Result<String, CryptoError> {
        self.decrypt_verified(msg_signature, timestamp, nonce, echostr)
    }

    /// Decrypt a POSTed callback body (`<xml><Encrypt>…</Encrypt></xml>`) after checking its
    /// signature; returns the decrypted inner XML.
    pub fn decrypt_callback(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        body: &str,
    ) -> Result<String, CryptoError> {
        let envelope = parse_envelope(body)?;
        self.decrypt_verified(msg_signature, timestamp, nonce, &envelope.encrypt)
    }

    /// Encrypt and sign `msg` into a callback body, returning `(body_xml, msg_signature)`.
    pub fn encrypt_callback(
        &self,
        msg: &str,
        random: [u8; 16],
        timestamp: &str,
        nonce: &str,
        agent_id: &str,
    ) -> (String, String) {
        let encrypt = self.encrypt(msg, random);
        let signature = self.sign(timestamp, nonce, &encrypt);
        let body = build_envelope(&Envelope {
            to_user_name: self.receive_id.clone(),
            encrypt,
            agent_id: agent_id.to_owned(),
        });
        (body, signature)
    }
}

#[cfg(test)]
mod tests;
