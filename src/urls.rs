//! The one URL builder (DESIGN §2): each tenant endpoint's path is written once, here, and
//! every absolute URL (discovery, `registration_client_uri`, the audiences a client assertion
//! may name, later the DPoP `htu`) is built from it. The route table uses the same paths.

use crate::config::Settings;
use crate::model::TenantSlug;
use crate::model::client::ClientId;

/// An endpoint under a tenant's issuer, `{public_url}/t/{tenant}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// OpenID Connect Discovery §4.
    OpenidConfiguration,
    /// RFC 7517 §5 key set.
    Jwks,
    /// RFC 6749 §3.2.
    Token,
    /// RFC 7662 §2.
    Introspect,
    /// RFC 7009 §2.
    Revoke,
    /// RFC 7591 §3.
    Register,
    /// The sign-in page.
    Login,
    /// The account page, and the forms it posts to.
    Account,
    AccountPassword,
    AccountSessions,
    AccountLogout,
    /// Passkey ceremonies (JSON, called by the pages' script) and the passkey forms.
    PasskeyLoginStart,
    PasskeyLoginFinish,
    PasskeyRegisterStart,
    PasskeyRegisterFinish,
    PasskeyRename,
    PasskeyDelete,
    /// Passkey-only sign-up (when the tenant allows it).
    Signup,
    SignupStart,
    SignupFinish,
    /// Mailed links: ask for a reset, set the new password, confirm an address; and the
    /// account page's "send a verification mail".
    PasswordForgot,
    PasswordReset,
    EmailVerify,
    AccountVerifyEmail,
    /// The tenant's branding stylesheet.
    BrandingCss,
    /// OIDC Core §3.1.2: the authorization endpoint, and the steps a request passes through
    /// (resumed after sign-in, consent, account choice).
    Authorize,
    AuthorizeContinue,
    AuthorizeConsent,
    AuthorizeAccount,
    /// RFC 9126 §2.
    Par,
    /// OIDC Core §5.3.
    Userinfo,
    /// OIDC RP-Initiated Logout §2 `end_session_endpoint`.
    EndSession,
    /// The account page's "remove access" of an application.
    AccountApps,
}

impl Endpoint {
    /// The path under the issuer, without a leading slash.
    pub const fn path(self) -> &'static str {
        match self {
            Endpoint::OpenidConfiguration => ".well-known/openid-configuration",
            Endpoint::Jwks => "jwks",
            Endpoint::Token => "token",
            Endpoint::Introspect => "introspect",
            Endpoint::Revoke => "revoke",
            Endpoint::Register => "register",
            Endpoint::Login => "login",
            Endpoint::Account => "account",
            Endpoint::AccountPassword => "account/password",
            Endpoint::AccountSessions => "account/sessions/revoke",
            Endpoint::AccountLogout => "account/logout",
            Endpoint::PasskeyLoginStart => "passkeys/login/start",
            Endpoint::PasskeyLoginFinish => "passkeys/login/finish",
            Endpoint::PasskeyRegisterStart => "account/passkeys/register/start",
            Endpoint::PasskeyRegisterFinish => "account/passkeys/register/finish",
            Endpoint::PasskeyRename => "account/passkeys/rename",
            Endpoint::PasskeyDelete => "account/passkeys/delete",
            Endpoint::Signup => "signup",
            Endpoint::SignupStart => "signup/start",
            Endpoint::SignupFinish => "signup/finish",
            Endpoint::BrandingCss => "branding.css",
            Endpoint::PasswordForgot => "password/forgot",
            Endpoint::PasswordReset => "password/reset",
            Endpoint::EmailVerify => "email/verify",
            Endpoint::AccountVerifyEmail => "account/email/verify",
            Endpoint::Authorize => "authorize",
            Endpoint::AuthorizeContinue => "authorize/continue",
            Endpoint::AuthorizeConsent => "authorize/consent",
            Endpoint::AuthorizeAccount => "authorize/account",
            Endpoint::Par => "par",
            Endpoint::Userinfo => "userinfo",
            Endpoint::EndSession => "logout",
            Endpoint::AccountApps => "account/apps/revoke",
        }
    }

    /// The route pattern, `/t/{tenant}/PATH`.
    pub fn route(self) -> String {
        format!("/t/{{tenant}}/{}", self.path())
    }
}

/// A tenant's URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantUrls {
    issuer: String,
}

impl TenantUrls {
    pub fn new(settings: &Settings, tenant: &TenantSlug) -> TenantUrls {
        TenantUrls {
            issuer: settings.issuer(tenant),
        }
    }

    /// The issuer identifier (RFC 8414 §2, OIDC Discovery §3).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn endpoint(&self, endpoint: Endpoint) -> String {
        format!("{}/{}", self.issuer, endpoint.path())
    }

    /// The endpoint's path on this server (`/t/{tenant}/…`), for links and `return_to`.
    pub fn path(tenant: &TenantSlug, endpoint: Endpoint) -> String {
        format!("/t/{tenant}/{}", endpoint.path())
    }

    /// RFC 7592 §3 `registration_client_uri`.
    pub fn registration_client(&self, client: &ClientId) -> String {
        format!("{}/{client}", self.endpoint(Endpoint::Register))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_issuer() {
        let mut settings = Settings::default();
        settings.server.public_url = "https://id.example.com/".into();
        let urls = TenantUrls::new(&settings, &TenantSlug::parse("acme").unwrap());
        assert_eq!(urls.issuer(), "https://id.example.com/t/acme");
        assert_eq!(
            urls.endpoint(Endpoint::Token),
            "https://id.example.com/t/acme/token"
        );
        assert_eq!(
            urls.registration_client(&ClientId::parse("c1").unwrap()),
            "https://id.example.com/t/acme/register/c1"
        );
        assert_eq!(Endpoint::Jwks.route(), "/t/{tenant}/jwks");
    }
}
