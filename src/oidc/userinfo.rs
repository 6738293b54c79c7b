//! The userinfo endpoint (OpenID Connect Core §5.3), a protected resource (RFC 6750): GET or
//! POST, the access token in the `Authorization` header or (POST) the form body, never both.
//! It answers the claims of the granted scopes (§5.4) and of the `claims` parameter's
//! `userinfo` member (§5.5), as JSON or, when the client registered
//! `userinfo_signed_response_alg`, as a signed JWT (§5.3.2).

use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value};

use crate::app::AppState;
use crate::error::{Challenge, OAuthError, UserinfoError};
use crate::http::{CurrentTenant, bearer};
use crate::oidc::claims::{self, Target};

/// RFC 6750 §3: every error carries a Bearer challenge naming it (§3.1); a request without
/// any token gets one without an error code.
fn refuse(error: UserinfoError, why: &str) -> OAuthError {
    let status = match error {
        UserinfoError::InvalidRequest => StatusCode::BAD_REQUEST,
        UserinfoError::InvalidToken => StatusCode::UNAUTHORIZED,
        UserinfoError::InsufficientScope => StatusCode::FORBIDDEN,
    };
    let mut challenge = Challenge::bearer_error(error.code(), Some(why));
    if error == UserinfoError::InsufficientScope
        && let Challenge::Bearer { scope, .. } = &mut challenge
    {
        *scope = Some("openid".into());
    }
    error
        .because(why)
        .with_challenge(challenge)
        .with_status(status)
}

fn unauthenticated() -> OAuthError {
    UserinfoError::InvalidToken
        .because("an access token is required")
        .with_challenge(Challenge::Bearer {
            realm: None,
            error: None,
            description: None,
            scope: None,
        })
}

/// The token of the request: the header, or a form body's `access_token` (RFC 6750 §2.2,
/// POST with `application/x-www-form-urlencoded` only).
fn presented(req: &HttpRequest, body: &[u8]) -> Result<String, OAuthError> {
    let header_token = bearer(req);
    let form = req.method() == Method::POST
        && req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
    let body_tokens: Vec<String> = if form {
        url::form_urlencoded::parse(body)
            .filter(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
            .collect()
    } else {
        Vec::new()
    };
    // RFC 6750 §2: "Clients MUST NOT use more than one method to transmit the token".
    match (header_token, body_tokens.as_slice()) {
        (Some(_), [_, ..]) | (None, [_, _, ..]) => Err(refuse(
            UserinfoError::InvalidRequest,
            "the access token was sent more than once",
        )),
        (Some(t), []) => Ok(t.to_owned()),
        (None, [t]) if !t.is_empty() => Ok(t.clone()),
        _ => {
            let other_scheme = req.headers().contains_key(header::AUTHORIZATION);
            if other_scheme {
                Err(refuse(
                    UserinfoError::InvalidRequest,
                    "the Authorization header must use the Bearer scheme",
                ))
            } else {
                Err(unauthenticated())
            }
        }
    }
}

/// `GET` or `POST {issuer}/userinfo`.
pub async fn userinfo(
    state: web::Data<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let token = presented(&req, &body)?;
    let invalid = |why: &str| refuse(UserinfoError::InvalidToken, why);
    let active = state
        .access_tokens()
        .inspect(&tenant, &token)
        .await?
        .ok_or_else(|| invalid("the access token is invalid, expired or revoked"))?;
    let claims = &active.claims;
    // RFC 9449 §7.1: a sender-constrained token is never accepted as a bearer token.
    if claims.cnf.is_some() {
        return Err(invalid("this access token is bound to a key"));
    }
    // `inspect` found a person's token's person active (and refused it otherwise).
    let user = match (&active.person, claims.auth_time) {
        (Some(user), Some(_)) => user,
        _ => return Err(invalid("the access token was not issued for a person")),
    };
    let scope = claims.scope.clone().unwrap_or_default();
    if !scope.contains("openid") {
        return Err(refuse(
            UserinfoError::InsufficientScope,
            "the access token was not granted the openid scope",
        ));
    }
    let client = state
        .clients()
        .find(tenant.id, &active.client_id)
        .await?
        .ok_or_else(|| invalid("the client no longer exists"))?;
    let mut names = claims::requested(&scope, None, Target::Userinfo);
    // Asked for by name (§5.5), within the granted scope, as in the ID token.
    for name in claims.userinfo_claims.iter().flatten() {
        let granted = claims::scope_of(name).is_none_or(|s| scope.contains(s));
        if granted && !names.contains(name) {
            names.push(name.clone());
        }
    }
    let mut body = Map::new();
    // §5.3.2: sub always, and the same as the ID token's.
    body.insert("sub".into(), Value::String(claims.sub.clone()));
    body.extend(claims::release(user, &names));
    let response = || {
        let mut r = HttpResponse::Ok();
        r.insert_header((header::CACHE_CONTROL, "no-store"));
        r
    };
    match client.metadata.userinfo_signed_response_alg {
        None => Ok(response().json(body)),
        Some(alg) => {
            // §5.3.2: a signed response SHOULD contain iss and aud.
            body.insert("iss".into(), state.settings.issuer(&tenant.slug).into());
            body.insert("aud".into(), client.client_id.as_str().into());
            let jwt = state.id_tokens().sign(&tenant, alg, &body, "JWT").await?;
            Ok(response().content_type("application/jwt").body(jwt))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use actix_web::test::TestRequest;

    #[test]
    fn a_token_is_taken_from_one_place_only() {
        let req = TestRequest::get()
            .insert_header(("authorization", "Bearer abc"))
            .to_http_request();
        assert_eq!(presented(&req, b"").unwrap(), "abc");

        let req = TestRequest::post()
            .insert_header(("authorization", "Bearer abc"))
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .to_http_request();
        assert_eq!(presented(&req, b"").unwrap(), "abc", "no body is fine");
        let twice = presented(&req, b"access_token=abc").unwrap_err();
        assert_eq!(twice.status, StatusCode::BAD_REQUEST);
        assert_eq!(twice.code, ErrorCode::InvalidRequest);

        let form = TestRequest::post()
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .to_http_request();
        assert_eq!(presented(&form, b"access_token=xyz").unwrap(), "xyz");
        let none = presented(&form, b"").unwrap_err();
        assert_eq!(none.status, StatusCode::UNAUTHORIZED);
        assert!(matches!(
            none.challenge.as_deref(),
            Some(Challenge::Bearer { error: None, .. })
        ));

        // A body token on GET, or in JSON, is not a token (RFC 6750 §2.2).
        let get = TestRequest::get().to_http_request();
        assert!(presented(&get, b"access_token=xyz").is_err());
    }

    #[test]
    fn insufficient_scope_is_a_403_that_names_the_scope() {
        let e = refuse(UserinfoError::InsufficientScope, "no openid");
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(matches!(
            e.challenge.as_deref(),
            Some(Challenge::Bearer { scope: Some(s), .. }) if s == "openid"
        ));
    }
}
