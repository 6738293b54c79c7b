//! Client authentication at the token, introspection and revocation endpoints: RFC 6749
//! §2.3.1 (`client_secret_basic`, `client_secret_post`), RFC 7521/7523 and OIDC Core §9
//! (`client_secret_jwt`, `private_key_jwt`) and public clients (`none`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::app::AppState;
use crate::cache::{CacheKey, HotMap, Invalidated, Invalidation, SingleFlight};
use crate::clients;
use crate::crypto::{secrets_equal, sha256};
use crate::error::{Challenge, ErrorCode, OAuthError, ServiceError};
use crate::jose::jwt::{Exp, TimeRules};
use crate::jose::{JoseError, jwt};
use crate::model::client::{ASYMMETRIC_ALGS, AuthMethod, Client, ClientId, HMAC_ALGS};
use crate::model::{Tenant, TenantId};
use crate::oauth::params::Params;
use crate::urls::{Endpoint, TenantUrls};

/// RFC 7523 §2.2.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Clock skew tolerated on assertion times.
const SKEW: i64 = 60;
/// Largest `jwks_uri` document accepted.
const MAX_JWKS_BYTES: usize = 64 * 1024;

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

/// The form parameters of a request to `{issuer}/{endpoint}` and its authenticated client: the
/// opening of the token, introspection and revocation endpoints.
pub async fn form_request(
    state: &AppState,
    tenant: &Tenant,
    req: &HttpRequest,
    form: Vec<(String, String)>,
    endpoint: Endpoint,
) -> Result<(Params, Authenticated), OAuthError> {
    let params = Params::parse(form)?;
    let url = TenantUrls::new(&state.settings, &tenant.slug).endpoint(endpoint);
    let auth = authenticate(state, tenant, req, &params, &url).await?;
    Ok((params, auth))
}

/// Authenticates the client of a request to `endpoint` (its full URL).
pub async fn authenticate(
    state: &AppState,
    tenant: &Tenant,
    req: &HttpRequest,
    params: &Params,
    endpoint: &str,
) -> Result<Authenticated, OAuthError> {
    let issuer = state.settings.issuer(&tenant.slug);
    let fail = Failure::of(&issuer, req);
    let found = match presented(req, params, fail)? {
        Presented::Basic { id, secret } => check_secret(
            state,
            tenant.id,
            &id,
            &secret,
            AuthMethod::ClientSecretBasic,
        )
        .await?
        .ok_or_else(|| fail.reject("client authentication failed"))?,
        Presented::Post { id, secret } => {
            check_secret(state, tenant.id, &id, &secret, AuthMethod::ClientSecretPost)
                .await?
                .ok_or_else(|| fail.reject("client authentication failed"))?
        }
        Presented::Public { id } => {
            let client = match ClientId::parse(&id) {
                Some(id) => clients::find(state, tenant.id, &id).await?,
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
            check_assertion(state, tenant, fail, endpoint, params, &assertion).await?
        }
    };
    clients::touch(state, tenant.id, &found.client.client_id).await;
    Ok(found)
}

/// Checks a secret in constant time. An unknown client costs the same hash and comparison.
async fn check_secret(
    state: &AppState,
    tenant: TenantId,
    id: &str,
    secret: &str,
    method: AuthMethod,
) -> Result<Option<Authenticated>, OAuthError> {
    let client = match ClientId::parse(id) {
        Some(id) => clients::find(state, tenant, &id).await?,
        None => None,
    };
    let presented = sha256(secret.as_bytes());
    let stored = client
        .as_ref()
        .and_then(|c| c.secret_hash)
        .unwrap_or([0xa5; 32]);
    let matches = secrets_equal(&presented, &stored);
    let Some(client) = client else {
        return Ok(None);
    };
    let now = state.clock.now();
    let usable = matches
        && client.secret_hash.is_some()
        && client.metadata.token_endpoint_auth_method == method
        && client.secret_expires_at.is_none_or(|exp| now < exp);
    Ok(usable.then_some(Authenticated { client, method }))
}

/// The audiences an assertion may name: the issuer, the token endpoint, or the endpoint
/// called (RFC 7523 §3 item 3; OIDC Core §9).
fn audience_ok(claims: &serde_json::Map<String, Value>, accepted: &[&str]) -> bool {
    match claims.get("aud") {
        Some(Value::String(aud)) => accepted.contains(&aud.as_str()),
        Some(Value::Array(auds)) => auds
            .iter()
            .any(|a| a.as_str().is_some_and(|a| accepted.contains(&a))),
        _ => false,
    }
}

async fn check_assertion(
    state: &AppState,
    tenant: &Tenant,
    failure: Failure<'_>,
    endpoint: &str,
    params: &Params,
    assertion: &str,
) -> Result<Authenticated, OAuthError> {
    let issuer = failure.realm;
    let fail = |why: &str| failure.reject(why);
    let unverified = jwt::peek_claims(assertion).map_err(|_| fail("malformed client assertion"))?;
    // RFC 7523 §3: iss and sub are both the client_id.
    let sub = unverified.get("sub").and_then(Value::as_str);
    let iss = unverified.get("iss").and_then(Value::as_str);
    let (Some(sub), Some(iss)) = (sub, iss) else {
        return Err(fail("client assertion lacks iss or sub"));
    };
    if sub != iss || params.get("client_id").is_some_and(|id| id != sub) {
        return Err(fail("client assertion iss, sub and client_id disagree"));
    }
    // Times, audience and jti are checked before any signature work, so expired or
    // misdirected assertions cost nothing. The verified payload is these same bytes.
    let now = state.clock.now();
    let max_lifetime =
        i64::try_from(state.settings.oauth.client_assertion_max_lifetime_secs).unwrap_or(600);
    let rules = TimeRules {
        exp: Exp::Required,
        skew: SKEW,
        max_lifetime: Some(max_lifetime),
        check_iat: true,
    };
    let exp = match jwt::check_times(&unverified, now, rules) {
        Ok(Some(exp)) => exp,
        Ok(None) => return Err(fail("client assertion lacks exp")),
        Err(e) => return Err(fail(&format!("client assertion {e}"))),
    };
    let token_endpoint = TenantUrls::new(&state.settings, &tenant.slug).endpoint(Endpoint::Token);
    if !audience_ok(&unverified, &[issuer, &token_endpoint, endpoint]) {
        return Err(fail("client assertion audience is not this server"));
    }
    if unverified.get("jti").and_then(Value::as_str).is_none() {
        return Err(fail("client assertion lacks jti"));
    }
    let client = match ClientId::parse(sub) {
        Some(id) => clients::find(state, tenant.id, &id).await?,
        None => None,
    }
    .ok_or_else(|| fail("client authentication failed"))?;
    let method = client.metadata.token_endpoint_auth_method;
    let registered_alg = client.metadata.token_endpoint_auth_signing_alg.as_deref();
    let claims = match method {
        AuthMethod::ClientSecretJwt => {
            let secret = clients::hmac_secret(state, tenant.id, &client)?
                .ok_or_else(|| fail("client authentication failed"))?;
            let allowed: Vec<&str> = registered_alg.map_or_else(|| HMAC_ALGS.to_vec(), |a| vec![a]);
            jwt::verify_hmac(assertion, &secret, &allowed)
        }
        AuthMethod::PrivateKeyJwt => {
            let allowed: Vec<String> = registered_alg.map_or_else(
                || ASYMMETRIC_ALGS.iter().map(|a| (*a).to_owned()).collect(),
                |a| vec![a.to_owned()],
            );
            let jwks = client_jwks(state, tenant.id, failure, &client, false).await?;
            match verify_off_worker(assertion, jwks.clone(), allowed.clone()).await {
                // The client may have rotated its keys: fetch jwks_uri once more, and verify
                // again only if that gave other keys.
                Err(e) if client.metadata.jwks_uri.is_some() => {
                    let fresh = client_jwks(state, tenant.id, failure, &client, true).await?;
                    if Arc::ptr_eq(&fresh, &jwks) {
                        Err(e)
                    } else {
                        verify_off_worker(assertion, fresh, allowed).await
                    }
                }
                other => other,
            }
        }
        _ => return Err(fail("client authentication failed")),
    }
    .map_err(|e| {
        tracing::info!(client_id = %client.client_id, error = %e, "client assertion refused");
        fail("client assertion signature is invalid")
    })?;
    let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
        return Err(fail("client assertion lacks jti"));
    };
    // RFC 7523 §3 item 7: a jti is used once, on any replica, until the assertion expires.
    let key = CacheKey::AssertionJti {
        tenant: tenant.id,
        client: &client.client_id,
        jti,
    };
    let ttl = Duration::from_secs(u64::try_from(exp - now + SKEW).unwrap_or(1).max(1));
    if !state
        .cache
        .first_sighting(&key, ttl)
        .await
        .map_err(ServiceError::from)?
    {
        return Err(fail("client assertion was already used"));
    }
    Ok(Authenticated { client, method })
}

/// Verifies an assertion with the client's keys on the blocking pool: an RSA-4096
/// verification, or several candidate keys, costs more than an actix worker should spend
/// away from other requests.
async fn verify_off_worker(
    assertion: &str,
    jwks: Arc<Value>,
    allowed: Vec<String>,
) -> Result<serde_json::Map<String, Value>, JoseError> {
    let token = assertion.to_owned();
    tokio::task::spawn_blocking(move || {
        let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
        jwt::verify_with_jwks(&token, &jwks, &allowed)
    })
    .await
    .map_err(|e| JoseError(format!("verification task failed: {e}")))?
}

/// Most clients' `jwks_uri` documents kept.
const HOT_DOCUMENTS: usize = 20_000;

/// This replica's copies of clients' `jwks_uri` documents.
pub struct JwksCache {
    pub documents: HotMap<(TenantId, ClientId), Arc<Value>>,
    /// Clients whose `jwks_uri` was refetched within the minute (a failed assertion
    /// refetches at most that often).
    pub refetched: HotMap<(TenantId, ClientId), ()>,
    /// One `jwks_uri` fetch per client at a time.
    pub fetches: SingleFlight<(TenantId, ClientId)>,
}

impl JwksCache {
    /// Documents are kept `ttl` (`oauth.jwks_uri_cache_secs`).
    pub fn new(ttl: Duration) -> JwksCache {
        JwksCache {
            documents: HotMap::new(ttl, HOT_DOCUMENTS),
            refetched: HotMap::new(Duration::from_secs(60), HOT_DOCUMENTS),
            fetches: SingleFlight::default(),
        }
    }
}

impl Invalidated for JwksCache {
    fn evict(&self, message: &Invalidation) {
        let reaches = |(t, c): &(TenantId, ClientId)| clients::reaches(message, *t, c.as_str());
        self.documents.retain(|k, _| !reaches(k));
        // A new jwks_uri (or new keys) is fetched at once, not after the refetch pause.
        self.refetched.retain(|k, _| !reaches(k));
    }

    fn clear(&self) {
        self.documents.clear();
        self.refetched.clear();
    }
}

/// The client's public keys: registered by value, or fetched from its `jwks_uri` (cached).
async fn client_jwks(
    state: &AppState,
    tenant: TenantId,
    fail: Failure<'_>,
    client: &Client,
    refresh: bool,
) -> Result<Arc<Value>, OAuthError> {
    if let Some(jwks) = &client.metadata.jwks {
        return Ok(Arc::new(jwks.clone()));
    }
    let Some(uri) = &client.metadata.jwks_uri else {
        return Err(fail.reject("client has no keys"));
    };
    let key = (tenant, client.client_id.clone());
    // One fetch per client at a time (single flight): a burst of assertions after a key
    // rotation, or a cold start, costs the client's server one request, not one each.
    let mut flight = None;
    loop {
        let cached = state.hot.jwks.documents.get(&key);
        // A refetch after a failed verification, or a fetch after a failed fetch, happens at
        // most once a minute per client: bad assertions cannot make us hammer anyone's server.
        let recently = state.hot.jwks.refetched.get(&key).is_some();
        match cached {
            Some(hit) if !refresh || recently => return Ok(hit),
            None if recently => {
                return Err(fail.reject("the client's jwks_uri could not be fetched"));
            }
            _ => {}
        }
        if flight.is_some() {
            break;
        }
        // Whoever held the flight before us may have done our fetch: look again.
        flight = Some(state.hot.jwks.fetches.enter(&key).await);
    }
    if state.hot.jwks.documents.get(&key).is_some() {
        let generation = state.hot.jwks.refetched.generation();
        state
            .hot
            .jwks
            .refetched
            .insert_if(generation, key.clone(), ());
    }
    let generation = state.hot.jwks.documents.generation();
    let fetched = fetch_jwks(state, uri).await.map_err(|e| {
        let generation = state.hot.jwks.refetched.generation();
        state
            .hot
            .jwks.refetched
            .insert_if(generation, key.clone(), ());
        tracing::warn!(client_id = %client.client_id, jwks_uri = %uri, error = %e, "jwks_uri fetch failed");
        fail.reject("the client's jwks_uri could not be fetched")
    })?;
    let fetched = Arc::new(fetched);
    state
        .hot
        .jwks
        .documents
        .insert_if(generation, key, fetched.clone());
    Ok(fetched)
}

async fn fetch_jwks(state: &AppState, uri: &str) -> Result<Value, String> {
    // Host names are checked by the resolver; IP literals never reach it.
    let url = url::Url::parse(uri).map_err(|e| e.to_string())?;
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    if let Some(ip) = literal
        && !state.settings.oauth.allow_private_jwks_uri
        && !is_public(ip)
    {
        return Err(format!("{ip} is not a public address"));
    }
    let mut response = state
        .http
        .get(uri)
        .header(
            header::ACCEPT.as_str(),
            "application/jwk-set+json, application/json",
        )
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err("document too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    // The same rules as keys registered by value: 1-20 public keys.
    crate::model::client::check_jwks(&value).map_err(|e| e.description)?;
    jwt::check_public_keys(&value).map_err(|e| e.to_string())?;
    Ok(value)
}

/// Whether `ip` is a public unicast address: not loopback, private, link-local (cloud metadata
/// lives there), shared, unspecified, broadcast, documentation or multicast.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (18..20).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let [first, second, ..] = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                // Site-local, 6to4 and NAT64 reach IPv4 networks behind them.
                || (first & 0xffc0) == 0xfec0
                || first == 0x2002
                || (first == 0x64 && second == 0xff9b)
                // Teredo, documentation, and the deprecated IPv4-compatible ::a.b.c.d.
                || (first == 0x2001 && (second == 0 || second == 0x0db8))
                || v6.segments()[..6].iter().all(|s| *s == 0))
        }
    }
}

/// Resolves host names for outgoing requests, keeping public addresses only (unless
/// `allow_private`): a `jwks_uri` cannot lead the server to internal services, and the check
/// holds for the address actually connected to (no DNS rebinding window).
pub struct PublicResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_fetched() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "2002::1",
            "64:ff9b::a00:1",
            "fec0::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn form_decoding_of_basic_credentials() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%4"), None);
        assert_eq!(form_decode("plain").as_deref(), Some("plain"));
    }
}
