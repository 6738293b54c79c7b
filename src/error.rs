//! The error surfaces (DESIGN §5). Spec modules pick a code; only this module renders status,
//! body and headers: RFC 6749 §5.2 JSON for the OAuth/OIDC surface, RFC 7807 problem+json for
//! `/admin`. Internal detail is logged, never sent.

pub mod browser;

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::cache::CacheError;
use crate::crypto::CryptoError;
use crate::jose::JoseError;
use crate::model::wire_enum;
use crate::store::StoreError;

wire_enum! {
    /// Error codes of the OAuth surface (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; RFC 8707 §2).
    pub enum ErrorCode {
        /// The request is missing a parameter, repeats one, or is otherwise malformed.
        InvalidRequest = "invalid_request",
        /// Client authentication failed.
        InvalidClient = "invalid_client",
        /// The grant or refresh token is invalid, expired, revoked or mismatched.
        InvalidGrant = "invalid_grant",
        /// The client may not use this grant type.
        UnauthorizedClient = "unauthorized_client",
        /// The grant type is not supported.
        UnsupportedGrantType = "unsupported_grant_type",
        /// The requested scope is invalid, unknown or malformed.
        InvalidScope = "invalid_scope",
        /// The resource owner or server denied the request.
        AccessDenied = "access_denied",
        /// The response type is not supported.
        UnsupportedResponseType = "unsupported_response_type",
        /// The server met an unexpected condition.
        ServerError = "server_error",
        /// The server is temporarily unable to handle the request.
        TemporarilyUnavailable = "temporarily_unavailable",
        /// The access token is expired, revoked, malformed or invalid (RFC 6750 §3.1).
        InvalidToken = "invalid_token",
        /// The token lacks the scope the request needs (RFC 6750 §3.1).
        InsufficientScope = "insufficient_scope",
        /// The requested resource is invalid or unknown (RFC 8707 §2).
        InvalidTarget = "invalid_target",
        /// A redirect URI is invalid (RFC 7591 §3.2.2).
        InvalidRedirectUri = "invalid_redirect_uri",
        /// Client metadata is invalid (RFC 7591 §3.2.2).
        InvalidClientMetadata = "invalid_client_metadata",
        /// The software statement is invalid (RFC 7591 §3.2.2).
        InvalidSoftwareStatement = "invalid_software_statement",
        /// The software statement is not approved here (RFC 7591 §3.2.2).
        UnapprovedSoftwareStatement = "unapproved_software_statement",
        /// The server cannot revoke this type of token (RFC 7009 §2.2.1).
        UnsupportedTokenType = "unsupported_token_type",
        /// Too many requests: try again later.
        RateLimited = "rate_limited",
        /// `prompt=none`, but the user must interact (OIDC Core §3.1.2.6).
        InteractionRequired = "interaction_required",
        /// `prompt=none`, but the user must authenticate (OIDC Core §3.1.2.6).
        LoginRequired = "login_required",
        /// `prompt=none`, but the user must choose an account (OIDC Core §3.1.2.6).
        AccountSelectionRequired = "account_selection_required",
        /// `prompt=none`, but the user must consent (OIDC Core §3.1.2.6).
        ConsentRequired = "consent_required",
        /// The `request_uri` is invalid (OIDC Core §3.1.2.6, RFC 9126 §4).
        InvalidRequestUri = "invalid_request_uri",
        /// The request object is invalid (OIDC Core §3.1.2.6).
        InvalidRequestObject = "invalid_request_object",
        /// The `request` parameter is not supported (OIDC Core §3.1.2.6).
        RequestNotSupported = "request_not_supported",
        /// The `request_uri` parameter is not supported (OIDC Core §3.1.2.6).
        RequestUriNotSupported = "request_uri_not_supported",
        /// The `registration` parameter is not supported (OIDC Core §3.1.2.6).
        RegistrationNotSupported = "registration_not_supported",
        /// No such resource (unknown tenant or path).
        NotFound = "not_found",
        /// The path exists but not for this HTTP method.
        MethodNotAllowed = "method_not_allowed",
    }
}

impl ErrorCode {
    fn default_status(self) -> StatusCode {
        match self {
            // invalid_client is a 400 unless it carries a challenge (RFC 6749 §5.2): see
            // `OAuthError::with_challenge`, the only way to a 401.
            ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::InsufficientScope | ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Declares the errors one endpoint may answer: each variant is named for its wire code in
/// [`ErrorCode`], so the mapping is written here once, and an endpoint cannot use a code its
/// RFC does not define for it.
macro_rules! endpoint_errors {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire code.
            pub fn code(self) -> ErrorCode {
                match self {
                    $($name::$variant => ErrorCode::$variant,)+
                }
            }

            /// The error, with a description for the developer.
            pub fn because(self, why: impl fmt::Display) -> OAuthError {
                OAuthError::code(self.code(), why)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code().as_str())
            }
        }
    };
}

endpoint_errors! {
    /// Errors of the token endpoint (RFC 6749 §5.2; RFC 8707 §2; RFC 8693 §2.2.2). Client
    /// authentication failures (`invalid_client`) are rendered by `oauth::client_auth`, which
    /// chooses the challenge.
    pub enum TokenError {
        /// A parameter is missing, repeated, unsupported or malformed; for token exchange, an
        /// invalid subject or actor token.
        InvalidRequest,
        /// The grant (refresh token, code) is invalid, expired, revoked, or another client's.
        InvalidGrant,
        /// The authenticated client may not use this grant, or this exchange.
        UnauthorizedClient,
        /// The grant type is not supported by the server.
        UnsupportedGrantType,
        /// The scope is invalid, unknown, malformed, or exceeds what may be granted.
        InvalidScope,
        /// A requested resource or audience is invalid or not allowed (RFC 8707 §2).
        InvalidTarget,
    }
}

endpoint_errors! {
    /// Errors of client registration and management (RFC 7591 §3.2.2, RFC 7592 §3).
    pub enum RegistrationError {
        /// A redirect URI is invalid.
        InvalidRedirectUri,
        /// A metadata member is invalid, or the combination is inconsistent.
        InvalidClientMetadata,
        /// The software statement is invalid.
        InvalidSoftwareStatement,
        /// The software statement is not approved here.
        UnapprovedSoftwareStatement,
        /// The request is malformed (not a JSON object, say).
        InvalidRequest,
        /// Registration is closed, or the initial access token does not allow it.
        AccessDenied,
        /// Too many registrations from one address or tenant.
        RateLimited,
        /// The registration access token is missing, invalid or revoked (RFC 7592 §3, with
        /// the RFC 6750 §3 challenge).
        InvalidToken,
    }
}

endpoint_errors! {
    /// Errors of the userinfo endpoint (OIDC Core §5.3.3; RFC 6750 §3.1), each with its
    /// Bearer challenge.
    pub enum UserinfoError {
        /// The request is malformed: the token sent more than one way (RFC 6750 §2).
        InvalidRequest,
        /// The access token is missing, expired, revoked, or its person can no longer sign in.
        InvalidToken,
        /// The token was not granted the `openid` scope.
        InsufficientScope,
    }
}

endpoint_errors! {
    /// Errors of the revocation endpoint (RFC 7009 §2.2.1).
    pub enum RevocationError {
        /// The `token` parameter is missing or the request malformed.
        InvalidRequest,
        /// The token was issued to another client (RFC 7009 §2.1).
        UnauthorizedClient,
        /// The server cannot revoke tokens of this type.
        UnsupportedTokenType,
    }
}

endpoint_errors! {
    /// Errors of the authorization endpoint (RFC 6749 §4.1.2.1; RFC 8707 §2; OpenID Connect
    /// Core §3.1.2.6), also answered as JSON by pushed authorization requests (RFC 9126 §2.3).
    pub enum AuthorizationError {
        /// A parameter is missing, invalid, repeated, or the request malformed.
        InvalidRequest,
        /// The client may not obtain a code this way.
        UnauthorizedClient,
        /// The resource owner or server denied the request.
        AccessDenied,
        /// The `response_type` is not supported.
        UnsupportedResponseType,
        /// The scope is invalid, unknown or malformed.
        InvalidScope,
        /// A requested resource is invalid (RFC 8707 §2).
        InvalidTarget,
        /// The server met an unexpected condition.
        ServerError,
        /// The server is temporarily unable to handle the request.
        TemporarilyUnavailable,
        /// `prompt=none`, but the user must interact.
        InteractionRequired,
        /// `prompt=none`, but the user must authenticate.
        LoginRequired,
        /// `prompt=none`, but the user must choose an account.
        AccountSelectionRequired,
        /// `prompt=none`, but the user must consent.
        ConsentRequired,
        /// The `request_uri` is invalid or expired (OIDC Core §3.1.2.6; RFC 9126 §4).
        InvalidRequestUri,
        /// The request object is invalid.
        InvalidRequestObject,
        /// The `request` parameter is not supported.
        RequestNotSupported,
        /// The `request_uri` parameter is not supported.
        RequestUriNotSupported,
        /// The `registration` parameter is not supported.
        RegistrationNotSupported,
    }
}

/// `text` as an `error_description` may carry it (RFC 6749 §4.1.2.1, §5.2: printable ASCII
/// except `"` and `\\`): anything else becomes `?`.
pub fn description_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e' => c,
            _ => '?',
        })
        .collect()
}

/// An HTTP authentication challenge (RFC 9110 §11.6.1), rendered into `WWW-Authenticate` in
/// one place. Every 401 carries one (RFC 9110 §15.5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic (RFC 7617), for `client_secret_basic` (RFC 6749 §2.3.1, §5.2).
    Basic { realm: String },
    /// A bearer token challenge (RFC 6750 §3), with the error when a token was presented.
    Bearer {
        realm: Option<String>,
        error: Option<ErrorCode>,
        description: Option<String>,
        scope: Option<String>,
    },
    /// A DPoP challenge (RFC 9449 §7.1): the algorithms accepted for proofs.
    Dpop {
        algs: Vec<String>,
        error: Option<ErrorCode>,
        description: Option<String>,
    },
}

/// An auth-param value as a quoted-string (RFC 9110 §5.6.4).
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Challenge {
    pub fn basic(realm: impl Into<String>) -> Challenge {
        Challenge::Basic {
            realm: realm.into(),
        }
    }

    /// A Bearer challenge naming the error (RFC 6750 §3.1).
    pub fn bearer_error(code: ErrorCode, description: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: None,
            error: Some(code),
            description: description.map(str::to_owned),
            scope: None,
        }
    }

    /// The `WWW-Authenticate` field value.
    pub fn render(&self) -> String {
        let (scheme, params): (&str, Vec<(&str, String)>) = match self {
            Challenge::Basic { realm } => (
                "Basic",
                vec![("realm", realm.clone()), ("charset", "UTF-8".into())],
            ),
            Challenge::Bearer {
                realm,
                error,
                description,
                scope,
            } => {
                let mut params = Vec::new();
                if let Some(realm) = realm {
                    params.push(("realm", realm.clone()));
                }
                if let Some(scope) = scope {
                    params.push(("scope", scope.clone()));
                }
                if let Some(error) = error {
                    params.push(("error", error.as_str().to_owned()));
                }
                if let Some(description) = description {
                    params.push(("error_description", description.clone()));
                }
                ("Bearer", params)
            }
            Challenge::Dpop {
                algs,
                error,
                description,
            } => {
                let mut params = vec![("algs", algs.join(" "))];
                if let Some(error) = error {
                    params.push(("error", error.as_str().to_owned()));
                }
                if let Some(description) = description {
                    params.push(("error_description", description.clone()));
                }
                ("DPoP", params)
            }
        };
        if params.is_empty() {
            return scheme.to_owned();
        }
        let params: Vec<String> = params
            .iter()
            .map(|(name, value)| format!("{name}={}", quoted(value)))
            .collect();
        format!("{scheme} {}", params.join(", "))
    }
}

/// An error of the OAuth/OIDC surface.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Option<String>,
    pub status: StatusCode,
    /// Boxed: errors travel in every `Result` of the surface and should stay small.
    pub challenge: Option<Box<Challenge>>,
    headers: Vec<(HeaderName, String)>,
}

#[derive(Serialize)]
struct OAuthErrorBody<'a> {
    error: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'a str>,
}

impl OAuthError {
    pub fn new(code: ErrorCode) -> OAuthError {
        OAuthError {
            code,
            description: None,
            status: code.default_status(),
            challenge: None,
            headers: Vec::new(),
        }
    }

    /// Makes this a 401 carrying `challenge` (RFC 9110 §15.5.2).
    pub fn with_challenge(mut self, challenge: Challenge) -> OAuthError {
        self.status = StatusCode::UNAUTHORIZED;
        self.challenge = Some(Box::new(challenge));
        self
    }

    /// Adds a human-readable description. RFC 6749 §5.2 limits it to printable ASCII except
    /// `"` and `\`; anything else is replaced.
    pub fn describe(mut self, description: impl fmt::Display) -> OAuthError {
        self.description = Some(description_text(&description.to_string()));
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> OAuthError {
        self.status = status;
        self
    }

    /// Sets a response header; a later value for the same header replaces an earlier one.
    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> OAuthError {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }

    pub fn not_found(what: impl fmt::Display) -> OAuthError {
        OAuthError::new(ErrorCode::NotFound).describe(what)
    }

    pub fn invalid_request(why: impl fmt::Display) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidRequest).describe(why)
    }

    /// Shorthand for `new(code).describe(why)`.
    pub fn code(code: ErrorCode, why: impl fmt::Display) -> OAuthError {
        OAuthError::new(code).describe(why)
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{}: {d}", self.code),
            None => write!(f, "{}", self.code),
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        // RFC 6749 §5.1: responses carrying tokens or errors are not cached.
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.insert_header((name.clone(), value));
            }
        }
        // RFC 9110 §15.5.2: a 401 always carries a challenge; a bearer one names the error.
        let challenge = match (&self.challenge, self.status) {
            (Some(c), _) => Some((**c).clone()),
            (None, StatusCode::UNAUTHORIZED) => Some(Challenge::bearer_error(
                self.code,
                self.description.as_deref(),
            )),
            (None, _) => None,
        };
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c.render()).ok()) {
            response.insert_header((header::WWW_AUTHENTICATE, value));
        }
        response.json(OAuthErrorBody {
            error: self.code,
            error_description: self.description.as_deref(),
        })
    }
}

/// An RFC 7807 problem for the admin API.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub detail: String,
    headers: Vec<(HeaderName, String)>,
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            detail: detail.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Problem {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds a `WWW-Authenticate` challenge (for a 401).
    pub fn with_challenge(self, challenge: &Challenge) -> Problem {
        self.with_header(header::WWW_AUTHENTICATE, challenge.render())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = ProblemBody {
            // RFC 7807 §4.2: "about:blank" means the title is the HTTP reason phrase.
            kind: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
        };
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.insert_header((name.clone(), value));
            }
        }
        response
            .content_type("application/problem+json")
            .body(serde_json::to_string(&body).unwrap_or_default())
    }
}

/// Failures below the HTTP layer, mapped onto each surface by `From`.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("key material: {0}")]
    Jose(#[from] JoseError),
    #[error("sealed key material: {0}")]
    Crypto(#[from] CryptoError),
    /// A client-facing "no such thing".
    #[error("{0}")]
    NotFound(String),
    /// A client-facing conflict (name taken, already rotated).
    #[error("{0}")]
    Conflict(String),
    /// A client-facing validation failure.
    #[error("{0}")]
    Invalid(String),
    /// Too much work at once (the password pool's line is full): try again shortly.
    #[error("{0}")]
    Busy(String),
    /// A server-side fault (misconfiguration, failed task): logged, never shown.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// True when the cause is an unreachable dependency (database or Redis).
    fn unavailable(&self) -> bool {
        matches!(
            self,
            ServiceError::Store(StoreError::Unavailable(_)) | ServiceError::Cache(_)
        )
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> OAuthError {
        ServiceError::from(e).into()
    }
}

impl From<CacheError> for OAuthError {
    fn from(e: CacheError) -> OAuthError {
        ServiceError::from(e).into()
    }
}

impl From<ServiceError> for OAuthError {
    fn from(e: ServiceError) -> OAuthError {
        match e {
            ServiceError::NotFound(what) => OAuthError::not_found(what),
            ServiceError::Invalid(why) | ServiceError::Conflict(why) => {
                OAuthError::invalid_request(why)
            }
            ServiceError::Busy(why) => OAuthError::new(ErrorCode::TemporarilyUnavailable)
                .describe(why)
                .with_header(header::RETRY_AFTER, "1"),
            other if other.unavailable() => {
                tracing::warn!(error = %other, "dependency unavailable");
                OAuthError::new(ErrorCode::TemporarilyUnavailable)
                    .describe("the service is temporarily unavailable")
                    .with_header(header::RETRY_AFTER, "5")
            }
            other => {
                tracing::error!(error = %other, "internal error");
                OAuthError::new(ErrorCode::ServerError).describe("internal error")
            }
        }
    }
}

impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Problem {
        match e {
            ServiceError::NotFound(what) => Problem::new(StatusCode::NOT_FOUND, what),
            ServiceError::Conflict(why) => Problem::new(StatusCode::CONFLICT, why),
            ServiceError::Invalid(why) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, why),
            ServiceError::Busy(why) => Problem::new(StatusCode::TOO_MANY_REQUESTS, why)
                .with_header(header::RETRY_AFTER, "1"),
            other if other.unavailable() => {
                tracing::warn!(error = %other, "dependency unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "a dependency is unavailable",
                )
                .with_header(header::RETRY_AFTER, "5")
            }
            other => {
                tracing::error!(error = %other, "internal error");
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str());
            assert_eq!(serde_json::from_value::<ErrorCode>(json).unwrap(), *code);
        }
    }

    #[test]
    fn endpoint_errors_render_their_own_codes() {
        use actix_web::body::MessageBody;
        fn body_error(e: OAuthError) -> String {
            let body = e.error_response().into_body().try_into_bytes().unwrap();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            json["error"].as_str().unwrap().to_owned()
        }
        let mut codes: Vec<ErrorCode> = Vec::new();
        for e in TokenError::ALL {
            assert_eq!(body_error(e.because("x")), e.to_string());
            codes.push(e.code());
        }
        for e in RegistrationError::ALL {
            assert_eq!(body_error(e.because("x")), e.code().as_str());
        }
        for e in RevocationError::ALL {
            assert_eq!(body_error(e.because("x")), e.code().as_str());
        }
        for e in AuthorizationError::ALL {
            assert_eq!(body_error(e.because("x")), e.code().as_str());
            assert_eq!(
                e.because("x").status,
                StatusCode::BAD_REQUEST.max(e.code().default_status())
            );
        }
        assert!(!codes.contains(&ErrorCode::InvalidClient));
    }

    #[test]
    fn challenges_render_once_per_scheme() {
        assert_eq!(
            Challenge::basic("https://a/t/x").render(),
            r#"Basic realm="https://a/t/x", charset="UTF-8""#
        );
        assert_eq!(
            Challenge::bearer_error(ErrorCode::InvalidToken, Some("it \"is\" gone")).render(),
            r#"Bearer error="invalid_token", error_description="it \"is\" gone""#
        );
        let dpop = Challenge::Dpop {
            algs: vec!["ES256".into(), "EdDSA".into()],
            error: None,
            description: None,
        };
        assert_eq!(dpop.render(), r#"DPoP algs="ES256 EdDSA""#);
        let bare = Challenge::Bearer {
            realm: None,
            error: None,
            description: None,
            scope: None,
        };
        assert_eq!(bare.render(), "Bearer");
    }

    #[test]
    fn invalid_client_is_401_only_with_a_challenge() {
        let plain = OAuthError::new(ErrorCode::InvalidClient);
        assert_eq!(plain.status, StatusCode::BAD_REQUEST);
        let challenged = plain.with_challenge(Challenge::basic("r"));
        assert_eq!(challenged.status, StatusCode::UNAUTHORIZED);
        let res = challenged.error_response();
        assert!(res.headers().get(header::WWW_AUTHENTICATE).is_some());
        let token = OAuthError::new(ErrorCode::InvalidToken).error_response();
        assert_eq!(token.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            token.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            r#"Bearer error="invalid_token""#
        );
    }

    #[test]
    fn description_is_restricted_to_rfc6749_charset() {
        let e = OAuthError::invalid_request("bad \"x\" \\ é\n");
        assert_eq!(e.description.as_deref(), Some("bad ?x? ? ??"));
    }
}
