//! JWS signing keys (RFC 7517 JWK, RFC 7518 §3, RFC 8037 EdDSA) and JWK thumbprints (RFC 7638).

use std::fmt;

use josekit::jwk::{Ed25519, Jwk, P_256};
use josekit::jws::{ES256, EdDSA, JwsSigner, JwsVerifier, RS256};
use serde_json::{Map, Value};

use crate::crypto::{b64url, sha256};
use crate::model::SigningAlg;

/// A JOSE failure, with josekit's detail kept for logs.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JoseError(pub(crate) String);

impl From<josekit::JoseError> for JoseError {
    fn from(e: josekit::JoseError) -> Self {
        JoseError(e.to_string())
    }
}

/// A freshly generated key pair.
pub struct GeneratedKey {
    /// The RFC 7638 thumbprint, used as `kid`.
    pub kid: String,
    /// The public JWK with `kid`, `alg` and `use: sig`.
    pub public_jwk: Map<String, Value>,
    /// The private JWK as JSON, to be sealed before storage.
    pub private_jwk: Vec<u8>,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("kid", &self.kid)
            .field("public_jwk", &self.public_jwk)
            .finish_non_exhaustive()
    }
}

/// Generates a key pair for `alg`.
pub fn generate(alg: SigningAlg, rsa_bits: u32) -> Result<GeneratedKey, JoseError> {
    let mut private = match alg {
        SigningAlg::Es256 => Jwk::generate_ec_key(P_256)?,
        SigningAlg::Rs256 => Jwk::generate_rsa_key(rsa_bits)?,
        SigningAlg::EdDsa => Jwk::generate_ed_key(Ed25519)?,
    };
    let mut public = private.to_public_key()?;
    let kid = thumbprint(&public)?;
    for jwk in [&mut private, &mut public] {
        jwk.set_key_id(kid.as_str());
        jwk.set_algorithm(alg.as_str());
        jwk.set_key_use("sig");
    }
    Ok(GeneratedKey {
        kid,
        public_jwk: public.as_ref().clone(),
        private_jwk: private.to_string().into_bytes(),
    })
}

/// A loaded private key, ready to sign.
pub struct LoadedSigner {
    pub kid: String,
    pub alg: SigningAlg,
    pub signer: Box<dyn JwsSigner>,
}

impl fmt::Debug for LoadedSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedSigner")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl LoadedSigner {
    /// Signs `payload` as a compact JWS with this key's `kid` and the given `typ`.
    pub fn sign_jwt(&self, payload: &Map<String, Value>, typ: &str) -> Result<String, JoseError> {
        let mut header = josekit::jws::JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(self.kid.as_str());
        let payload = josekit::jwt::JwtPayload::from_map(payload.clone())?;
        Ok(josekit::jwt::encode_with_signer(
            &payload,
            &header,
            self.signer.as_ref(),
        )?)
    }
}

/// Loads a private JWK (as produced by [`generate`]) into a signer.
pub fn load_signer(alg: SigningAlg, private_jwk: &[u8]) -> Result<LoadedSigner, JoseError> {
    let jwk = Jwk::from_bytes(private_jwk)?;
    let kid = jwk
        .key_id()
        .ok_or_else(|| JoseError("private JWK has no kid".into()))?
        .to_owned();
    let signer: Box<dyn JwsSigner> = match alg {
        SigningAlg::Es256 => Box::new(ES256.signer_from_jwk(&jwk)?),
        SigningAlg::Rs256 => Box::new(RS256.signer_from_jwk(&jwk)?),
        SigningAlg::EdDsa => Box::new(EdDSA.signer_from_jwk(&jwk)?),
    };
    Ok(LoadedSigner { kid, alg, signer })
}

/// A verifier for a public JWK.
pub fn verifier(
    alg: SigningAlg,
    public_jwk: &Map<String, Value>,
) -> Result<Box<dyn JwsVerifier>, JoseError> {
    let jwk = Jwk::from_map(public_jwk.clone())?;
    Ok(match alg {
        SigningAlg::Es256 => Box::new(ES256.verifier_from_jwk(&jwk)?),
        SigningAlg::Rs256 => Box::new(RS256.verifier_from_jwk(&jwk)?),
        SigningAlg::EdDsa => Box::new(EdDSA.verifier_from_jwk(&jwk)?),
    })
}

/// The RFC 7638 SHA-256 thumbprint of a JWK: the required members, sorted, without spaces.
pub fn thumbprint(jwk: &Jwk) -> Result<String, JoseError> {
    let member = |name: &str| -> Result<String, JoseError> {
        let value = jwk
            .parameter(name)
            .and_then(Value::as_str)
            .ok_or_else(|| JoseError(format!("JWK lacks '{name}'")))?;
        Ok(Value::String(value.to_owned()).to_string())
    };
    // RFC 7638 §3.2: members in lexicographic order, JSON-escaped.
    let canonical = match jwk.key_type() {
        "RSA" => format!(
            r#"{{"e":{},"kty":"RSA","n":{}}}"#,
            member("e")?,
            member("n")?
        ),
        "EC" => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            member("crv")?,
            member("x")?,
            member("y")?
        ),
        "OKP" => format!(
            r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
            member("crv")?,
            member("x")?
        ),
        other => return Err(JoseError(format!("unsupported key type '{other}'"))),
    };
    Ok(b64url(&sha256(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_test_vector() {
        // RFC 7638 §3.1.
        let jwk = Jwk::from_bytes(
            br#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn every_alg_signs_and_verifies_and_publishes_no_private_members() {
        for alg in SigningAlg::ALL {
            let key = generate(*alg, 2048).unwrap();
            assert_eq!(key.public_jwk["kid"], key.kid.as_str());
            assert_eq!(key.public_jwk["alg"], alg.as_str());
            assert_eq!(key.public_jwk["use"], "sig");
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(
                    !key.public_jwk.contains_key(private),
                    "{alg} leaks {private}"
                );
            }
            let signer = load_signer(*alg, &key.private_jwk).unwrap();
            let mut claims = Map::new();
            claims.insert("sub".into(), "alice".into());
            let jwt = signer.sign_jwt(&claims, "at+jwt").unwrap();
            let v = verifier(*alg, &key.public_jwk).unwrap();
            let (payload, header) = josekit::jwt::decode_with_verifier(&jwt, v.as_ref()).unwrap();
            assert_eq!(payload.subject(), Some("alice"));
            assert_eq!(header.key_id(), Some(key.kid.as_str()));
            assert_eq!(header.token_type(), Some("at+jwt"));
        }
    }
}
