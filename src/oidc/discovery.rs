//! OpenID Connect Discovery 1.0 §3–4 and RFC 8414 §3: provider metadata. It lists exactly what
//! is implemented; each feature adds its members when it lands.

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::app::AppState;
use crate::config::Settings;
use crate::error::OAuthError;
use crate::http::CurrentTenant;
use crate::model::client::{ASYMMETRIC_ALGS, AuthMethod, GrantType, HMAC_ALGS};
use crate::model::session::ACR_VALUES;
use crate::model::{SigningAlg, Tenant};
use crate::oidc::claims::{self, PEOPLE_SCOPES};
use crate::urls::{Endpoint, TenantUrls};

/// Provider metadata, named as in OpenID Connect Discovery §3 and RFC 8414 §2.
#[derive(Debug, Serialize)]
pub struct ProviderMetadata {
    /// The issuer identifier; equals the URL the document was fetched under, minus the
    /// well-known suffix (Discovery §4.3, RFC 8414 §3.3).
    pub issuer: String,
    pub authorization_endpoint: String,
    pub jwks_uri: String,
    pub response_types_supported: Vec<&'static str>,
    /// Stated: the default (`query`, `fragment`) would leave `form_post` out.
    pub response_modes_supported: Vec<&'static str>,
    /// RFC 7636 §4.2: `plain` is refused.
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub scopes_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    pub claims_parameter_supported: bool,
    pub subject_types_supported: Vec<&'static str>,
    /// Every tenant can sign with these (RS256 is OpenID Connect's required default).
    pub id_token_signing_alg_values_supported: Vec<SigningAlg>,
    pub userinfo_endpoint: String,
    pub userinfo_signing_alg_values_supported: Vec<SigningAlg>,
    pub acr_values_supported: Vec<&'static str>,
    pub prompt_values_supported: Vec<&'static str>,
    /// RFC 9101 §10.5: request objects by value.
    pub request_parameter_supported: bool,
    pub request_object_signing_alg_values_supported: Vec<&'static str>,
    /// Stated `false`: the default (`true`) would claim request URIs hosted by the client.
    pub request_uri_parameter_supported: bool,
    /// RFC 9126 §5.
    pub pushed_authorization_request_endpoint: String,
    pub require_pushed_authorization_requests: bool,
    /// RFC 9207 §3.
    pub authorization_response_iss_parameter_supported: bool,
    /// OpenID Connect RP-Initiated Logout §2.1 and Back-Channel Logout §2.1.
    pub end_session_endpoint: String,
    pub backchannel_logout_supported: bool,
    pub backchannel_logout_session_supported: bool,
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
        let id_token_algs = vec![SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa];
        let mut request_object_algs = ASYMMETRIC_ALGS.to_vec();
        if tenant.settings.allow_unsigned_request_objects {
            request_object_algs.push("none");
        }
        ProviderMetadata {
            authorization_endpoint: urls.endpoint(Endpoint::Authorize),
            jwks_uri: urls.endpoint(Endpoint::Jwks),
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query", "fragment", "form_post"],
            code_challenge_methods_supported: vec!["S256"],
            scopes_supported: PEOPLE_SCOPES.to_vec(),
            claims_supported: claims::supported(),
            claims_parameter_supported: true,
            subject_types_supported: vec!["public"],
            id_token_signing_alg_values_supported: id_token_algs.clone(),
            userinfo_endpoint: urls.endpoint(Endpoint::Userinfo),
            userinfo_signing_alg_values_supported: id_token_algs,
            acr_values_supported: ACR_VALUES.to_vec(),
            prompt_values_supported: vec!["none", "login", "consent", "select_account"],
            request_parameter_supported: true,
            request_object_signing_alg_values_supported: request_object_algs,
            request_uri_parameter_supported: false,
            pushed_authorization_request_endpoint: urls.endpoint(Endpoint::Par),
            require_pushed_authorization_requests: tenant
                .settings
                .require_pushed_authorization_requests,
            authorization_response_iss_parameter_supported: true,
            end_session_endpoint: urls.endpoint(Endpoint::EndSession),
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
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
            (&metadata.authorization_endpoint, "authorize"),
            (&metadata.userinfo_endpoint, "userinfo"),
            (&metadata.pushed_authorization_request_endpoint, "par"),
            (&metadata.end_session_endpoint, "logout"),
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
