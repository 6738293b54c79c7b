//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592) at
//! `{issuer}/register` and `{issuer}/register/{client_id}`, under the tenant's policy: open
//! (rate limited per IP address and per tenant), initial access token required, or closed.

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value};

use crate::app::AppState;
use crate::cache::CacheKey;
use crate::clients::{self, ClientUpdate, IssuedCredentials, NewClient};
use crate::config::{OAuthSettings, Settings};
use crate::crypto::{secrets_equal, sha256};
use crate::error::{Challenge, ErrorCode, OAuthError, RegistrationError, ServiceError};
use crate::http::{CurrentTenant, bearer};
use crate::jose::jwt;
use crate::model::client::{
    ASYMMETRIC_ALGS, Client, ClientId, ClientMetadata, ClientPolicy, MetadataError,
    MetadataRequest, ValidationRules,
};
use crate::model::{RegistrationMode, Tenant};

/// Largest registration request accepted.
const MAX_REQUEST: usize = 64 * 1024;
/// Registration metadata claims a software statement cannot set (they describe the statement).
const STATEMENT_ONLY: &[&str] = &["iss", "iat", "exp", "nbf", "jti", "aud", "sub"];

fn metadata_error(e: MetadataError) -> OAuthError {
    e.code.because(e.description)
}

fn invalid_token(why: &str) -> OAuthError {
    // RFC 6750 §3: a bad bearer token is a 401 with a Bearer challenge naming the error.
    RegistrationError::InvalidToken
        .because(why)
        .with_challenge(Challenge::bearer_error(ErrorCode::InvalidToken, Some(why)))
}

fn missing_token(why: &str) -> OAuthError {
    // RFC 6750 §3.1: a request without credentials gets a challenge without an error code.
    RegistrationError::InvalidToken
        .because(why)
        .with_challenge(Challenge::Bearer {
            realm: None,
            error: None,
            description: None,
            scope: None,
        })
}

fn rules(settings: &OAuthSettings) -> ValidationRules {
    ValidationRules {
        allow_http_jwks_uri: settings.allow_http_jwks_uri,
    }
}

/// Reads the body, refusing more than [`MAX_REQUEST`] bytes with a JSON 413.
async fn read_body(mut payload: web::Payload) -> Result<Vec<u8>, OAuthError> {
    use futures_util::StreamExt;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            RegistrationError::InvalidRequest.because(format!("malformed request body: {e}"))
        })?;
        if body.len() + chunk.len() > MAX_REQUEST {
            return Err(RegistrationError::InvalidRequest
                .because("request body too large")
                .with_status(StatusCode::PAYLOAD_TOO_LARGE));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The body as a JSON object.
fn json_object(req: &HttpRequest, body: &[u8]) -> Result<Map<String, Value>, OAuthError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(
            RegistrationError::InvalidRequest.because("the request body must be application/json")
        );
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(RegistrationError::InvalidClientMetadata
            .because("the client metadata must be a JSON object")),
        Err(e) => {
            Err(RegistrationError::InvalidClientMetadata.because(format!("malformed JSON: {e}")))
        }
    }
}

fn parse_metadata(map: Map<String, Value>) -> Result<MetadataRequest, OAuthError> {
    serde_json::from_value(Value::Object(map)).map_err(|e| {
        RegistrationError::InvalidClientMetadata.because(format!("malformed metadata: {e}"))
    })
}

/// RFC 7591 §2.3: verifies a software statement against the tenant's trusted keys and lays
/// its claims over the request's metadata (the statement's values win).
fn apply_software_statement(
    tenant: &Tenant,
    mut map: Map<String, Value>,
    now: i64,
) -> Result<Map<String, Value>, OAuthError> {
    let statement = match map.remove("software_statement") {
        None => {
            if tenant.settings.require_software_statement {
                return Err(RegistrationError::InvalidSoftwareStatement
                    .because("this server requires a software statement"));
            }
            return Ok(map);
        }
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(RegistrationError::InvalidSoftwareStatement
                .because("software_statement must be a JWT string"));
        }
    };
    if jwt::peek_header(&statement).is_err() || jwt::peek_claims(&statement).is_err() {
        return Err(RegistrationError::InvalidSoftwareStatement
            .because("software_statement is not a signed JWT"));
    }
    let Some(trusted) = &tenant.settings.software_statement_jwks else {
        return Err(RegistrationError::UnapprovedSoftwareStatement
            .because("this server trusts no software statement publisher"));
    };
    let claims = jwt::verify_with_jwks(&statement, trusted, ASYMMETRIC_ALGS).map_err(|_| {
        RegistrationError::UnapprovedSoftwareStatement
            .because("the software statement is not signed by a trusted key")
    })?;
    if !claims.get("iss").is_some_and(Value::is_string) {
        return Err(
            RegistrationError::InvalidSoftwareStatement.because("the software statement lacks iss")
        );
    }
    // A minute of clock skew for statements made elsewhere.
    let rules = jwt::TimeRules {
        exp: jwt::Exp::Optional,
        skew: 60,
        max_lifetime: None,
        check_iat: true,
    };
    if let Err(e) = jwt::check_times(&claims, now, rules) {
        return Err(RegistrationError::InvalidSoftwareStatement
            .because(format!("the software statement {e}")));
    }
    for (name, value) in claims {
        if !STATEMENT_ONLY.contains(&name.as_str()) {
            map.insert(name, value);
        }
    }
    Ok(map)
}

/// RFC 7591 §3.2.1 / RFC 7592 §3: the client information response.
fn client_information(
    settings: &Settings,
    tenant: &Tenant,
    client: &Client,
    issued: &IssuedCredentials,
) -> Value {
    let mut body = match serde_json::to_value(&client.metadata) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    body.insert("client_id".into(), client.client_id.as_str().into());
    body.insert("client_id_issued_at".into(), client.created_at.into());
    if let Some(secret) = &issued.client_secret {
        body.insert("client_secret".into(), secret.clone().into());
    }
    if client.secret_hash.is_some() {
        // 0: the secret does not expire.
        body.insert(
            "client_secret_expires_at".into(),
            client.secret_expires_at.unwrap_or(0).into(),
        );
    }
    if let Some(token) = &issued.registration_access_token {
        body.insert("registration_access_token".into(), token.clone().into());
    }
    if client.dynamic {
        body.insert(
            "registration_client_uri".into(),
            crate::urls::TenantUrls::new(settings, &tenant.slug)
                .registration_client(&client.client_id)
                .into(),
        );
    }
    Value::Object(body)
}

fn respond(status: StatusCode, body: Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// Enforces the tenant's registration policy before the request is looked at. Returns the
/// initial access token to spend once the metadata has passed validation, so a refused
/// registration does not use it up.
async fn admit<'r>(
    state: &AppState,
    tenant: &Tenant,
    req: &'r HttpRequest,
) -> Result<Option<&'r str>, OAuthError> {
    let mode = tenant
        .settings
        .registration
        .unwrap_or(state.settings.oauth.registration);
    if let Some(token) = bearer(req) {
        if mode == RegistrationMode::Closed {
            return Err(RegistrationError::AccessDenied.because("registration is closed"));
        }
        // Checked now (spent only after validation), so a made-up token neither slips past
        // the open-mode rate limits nor buys a full validation.
        if !state
            .store
            .initial_access_token_usable(tenant.id, sha256(token.as_bytes()), state.clock.now())
            .await
            .map_err(ServiceError::from)?
        {
            return Err(invalid_token(
                "the initial access token is invalid, expired or used up",
            ));
        }
        return Ok(Some(token));
    }
    match mode {
        RegistrationMode::Closed => {
            Err(RegistrationError::AccessDenied.because("registration is closed"))
        }
        RegistrationMode::Token => Err(missing_token(
            "registration requires an initial access token",
        )),
        RegistrationMode::Open => {
            let ip = crate::http::client_ip(req, &state.settings.server.trusted_proxies)
                .map_or_else(|| "unknown".to_owned(), crate::http::rate_limit_subject);
            let window = Duration::from_secs(3600);
            let limits = [
                (
                    CacheKey::RegistrationsFrom {
                        tenant: tenant.id,
                        subject: &ip,
                    },
                    state.settings.oauth.registration_per_ip_per_hour,
                ),
                (
                    CacheKey::Registrations { tenant: tenant.id },
                    state.settings.oauth.registration_per_tenant_per_hour,
                ),
            ];
            for (key, limit) in limits {
                let count = state
                    .cache
                    .count(&key, window)
                    .await
                    .map_err(ServiceError::from)?;
                if count > i64::from(limit) {
                    return Err(RegistrationError::RateLimited
                        .because("too many registrations; try again later")
                        .with_header(header::RETRY_AFTER, "3600"));
                }
            }
            Ok(None)
        }
    }
}

/// Dynamically registered clients ask only for scopes the tenant offers them.
fn check_scope(tenant: &Tenant, metadata: &ClientMetadata) -> Result<(), OAuthError> {
    let offered = tenant
        .settings
        .registration_scope
        .clone()
        .unwrap_or_default();
    match &metadata.scope {
        Some(scope) if !scope.is_subset(&offered) => Err(RegistrationError::InvalidClientMetadata
            .because(if offered.is_empty() {
                "this server offers no scopes to dynamically registered clients".to_owned()
            } else {
                format!("scope must be within '{offered}'")
            })),
        _ => Ok(()),
    }
}

/// Keys sent by value parse now (RFC 7591 §2 `jwks`), before anything is spent.
fn check_keys(metadata: &ClientMetadata) -> Result<(), OAuthError> {
    clients::check_keys(metadata).map_err(|e| match e {
        ServiceError::Invalid(why) => RegistrationError::InvalidClientMetadata.because(why),
        other => other.into(),
    })
}

/// `POST {issuer}/register` (RFC 7591 §3.1).
pub async fn register(
    state: web::Data<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let token = admit(&state, &tenant, &req).await?;
    let body = read_body(payload).await?;
    let map = json_object(&req, &body)?;
    let statement = map.get("software_statement").cloned();
    let map = apply_software_statement(&tenant, map, state.clock.now())?;
    let request = parse_metadata(map)?;
    let metadata = request
        .validate(rules(&state.settings.oauth))
        .map_err(metadata_error)?;
    check_scope(&tenant, &metadata)?;
    check_keys(&metadata)?;
    // One unit of work: the token's use is spent and the client stored together, so a
    // failure leaves the token unspent and a spent token always bought a client.
    let (client, issued) = state
        .clients()
        .create_spending(
            &tenant,
            NewClient {
                metadata,
                policy: ClientPolicy::default(),
                dynamic: true,
            },
            token.map(|t| sha256(t.as_bytes())),
        )
        .await?
        .ok_or_else(|| invalid_token("the initial access token is invalid, expired or used up"))?;
    let mut body = client_information(&state.settings, &tenant, &client, &issued);
    // RFC 7591 §3.2.1: the software statement comes back as sent.
    if let (Some(statement), Value::Object(map)) = (statement, &mut body) {
        map.insert("software_statement".into(), statement);
    }
    Ok(respond(StatusCode::CREATED, body))
}

/// The client a registration access token manages. Unknown clients and wrong tokens answer
/// alike (RFC 7592 §2.1: 401), so nothing about other clients leaks.
async fn managed(
    state: &AppState,
    tenant: &Tenant,
    req: &HttpRequest,
    raw_id: &str,
) -> Result<Client, OAuthError> {
    let token =
        bearer(req).ok_or_else(|| missing_token("a registration access token is required"))?;
    let presented = sha256(token.as_bytes());
    let client = match ClientId::parse(raw_id) {
        Some(id) => state
            .store
            .client(tenant.id, &id)
            .await
            .map_err(ServiceError::from)?,
        None => None,
    };
    let stored = client
        .as_ref()
        .and_then(|c| c.registration_token_hash)
        .unwrap_or([0x5a; 32]);
    let matches = secrets_equal(&presented, &stored);
    match client {
        Some(client) if matches && client.registration_token_hash.is_some() => Ok(client),
        _ => Err(invalid_token("the registration access token is invalid")),
    }
}

/// `GET {issuer}/register/{client_id}` (RFC 7592 §2.1).
pub async fn read(
    state: web::Data<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, OAuthError> {
    let client = managed(&state, &tenant, &req, &path.1).await?;
    // RFC 7592 §3: registration_access_token is REQUIRED in the response; on a read it is
    // the token presented (only an update rotates it).
    let presented = IssuedCredentials {
        registration_access_token: bearer(&req).map(str::to_owned),
        ..IssuedCredentials::default()
    };
    Ok(respond(
        StatusCode::OK,
        client_information(&state.settings, &tenant, &client, &presented),
    ))
}

/// `PUT {issuer}/register/{client_id}` (RFC 7592 §2.2): replaces the metadata and rotates the
/// registration access token.
pub async fn update(
    state: web::Data<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let client = managed(&state, &tenant, &req, &path.1).await?;
    let body = read_body(payload).await?;
    let map = json_object(&req, &body)?;
    for forbidden in [
        "registration_access_token",
        "registration_client_uri",
        "client_secret_expires_at",
        "client_id_issued_at",
    ] {
        // RFC 7592 §2.2: these MUST NOT be included.
        if map.contains_key(forbidden) {
            return Err(RegistrationError::InvalidClientMetadata
                .because(format!("{forbidden} must not be sent")));
        }
    }
    let map = apply_software_statement(&tenant, map, state.clock.now())?;
    let request = parse_metadata(map)?;
    // RFC 7592 §2.2: client_id MUST match; a client_secret, if sent, MUST match too.
    if request.client_id.as_deref() != Some(client.client_id.as_str()) {
        return Err(RegistrationError::InvalidRequest
            .because("client_id must be sent and match the client"));
    }
    if let Some(secret) = &request.client_secret {
        let ok = client
            .secret_hash
            .is_some_and(|h| secrets_equal(&sha256(secret.as_bytes()), &h));
        if !ok {
            return Err(RegistrationError::InvalidRequest.because("client_secret does not match"));
        }
    }
    let metadata = request
        .validate(rules(&state.settings.oauth))
        .map_err(metadata_error)?;
    check_scope(&tenant, &metadata)?;
    check_keys(&metadata)?;
    let (client, issued) = state
        .clients()
        .update(
            tenant.id,
            &client.client_id,
            ClientUpdate {
                metadata: Some(metadata),
                rotate_registration_token: true,
                // The version the registration token was checked against: two PUTs with one
                // token cannot both win.
                expected_updated_at: Some(client.updated_at),
                ..ClientUpdate::default()
            },
        )
        .await?;
    Ok(respond(
        StatusCode::OK,
        client_information(&state.settings, &tenant, &client, &issued),
    ))
}

/// `DELETE {issuer}/register/{client_id}` (RFC 7592 §2.3).
pub async fn delete(
    state: web::Data<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, OAuthError> {
    let client = managed(&state, &tenant, &req, &path.1).await?;
    match state.clients().delete(tenant.id, &client.client_id).await {
        Ok(()) | Err(ServiceError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}
