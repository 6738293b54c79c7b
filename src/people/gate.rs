//! The password gate every surface that takes a password goes through (the login page, the
//! account page, later device approval): throttling and lockout first, then one argon2id
//! verification whether or not the account exists (no enumeration by timing), then the
//! history entry and the rehash.

use super::passwords::{MAX_PASSWORD_BYTES, PasswordHasher};
use super::sessions::{Origin, Sessions};
use super::throttle::{Refusal, Throttle};
use crate::error::ServiceError;
use crate::model::TenantId;
use crate::model::session::{LoginMethod, LoginResult};
use crate::model::user::User;
use crate::rng::Rng;
use crate::store::Store;

/// How a password check ended.
#[derive(Debug)]
pub enum Outcome {
    /// Not checked: throttled or locked out.
    Refused(Refusal),
    /// Unknown account, no password set, or the wrong password: one answer for all three.
    Wrong,
    /// The right password of a disabled account.
    Disabled(User),
    Right(User),
}

#[derive(Clone, Copy)]
pub struct PasswordGate<'a> {
    pub store: &'a Store,
    pub passwords: &'a PasswordHasher,
    pub throttle: Throttle<'a>,
    pub sessions: Sessions<'a>,
    pub rng: &'a Rng,
}

impl PasswordGate<'_> {
    /// Checks `password` for the account named `typed`, from `address` (a rate-limit
    /// subject).
    pub async fn check(
        &self,
        tenant: TenantId,
        typed: &str,
        password: &str,
        address: &str,
        origin: &Origin,
    ) -> Result<Outcome, ServiceError> {
        let typed = typed.trim();
        let found = self.store.user_by_name_or_email(tenant, typed).await?;
        // The lockout is keyed by the account when one matches (its username and its email
        // share one budget), else by what was submitted: the answer is the same either way.
        let key = match &found {
            Some((user, _)) => format!("user:{}", user.id),
            None => format!("typed:{}", typed.to_lowercase()),
        };
        if let Err(refusal) = self.throttle.admit(tenant, &key, address).await? {
            if let Some((user, _)) = &found {
                self.sessions
                    .record_failure(
                        tenant,
                        user.id,
                        LoginMethod::Password,
                        LoginResult::Locked,
                        origin,
                    )
                    .await?;
            }
            return Ok(Outcome::Refused(refusal));
        }
        let (user, stored) = match found {
            Some((user, stored)) => (Some(user), stored),
            None => (None, None),
        };
        // An over-long password is wrong without being hashed; everything else costs one
        // verification (against a decoy hash when there is no account or no password).
        let verified = if password.len() > MAX_PASSWORD_BYTES {
            None
        } else {
            Some(
                self.passwords
                    .verify(password.to_owned(), stored.clone(), self.rng.bytes())
                    .await?,
            )
        };
        let (Some(user), Some(verified)) = (user.clone(), verified.filter(|v| v.ok)) else {
            self.throttle.failed(tenant, &key, address).await?;
            if let Some(user) = user {
                self.sessions
                    .record_failure(
                        tenant,
                        user.id,
                        LoginMethod::Password,
                        LoginResult::WrongPassword,
                        origin,
                    )
                    .await?;
            }
            return Ok(Outcome::Wrong);
        };
        self.throttle.succeeded(tenant, &key).await?;
        if let (Some(new), Some(old)) = (verified.rehashed, stored) {
            self.store
                .rehash_password(tenant, user.id, &old, &new)
                .await?;
        }
        if !user.is_active() {
            self.sessions
                .record_failure(
                    tenant,
                    user.id,
                    LoginMethod::Password,
                    LoginResult::Disabled,
                    origin,
                )
                .await?;
            return Ok(Outcome::Disabled(user));
        }
        Ok(Outcome::Right(user))
    }
}
