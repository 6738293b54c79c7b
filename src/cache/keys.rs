//! Every key of the shared state, typed. Each names its tenant, as store calls do, and is
//! rendered to its one string here, so two features cannot collide on a key or spell one
//! differently.

use crate::crypto::{b64url, sha256};
use crate::model::TenantId;
use crate::model::client::ClientId;

/// A key of [`super::Cache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKey<'a> {
    /// RFC 7523 §3 item 7: a client assertion's `jti`, remembered until the assertion
    /// expires (stored as its digest).
    AssertionJti {
        tenant: TenantId,
        client: &'a ClientId,
        jti: &'a str,
    },
    /// Client assertions a client had accepted in the current minute: each leaves a `jti`
    /// behind for up to `client_assertion_max_lifetime_secs`, so one client cannot fill the
    /// replay cache for everyone.
    AssertionsBy {
        tenant: TenantId,
        client: &'a ClientId,
    },
    /// Registrations from one address (an IPv6 /64 as one) in the current hour.
    RegistrationsFrom { tenant: TenantId, subject: &'a str },
    /// Registrations at a tenant in the current hour.
    Registrations { tenant: TenantId },
    /// Password attempts from one address (an IPv6 /64) in the current minute.
    PasswordAttemptsFrom { tenant: TenantId, subject: &'a str },
    /// Failed password checks for one submitted username (folded) in the lockout window.
    FailuresFor { tenant: TenantId, username: &'a str },
    /// Failed password checks from one address in the lockout window.
    FailuresFrom { tenant: TenantId, subject: &'a str },
    /// Present while a submitted username is locked out.
    LockedUsername { tenant: TenantId, username: &'a str },
    /// Present while an address is locked out.
    LockedAddress { tenant: TenantId, subject: &'a str },
    /// Password-reset requests from one address in the current hour.
    ResetsFrom { tenant: TenantId, subject: &'a str },
    /// Reset mails to one account in the current hour.
    ResetsFor {
        tenant: TenantId,
        user: crate::model::user::UserId,
    },
    /// Passkey sign-in ceremonies started from one address in the current minute.
    CeremoniesFrom { tenant: TenantId, subject: &'a str },
    /// Verification mails to one account in the current hour.
    VerificationsFor {
        tenant: TenantId,
        user: crate::model::user::UserId,
    },
    /// Passkey sign-ups started from one address in the current hour.
    SignupsFrom { tenant: TenantId, subject: &'a str },
    /// A WebAuthn ceremony in progress, under its random id.
    Ceremony { tenant: TenantId, id: &'a str },
    /// An authorization request waiting for sign-in and consent, or pushed (RFC 9126), under
    /// its random handle (stored as its digest).
    Authorization { tenant: TenantId, handle: &'a str },
    /// Authorization and logout requests kept for one address in the current minute.
    AuthorizationsFrom { tenant: TenantId, subject: &'a str },
    /// An authorization code waiting to be redeemed, under its digest (RFC 6749 §4.1.2).
    Code { tenant: TenantId, code: &'a str },
    /// A redeemed code's grant, kept a while after so a second use revokes it.
    CodeSpent { tenant: TenantId, code: &'a str },
    /// A code presented again by `client` while or after it was redeemed.
    CodeReused {
        tenant: TenantId,
        client: &'a str,
        code: &'a str,
    },
    /// A logout request POSTed by a relying party, waiting for the same-origin GET that
    /// carries the session cookie (stored as its digest).
    Logout { tenant: TenantId, handle: &'a str },
}

impl CacheKey<'_> {
    /// The string the backends store it under (before their own prefix).
    pub fn render(&self) -> String {
        match self {
            CacheKey::AssertionJti {
                tenant,
                client,
                jti,
            } => format!(
                "assertion:{tenant}:{client}:{}",
                b64url(&sha256(jti.as_bytes()))
            ),
            CacheKey::AssertionsBy { tenant, client } => format!("assertions:{tenant}:{client}"),
            CacheKey::RegistrationsFrom { tenant, subject } => format!("reg:ip:{tenant}:{subject}"),
            CacheKey::Registrations { tenant } => format!("reg:tenant:{tenant}"),
            // Usernames are digested: the cache holds no list of who was attacked.
            CacheKey::PasswordAttemptsFrom { tenant, subject } => {
                format!("pw:rate:{tenant}:{subject}")
            }
            CacheKey::FailuresFor { tenant, username } => {
                format!(
                    "pw:fail:u:{tenant}:{}",
                    b64url(&sha256(username.as_bytes()))
                )
            }
            CacheKey::FailuresFrom { tenant, subject } => format!("pw:fail:ip:{tenant}:{subject}"),
            CacheKey::LockedUsername { tenant, username } => {
                format!(
                    "pw:lock:u:{tenant}:{}",
                    b64url(&sha256(username.as_bytes()))
                )
            }
            CacheKey::LockedAddress { tenant, subject } => format!("pw:lock:ip:{tenant}:{subject}"),
            CacheKey::Ceremony { tenant, id } => format!("webauthn:{tenant}:{id}"),
            CacheKey::Authorization { tenant, handle } => {
                format!("authz:{tenant}:{}", b64url(&sha256(handle.as_bytes())))
            }
            CacheKey::AuthorizationsFrom { tenant, subject } => {
                format!("authz:ip:{tenant}:{subject}")
            }
            CacheKey::Code { tenant, code } => {
                format!("code:{tenant}:{}", b64url(&sha256(code.as_bytes())))
            }
            CacheKey::CodeSpent { tenant, code } => {
                format!("code:spent:{tenant}:{}", b64url(&sha256(code.as_bytes())))
            }
            CacheKey::CodeReused {
                tenant,
                client,
                code,
            } => format!(
                "code:reused:{tenant}:{client}:{}",
                b64url(&sha256(code.as_bytes()))
            ),
            CacheKey::Logout { tenant, handle } => {
                format!("logout:{tenant}:{}", b64url(&sha256(handle.as_bytes())))
            }
            CacheKey::SignupsFrom { tenant, subject } => format!("signup:ip:{tenant}:{subject}"),
            CacheKey::CeremoniesFrom { tenant, subject } => {
                format!("webauthn:ip:{tenant}:{subject}")
            }
            CacheKey::VerificationsFor { tenant, user } => format!("verify:user:{tenant}:{user}"),
            CacheKey::ResetsFrom { tenant, subject } => format!("reset:ip:{tenant}:{subject}"),
            CacheKey::ResetsFor { tenant, user } => format!("reset:user:{tenant}:{user}"),
        }
    }
}
