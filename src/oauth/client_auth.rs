//! Client authentication at the token, introspection and revocation endpoints: RFC 6749
//! §2.3.1 (`client_secret_basic`, `client_secret_post`), RFC 7521/7523 and OIDC Core §9
//! (`client_secret_jwt`, `private_key_jwt`) and public clients (`none`).
//!
//! This module is the extractor (which credentials a request carries, and how a failure is
//! answered); the checks live beside it: [`secret`] (shared secrets), [`jwt_bearer`]
//! (assertions, RFC 7523), [`jwks`] (clients' key sets, fetched from `jwks_uri`), [`ssrf`]
//! (the guard on every outgoing fetch).

mod jwks;
mod jwt_bearer;
mod secret;
pub mod ssrf;

pub use jwks::JwksCache;
pub use ssrf::PublicResolver;

use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::cache::Cache;
use crate::clients::Clients;
use crate::clock::Clock;
use crate::config::Settings;
use crate::error::{Challenge, ErrorCode, OAuthError};
use crate::model::Tenant;
use crate::model::client::{AuthMethod, Client, ClientId};
use crate::oauth::params::Params;
use crate::urls::{Endpoint, TenantUrls};

/// The client authentication service: what it works with, borrowed from the application
/// state.
#[derive(Clone, Copy)]
pub struct ClientAuth<'a> {
    pub clients: Clients<'a>,
    pub jwks: &'a JwksCache,
    /// Where accepted assertions' `jti`s and the per-client assertion counts are kept.
    pub cache: &'a Cache,
    /// Outgoing HTTP (clients' `jwks_uri`).
    pub http: &'a reqwest::Client,
    pub settings: &'a Settings,
    pub clock: &'a Clock,
}

/// RFC 7523 §2.2.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An authenticated client and how it proved itself.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub client: Arc<Client>,
    pub method: AuthMethod,
}

/// The credentials a request carries, before they are checked.
enum Presented {
    Basic { id: String, secret: String },
    Post { id: String, secret: String },
    Assertion { assertion: String },
    Public { id: String },
}

/// How a failed client authentication is answered: `invalid_client` (RFC 6749 §5.2) as a 401
/// with a Basic challenge when the client used the Authorization header, and otherwise a 400
/// without one (credentials in the body, an assertion, `none`, nothing at all): a 401 must
/// carry a challenge (RFC 9110 §15.5.2), and none fits those.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub realm: &'a str,
    pub via_header: bool,
}

impl Failure<'_> {
    /// For `req`: whether it carries an Authorization header.
    pub fn of<'a>(realm: &'a str, req: &HttpRequest) -> Failure<'a> {
        Failure {
            realm,
            via_header: req.headers().contains_key(header::AUTHORIZATION),
        }
    }

    pub fn reject(self, why: &str) -> OAuthError {
        let error = OAuthError::code(ErrorCode::InvalidClient, why);
        if self.via_header {
            error.with_challenge(Challenge::basic(self.realm))
        } else {
            error
        }
    }
}

/// Decodes one `application/x-www-form-urlencoded` component (RFC 6749 §2.3.1, Appendix B).
fn form_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, ()> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| ())?;
    let decoded = String::from_utf8(decoded).map_err(|_| ())?;
    let (id, secret) = decoded.split_once(':').ok_or(())?;
    match (form_decode(id), form_decode(secret)) {
        (Some(id), Some(secret)) if !id.is_empty() => Ok(Some((id, secret))),
        _ => Err(()),
    }
}

fn presented(req: &HttpRequest, params: &Params, fail: Failure) -> Result<Presented, OAuthError> {
    let basic =
        basic_credentials(req).map_err(|()| fail.reject("malformed Basic authorization header"))?;
    let body_secret = params.get("client_secret");
    let assertion = params.get("client_assertion");
    let assertion_type = params.get("client_assertion_type");
    // RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request.
    let methods = usize::from(basic.is_some())
        + usize::from(body_secret.is_some())
        + usize::from(assertion.is_some());
    if methods > 1 {
        return Err(OAuthError::invalid_request(
            "more than one client authentication method in the request",
        ));
    }
    if let Some((id, secret)) = basic {
        if params.get("client_id").is_some_and(|body_id| body_id != id) {
            return Err(fail.reject("client_id differs from the authenticated client"));
        }
        return Ok(Presented::Basic { id, secret });
    }
    if let Some(assertion) = assertion {
        if assertion_type != Some(JWT_BEARER_ASSERTION) {
            return Err(fail.reject("unsupported client_assertion_type"));
        }
        return Ok(Presented::Assertion {
            assertion: assertion.to_owned(),
        });
    }
    let id = params
        .get("client_id")
        .ok_or_else(|| fail.reject("client authentication is required"))?
        .to_owned();
    Ok(match body_secret {
        Some(secret) => Presented::Post {
            id,
            secret: secret.to_owned(),
        },
        None => Presented::Public { id },
    })
}

impl ClientAuth<'_> {
    /// The form parameters of a request to `{issuer}/{endpoint}` and its authenticated client: the
    /// opening of the token, introspection and revocation endpoints.
    pub async fn form_request(
        &self,
        tenant: &Tenant,
        req: &HttpRequest,
        form: Vec<(String, String)>,
        endpoint: Endpoint,
    ) -> Result<(Params, Authenticated), OAuthError> {
        let params = Params::parse(form)?;
        let url = TenantUrls::new(self.settings, &tenant.slug).endpoint(endpoint);
        let auth = self.authenticate(tenant, req, &params, &url).await?;
        Ok((params, auth))
    }

    /// Authenticates the client of a request to `endpoint` (its full URL).
    pub async fn authenticate(
        &self,
        tenant: &Tenant,
        req: &HttpRequest,
        params: &Params,
        endpoint: &str,
    ) -> Result<Authenticated, OAuthError> {
        let issuer = self.settings.issuer(&tenant.slug);
        let fail = Failure::of(&issuer, req);
        let found = match presented(req, params, fail)? {
            Presented::Basic { id, secret } => self
                .check_secret(tenant.id, &id, &secret, AuthMethod::ClientSecretBasic)
                .await?
                .ok_or_else(|| fail.reject("client authentication failed"))?,
            Presented::Post { id, secret } => self
                .check_secret(tenant.id, &id, &secret, AuthMethod::ClientSecretPost)
                .await?
                .ok_or_else(|| fail.reject("client authentication failed"))?,
            Presented::Public { id } => {
                let client = match ClientId::parse(&id) {
                    Some(id) => self.clients.find(tenant.id, &id).await?,
                    None => None,
                };
                match client {
                    Some(c) if c.metadata.token_endpoint_auth_method == AuthMethod::None => {
                        Authenticated {
                            client: c,
                            method: AuthMethod::None,
                        }
                    }
                    _ => return Err(fail.reject("client authentication failed")),
                }
            }
            Presented::Assertion { assertion } => {
                self.check_assertion(tenant, fail, endpoint, params, &assertion)
                    .await?
            }
        };
        self.clients.touch(tenant.id, &found.client.client_id).await;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_of_basic_credentials() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%4"), None);
        assert_eq!(form_decode("plain").as_deref(), Some("plain"));
    }
}
