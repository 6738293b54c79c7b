//! Guessing passwords is throttled through the shared cache, so every replica counts the same
//! attempts (DESIGN §1): per address, a rate; per account (or submitted name) and per address, a
//! temporary lockout after repeated failures. A lockout only stops password checks: sessions
//! and tokens already held stay, or an attacker could sign a victim out by failing on purpose.

use std::time::Duration;

use super::passwords::PasswordSettings;
use crate::cache::{Cache, CacheKey, SharedState};
use crate::error::ServiceError;
use crate::model::TenantId;

/// Why a password check is not made now; both carry the seconds to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many attempts from this address this minute.
    Throttled(u64),
    /// Too many failures for this username or from this address.
    LockedOut(u64),
}

impl Refusal {
    pub fn retry_after(self) -> u64 {
        match self {
            Refusal::Throttled(s) | Refusal::LockedOut(s) => s,
        }
    }
}

#[derive(Clone, Copy)]
pub struct Throttle<'a> {
    pub cache: &'a Cache,
    pub settings: &'a PasswordSettings,
}

impl Throttle<'_> {
    /// Admits one password attempt for `username_key` (`user:{id}` for an account that exists,
    /// else the folded name as submitted: the answers do not tell the two apart) from
    /// `address` (a rate-limit subject), or says why not. Checks race: attempts already
    /// admitted when the threshold is reached still complete, at most the hashing pool's
    /// capacity per replica.
    pub async fn admit(
        &self,
        tenant: TenantId,
        username_key: &str,
        address: &str,
    ) -> Result<Result<(), Refusal>, ServiceError> {
        let lock = self.settings.lockout_secs;
        for key in [
            CacheKey::LockedUsername {
                tenant,
                username: username_key,
            },
            CacheKey::LockedAddress {
                tenant,
                subject: address,
            },
        ] {
            if self.cache.get(&key.render()).await?.is_some() {
                return Ok(Err(Refusal::LockedOut(lock)));
            }
        }
        let attempts = self
            .cache
            .count(
                &CacheKey::PasswordAttemptsFrom {
                    tenant,
                    subject: address,
                },
                Duration::from_secs(60),
            )
            .await?;
        if attempts > i64::from(self.settings.attempts_per_minute) {
            return Ok(Err(Refusal::Throttled(60)));
        }
        Ok(Ok(()))
    }

    /// Counts a failed check; at the threshold the username or the address is locked out for
    /// `lockout_secs`.
    pub async fn failed(
        &self,
        tenant: TenantId,
        username_key: &str,
        address: &str,
    ) -> Result<(), ServiceError> {
        let window = Duration::from_secs(self.settings.lockout_secs);
        let counted = [
            (
                CacheKey::FailuresFor {
                    tenant,
                    username: username_key,
                },
                CacheKey::LockedUsername {
                    tenant,
                    username: username_key,
                },
                self.settings.lockout_after,
                "an account or name",
            ),
            (
                CacheKey::FailuresFrom {
                    tenant,
                    subject: address,
                },
                CacheKey::LockedAddress {
                    tenant,
                    subject: address,
                },
                self.settings.address_lockout_after,
                "an address",
            ),
        ];
        for (failures, lock, threshold, what) in counted {
            if self.cache.count(&failures, window).await? >= i64::from(threshold) {
                self.cache.set(&lock.render(), b"1", window).await?;
                tracing::warn!(%tenant, "{what} is locked out after repeated failed passwords");
            }
        }
        Ok(())
    }

    /// A correct password clears the username's failures (not the address's: one success
    /// must not reset an attacker's count across many accounts).
    pub async fn succeeded(
        &self,
        tenant: TenantId,
        username_key: &str,
    ) -> Result<(), ServiceError> {
        let key = CacheKey::FailuresFor {
            tenant,
            username: username_key,
        };
        self.cache.delete(&key.render()).await?;
        Ok(())
    }
}
