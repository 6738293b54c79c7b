//! Password reset and email verification by single-use, expiring links: the token (256 random
//! bits) goes out in a mail through the outbox, written in the same transaction as the link;
//! only its SHA-256 is stored, and it is consumed in the same transaction as the change it
//! allows. Asking for a reset tells nobody whether the account exists.

use std::time::Duration;

use serde_json::json;

use super::passwords::{PasswordHasher, PasswordSettings, weakness};
use crate::cache::{Cache, CacheKey};
use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::sha256;
use crate::error::ServiceError;
use crate::model::outbox::{LinkPurpose, Mail};
use crate::model::user::{Email, User, UserId};
use crate::model::{Tenant, TenantId};
use crate::rng::Rng;
use crate::store::{NewLink, Store};
use crate::urls::{Endpoint, TenantUrls};

/// Reset (or verification) mails one account receives per hour at most; more resets are
/// silently dropped, more verifications refused.
const RESETS_PER_USER_HOUR: i64 = 3;

#[derive(Clone, Copy)]
pub struct Links<'a> {
    pub store: &'a Store,
    pub cache: &'a Cache,
    pub settings: &'a Settings,
    pub passwords: &'a PasswordHasher,
    pub password_settings: &'a PasswordSettings,
    pub clock: &'a Clock,
    pub rng: &'a Rng,
}

impl Links<'_> {
    async fn issue(
        &self,
        tenant: &Tenant,
        user: &User,
        to: &Email,
        purpose: LinkPurpose,
    ) -> Result<(), ServiceError> {
        let token = self.rng.token::<32>();
        let now = self.clock.now();
        let ttl = self.settings.mail.link_ttl_secs;
        let urls = TenantUrls::new(self.settings, &tenant.slug);
        let (endpoint, subject, intro) = match purpose {
            LinkPurpose::PasswordReset => (
                Endpoint::PasswordReset,
                format!("Reset your {} password", tenant.display_name),
                "Someone (we hope you) asked to reset the password of",
            ),
            LinkPurpose::EmailVerification => (
                Endpoint::EmailVerify,
                format!("Confirm your email address for {}", tenant.display_name),
                "Confirm that this address belongs to",
            ),
        };
        let link = format!("{}?token={token}", urls.endpoint(endpoint));
        let text = format!(
            "Hello,\n\n{intro} the account \"{}\" at {}.\n\nOpen this link within {} minutes:\n\n{link}\n\n\
             If this was not you, ignore this mail: nothing changes.\n",
            user.username.as_str(),
            tenant.display_name,
            ttl / 60,
        );
        let mail = Mail {
            to: to.as_str().to_owned(),
            subject,
            text,
        };
        let payload = serde_json::to_value(&mail)
            .map_err(|e| ServiceError::Internal(format!("mail: {e}")))?;
        self.store
            .issue_link(
                tenant.id,
                NewLink {
                    user: user.id,
                    purpose,
                    token_hash: sha256(token.as_bytes()),
                    email: Some(to),
                    now,
                    expires_at: now + i64::try_from(ttl).unwrap_or(3600),
                },
                payload,
            )
            .await?;
        tracing::info!(tenant = %tenant.id, user = %user.id, purpose = %purpose, "link mailed");
        Ok(())
    }

    /// Mails a reset link to the account named by `typed` (username or email), if it exists
    /// and has an address; says nothing either way.
    pub async fn request_reset(&self, tenant: &Tenant, typed: &str) -> Result<(), ServiceError> {
        let typed = typed.trim();
        let found = self.store.user_by_name_or_email(tenant.id, typed).await?;
        let Some((user, _)) = found else {
            return Ok(());
        };
        let Some(email) = user.email.clone() else {
            return Ok(());
        };
        if !user.is_active() {
            return Ok(());
        }
        let key = CacheKey::ResetsFor {
            tenant: tenant.id,
            user: user.id,
        };
        if self.cache.count(&key, Duration::from_secs(3600)).await? > RESETS_PER_USER_HOUR {
            return Ok(());
        }
        self.issue(tenant, &user, &email, LinkPurpose::PasswordReset)
            .await
    }

    /// Mails a verification link to the user's current address.
    pub async fn request_verification(
        &self,
        tenant: &Tenant,
        user: &User,
    ) -> Result<(), ServiceError> {
        let Some(email) = user.email.clone() else {
            return Err(ServiceError::Invalid(
                "the account has no email address".into(),
            ));
        };
        if user.email_verified {
            return Err(ServiceError::Invalid(
                "the address is already verified".into(),
            ));
        }
        self.issue(tenant, user, &email, LinkPurpose::EmailVerification)
            .await
    }

    /// Whose the link is, if it is still good.
    pub async fn check(
        &self,
        tenant: TenantId,
        token: &str,
        purpose: LinkPurpose,
    ) -> Result<Option<UserId>, ServiceError> {
        Ok(self
            .store
            .peek_link(tenant, sha256(token.as_bytes()), purpose, self.clock.now())
            .await?)
    }

    /// Sets a new password with a reset link; every session of the account ends. `Ok(None)`:
    /// the link is used up, expired or unknown.
    pub async fn reset_password(
        &self,
        tenant: TenantId,
        token: &str,
        password: String,
    ) -> Result<Option<UserId>, ServiceError> {
        let Some(id) = self
            .check(tenant, token, LinkPurpose::PasswordReset)
            .await?
        else {
            return Ok(None);
        };
        let Some(user) = self.store.user(tenant, id).await? else {
            return Ok(None);
        };
        let names: Vec<&str> = std::iter::once(user.username.as_str())
            .chain(user.email.as_ref().map(Email::as_str))
            .collect();
        if let Some(why) = weakness(&password, self.password_settings.min_length, &names) {
            return Err(ServiceError::Invalid(why));
        }
        let hash = self.passwords.hash(password, self.rng.bytes()).await?;
        let done = self
            .store
            .redeem_link(
                tenant,
                sha256(token.as_bytes()),
                LinkPurpose::PasswordReset,
                Some(hash),
                self.clock.now(),
            )
            .await?;
        if let Some(user) = done {
            let audit = crate::model::user::AuditEvent {
                at: self.clock.now(),
                actor: "self".into(),
                action: "user.reset_password".into(),
                target: user.to_string(),
                detail: json!({}),
            };
            self.store.record_audit(tenant, &audit).await?;
        }
        Ok(done)
    }

    /// Verifies the address a verification link was mailed to.
    pub async fn verify_email(
        &self,
        tenant: TenantId,
        token: &str,
    ) -> Result<Option<UserId>, ServiceError> {
        Ok(self
            .store
            .redeem_link(
                tenant,
                sha256(token.as_bytes()),
                LinkPurpose::EmailVerification,
                None,
                self.clock.now(),
            )
            .await?)
    }
}
