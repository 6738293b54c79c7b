//! Small cryptographic helpers: the master key that seals secrets at rest (AES-256-GCM),
//! random values, digests and constant-time comparison.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Sealed blobs start with this format byte, then the nonce, then ciphertext and tag.
const SEALED_V1: u8 = 1;

/// Why sealing or unsealing failed. Deliberately vague: no oracle for attackers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the master key must be base64 of exactly 32 bytes")]
    BadMasterKey,
    #[error("sealed data is damaged or was sealed under another master key")]
    Unseal,
    #[error("sealing failed")]
    Seal,
    #[error("master key file {0}: {1}")]
    File(String, String),
}

/// The key that seals private keys (and later other secrets) at rest.
pub struct MasterKey {
    key: LessSafeKey,
    /// HKDF-SHA256 extraction of the key, from which purpose-bound subkeys are expanded.
    subkeys: ring::hkdf::Prk,
    id: String,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// Parses base64 (standard or URL-safe, padding optional) of 32 bytes.
    pub fn from_base64(encoded: &str) -> Result<MasterKey, CryptoError> {
        let trimmed = encoded.trim().trim_end_matches('=');
        let bytes = URL_SAFE_NO_PAD
            .decode(trimmed.replace('+', "-").replace('/', "_"))
            .map_err(|_| CryptoError::BadMasterKey)?;
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<MasterKey, CryptoError> {
        if bytes.len() != 32 {
            return Err(CryptoError::BadMasterKey);
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| CryptoError::BadMasterKey)?;
        // A public fingerprint so a row sealed under another key is reported as such.
        let id = hex(&sha256(&[b"latchkey master key id\0".as_slice(), bytes].concat())[..8]);
        let subkeys =
            ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"latchkey subkeys v1").extract(bytes);
        Ok(MasterKey {
            key: LessSafeKey::new(key),
            subkeys,
            id,
        })
    }

    /// A new random master key, base64-encoded.
    pub fn generate_base64() -> String {
        STANDARD.encode(random_bytes::<32>())
    }

    /// Reads a key file, or creates one (mode 0600) if `create` and it does not exist.
    /// Returns the key and whether it was created.
    pub fn load_or_create(path: &Path, create: bool) -> Result<(MasterKey, bool), CryptoError> {
        let file_err =
            |e: std::io::Error| CryptoError::File(path.display().to_string(), e.to_string());
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::from_base64(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(file_err)?;
                }
                let encoded = Self::generate_base64();
                write_private(path, &encoded).map_err(file_err)?;
                Ok((Self::from_base64(&encoded)?, true))
            }
            Err(e) => Err(file_err(e)),
        }
    }

    /// An HMAC-SHA256 key for one purpose (`b"csrf"`, …), derived with HKDF (RFC 5869): every
    /// replica sharing the master key derives the same one, and no two purposes share a key.
    pub fn mac_key(&self, purpose: &[u8]) -> Result<ring::hmac::Key, CryptoError> {
        let info = [purpose];
        self.subkeys
            .expand(&info, ring::hmac::HMAC_SHA256)
            .map(ring::hmac::Key::from)
            .map_err(|_| CryptoError::Seal)
    }

    /// The key's public fingerprint.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Encrypts `plaintext`, binding it to `context` (authenticated, not stored).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce = random_bytes::<NONCE_LEN>();
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut buf,
            )
            .map_err(|_| CryptoError::Seal)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Decrypts what [`MasterKey::seal`] produced under the same `context`.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let Some((&SEALED_V1, rest)) = sealed.split_first() else {
            return Err(CryptoError::Unseal);
        };
        if rest.len() < NONCE_LEN {
            return Err(CryptoError::Unseal);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Unseal)?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context), &mut buf)
            .map_err(|_| CryptoError::Unseal)?;
        Ok(plain.to_vec())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// `N` bytes from the operating system's CSPRNG, for nonces and the master key: never from
/// an injected source (identifiers and tokens come from [`crate::rng::Rng`]).
#[expect(
    clippy::disallowed_methods,
    reason = "nonces and the master key never come from an injected (seedable) source"
)]
fn random_bytes<const N: usize>() -> [u8; N] {
    rand::random()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// base64url without padding (RFC 7515 §2).
pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Compares two secrets without leaking where they differ; digests first so lengths leak nothing.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    sha256(a).ct_eq(&sha256(b)).into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a lowercase or uppercase hex string, if it is one.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subkeys_are_per_purpose_and_per_master_key() {
        let a = MasterKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let b = MasterKey::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        let tag = |k: &MasterKey, p: &[u8]| {
            ring::hmac::sign(&k.mac_key(p).unwrap(), b"msg")
                .as_ref()
                .to_vec()
        };
        assert_eq!(tag(&a, b"csrf"), tag(&a, b"csrf"), "replicas agree");
        assert_ne!(tag(&a, b"csrf"), tag(&a, b"other"));
        assert_ne!(tag(&a, b"csrf"), tag(&b, b"csrf"));
    }

    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&bytes)).as_deref(), Some(&bytes[..]));
        assert_eq!(unhex("ABff").as_deref(), Some(&[0xab, 0xff][..]));
        for bad in ["a", "zz", "0g"] {
            assert_eq!(unhex(bad), None, "{bad}");
        }
    }

    #[test]
    fn seal_round_trip_and_binding() {
        let key = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        let sealed = key.seal(b"secret", b"ctx-a").unwrap();
        assert_eq!(key.open(&sealed, b"ctx-a").unwrap(), b"secret");
        assert_eq!(key.open(&sealed, b"ctx-b"), Err(CryptoError::Unseal));
        let other = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        assert_eq!(other.open(&sealed, b"ctx-a"), Err(CryptoError::Unseal));
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert_eq!(key.open(&tampered, b"ctx-a"), Err(CryptoError::Unseal));
        assert_eq!(key.open(&[], b"ctx-a"), Err(CryptoError::Unseal));
        assert_ne!(key.id(), other.id());
    }

    #[test]
    fn master_key_parsing() {
        assert!(MasterKey::from_base64("too short").is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([7u8; 31])).is_err());
        let padded = STANDARD.encode([7u8; 32]);
        let a = MasterKey::from_base64(&padded).unwrap();
        let b = MasterKey::from_base64(&URL_SAFE_NO_PAD.encode([7u8; 32])).unwrap();
        assert_eq!(a.id(), b.id());
    }

    #[test]
    fn constant_time_compare() {
        assert!(secrets_equal(b"abc", b"abc"));
        assert!(!secrets_equal(b"abc", b"abd"));
        assert!(!secrets_equal(b"abc", b"abcd"));
    }
}
