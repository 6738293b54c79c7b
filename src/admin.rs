//! The admin API under `/admin` (bearer `admin.token`, RFC 7807 errors), and the JSON views it
//! shares with the CLI.

pub mod tenants;
pub mod users;

use actix_web::http::StatusCode;
use actix_web::web;
use futures_util::StreamExt;
use serde::Serialize;

use crate::clock::rfc3339;
use crate::config::Settings;
use crate::error::Problem;
use crate::model::user::{AuditEvent, Profile, User};
use crate::model::{KeyState, SigningAlg, SigningKey, Tenant, TenantSettings, TenantSlug};
use crate::routes::MAX_BODY;

/// Who the audit trail names for changes made through the admin API.
pub const ADMIN_API: &str = "admin-api";

/// Reads a body of at most [`MAX_BODY`] bytes.
async fn read_body(mut payload: web::Payload) -> Result<web::BytesMut, Problem> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, format!("unreadable body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A tenant named in an admin path; a malformed name is a tenant that does not exist.
fn slug(raw: &str) -> Result<TenantSlug, Problem> {
    TenantSlug::parse(raw).map_err(|_| {
        Problem::new(
            StatusCode::NOT_FOUND,
            format!(
                "no tenant named '{}'",
                raw.chars().take(80).collect::<String>()
            ),
        )
    })
}

/// A tenant as shown to operators.
#[derive(Debug, Serialize)]
pub struct TenantView {
    pub id: String,
    pub slug: String,
    pub display_name: String,
    pub issuer: String,
    pub created_at: String,
    /// The tenant's own policy (unset members follow the server configuration).
    pub settings: TenantSettings,
}

impl TenantView {
    pub fn new(settings: &Settings, tenant: &Tenant) -> TenantView {
        TenantView {
            id: tenant.id.to_string(),
            slug: tenant.slug.to_string(),
            display_name: tenant.display_name.clone(),
            issuer: settings.issuer(&tenant.slug),
            created_at: rfc3339(tenant.created_at),
            settings: tenant.settings.clone(),
        }
    }
}

/// A signing key as shown to operators (public facts only).
#[derive(Debug, Serialize)]
pub struct KeyView {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: KeyState,
    pub created_at: String,
    pub activated_at: Option<String>,
    pub retired_at: Option<String>,
    /// When a retired key leaves the JWKS.
    pub expires_at: Option<String>,
}

impl From<&SigningKey> for KeyView {
    fn from(key: &SigningKey) -> KeyView {
        KeyView {
            kid: key.kid.clone(),
            alg: key.alg,
            state: key.state,
            created_at: rfc3339(key.created_at),
            activated_at: key.activated_at.map(rfc3339),
            retired_at: key.retired_at.map(rfc3339),
            expires_at: key.expires_at.map(rfc3339),
        }
    }
}

/// A user as shown to operators (never the password hash).
#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub profile: Profile,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub active: bool,
    pub has_password: bool,
    pub password_changed_at: Option<String>,
    pub disabled_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub last_login_at: Option<String>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> UserView {
        UserView {
            id: user.id.to_string(),
            username: user.username.as_str().to_owned(),
            email: user.email.as_ref().map(|e| e.as_str().to_owned()),
            email_verified: user.email_verified,
            profile: user.profile.clone(),
            roles: user.roles.clone(),
            groups: user.groups.clone(),
            active: user.is_active(),
            has_password: user.has_password,
            password_changed_at: user.password_changed_at.map(rfc3339),
            disabled_at: user.disabled_at.map(rfc3339),
            created_at: rfc3339(user.created_at),
            updated_at: rfc3339(user.updated_at),
            last_login_at: user.last_login_at.map(rfc3339),
        }
    }
}

/// An audit event as shown to operators.
#[derive(Debug, Serialize)]
pub struct AuditView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

impl From<&AuditEvent> for AuditView {
    fn from(e: &AuditEvent) -> AuditView {
        AuditView {
            at: rfc3339(e.at),
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            detail: e.detail.clone(),
        }
    }
}
