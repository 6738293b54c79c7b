//! Bearer authentication of the admin API (`admin.token`).

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};

use crate::app::AppState;
use crate::crypto::secrets_equal;
use crate::error::{Challenge, ErrorCode, Problem};

/// The realm of the admin API's challenges.
const REALM: &str = "latchkey-admin";

/// Proof that the request carried the admin token.
pub struct Admin;

impl FromRequest for Admin {
    type Error = Problem;
    type Future = Ready<Result<Admin, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check(req))
    }
}

fn check(req: &HttpRequest) -> Result<Admin, Problem> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?;
    let Some(expected) = &state.settings.admin.token else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "the admin API is disabled; set admin.token to enable it",
        ));
    };
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match presented {
        Some(token) if secrets_equal(token.as_bytes(), expected.expose().as_bytes()) => Ok(Admin),
        // RFC 6750 §3: a missing token gets a bare challenge, a wrong one invalid_token.
        Some(_) => Err(
            Problem::new(StatusCode::UNAUTHORIZED, "invalid admin token").with_challenge(
                &Challenge::Bearer {
                    realm: Some(REALM.into()),
                    error: Some(ErrorCode::InvalidToken),
                    description: None,
                    scope: None,
                },
            ),
        ),
        None => Err(
            Problem::new(StatusCode::UNAUTHORIZED, "admin token required").with_challenge(
                &Challenge::Bearer {
                    realm: Some(REALM.into()),
                    error: None,
                    description: None,
                    scope: None,
                },
            ),
        ),
    }
}
