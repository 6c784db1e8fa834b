use proptest::prelude::*;

use super::*;

const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const CORP: &str = "wx5823bf96d3bd56c7";
const TIMESTAMP: &str = "1409659589";
const NONCE: &str = "263014780";
const SIGNATURE: &str = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3";
// echostr of the official WXBizMsgCrypt sample (URL verification request).
const ECHOSTR: &str =
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";

fn crypto() -> Crypto {
    Crypto::new(TOKEN, AES_KEY, CORP).expect("official key is valid")
}

#[test]
fn official_vector_signature() {
    assert_eq!(crypto().sign(TIMESTAMP, NONCE, ECHOSTR), SIGNATURE);
    assert_eq!(sign(TOKEN, TIMESTAMP, NONCE, ECHOSTR), SIGNATURE);
}

#[test]
fn official_vector_verify_url() {
    let echo = crypto().verify_url(SIGNATURE, TIMESTAMP, NONCE, ECHOSTR);
    assert_eq!(echo.as_deref(), Ok("1616140317555161061"));
}

#[test]
fn official_vector_with_wrong_signature_is_rejected() {
    let bad = SIGNATURE.replace('5', "6");
    assert_eq!(
        crypto().verify_url(&bad, TIMESTAMP, NONCE, ECHOSTR),
        Err(CryptoError::SignatureMismatch)
    );
    assert_eq!(
        crypto().verify_url(&SIGNATURE[..39], TIMESTAMP, NONCE, ECHOSTR),
        Err(CryptoError::SignatureMismatch)
    );
}

#[test]
fn official_vector_with_other_receive_id_is_rejected() {
    let other = Crypto::new(TOKEN, AES_KEY, "ww-someone-else").unwrap();
    assert_eq!(
        other.decrypt(ECHOSTR),
        Err(CryptoError::ReceiveIdMismatch { got: CORP.into() })
    );
}

#[test]
fn encrypt_decrypt_round_trip() {
    let c = crypto();
    for msg in [
        "",
        "a",
        "<xml><Content>你好</Content></xml>",
        &"x".repeat(1000),
    ] {
        let enc = c.encrypt(msg, [7; 16]);
        assert_eq!(c.decrypt(&enc).as_deref(), Ok(msg));
    }
}

#[test]
fn ciphertext_is_a_multiple_of_32_bytes() {
    let c = crypto();
    for len in 0..70 {
        let enc = c.encrypt(&"m".repeat(len), [0; 16]);
        let raw = STANDARD.decode(enc).unwrap();
        assert_eq!(raw.len() % 32, 0, "len {len}");
    }
}

#[test]
fn callback_round_trip_with_envelope() {
    let c = crypto();
    let inner = "<xml><Event><![CDATA[change_external_contact]]></Event></xml>";
    let (body, sig) = c.encrypt_callback(inner, [1; 16], "1700000000", "42", "1000002");
    assert!(body.contains("<ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"));
    assert_eq!(
        c.decrypt_callback(&sig, "1700000000", "42", &body)
            .as_deref(),
        Ok(inner)
    );
    assert_eq!(
        c.decrypt_callback(&sig, "1700000001", "42", &body),
        Err(CryptoError::SignatureMismatch)
    );
}

#[test]
fn tampered_ciphertext_is_an_error() {
    let c = crypto();
    let enc = c.encrypt("hello world", [3; 16]);
    let mut raw = STANDARD.decode(&enc).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 0x55;
    assert!(c.decrypt(&STANDARD.encode(&raw)).is_err());
}

#[test]
fn malformed_inputs_are_errors() {
    let c = crypto();
    assert_eq!(c.decrypt("not base64!"), Err(CryptoError::InvalidBase64));
    assert_eq!(c.decrypt(""), Err(CryptoError::InvalidCiphertextLength(0)));
    assert_eq!(
        c.decrypt(&STANDARD.encode([0u8; 15])),
        Err(CryptoError::InvalidCiphertextLength(15))
    );
}

#[test]
fn wrong_key_is_an_error() {
    let other = Crypto::new(TOKEN, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", CORP).unwrap();
    assert!(other.decrypt(ECHOSTR).is_err());
}

#[test]
fn bad_aes_keys_are_rejected() {
    assert_eq!(
        Crypto::new(TOKEN, "short", CORP).err(),
        Some(CryptoError::InvalidAesKey)
    );
    assert_eq!(
        Crypto::new(TOKEN, &"!".repeat(43), CORP).err(),
        Some(CryptoError::InvalidAesKey)
    );
}

#[test]
fn debug_hides_secrets() {
    let shown = format!("{:?}", crypto());
    assert!(!shown.contains(TOKEN));
    assert!(shown.contains(CORP));
}

proptest! {
    #[test]
    fn decrypt_never_panics(input in ".*") {
        let _ = crypto().decrypt(&input);
    }

    #[test]
    fn decrypt_arbitrary_blocks_never_panics(blocks in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = crypto().decrypt(&STANDARD.encode(&blocks));
    }

    #[test]
    fn round_trip_any_message(msg in ".{0,300}", random in any::<[u8; 16]>()) {
        let c = crypto();
        let enc = c.encrypt(&msg, random);
        prop_assert_eq!(c.decrypt(&enc), Ok(msg));
    }
}
