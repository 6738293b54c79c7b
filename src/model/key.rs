//! Signing keys and their life cycle: next (published, not yet signing) → active (signing) →
//! retired (published until every token it signed has expired) → purged.

use std::fmt;

use serde::Serialize;

use super::wire_enum;

wire_enum! {
    /// JWS algorithms a tenant signs with (RFC 7518 §3.1, RFC 8037 §3.1).
    pub enum SigningAlg {
        /// ECDSA using P-256 and SHA-256: the default for access tokens.
        Es256 = "ES256",
        /// RSASSA-PKCS1-v1_5 using SHA-256: OpenID Connect's default ID token algorithm.
        Rs256 = "RS256",
        /// EdDSA with Ed25519.
        EdDsa = "EdDSA",
    }
}

wire_enum! {
    /// Where a key is in its life cycle.
    pub enum KeyState {
        /// Published in the JWKS ahead of use, so verifiers know it before its first token.
        Next = "next",
        /// Signs new tokens; exactly one per tenant and algorithm.
        Active = "active",
        /// No longer signs; still published until `expires_at`.
        Retired = "retired",
    }
}

/// A signing key's public half and its life-cycle facts. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: KeyState,
    /// The public JWK, with `kid`, `alg` and `use`.
    pub public_jwk: serde_json::Map<String, serde_json::Value>,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    /// When a retired key leaves the JWKS.
    pub expires_at: Option<i64>,
}

/// A stored key with its private half sealed under the master key.
#[derive(Clone, PartialEq)]
pub struct SealedSigningKey {
    pub key: SigningKey,
    pub sealed_private: Vec<u8>,
    pub master_key_id: String,
}

impl fmt::Debug for SealedSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSigningKey")
            .field("key", &self.key)
            .field("sealed_private", &"[redacted]")
            .field("master_key_id", &self.master_key_id)
            .finish()
    }
}

/// A key about to be stored.
pub type NewSigningKey = SealedSigningKey;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for alg in SigningAlg::ALL {
            let json = serde_json::to_string(alg).unwrap();
            assert_eq!(json, format!("\"{}\"", alg.as_str()));
            assert_eq!(serde_json::from_str::<SigningAlg>(&json).unwrap(), *alg);
        }
        for state in KeyState::ALL {
            assert_eq!(state.as_str().parse::<KeyState>().unwrap(), *state);
        }
        assert_eq!(SigningAlg::EdDsa.as_str(), "EdDSA");
        assert!("none".parse::<SigningAlg>().is_err());
    }
}
