//! AES-256-CBC with WeCom's IV and padding conventions.
//!
//! CBC chaining is done here on top of the `aes` block cipher because WeCom pads to 32 bytes
//! (not the AES block size), so a stock PKCS#7 block mode would not round-trip its payloads.

use aes::Aes256;
use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

use crate::CryptoError;

/// WeCom pads to a multiple of 32 bytes, with PKCS#7-style pad bytes (1..=32).
const PAD_BLOCK: usize = 32;
const AES_BLOCK: usize = 16;

pub(crate) fn pad(data: &mut Vec<u8>) {
    let n = PAD_BLOCK - data.len() % PAD_BLOCK;
    // n is in 1..=32 so it always fits a byte.
    data.resize(data.len() + n, n as u8);
}

pub(crate) fn unpad(data: &[u8]) -> Result<&[u8], CryptoError> {
    let Some(&last) = data.last() else {
        return Err(CryptoError::BadPadding);
    };
    let n = usize::from(last);
    if n == 0 || n > PAD_BLOCK || n > data.len() {
        return Err(CryptoError::BadPadding);
    }
    let (body, padding) = data.split_at(data.len() - n);
    if padding.iter().any(|&b| b != last) {
        return Err(CryptoError::BadPadding);
    }
    Ok(body)
}

fn cipher(key: &[u8; 32]) -> Aes256 {
    Aes256::new(&Array::from(*key))
}

fn iv(key: &[u8; 32]) -> [u8; AES_BLOCK] {
    let mut iv = [0u8; AES_BLOCK];
    iv.copy_from_slice(&key[..AES_BLOCK]);
    iv
}

/// Encrypt in place; `data.len()` must be a multiple of 16 (callers pad first).
pub(crate) fn encrypt_cbc(key: &[u8; 32], data: &mut [u8]) {
    let aes = cipher(key);
    let mut prev = iv(key);
    for chunk in data.chunks_exact_mut(AES_BLOCK) {
        let mut block = [0u8; AES_BLOCK];
        for (i, b) in block.iter_mut().enumerate() {
            *b = chunk[i] ^ prev[i];
        }
        let mut block = Array::from(block);
        aes.encrypt_block(&mut block);
        chunk.copy_from_slice(&block);
        prev.copy_from_slice(&block);
    }
}

/// Decrypt in place; `data.len()` must be a multiple of 16 (callers check first).
pub(crate) fn decrypt_cbc(key: &[u8; 32], data: &mut [u8]) {
    let aes = cipher(key);
    let mut prev = iv(key);
    for chunk in data.chunks_exact_mut(AES_BLOCK) {
        let mut cipher_block = [0u8; AES_BLOCK];
        cipher_block.copy_from_slice(chunk);
        let mut block = Array::from(cipher_block);
        aes.decrypt_block(&mut block);
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = block[i] ^ prev[i];
        }
        prev = cipher_block;
    }
}
