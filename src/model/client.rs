//! OAuth clients: identifiers, RFC 7591 §2 client metadata (with OpenID Connect Dynamic
//! Client Registration 1.0 §2 members) as stored, and the client itself. Registration-time
//! rules live in [`validation`], the administrator's policy in [`policy`].

mod policy;
mod validation;

pub use policy::{ClientPolicy, check_resource};
pub use validation::{
    MetadataError, MetadataRequest, ValidationRules, check_jwks, check_redirect_uri,
};

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::redirect_uri::RedirectUri;
use crate::model::token::Scope;
use crate::model::{SigningAlg, wire_enum};

/// A client identifier (RFC 6749 §2.2), unique within its tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// Accepts 1–255 visible ASCII characters (RFC 6749 Appendix A.1: VSCHAR).
    pub fn parse(raw: &str) -> Option<ClientId> {
        ((1..=255).contains(&raw.len()) && raw.bytes().all(|b| (0x20..=0x7e).contains(&b)))
            .then(|| ClientId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

wire_enum! {
    /// Client authentication methods at the token endpoint (RFC 7591 §2; OIDC Core §9).
    pub enum AuthMethod {
        /// HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1).
        ClientSecretBasic = "client_secret_basic",
        /// `client_id` and `client_secret` in the form body (RFC 6749 §2.3.1).
        ClientSecretPost = "client_secret_post",
        /// A JWT signed with HMAC over the client secret (RFC 7523 §2.2; OIDC Core §9).
        ClientSecretJwt = "client_secret_jwt",
        /// A JWT signed with the client's own private key (RFC 7523 §2.2; OIDC Core §9).
        PrivateKeyJwt = "private_key_jwt",
        /// A public client: no authentication.
        None = "none",
    }
}

impl AuthMethod {
    /// Whether the server issues a secret to clients using this method.
    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            AuthMethod::ClientSecretBasic
                | AuthMethod::ClientSecretPost
                | AuthMethod::ClientSecretJwt
        )
    }
}

wire_enum! {
    /// Grant types a client may register (RFC 7591 §2).
    pub enum GrantType {
        /// The authorization code grant (RFC 6749 §4.1).
        AuthorizationCode = "authorization_code",
        /// The refresh token grant (RFC 6749 §6).
        RefreshToken = "refresh_token",
        /// The client credentials grant (RFC 6749 §4.4).
        ClientCredentials = "client_credentials",
        /// Token exchange (RFC 8693).
        TokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange",
        /// The device authorization grant (RFC 8628).
        DeviceCode = "urn:ietf:params:oauth:grant-type:device_code",
        /// The implicit grant: removed by OAuth 2.1, refused at registration.
        Implicit = "implicit",
        /// The resource owner password grant: removed by OAuth 2.1, refused at registration.
        Password = "password",
    }
}

wire_enum! {
    /// Response types (RFC 7591 §2; OAuth 2.1 keeps only `code`).
    pub enum ResponseType {
        /// The authorization code flow.
        Code = "code",
        /// The implicit flow: refused.
        Token = "token",
        /// OIDC implicit: refused.
        IdToken = "id_token",
    }
}

wire_enum! {
    /// OpenID Connect Dynamic Client Registration §2 `application_type`.
    pub enum ApplicationType {
        /// A web application: redirect URIs use https.
        Web = "web",
        /// A native application: loopback and private-use scheme redirect URIs (RFC 8252).
        Native = "native",
    }
}

/// Registered client metadata, validated. Serialised, it is the RFC 7591 §3.2.1 metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientMetadata {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<RedirectUri>,
    pub token_endpoint_auth_method: AuthMethod,
    pub grant_types: Vec<GrantType>,
    pub response_types: Vec<ResponseType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    pub application_type: ApplicationType,
    pub id_token_signed_response_alg: SigningAlg,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_signed_response_alg: Option<SigningAlg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_max_age: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_auth_time: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// Back-Channel Logout 1.0 §2.2: the client needs `sid` in logout tokens.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backchannel_logout_session_required: bool,
    /// RFC 9101 §4 / OIDC Registration §2: the only algorithm its request objects may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_object_signing_alg: Option<String>,
    /// RFC 9126 §6: authorization requests of this client must be pushed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_pushed_authorization_requests: bool,
    /// Language-tagged variants of human-readable members (RFC 7591 §2.2), e.g. `client_name#fr`.
    #[serde(flatten)]
    pub localized: Map<String, Value>,
}

/// HMAC algorithms for `client_secret_jwt`.
pub const HMAC_ALGS: &[&str] = &["HS256", "HS384", "HS512"];
/// Asymmetric algorithms for `private_key_jwt`.
/// `Ed25519` is RFC 9864's fully-specified name for what `EdDSA` means with an Ed25519 key
/// (oauth4webapi sends it); both are accepted and advertised.
pub const ASYMMETRIC_ALGS: &[&str] = &["RS256", "PS256", "ES256", "EdDSA", "Ed25519"];

/// A client as stored.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: ClientId,
    pub metadata: ClientMetadata,
    pub policy: ClientPolicy,
    /// SHA-256 of the secret.
    pub secret_hash: Option<[u8; 32]>,
    /// The secret sealed under the master key (client_secret_jwt only).
    pub secret_sealed: Option<Vec<u8>>,
    pub secret_expires_at: Option<i64>,
    pub registration_token_hash: Option<[u8; 32]>,
    /// Registered through the registration endpoint (and so expires when unused).
    pub dynamic: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
}

impl Client {
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.metadata.grant_types.contains(&grant)
    }

    pub fn is_public(&self) -> bool {
        self.metadata.token_endpoint_auth_method == AuthMethod::None
    }
}
