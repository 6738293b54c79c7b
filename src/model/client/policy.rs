//! The server-side policy of a client, set by an administrator and never through
//! registration (token format and lifetimes, resources, service account, exchange rights).

use serde::{Deserialize, Serialize};
use url::Url;

use crate::model::SigningAlg;
use crate::model::token::TokenFormat;

/// Server-side policy for a client, set by an administrator (never through registration).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientPolicy {
    /// How access tokens are represented (JWT unless set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_format: Option<TokenFormat>,
    /// JWS algorithm of JWT access tokens (ES256 unless set; RS256 for resource servers that
    /// only know RFC 9068's mandatory algorithm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_signing_alg: Option<SigningAlg>,
    /// Access token lifetime, overriding the tenant's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_ttl_secs: Option<u64>,
    /// Refresh token lifetime, overriding the server's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_ttl_secs: Option<u64>,
    /// Resource indicators (RFC 8707) this client may request as audiences.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Token exchange (RFC 8693 §1.1): may this client obtain tokens that act as the subject?
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub may_impersonate: bool,
    /// Token exchange (RFC 8693 §1.1): may this client obtain delegation tokens (`act`)?
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub may_delegate: bool,
    /// The client is a service account: it may hold API keys.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub service_account: bool,
    /// The client is a resource server trusted to introspect every token of the tenant
    /// (RFC 7662 §4). Without it, a client sees only its own tokens and those addressed to its
    /// resources.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub may_introspect: bool,
    /// A first-party application of the tenant: people are not asked to consent to it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub first_party: bool,
    /// PKCE for this confidential client, overriding the tenant's `require_pkce` (public
    /// clients always use it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_pkce: Option<bool>,
}

impl ClientPolicy {
    pub fn token_format(&self) -> TokenFormat {
        self.access_token_format.unwrap_or(TokenFormat::Jwt)
    }

    pub fn signing_alg(&self) -> SigningAlg {
        self.access_token_signing_alg.unwrap_or(SigningAlg::Es256)
    }
}

/// Checks an RFC 8707 resource indicator: an absolute URI without a fragment (§2).
pub fn check_resource(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw)
        .map_err(|_| format!("'{}' is not an absolute URI", super::validation::clip(raw)))?;
    if url.fragment().is_some() {
        return Err(format!("'{}' has a fragment", super::validation::clip(raw)));
    }
    Ok(url)
}
