//! The cryptographic primitives of personal-field protection: 256-bit keys
//! that zeroise themselves, AES-256-GCM sealing (for values and for wrapping
//! keys under other keys) and the keyed hash that stands in for a value in
//! reports.
//!
//! Why AES-256-GCM with random 96-bit nonces: it is the audited RustCrypto
//! AEAD (NCC Group, 2020), and every key here seals far fewer than the 2^32
//! messages after which random nonces would need care: a subject key seals a
//! handful of values, a project key wraps one key per subject. The
//! associated data binds each ciphertext to where it belongs (project,
//! subject, field), so a ciphertext moved elsewhere does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const NONCE_BYTES: usize = 12;

/// Why a key or ciphertext was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the ciphertext does not open with this key (wrong key, wrong place, or tampered)")]
    Unauthentic,
    #[error("a key must be 32 bytes, written as base64 or hex; got {0}")]
    BadKeyText(String),
    #[error("the system random number generator failed: {0}")]
    Random(String),
}

/// A 256-bit secret key, wiped from memory when dropped; its Debug output
/// shows only a fingerprint.
#[derive(Clone)]
pub struct Key(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.fingerprint())
    }
}

impl Key {
    pub fn generate() -> Result<Key, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        fill_random(bytes.as_mut())?;
        Ok(Key(bytes))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Key, CryptoError> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadKeyText(format!("{} bytes", bytes.len())))?;
        Ok(Key(Zeroizing::new(array)))
    }

    /// Reads a key written as base64 (44 characters) or hex (64).
    pub fn from_text(text: &str) -> Result<Key, CryptoError> {
        let text = text.trim();
        let bytes = Zeroizing::new(if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|e| CryptoError::BadKeyText(e.to_string()))?
        } else {
            STANDARD.decode(text).map_err(|_| CryptoError::BadKeyText(format!("{} characters that are neither base64 nor hex", text.len())))?
        });
        Key::from_bytes(&bytes)
    }

    /// The key as base64, for the master key file.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_ref()))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A public name for the key: the first 8 bytes of SHA-256 over a
    /// domain-separated copy, in hex. Safe to store and log.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"hearth key fingerprint v1");
        hasher.update(self.0.as_ref());
        hex::encode(&hasher.finalize()[..8])
    }

    /// A key for another purpose, derived one-way from this one.
    pub fn derive(&self, purpose: &str) -> Key {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref()).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        let out = mac.finalize().into_bytes();
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(&out);
        Key(bytes)
    }
}

pub fn fill_random(bytes: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(bytes).map_err(|e| CryptoError::Random(e.to_string()))
}

/// Encrypts `plaintext` under `key`, bound to `context`: nonce ‖ ciphertext ‖ tag.
pub fn seal(key: &Key, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let cipher = Aes256Gcm::new_from_slice(key.bytes()).expect("32-byte key");
    let mut nonce = [0u8; NONCE_BYTES];
    fill_random(&mut nonce)?;
    let ciphertext = cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: context }).map_err(|_| CryptoError::Unauthentic)?;
    let mut sealed = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

/// Decrypts what [`seal`] made, if `key` and `context` are the ones it was sealed with.
pub fn open(key: &Key, sealed: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < NONCE_BYTES + 16 {
        return Err(CryptoError::Unauthentic);
    }
    let cipher = Aes256Gcm::new_from_slice(key.bytes()).expect("32-byte key");
    let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
    cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: context }).map(Zeroizing::new).map_err(|_| CryptoError::Unauthentic)
}

/// Wraps (encrypts) a key under a key-encryption key.
pub fn wrap(kek: &Key, key: &Key, context: &[u8]) -> Result<Vec<u8>, CryptoError> {
    seal(kek, key.bytes(), context)
}

pub fn unwrap(kek: &Key, wrapped: &[u8], context: &[u8]) -> Result<Key, CryptoError> {
    Key::from_bytes(&open(kek, wrapped, context)?)
}

/// HMAC-SHA256 of `value` under `key`.
pub fn keyed_hash(key: &Key, value: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.bytes()).expect("HMAC takes any key length");
    mac.update(value);
    mac.finalize().into_bytes().into()
}

/// What stands in for a protected value in events and profiles: the same
/// value always gives the same token within a project (so counts, uniques
/// and breakdowns still work), and without the project's hash key the
/// token cannot be recomputed from a guess.
pub const TOKEN_PREFIX: &str = "pii:";

/// The token of a personal value: `pii:` and 128 bits of its keyed hash.
pub fn value_token(hash_key: &Key, value: &str) -> String {
    let digest = keyed_hash(hash_key, value.as_bytes());
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(&digest[..16]))
}

/// A pseudonym for an identifier (distinct ids, device ids): `pid:` and 128
/// bits of its keyed hash under a key kept apart from the value-token key.
pub fn pseudonym(pseudonym_key: &Key, id: &str) -> String {
    let digest = keyed_hash(pseudonym_key, id.as_bytes());
    format!("pid:{}", URL_SAFE_NO_PAD.encode(&digest[..16]))
}

pub fn is_value_token(text: &str) -> bool {
    text.len() == TOKEN_PREFIX.len() + 22 && text.starts_with(TOKEN_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let key = Key::generate().unwrap();
        let sealed = seal(&key, b"ada@example.com", b"p1/u1/$email").unwrap();
        assert!(!sealed.windows(15).any(|w| w == b"ada@example.com"));
        assert_eq!(&open(&key, &sealed, b"p1/u1/$email").unwrap()[..], b"ada@example.com");
        assert_eq!(open(&key, &sealed, b"p1/u2/$email").unwrap_err(), CryptoError::Unauthentic);
        assert_eq!(open(&Key::generate().unwrap(), &sealed, b"p1/u1/$email").unwrap_err(), CryptoError::Unauthentic);
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert_eq!(open(&key, &tampered, b"p1/u1/$email").unwrap_err(), CryptoError::Unauthentic);
        assert_eq!(open(&key, &sealed[..10], b"").unwrap_err(), CryptoError::Unauthentic);
    }

    #[test]
    fn keys_wrap_and_read_back_from_text() {
        let kek = Key::generate().unwrap();
        let key = Key::generate().unwrap();
        let wrapped = wrap(&kek, &key, b"project 1 v1").unwrap();
        assert_eq!(unwrap(&kek, &wrapped, b"project 1 v1").unwrap().bytes(), key.bytes());
        assert!(unwrap(&kek, &wrapped, b"project 2 v1").is_err());
        assert_eq!(Key::from_text(&key.to_text()).unwrap().bytes(), key.bytes());
        assert_eq!(Key::from_text(&hex::encode(key.bytes())).unwrap().bytes(), key.bytes());
        assert!(matches!(Key::from_text("short"), Err(CryptoError::BadKeyText(_))));
        assert!(!format!("{key:?}").contains(&hex::encode(key.bytes())));
    }

    #[test]
    fn tokens_are_stable_per_key_and_differ_across_keys() {
        let a = Key::generate().unwrap();
        let b = Key::generate().unwrap();
        assert_eq!(value_token(&a, "ada@example.com"), value_token(&a, "ada@example.com"));
        assert_ne!(value_token(&a, "ada@example.com"), value_token(&b, "ada@example.com"));
        assert_ne!(value_token(&a, "ada@example.com"), value_token(&a, "bob@example.com"));
        assert!(is_value_token(&value_token(&a, "x")));
        assert_ne!(a.derive("hash").bytes(), a.derive("pseudonym").bytes());
    }
}
