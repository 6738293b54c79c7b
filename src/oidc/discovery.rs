//! OpenID Connect Discovery 1.0 §3–4 and RFC 8414 §3: provider metadata. It lists exactly what
//! is implemented; each feature adds its members when it lands.

use actix_web::http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL};
use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::app::AppState;
use crate::config::Settings;
use crate::error::OAuthError;
use crate::http::CurrentTenant;
use crate::model::client::{ASYMMETRIC_ALGS, AuthMethod, GrantType, HMAC_ALGS};
use crate::model::{SigningAlg, Tenant};
use crate::urls::{Endpoint, TenantUrls};

/// Provider metadata, named as in OpenID Connect Discovery §3 and RFC 8414 §2.
#[derive(Debug, Serialize)]
pub struct ProviderMetadata {
    /// The issuer identifier; equals the URL the document was fetched under, minus the
    /// well-known suffix (Discovery §4.3, RFC 8414 §3.3).
    pub issuer: String,
    pub jwks_uri: String,
    /// REQUIRED by both specs; empty until the authorization endpoint exists.
    pub response_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    /// Every tenant can sign with these (RS256 is OpenID Connect's required default).
    pub id_token_signing_alg_values_supported: Vec<SigningAlg>,
    pub token_endpoint: String,
    pub token_endpoint_auth_methods_supported: Vec<AuthMethod>,
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<GrantType>,
    pub registration_endpoint: String,
    pub introspection_endpoint: String,
    pub introspection_endpoint_auth_methods_supported: Vec<AuthMethod>,
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 9701 §7.
    pub introspection_signing_alg_values_supported: Vec<SigningAlg>,
    pub revocation_endpoint: String,
    pub revocation_endpoint_auth_methods_supported: Vec<AuthMethod>,
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 8707 resource indicators are accepted at the token endpoint.
    pub resource_indicators_supported: bool,
}

/// Client authentication methods, confidential ones first.
const AUTH_METHODS: [AuthMethod; 5] = [
    AuthMethod::ClientSecretBasic,
    AuthMethod::ClientSecretPost,
    AuthMethod::ClientSecretJwt,
    AuthMethod::PrivateKeyJwt,
    AuthMethod::None,
];

fn signing_algs() -> Vec<&'static str> {
    ASYMMETRIC_ALGS.iter().chain(HMAC_ALGS).copied().collect()
}

impl ProviderMetadata {
    pub fn for_tenant(settings: &Settings, tenant: &Tenant) -> ProviderMetadata {
        let urls = TenantUrls::new(settings, &tenant.slug);
        ProviderMetadata {
            jwks_uri: urls.endpoint(Endpoint::Jwks),
            response_types_supported: Vec::new(),
            subject_types_supported: vec!["public"],
            id_token_signing_alg_values_supported: vec![
                SigningAlg::Rs256,
                SigningAlg::Es256,
                SigningAlg::EdDsa,
            ],
            token_endpoint: urls.endpoint(Endpoint::Token),
            token_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
            token_endpoint_auth_signing_alg_values_supported: signing_algs(),
            grant_types_supported: crate::oauth::token::SUPPORTED_GRANTS.to_vec(),
            registration_endpoint: urls.endpoint(Endpoint::Register),
            introspection_endpoint: urls.endpoint(Endpoint::Introspect),
            // Public clients may not introspect (RFC 7662 §2.1).
            introspection_endpoint_auth_methods_supported: AUTH_METHODS[..4].to_vec(),
            introspection_endpoint_auth_signing_alg_values_supported: signing_algs(),
            introspection_signing_alg_values_supported: vec![SigningAlg::Rs256],
            revocation_endpoint: urls.endpoint(Endpoint::Revoke),
            revocation_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
            revocation_endpoint_auth_signing_alg_values_supported: signing_algs(),
            resource_indicators_supported: true,
            issuer: urls.issuer().to_owned(),
        }
    }
}

fn respond(metadata: ProviderMetadata) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        // Browser-based relying parties fetch this cross-origin.
        .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .json(metadata)
}

/// `GET {issuer}/.well-known/openid-configuration`
pub async fn openid_configuration(
    state: web::Data<AppState>,
    CurrentTenant(tenant): CurrentTenant,
) -> Result<HttpResponse, OAuthError> {
    Ok(respond(ProviderMetadata::for_tenant(
        &state.settings,
        &tenant,
    )))
}

/// `GET /.well-known/oauth-authorization-server/t/{tenant}` (RFC 8414 §3: the well-known
/// suffix goes between the host and the issuer's path).
pub async fn oauth_authorization_server(
    state: web::Data<AppState>,
    CurrentTenant(tenant): CurrentTenant,
) -> Result<HttpResponse, OAuthError> {
    Ok(respond(ProviderMetadata::for_tenant(
        &state.settings,
        &tenant,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{TenantId, TenantSettings, TenantSlug};

    #[test]
    fn every_endpoint_is_under_the_tenants_issuer_and_both_ed25519_names_are_advertised() {
        let mut settings = Settings::default();
        settings.server.public_url = "https://id.example/".into();
        let tenant = Tenant {
            id: TenantId::for_tests(7),
            slug: TenantSlug::parse("acme").unwrap(),
            display_name: "Acme".into(),
            created_at: 0,
            settings: TenantSettings::default(),
        };
        let metadata = ProviderMetadata::for_tenant(&settings, &tenant);
        assert_eq!(metadata.issuer, "https://id.example/t/acme");
        for (url, path) in [
            (&metadata.jwks_uri, "jwks"),
            (&metadata.token_endpoint, "token"),
            (&metadata.registration_endpoint, "register"),
            (&metadata.introspection_endpoint, "introspect"),
            (&metadata.revocation_endpoint, "revoke"),
        ] {
            assert_eq!(*url, format!("https://id.example/t/acme/{path}"));
        }
        for alg in ["EdDSA", "Ed25519"] {
            assert!(
                metadata
                    .token_endpoint_auth_signing_alg_values_supported
                    .contains(&alg)
            );
        }
        // RFC 7662 §2.1: introspection is for confidential clients.
        assert!(
            !metadata
                .introspection_endpoint_auth_methods_supported
                .contains(&AuthMethod::None)
        );
    }
}
