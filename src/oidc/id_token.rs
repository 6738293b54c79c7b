//! ID tokens (OpenID Connect Core §2, §3.1.3.6) signed with the algorithm the client registered
//! (`id_token_signed_response_alg`, RS256 unless set), and ID tokens presented back to us as
//! hints (`id_token_hint`: §3.1.2.1 and RP-Initiated Logout §2), checked by signature and
//! issuer with expiry ignored.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha512};

use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::b64url;
use crate::error::ServiceError;
use crate::jose::jwt;
use crate::keys::Keys;
use crate::model::claims::{Audience, IdTokenClaims};
use crate::model::client::Client;
use crate::model::{SigningAlg, Tenant};

/// What an ID token says beyond the issuer, audience and times.
#[derive(Debug, Clone, Default)]
pub struct IdTokenSpec {
    pub sub: String,
    pub auth_time: i64,
    pub nonce: Option<String>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub sid: Option<String>,
    /// The access token issued with it, for `at_hash`.
    pub access_token: Option<String>,
    /// Standard claims released into the ID token (§5.5 `claims` parameter).
    pub profile: Map<String, Value>,
}

/// §3.1.3.6: the left half of the hash of `token` with the hash of the JWS algorithm
/// (SHA-256 for RS256, PS256 and ES256; SHA-512 for EdDSA with Ed25519, as OpenID
/// Connect's errata set says), base64url.
pub fn half_hash(alg: SigningAlg, token: &str) -> String {
    let digest: Vec<u8> = match alg {
        SigningAlg::Rs256 | SigningAlg::Es256 => Sha256::digest(token.as_bytes()).to_vec(),
        SigningAlg::EdDsa => Sha512::digest(token.as_bytes()).to_vec(),
    };
    b64url(&digest[..digest.len() / 2])
}

/// The ID token service.
#[derive(Clone, Copy)]
pub struct IdTokens<'a> {
    pub keys: Keys<'a>,
    pub settings: &'a Settings,
    pub clock: &'a Clock,
}

impl IdTokens<'_> {
    /// Signs claims with the tenant's active key for `alg` (ID tokens, signed userinfo,
    /// logout tokens).
    pub async fn sign(
        &self,
        tenant: &Tenant,
        alg: SigningAlg,
        claims: &Map<String, Value>,
        typ: &str,
    ) -> Result<String, ServiceError> {
        let set = self.keys.signing_set(tenant.id, alg).await?;
        let signer = set
            .signer(alg)
            .ok_or_else(|| ServiceError::Internal(format!("tenant has no active {alg} key")))?;
        Ok(signer.sign_jwt(claims, typ)?)
    }

    /// An ID token for `client`.
    pub async fn mint(
        &self,
        tenant: &Tenant,
        client: &Client,
        spec: IdTokenSpec,
    ) -> Result<String, ServiceError> {
        let alg = client.metadata.id_token_signed_response_alg;
        let now = self.clock.now();
        let ttl = i64::try_from(self.settings.oauth.id_token_ttl_secs).unwrap_or(3600);
        let claims = IdTokenClaims {
            iss: self.settings.issuer(&tenant.slug),
            sub: spec.sub,
            aud: Audience::One(client.client_id.as_str().to_owned()),
            exp: now.saturating_add(ttl),
            iat: now,
            // Always: some relying parties need it without asking (max_age, require_auth_time).
            auth_time: Some(spec.auth_time),
            nonce: spec.nonce,
            acr: spec.acr,
            amr: (!spec.amr.is_empty()).then_some(spec.amr),
            azp: Some(client.client_id.as_str().to_owned()),
            at_hash: spec.access_token.as_deref().map(|t| half_hash(alg, t)),
            c_hash: None,
            sid: spec.sid,
            profile: spec.profile,
        };
        // RFC 8725 §3.11: explicit typing is not used for ID tokens (relying parties expect
        // `JWT` or nothing).
        self.sign(tenant, alg, &claims.to_map(), "JWT").await
    }

    /// An ID token this tenant issued (by any published key: active, next or retired), with
    /// our issuer; its expiry does not matter (OIDC Core §3.1.2.1, RP-Initiated Logout §2: an
    /// expired hint is still a hint).
    pub async fn hint(
        &self,
        tenant: &Tenant,
        token: &str,
    ) -> Result<Option<IdTokenClaims>, ServiceError> {
        let Ok(header) = jwt::peek_header(token) else {
            return Ok(None);
        };
        // Our ID tokens say `JWT`; access, introspection and logout tokens are typed
        // otherwise and are no hint (RFC 8725 §3.11).
        if header
            .typ
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
        {
            return Ok(None);
        }
        let Some(kid) = header.kid.as_deref() else {
            return Ok(None);
        };
        let set = self.keys.key_set(tenant.id).await?;
        let Some((alg, verifier)) = set.verifier(kid) else {
            return Ok(None);
        };
        if alg.as_str() != header.alg {
            return Ok(None);
        }
        let Ok(claims) = jwt::verify(token, verifier) else {
            return Ok(None);
        };
        let Some(claims) = IdTokenClaims::from_map(&claims) else {
            return Ok(None);
        };
        Ok((claims.iss == self.settings.issuer(&tenant.slug)).then_some(claims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_follows_the_signing_algorithm() {
        // OIDC Core §3.1.3.6's example is RS256-shaped: SHA-256, left 128 bits.
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(
            half_hash(SigningAlg::Rs256, token),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(
            half_hash(SigningAlg::Es256, token),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        // Ed25519 signs with SHA-512: 256 bits, 43 characters.
        assert_eq!(half_hash(SigningAlg::EdDsa, token).len(), 43);
    }
}
