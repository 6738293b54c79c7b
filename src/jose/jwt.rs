//! Verifying JWTs that others signed: client assertions (RFC 7523), software statements
//! (RFC 7591 §2.3) and our own tokens presented back to us (introspection, token exchange).
//! Claims are checked by the callers; this only proves who signed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jws::{self, JwsVerifier};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::JoseError;

/// The protected header members we route on.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub typ: Option<String>,
}

fn segment(token: &str, index: usize) -> Result<Vec<u8>, JoseError> {
    let part = token
        .split('.')
        .nth(index)
        .ok_or_else(|| JoseError("not a compact JWS".into()))?;
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JoseError("malformed base64url".into()))
}

/// True when `token` has the shape of a compact JWS (three base64url parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.len() < 16_384
        && token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The header, unverified: only to choose the key.
pub fn peek_header(token: &str) -> Result<Header, JoseError> {
    if !looks_like_jwt(token) {
        return Err(JoseError("not a compact JWS".into()));
    }
    serde_json::from_slice(&segment(token, 0)?).map_err(|e| JoseError(format!("header: {e}")))
}

/// The claims, unverified: only to find who claims to have signed.
pub fn peek_claims(token: &str) -> Result<Map<String, Value>, JoseError> {
    if !looks_like_jwt(token) {
        return Err(JoseError("not a compact JWS".into()));
    }
    serde_json::from_slice(&segment(token, 1)?).map_err(|e| JoseError(format!("claims: {e}")))
}

/// Verifies the signature with `verifier` and returns the claims.
pub fn verify(token: &str, verifier: &dyn JwsVerifier) -> Result<Map<String, Value>, JoseError> {
    let (payload, _) = josekit::jwt::decode_with_verifier(token, verifier)?;
    Ok(payload.claims_set().clone())
}

/// Asymmetric algorithms a client or publisher may sign with.
fn asymmetric_verifier(alg: &str, jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, JoseError> {
    Ok(match alg {
        "RS256" => Box::new(jws::RS256.verifier_from_jwk(jwk)?),
        "PS256" => Box::new(jws::PS256.verifier_from_jwk(jwk)?),
        "ES256" => Box::new(jws::ES256.verifier_from_jwk(jwk)?),
        "EdDSA" => Box::new(jws::EdDSA.verifier_from_jwk(jwk)?),
        other => return Err(JoseError(format!("algorithm '{other}' is not accepted"))),
    })
}

/// Parses a JWK Set (RFC 7517 §5), public keys only.
pub fn jwk_set(value: &Value) -> Result<Vec<Jwk>, JoseError> {
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| JoseError("not a JWK Set".into()))?;
    keys.iter()
        .map(|k| {
            let map = k
                .as_object()
                .ok_or_else(|| JoseError("a JWK is not an object".into()))?;
            Ok(Jwk::from_map(map.clone())?)
        })
        .collect()
}

/// Verifies `token` with a key of `jwks` that fits its header (`kid` when given, the key's
/// `alg` and `use` when present), trying `allowed` algorithms only.
pub fn verify_with_jwks(
    token: &str,
    jwks: &Value,
    allowed: &[&str],
) -> Result<Map<String, Value>, JoseError> {
    let header = peek_header(token)?;
    if !allowed.contains(&header.alg.as_str()) {
        return Err(JoseError(format!(
            "algorithm '{}' is not accepted",
            header.alg
        )));
    }
    let keys = jwk_set(jwks)?;
    let mut last = JoseError("no key in the JWK Set matches the token".into());
    for jwk in &keys {
        // A key with another kid is not the one; a key without a kid may be.
        if header.kid.is_some() && jwk.key_id().is_some() && jwk.key_id() != header.kid.as_deref() {
            continue;
        }
        if jwk.algorithm().is_some_and(|a| a != header.alg)
            || jwk.key_use().is_some_and(|u| u != "sig")
        {
            continue;
        }
        // josekit demands a header kid when the key has one; a token without a kid may still be
        // signed by it (RFC 7515 §4.1.4: kid is optional).
        let stripped;
        let jwk = if header.kid.is_none() && jwk.key_id().is_some() {
            let mut map = jwk.as_ref().clone();
            map.remove("kid");
            stripped = Jwk::from_map(map)?;
            &stripped
        } else {
            jwk
        };
        match asymmetric_verifier(&header.alg, jwk).and_then(|v| verify(token, v.as_ref())) {
            Ok(claims) => return Ok(claims),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Verifies an HMAC-signed token (RFC 7518 §3.2) with `secret`, trying `allowed` algorithms.
pub fn verify_hmac(
    token: &str,
    secret: &[u8],
    allowed: &[&str],
) -> Result<Map<String, Value>, JoseError> {
    let header = peek_header(token)?;
    if !allowed.contains(&header.alg.as_str()) {
        return Err(JoseError(format!(
            "algorithm '{}' is not accepted",
            header.alg
        )));
    }
    let verifier: Box<dyn JwsVerifier> = match header.alg.as_str() {
        "HS256" => Box::new(jws::HS256.verifier_from_bytes(secret)?),
        "HS384" => Box::new(jws::HS384.verifier_from_bytes(secret)?),
        "HS512" => Box::new(jws::HS512.verifier_from_bytes(secret)?),
        other => return Err(JoseError(format!("algorithm '{other}' is not accepted"))),
    };
    verify(token, verifier.as_ref())
}

#[cfg(test)]
mod tests {
    use josekit::jwk::P_256;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_client_key_verifies_its_assertion() {
        let mut key = Jwk::generate_ec_key(P_256).unwrap();
        key.set_key_id("k1");
        let mut public = key.to_public_key().unwrap();
        public.set_algorithm("ES256");
        let jwks = json!({"keys": [Value::Object(public.as_ref().clone())]});
        let mut header = josekit::jws::JwsHeader::new();
        header.set_key_id("k1");
        let mut payload = josekit::jwt::JwtPayload::new();
        payload.set_subject("c");
        let token = josekit::jwt::encode_with_signer(
            &payload,
            &header,
            &jws::ES256.signer_from_jwk(&key).unwrap(),
        )
        .unwrap();
        let claims = verify_with_jwks(&token, &jwks, &["ES256"]).unwrap();
        assert_eq!(claims["sub"], "c");
        // Without a kid in the header, the keyed JWK still verifies it.
        let mut keyed = public.clone();
        keyed.set_key_id("k1");
        let keyed_jwks = json!({"keys": [Value::Object(keyed.as_ref().clone())]});
        let mut unkeyed = key.as_ref().clone();
        unkeyed.remove("kid");
        let unkeyed = Jwk::from_map(unkeyed).unwrap();
        let bare = josekit::jwt::encode_with_signer(
            &payload,
            &josekit::jws::JwsHeader::new(),
            &jws::ES256.signer_from_jwk(&unkeyed).unwrap(),
        )
        .unwrap();
        assert!(peek_header(&bare).unwrap().kid.is_none());
        assert!(verify_with_jwks(&bare, &keyed_jwks, &["ES256"]).is_ok());
        assert!(verify_with_jwks(&token, &jwks, &["RS256"]).is_err());
    }
}
