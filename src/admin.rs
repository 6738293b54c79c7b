//! The admin API under `/admin` (bearer `admin.token`, RFC 7807 errors), and the JSON views it
//! shares with the CLI.

pub mod tenants;

use serde::Serialize;

use crate::clock::rfc3339;
use crate::config::Settings;
use crate::model::{KeyState, SigningAlg, SigningKey, Tenant, TenantSettings};

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
