//! Validation of client metadata as sent (RFC 7591 §2, §3.2.2; RFC 8252 §7 for native apps;
//! OpenID Connect Dynamic Client Registration 1.0 §2): what may be registered, and the error
//! code for what may not.

use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::error::RegistrationError;
use crate::model::SigningAlg;
use crate::model::redirect_uri::{RedirectUri, is_loopback};
use crate::model::token::Scope;

use super::*;

/// Longest accepted string member.
const MAX_TEXT: usize = 2000;
/// Most entries in a list member.
const MAX_LIST: usize = 50;
/// Language-tagged human-readable members (RFC 7591 §2.2).
const LOCALIZABLE: &[&str] = &[
    "client_name",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
];

/// Client metadata as sent: every member optional, unknown members kept aside to be ignored
/// (RFC 7591 §2: the server MUST ignore metadata it does not understand).
#[derive(Debug, Default, Deserialize)]
pub struct MetadataRequest {
    pub redirect_uris: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<AuthMethod>,
    pub grant_types: Option<Vec<GrantType>>,
    pub response_types: Option<Vec<ResponseType>>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub scope: Option<String>,
    pub contacts: Option<Vec<String>>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub jwks_uri: Option<String>,
    pub jwks: Option<Value>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    pub software_statement: Option<String>,
    pub application_type: Option<ApplicationType>,
    pub id_token_signed_response_alg: Option<SigningAlg>,
    pub userinfo_signed_response_alg: Option<SigningAlg>,
    pub token_endpoint_auth_signing_alg: Option<String>,
    pub default_max_age: Option<u64>,
    pub require_auth_time: Option<bool>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: Option<bool>,
    pub request_object_signing_alg: Option<String>,
    pub require_pushed_authorization_requests: Option<bool>,
    /// RFC 7592 §2.2: a PUT carries the client's id (and may carry the secret).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Why metadata was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct MetadataError {
    /// One of RFC 7591 §3.2.2's codes.
    pub code: RegistrationError,
    pub description: String,
}

fn invalid(description: impl Into<String>) -> MetadataError {
    MetadataError {
        code: RegistrationError::InvalidClientMetadata,
        description: description.into(),
    }
}

fn invalid_redirect(description: impl Into<String>) -> MetadataError {
    MetadataError {
        code: RegistrationError::InvalidRedirectUri,
        description: description.into(),
    }
}

/// Checks one redirect URI a client registers (see [`RedirectUri::registrable`]).
pub fn check_redirect_uri(raw: &str, app: ApplicationType) -> Result<RedirectUri, MetadataError> {
    RedirectUri::registrable(raw, app).map_err(|e| invalid_redirect(e.0))
}

/// A web page or image URL (client_uri, logo_uri, tos_uri, policy_uri).
fn check_web_url(name: &str, raw: &str) -> Result<(), MetadataError> {
    match Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => {
            if raw.len() > MAX_TEXT {
                Err(invalid(format!("{name} is too long")))
            } else {
                Ok(())
            }
        }
        _ => Err(invalid(format!("{name} must be an absolute http(s) URL"))),
    }
}

fn check_text(name: &str, value: &str) -> Result<(), MetadataError> {
    if value.is_empty() || value.chars().count() > MAX_TEXT || value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{name} must be 1-{MAX_TEXT} characters without control characters"
        )));
    }
    Ok(())
}

pub(super) fn clip(raw: &str) -> String {
    raw.chars().take(100).collect()
}

/// Server-side knobs the validation needs.
#[derive(Debug, Clone, Copy)]
pub struct ValidationRules {
    /// Accept `jwks_uri` over plain http (development only).
    pub allow_http_jwks_uri: bool,
}

impl MetadataRequest {
    /// Validates the request into registered metadata, applying RFC 7591 §2 defaults.
    pub fn validate(self, rules: ValidationRules) -> Result<ClientMetadata, MetadataError> {
        let application_type = self.application_type.unwrap_or(ApplicationType::Web);
        let token_endpoint_auth_method = self
            .token_endpoint_auth_method
            .unwrap_or(AuthMethod::ClientSecretBasic);
        // RFC 7591 §2: grant_types defaults to authorization_code, response_types to code.
        let mut grant_types = self
            .grant_types
            .unwrap_or_else(|| vec![GrantType::AuthorizationCode]);
        let mut response_types = self.response_types.unwrap_or_else(|| {
            if grant_types.contains(&GrantType::AuthorizationCode) {
                vec![ResponseType::Code]
            } else {
                Vec::new()
            }
        });
        grant_types.dedup();
        response_types.dedup();
        if grant_types.is_empty() {
            return Err(invalid("grant_types must not be empty"));
        }
        for gone in [GrantType::Implicit, GrantType::Password] {
            if grant_types.contains(&gone) {
                return Err(invalid(format!(
                    "grant type '{gone}' is not supported (removed by OAuth 2.1)"
                )));
            }
        }
        if let Some(rt) = response_types.iter().find(|rt| **rt != ResponseType::Code) {
            return Err(invalid(format!(
                "response type '{rt}' is not supported; only 'code'"
            )));
        }
        // RFC 7591 §2.1: the code response type goes with the authorization_code grant.
        let code_grant = grant_types.contains(&GrantType::AuthorizationCode);
        if code_grant != response_types.contains(&ResponseType::Code) {
            return Err(invalid(
                "grant_types and response_types disagree: authorization_code goes with the \
                 'code' response type (RFC 7591 §2.1)",
            ));
        }
        let public = token_endpoint_auth_method == AuthMethod::None;
        for confidential_only in [GrantType::ClientCredentials, GrantType::TokenExchange] {
            // RFC 6749 §4.4: the client credentials grant is for confidential clients only.
            if public && grant_types.contains(&confidential_only) {
                return Err(invalid(format!(
                    "grant type '{confidential_only}' needs an authenticated client, not \
                     token_endpoint_auth_method 'none'"
                )));
            }
        }

        let redirect_uris = self.redirect_uris.unwrap_or_default();
        if redirect_uris.len() > MAX_LIST {
            return Err(invalid_redirect(format!(
                "at most {MAX_LIST} redirect URIs"
            )));
        }
        let redirect_uris = redirect_uris
            .iter()
            .map(|uri| check_redirect_uri(uri, application_type))
            .collect::<Result<Vec<_>, _>>()?;
        if code_grant && redirect_uris.is_empty() {
            return Err(invalid_redirect(
                "redirect_uris is required for the authorization_code grant",
            ));
        }
        let post_logout_redirect_uris = self.post_logout_redirect_uris.unwrap_or_default();
        if post_logout_redirect_uris.len() > MAX_LIST {
            return Err(invalid(format!(
                "at most {MAX_LIST} post_logout_redirect_uris"
            )));
        }
        let post_logout_redirect_uris = post_logout_redirect_uris
            .iter()
            .map(|uri| {
                check_redirect_uri(uri, application_type).map_err(|e| invalid(e.description))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(uri) = &self.backchannel_logout_uri {
            // OIDC Back-Channel Logout §2.2: absolute, no fragment.
            let ok = Url::parse(uri).is_ok_and(|u| {
                u.fragment().is_none()
                    && (u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u)))
            });
            if !ok {
                return Err(invalid(
                    "backchannel_logout_uri must be an absolute https URL (http only on a loopback host) without a fragment",
                ));
            }
        }

        for (name, value) in [
            ("client_uri", &self.client_uri),
            ("logo_uri", &self.logo_uri),
            ("tos_uri", &self.tos_uri),
            ("policy_uri", &self.policy_uri),
        ] {
            if let Some(value) = value {
                check_web_url(name, value)?;
            }
        }
        for (name, value) in [
            ("client_name", &self.client_name),
            ("software_id", &self.software_id),
            ("software_version", &self.software_version),
        ] {
            if let Some(value) = value {
                check_text(name, value)?;
            }
        }
        let contacts = self.contacts.unwrap_or_default();
        if contacts.len() > MAX_LIST {
            return Err(invalid(format!("at most {MAX_LIST} contacts")));
        }
        for contact in &contacts {
            check_text("contacts", contact)?;
        }
        let scope = match self.scope.as_deref() {
            None => None,
            Some(raw) => Some(Scope::parse(raw).map_err(|e| invalid(e.to_string()))?),
        };

        // RFC 7591 §2: jwks_uri and jwks MUST NOT both be present.
        if self.jwks.is_some() && self.jwks_uri.is_some() {
            return Err(invalid("jwks and jwks_uri must not both be present"));
        }
        if let Some(uri) = &self.jwks_uri {
            let ok = Url::parse(uri).is_ok_and(|u| {
                u.host().is_some()
                    && u.fragment().is_none()
                    && (u.scheme() == "https"
                        || (rules.allow_http_jwks_uri && u.scheme() == "http"))
            });
            if !ok {
                return Err(invalid("jwks_uri must be an absolute https URL"));
            }
        }
        if let Some(jwks) = &self.jwks {
            check_jwks(jwks)?;
        }
        let signing_alg = self.token_endpoint_auth_signing_alg;
        match token_endpoint_auth_method {
            AuthMethod::PrivateKeyJwt => {
                if self.jwks.is_none() && self.jwks_uri.is_none() {
                    return Err(invalid("private_key_jwt needs jwks or jwks_uri"));
                }
                if let Some(alg) = &signing_alg
                    && !ASYMMETRIC_ALGS.contains(&alg.as_str())
                {
                    return Err(invalid(format!(
                        "token_endpoint_auth_signing_alg '{}' is not one of {}",
                        clip(alg),
                        ASYMMETRIC_ALGS.join(", ")
                    )));
                }
            }
            AuthMethod::ClientSecretJwt => {
                if let Some(alg) = &signing_alg
                    && !HMAC_ALGS.contains(&alg.as_str())
                {
                    return Err(invalid(format!(
                        "token_endpoint_auth_signing_alg '{}' is not one of {}",
                        clip(alg),
                        HMAC_ALGS.join(", ")
                    )));
                }
            }
            _ => {
                if signing_alg.is_some() {
                    return Err(invalid(
                        "token_endpoint_auth_signing_alg is only for client_secret_jwt and \
                         private_key_jwt",
                    ));
                }
            }
        }

        // OIDC Registration §2 / RFC 9101 §4: request objects signed with one of the
        // asymmetric algorithms, or unsigned (`none`, honoured only where the tenant allows).
        if let Some(alg) = &self.request_object_signing_alg
            && alg != "none"
            && !ASYMMETRIC_ALGS.contains(&alg.as_str())
        {
            return Err(invalid(format!(
                "request_object_signing_alg '{}' is not one of none, {}",
                clip(alg),
                ASYMMETRIC_ALGS.join(", ")
            )));
        }

        let mut localized = Map::new();
        for (key, value) in self.other {
            let Some((base, tag)) = key.split_once('#') else {
                continue;
            };
            if !LOCALIZABLE.contains(&base)
                || tag.is_empty()
                || tag.len() > 35
                || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                continue;
            }
            let Value::String(text) = &value else {
                return Err(invalid(format!("{key} must be a string")));
            };
            if base == "client_name" {
                check_text(&key, text)?;
            } else {
                check_web_url(&key, text)?;
            }
            localized.insert(key, value);
        }

        let metadata = ClientMetadata {
            redirect_uris,
            token_endpoint_auth_method,
            grant_types,
            response_types,
            client_name: self.client_name,
            client_uri: self.client_uri,
            logo_uri: self.logo_uri,
            scope,
            contacts,
            tos_uri: self.tos_uri,
            policy_uri: self.policy_uri,
            jwks_uri: self.jwks_uri,
            jwks: self.jwks,
            software_id: self.software_id,
            software_version: self.software_version,
            application_type,
            // OIDC Registration §2: RS256 when omitted.
            id_token_signed_response_alg: self
                .id_token_signed_response_alg
                .unwrap_or(SigningAlg::Rs256),
            userinfo_signed_response_alg: self.userinfo_signed_response_alg,
            token_endpoint_auth_signing_alg: signing_alg,
            default_max_age: self.default_max_age,
            require_auth_time: self.require_auth_time.unwrap_or(false),
            post_logout_redirect_uris,
            backchannel_logout_uri: self.backchannel_logout_uri,
            backchannel_logout_session_required: self
                .backchannel_logout_session_required
                .unwrap_or(false),
            request_object_signing_alg: self.request_object_signing_alg,
            require_pushed_authorization_requests: self
                .require_pushed_authorization_requests
                .unwrap_or(false),
            localized,
        };
        // Control characters have no place in metadata (and PostgreSQL refuses NUL in text).
        if serde_json::to_value(&metadata).map_or(true, |v| has_control(&v)) {
            return Err(invalid("metadata must not contain control characters"));
        }
        Ok(metadata)
    }
}

fn has_control(value: &Value) -> bool {
    match value {
        Value::String(s) => s.chars().any(char::is_control),
        Value::Array(items) => items.iter().any(has_control),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.chars().any(char::is_control) || has_control(v)),
        _ => false,
    }
}

/// A JWK Set (RFC 7517 §5) of public keys.
pub fn check_jwks(jwks: &Value) -> Result<(), MetadataError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("jwks must be a JWK Set: {\"keys\": [...]}"))?;
    if keys.is_empty() || keys.len() > 20 {
        return Err(invalid("jwks must hold 1-20 keys"));
    }
    for key in keys {
        let Some(map) = key.as_object() else {
            return Err(invalid("every jwks entry must be a JWK object"));
        };
        if !map.get("kty").is_some_and(Value::is_string) {
            return Err(invalid("every JWK needs a 'kty'"));
        }
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            if map.contains_key(private) {
                return Err(invalid(format!(
                    "jwks must hold public keys only (found '{private}')"
                )));
            }
        }
        if map.get("kty").and_then(Value::as_str) == Some("RSA") {
            check_rsa_key(map)?;
        }
    }
    Ok(())
}

/// RSA public keys: a modulus of 2048-4096 bits and the exponent 65537, so that verifying
/// with a registered key costs what a normal key costs (a huge modulus or exponent makes each
/// verification arbitrarily slow).
fn check_rsa_key(map: &Map<String, Value>) -> Result<(), MetadataError> {
    use base64::Engine;
    let decode = |name: &str| {
        map.get(name).and_then(Value::as_str).and_then(|v| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(v)
                .ok()
        })
    };
    let (Some(n), Some(e)) = (decode("n"), decode("e")) else {
        return Err(invalid("an RSA JWK needs base64url 'n' and 'e'"));
    };
    let n = n
        .iter()
        .skip_while(|b| **b == 0)
        .copied()
        .collect::<Vec<u8>>();
    // An empty or all-zero modulus has no leading byte: zero bits, refused below.
    let bits = (n.len() * 8).saturating_sub(n.first().map_or(0, |b| b.leading_zeros() as usize));
    if !(2048..=4096).contains(&bits) {
        return Err(invalid(format!(
            "RSA keys must have a 2048-4096 bit modulus (this one has {bits})"
        )));
    }
    let e: Vec<u8> = e.into_iter().skip_while(|b| *b == 0).collect();
    if e != [1, 0, 1] {
        return Err(invalid("RSA keys must use the public exponent 65537"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RULES: ValidationRules = ValidationRules {
        allow_http_jwks_uri: false,
    };

    fn request(json: Value) -> Result<ClientMetadata, MetadataError> {
        serde_json::from_value::<MetadataRequest>(json)
            .unwrap()
            .validate(RULES)
    }

    #[test]
    fn degenerate_rsa_moduli_are_refused_not_panicked_on() {
        for n in ["", "AA", "AAAA"] {
            let key = json!({"kty": "RSA", "n": n, "e": "AQAB"});
            let Value::Object(map) = key else {
                unreachable!()
            };
            assert!(check_rsa_key(&map).is_err(), "n = {n:?}");
        }
    }

    #[test]
    fn defaults_follow_rfc7591() {
        let m = request(serde_json::json!({"redirect_uris": ["https://app.example/cb"]})).unwrap();
        assert_eq!(m.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(m.response_types, vec![ResponseType::Code]);
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(m.application_type, ApplicationType::Web);
        assert_eq!(m.id_token_signed_response_alg, SigningAlg::Rs256);
    }

    #[test]
    fn redirect_uri_rules() {
        use ApplicationType::{Native, Web};
        for (uri, app) in [
            ("https://app.example/cb", Web),
            ("https://app.example/cb?x=1", Web),
            ("http://127.0.0.1:4000/cb", Native),
            ("http://[::1]/cb", Native),
            ("http://localhost/cb", Native),
            ("http://127.0.0.1:8765/cb", Web),
            ("http://localhost:3000/callback", Web),
            ("http://127.5.6.7/cb", Web),
            ("http://[::1]:9000/cb", Web),
            ("com.example.app:/oauth2redirect", Native),
            ("https://app.example/cb", Native),
        ] {
            assert!(check_redirect_uri(uri, app).is_ok(), "{uri} {app}");
        }
        for (uri, app) in [
            ("/relative", Web),
            ("https://app.example/cb#frag", Web),
            ("http://app.example/cb", Web),
            ("http://localhost.example/cb", Web),
            ("http://128.0.0.1/cb", Web),
            ("http://10.0.0.1/cb", Web),
            ("http://app.example/cb", Native),
            ("http://127.0.0.1:8765/cb#x", Web),
            ("com.example.app:/cb", Web),
            ("myapp:/cb", Native),
            ("javascript:alert(1)", Native),
            ("data:text/html,x", Native),
        ] {
            let e = check_redirect_uri(uri, app).unwrap_err();
            assert_eq!(e.code, RegistrationError::InvalidRedirectUri, "{uri}");
        }
    }

    #[test]
    fn inconsistent_or_unsafe_metadata_is_refused() {
        for (json, code) in [
            (
                serde_json::json!({"grant_types": ["authorization_code"], "response_types": []}),
                RegistrationError::InvalidClientMetadata,
            ),
            (
                serde_json::json!({"grant_types": ["client_credentials"], "response_types": ["code"], "redirect_uris": ["https://a.example/cb"]}),
                RegistrationError::InvalidClientMetadata,
            ),
            (
                serde_json::json!({"grant_types": ["implicit"]}),
                RegistrationError::InvalidClientMetadata,
            ),
            (
                serde_json::json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
                RegistrationError::InvalidClientMetadata,
            ),
            (
                serde_json::json!({"grant_types": ["authorization_code"]}),
                RegistrationError::InvalidRedirectUri,
            ),
            (
                serde_json::json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt"}),
                RegistrationError::InvalidClientMetadata,
            ),
            (
                serde_json::json!({"grant_types": ["client_credentials"], "jwks_uri": "https://a.example/j", "jwks": {"keys": [{"kty": "EC"}]}}),
                RegistrationError::InvalidClientMetadata,
            ),
            (
                serde_json::json!({"grant_types": ["client_credentials"], "jwks_uri": "http://a.example/j"}),
                RegistrationError::InvalidClientMetadata,
            ),
            (
                serde_json::json!({"grant_types": ["client_credentials"], "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
                RegistrationError::InvalidClientMetadata,
            ),
            (
                serde_json::json!({"grant_types": ["client_credentials"], "scope": "a  b"}),
                RegistrationError::InvalidClientMetadata,
            ),
            (
                serde_json::json!({"grant_types": ["client_credentials"], "logo_uri": "javascript:x"}),
                RegistrationError::InvalidClientMetadata,
            ),
            (
                serde_json::json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_jwt", "token_endpoint_auth_signing_alg": "RS256"}),
                RegistrationError::InvalidClientMetadata,
            ),
            (
                // A control character makes the redirect URI the invalid member.
                serde_json::json!({"redirect_uris": ["https://a.example/cb\u{0000}"]}),
                RegistrationError::InvalidRedirectUri,
            ),
            (
                serde_json::json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [{"kty": "EC", "x": "a\u{0000}"}]}}),
                RegistrationError::InvalidClientMetadata,
            ),
        ] {
            assert_eq!(request(json.clone()).unwrap_err().code, code, "{json}");
        }
    }

    #[test]
    fn rsa_keys_are_bounded() {
        use base64::Engine;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let key = |n_bytes: usize, e: &[u8]| {
            let mut n = vec![0xc5_u8; n_bytes];
            n[n_bytes - 1] = 1;
            json!({"keys": [{"kty": "RSA", "n": b64(&n), "e": b64(e)}]})
        };
        assert!(check_jwks(&key(256, &[1, 0, 1])).is_ok());
        assert!(check_jwks(&key(512, &[1, 0, 1])).is_ok());
        assert!(check_jwks(&key(128, &[1, 0, 1])).is_err(), "1024 bits");
        assert!(check_jwks(&key(2048, &[1, 0, 1])).is_err(), "16384 bits");
        assert!(check_jwks(&key(256, &[3])).is_err(), "e = 3");
        assert!(check_jwks(&key(256, &[0xff; 64])).is_err(), "huge e");
        assert!(check_jwks(&json!({"keys": [{"kty": "RSA", "e": "AQAB"}]})).is_err());
    }

    #[test]
    fn localized_members_are_kept_and_unknown_ones_ignored() {
        let m = request(serde_json::json!({
            "grant_types": ["client_credentials"],
            "client_name": "App",
            "client_name#fr": "Appli",
            "frobnicate": true,
        }))
        .unwrap();
        assert_eq!(m.localized.get("client_name#fr").unwrap(), "Appli");
        assert!(!m.localized.contains_key("frobnicate"));
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["client_name#fr"], "Appli");
        let back: ClientMetadata = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }
}
