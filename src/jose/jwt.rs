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

/// Whether a token must carry `exp` (RFC 7519 §4.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exp {
    /// It must, and it must not have passed.
    Required,
    /// If present, it must not have passed.
    Optional,
    /// Not looked at, where a spec says so (an expired `id_token_hint` at RP-initiated logout).
    Ignored,
}

/// How a token's times are checked: one rule for client assertions, software statements and
/// our own tokens presented back.
#[derive(Debug, Clone, Copy)]
pub struct TimeRules {
    pub exp: Exp,
    /// Clock skew tolerated, seconds, both ways.
    pub skew: i64,
    /// The longest `exp - now` accepted (client assertions).
    pub max_lifetime: Option<i64>,
    /// Refuse an `iat` in the future (beyond the skew).
    pub check_iat: bool,
}

/// Why a token's times were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("lacks exp")]
    MissingExp,
    #[error("has expired")]
    Expired,
    #[error("lives too long")]
    TooLong,
    #[error("is not valid yet")]
    NotYetValid,
}

/// Checks `exp`, `nbf` and `iat` (RFC 7519 §4.1.4–4.1.6) at `now`; returns `exp` if present.
pub fn check_times(
    claims: &Map<String, Value>,
    now: i64,
    rules: TimeRules,
) -> Result<Option<i64>, TimeError> {
    let int = |name: &str| claims.get(name).and_then(Value::as_i64);
    let exp = int("exp");
    match (rules.exp, exp) {
        (Exp::Required, None) => return Err(TimeError::MissingExp),
        (Exp::Required | Exp::Optional, Some(exp)) if exp.saturating_add(rules.skew) <= now => {
            return Err(TimeError::Expired);
        }
        _ => {}
    }
    if let (Some(max), Some(exp)) = (rules.max_lifetime, exp)
        && exp > now.saturating_add(max).saturating_add(rules.skew)
    {
        return Err(TimeError::TooLong);
    }
    let future = |t: i64| t > now.saturating_add(rules.skew);
    if int("nbf").is_some_and(future) || (rules.check_iat && int("iat").is_some_and(future)) {
        return Err(TimeError::NotYetValid);
    }
    Ok(exp)
}

/// Verifies the signature with `verifier` and returns the claims.
pub fn verify(token: &str, verifier: &dyn JwsVerifier) -> Result<Map<String, Value>, JoseError> {
    let (payload, _) = josekit::jwt::decode_with_verifier(token, verifier)?;
    Ok(payload.claims_set().clone())
}

/// Whether two JWS `alg` names mean the same algorithm: `Ed25519` (RFC 9864) is `EdDSA`
/// restricted to Ed25519 keys, and the only EdDSA curve accepted here.
pub fn same_alg(a: &str, b: &str) -> bool {
    a == b || matches!((a, b), ("EdDSA", "Ed25519") | ("Ed25519", "EdDSA"))
}

/// Whether `alg` is in `allowed`, up to [`same_alg`].
pub fn alg_allowed(alg: &str, allowed: &[&str]) -> bool {
    allowed.iter().any(|a| same_alg(a, alg))
}

/// The `Ed25519` name (RFC 9864 §2.2) for josekit's EdDSA verifier, whose header check
/// wants the name it was made for.
#[derive(Debug, Clone)]
struct Ed25519Name;

impl jws::JwsAlgorithm for Ed25519Name {
    fn name(&self) -> &str {
        "Ed25519"
    }

    fn box_clone(&self) -> Box<dyn jws::JwsAlgorithm> {
        Box::new(self.clone())
    }
}

#[derive(Debug, Clone)]
struct Ed25519Verifier(jws::alg::eddsa::EddsaJwsVerifier);

impl JwsVerifier for Ed25519Verifier {
    fn algorithm(&self) -> &dyn jws::JwsAlgorithm {
        &Ed25519Name
    }

    fn key_id(&self) -> Option<&str> {
        self.0.key_id()
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), josekit::JoseError> {
        self.0.verify(message, signature)
    }

    fn box_clone(&self) -> Box<dyn JwsVerifier> {
        Box::new(self.clone())
    }
}

/// Whether `jwk` is a key of the type `alg` needs, so other keys are never tried.
fn key_fits(alg: &str, jwk: &Jwk) -> bool {
    let curve = || jwk.curve();
    match alg {
        "RS256" | "PS256" => jwk.key_type() == "RSA",
        "ES256" => jwk.key_type() == "EC" && curve() == Some("P-256"),
        "EdDSA" | "Ed25519" => jwk.key_type() == "OKP" && curve() == Some("Ed25519"),
        _ => false,
    }
}

/// Asymmetric algorithms a client or publisher may sign with. The key's own `alg`, if any,
/// was matched by the caller (up to [`same_alg`]); josekit wants its own name there, so the
/// member is dropped before the verifier is built.
fn asymmetric_verifier(alg: &str, jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, JoseError> {
    if !key_fits(alg, jwk) {
        return Err(JoseError(format!("the key does not fit algorithm '{alg}'")));
    }
    let unnamed;
    let jwk = if jwk.algorithm().is_some() {
        let mut map = jwk.as_ref().clone();
        map.remove("alg");
        unnamed = Jwk::from_map(map)?;
        &unnamed
    } else {
        jwk
    };
    Ok(match alg {
        "RS256" => Box::new(jws::RS256.verifier_from_jwk(jwk)?),
        "PS256" => Box::new(jws::PS256.verifier_from_jwk(jwk)?),
        "ES256" => Box::new(jws::ES256.verifier_from_jwk(jwk)?),
        "EdDSA" => Box::new(jws::EdDSA.verifier_from_jwk(jwk)?),
        "Ed25519" => Box::new(Ed25519Verifier(jws::EdDSA.verifier_from_jwk(jwk)?)),
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

/// Parses a client's JWK Set and the key material of every signing key of a type it could
/// sign assertions with (RSA, EC P-256, Ed25519), so a malformed key is refused when it is
/// registered or fetched, not at the first assertion.
pub fn check_public_keys(value: &Value) -> Result<(), JoseError> {
    for jwk in jwk_set(value)? {
        if jwk.key_use().is_some_and(|u| u != "sig") {
            continue;
        }
        let alg = match (jwk.key_type(), jwk.curve(), jwk.algorithm()) {
            ("RSA", _, Some("PS256")) => "PS256",
            ("RSA", _, _) => "RS256",
            ("EC", Some("P-256"), _) => "ES256",
            ("OKP", Some("Ed25519"), _) => "EdDSA",
            _ => continue,
        };
        asymmetric_verifier(alg, &jwk).map_err(|e| {
            JoseError(format!(
                "key {} is malformed: {e}",
                jwk.key_id().unwrap_or("without kid")
            ))
        })?;
    }
    Ok(())
}

/// The keys of `keys` that may have signed a token with this header, and only those: the
/// key type the algorithm needs, a compatible `alg` and `use` when present, and the header's
/// `kid` (keys without a kid only when no key carries it). Bad tokens cost one verification
/// per candidate, never one per key of the set.
fn candidates<'k>(header: &Header, keys: &'k [Jwk]) -> Vec<&'k Jwk> {
    let usable: Vec<&Jwk> = keys
        .iter()
        .filter(|jwk| {
            key_fits(&header.alg, jwk)
                && jwk.algorithm().is_none_or(|a| same_alg(a, &header.alg))
                && jwk.key_use().is_none_or(|u| u == "sig")
        })
        .collect();
    let Some(kid) = header.kid.as_deref() else {
        return usable;
    };
    let named: Vec<&Jwk> = usable
        .iter()
        .copied()
        .filter(|jwk| jwk.key_id() == Some(kid))
        .collect();
    if named.is_empty() {
        usable
            .into_iter()
            .filter(|jwk| jwk.key_id().is_none())
            .collect()
    } else {
        named
    }
}

/// Verifies `token` with a key of `jwks` that fits its header (see [`candidates`]), trying
/// `allowed` algorithms only.
pub fn verify_with_jwks(
    token: &str,
    jwks: &Value,
    allowed: &[&str],
) -> Result<Map<String, Value>, JoseError> {
    let header = peek_header(token)?;
    if !alg_allowed(&header.alg, allowed) {
        return Err(JoseError(format!(
            "algorithm '{}' is not accepted",
            header.alg
        )));
    }
    let keys = jwk_set(jwks)?;
    let mut last = JoseError("no key in the JWK Set matches the token".into());
    for jwk in candidates(&header, &keys) {
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

    #[test]
    fn one_rule_for_token_times() {
        let rules = TimeRules {
            exp: Exp::Required,
            skew: 60,
            max_lifetime: Some(600),
            check_iat: true,
        };
        let at = |pairs: Value| pairs.as_object().unwrap().clone();
        let now = 1_000_000;
        assert_eq!(
            check_times(&at(json!({})), now, rules),
            Err(TimeError::MissingExp)
        );
        assert_eq!(
            check_times(&at(json!({"exp": now - 61})), now, rules),
            Err(TimeError::Expired)
        );
        assert_eq!(
            check_times(&at(json!({"exp": now - 59})), now, rules),
            Ok(Some(now - 59))
        );
        assert_eq!(
            check_times(&at(json!({"exp": now + 700})), now, rules),
            Err(TimeError::TooLong)
        );
        assert_eq!(
            check_times(&at(json!({"exp": now + 60, "nbf": now + 61})), now, rules),
            Err(TimeError::NotYetValid)
        );
        assert_eq!(
            check_times(&at(json!({"exp": now + 60, "iat": now + 61})), now, rules),
            Err(TimeError::NotYetValid)
        );
        let hint = TimeRules {
            exp: Exp::Ignored,
            skew: 0,
            max_lifetime: None,
            check_iat: false,
        };
        assert_eq!(
            check_times(&at(json!({"exp": now - 9999})), now, hint),
            Ok(Some(now - 9999))
        );
    }

    #[test]
    fn keys_named_with_either_eddsa_name_verify() {
        use josekit::jwk::alg::ed::EdCurve;
        let key = Jwk::generate_ed_key(EdCurve::Ed25519).unwrap();
        let mut payload = josekit::jwt::JwtPayload::new();
        payload.set_subject("c");
        let token = josekit::jwt::encode_with_signer(
            &payload,
            &josekit::jws::JwsHeader::new(),
            &jws::EdDSA.signer_from_jwk(&key).unwrap(),
        )
        .unwrap();
        for name in ["EdDSA", "Ed25519"] {
            let mut public = key.to_public_key().unwrap();
            public.set_algorithm(name);
            let jwks = json!({"keys": [Value::Object(public.as_ref().clone())]});
            check_public_keys(&jwks).unwrap();
            assert!(
                verify_with_jwks(&token, &jwks, &["EdDSA", "Ed25519"]).is_ok(),
                "{name}"
            );
        }
        let rsa = Jwk::generate_rsa_key(2048).unwrap();
        let mut public = rsa.to_public_key().unwrap();
        public.set_algorithm("PS256");
        check_public_keys(&json!({"keys": [Value::Object(public.as_ref().clone())]})).unwrap();
    }
}
