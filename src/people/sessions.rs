//! Browser sessions as a service: begun at sign-in (rotating the browser's previous session,
//! so a planted id is worth nothing), found by the digest of their cookie token, ended by
//! sign-out, by the person from another browser, or by the idle and absolute timeouts.

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::crypto::sha256;
use crate::error::ServiceError;
use crate::model::TenantId;
use crate::model::session::{Amr, LoginEvent, LoginMethod, LoginResult, Session, SessionId};
use crate::model::user::{User, UserId};
use crate::rng::Rng;
use crate::store::Store;

/// `[sessions]`: how long a browser stays signed in.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// A session unused for this long ends (seconds).
    pub idle_timeout_secs: u64,
    /// A session ends this long after sign-in, however busy (seconds).
    pub max_lifetime_secs: u64,
    /// Sign-in history is kept this long (seconds).
    pub history_secs: u64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        // Keycloak's defaults for SSO sessions: 30 minutes idle, 10 hours at most.
        SessionSettings {
            idle_timeout_secs: 30 * 60,
            max_lifetime_secs: 10 * 3600,
            history_secs: 90 * 86_400,
        }
    }
}

/// How often, at most, a session's last use is written (the idle timeout is this coarse).
const TOUCH_EVERY: i64 = 60;

/// Where a sign-in came from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A session just begun: the cookie token (shown to the browser once, stored as its digest).
pub struct Begun {
    pub token: String,
    pub session: Session,
}

#[derive(Clone, Copy)]
pub struct Sessions<'a> {
    pub store: &'a Store,
    pub settings: &'a SessionSettings,
    pub clock: &'a Clock,
    pub rng: &'a Rng,
}

fn digest(token: &str) -> [u8; 32] {
    sha256(token.as_bytes())
}

fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Sessions<'_> {
    /// Starts a session for `user`, ending the one `previous` (the browser's current cookie
    /// token, if any) names, and records the sign-in.
    pub async fn begin(
        &self,
        tenant: TenantId,
        user: &User,
        amr: Vec<Amr>,
        method: LoginMethod,
        origin: &Origin,
        previous: Option<&str>,
    ) -> Result<Begun, ServiceError> {
        let now = self.clock.now();
        let token = self.rng.token::<32>();
        let session = Session {
            id: SessionId(uuid::Builder::from_random_bytes(self.rng.bytes()).into_uuid()),
            user: user.id,
            created_at: now,
            last_seen_at: now,
            expires_at: now.saturating_add(secs(self.settings.max_lifetime_secs)),
            auth_time: now,
            acr: Some(crate::model::session::acr_for(&amr).to_owned()),
            amr,
            ip: origin.ip.clone(),
            user_agent: origin.user_agent.clone(),
        };
        let event = LoginEvent {
            at: now,
            ip: origin.ip.clone(),
            user_agent: origin.user_agent.clone(),
            method,
            result: LoginResult::Success,
        };
        let id = self
            .store
            .begin_session(
                tenant,
                &session,
                digest(&token),
                previous.map(digest),
                secs(self.settings.idle_timeout_secs),
                &event,
            )
            .await?;
        let session = Session { id, ..session };
        tracing::info!(%tenant, user = %user.id, session = %session.id, "signed in");
        Ok(Begun { token, session })
    }

    /// The live session behind a cookie token, with its user: unrevoked, within both
    /// timeouts, and of an active user (disabling a user makes their sessions worthless
    /// without ending them, so enabling the user again restores them).
    pub async fn current(
        &self,
        tenant: TenantId,
        token: &str,
    ) -> Result<Option<(Session, User)>, ServiceError> {
        let Some((session, user)) = self.store.session_by_token(tenant, digest(token)).await?
        else {
            return Ok(None);
        };
        let now = self.clock.now();
        if !session.live_at(now, secs(self.settings.idle_timeout_secs)) || !user.is_active() {
            return Ok(None);
        }
        if now - session.last_seen_at >= TOUCH_EVERY {
            self.store
                .touch_session(tenant, session.id, now, TOUCH_EVERY)
                .await?;
        }
        Ok(Some((session, user)))
    }

    /// Signs a browser out: ends the session its token names.
    pub async fn end(&self, tenant: TenantId, token: &str) -> Result<(), ServiceError> {
        if let Some((session, _)) = self.store.session_by_token(tenant, digest(token)).await? {
            self.store
                .revoke_session(tenant, session.id, None, self.clock.now())
                .await?;
        }
        Ok(())
    }

    /// The live sessions of `user`, newest first.
    pub async fn of(&self, tenant: TenantId, user: UserId) -> Result<Vec<Session>, ServiceError> {
        let now = self.clock.now();
        let idle = secs(self.settings.idle_timeout_secs);
        Ok(self
            .store
            .sessions_of(tenant, user, now)
            .await?
            .into_iter()
            .filter(|s| s.live_at(now, idle))
            .collect())
    }

    /// Ends one of `user`'s sessions; not found if it is not theirs or already over.
    pub async fn revoke(
        &self,
        tenant: TenantId,
        user: UserId,
        id: SessionId,
    ) -> Result<(), ServiceError> {
        if self
            .store
            .revoke_session(tenant, id, Some(user), self.clock.now())
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::NotFound("no such session".into()))
        }
    }

    /// Ends every session of `user` except `keep`.
    pub async fn revoke_others(
        &self,
        tenant: TenantId,
        user: UserId,
        keep: Option<SessionId>,
    ) -> Result<usize, ServiceError> {
        Ok(self
            .store
            .revoke_sessions_of(tenant, user, keep, self.clock.now())
            .await?)
    }

    /// Records a sign-in attempt of a known user that did not start a session.
    pub async fn record_failure(
        &self,
        tenant: TenantId,
        user: UserId,
        method: LoginMethod,
        result: LoginResult,
        origin: &Origin,
    ) -> Result<(), ServiceError> {
        let event = LoginEvent {
            at: self.clock.now(),
            ip: origin.ip.clone(),
            user_agent: origin.user_agent.clone(),
            method,
            result,
        };
        Ok(self.store.record_login(tenant, user, &event).await?)
    }

    /// The latest sign-in attempts of `user`, newest first.
    pub async fn history(
        &self,
        tenant: TenantId,
        user: UserId,
        limit: i64,
    ) -> Result<Vec<LoginEvent>, ServiceError> {
        Ok(self.store.login_history(tenant, user, limit).await?)
    }
}
