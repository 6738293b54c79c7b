//! Browser sessions (looked up by the digest of their cookie token) and the sign-in history
//! of users.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::db::{Tx, with_conn, with_tx_conn};
use super::schema::{login_events, sessions, users};
use super::types::{DbId, DbJson};
use super::users::UserRow;
use super::{Store, StoreError, TenantId};
use crate::model::session::{Amr, LoginEvent, Session, SessionId};
use crate::model::user::{User, UserId};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
struct SessionRow {
    id: DbId,
    tenant_id: DbId,
    token_hash: Vec<u8>,
    user_id: DbId,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    auth_time: i64,
    amr: DbJson,
    acr: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    revoked_at: Option<i64>,
}

impl SessionRow {
    fn new(tenant: TenantId, session: &Session, token_hash: &[u8; 32]) -> SessionRow {
        SessionRow {
            id: DbId(session.id.0),
            tenant_id: tenant.db(),
            token_hash: token_hash.to_vec(),
            user_id: DbId(session.user.0),
            created_at: session.created_at,
            last_seen_at: session.last_seen_at,
            expires_at: session.expires_at,
            auth_time: session.auth_time,
            amr: DbJson(serde_json::Value::Array(
                session
                    .amr
                    .iter()
                    .map(|a| serde_json::Value::from(a.as_str()))
                    .collect(),
            )),
            acr: session.acr.clone(),
            ip: session.ip.clone(),
            user_agent: session.user_agent.clone(),
            revoked_at: None,
        }
    }

    fn into_session(self) -> Result<Session, StoreError> {
        let amr: Vec<Amr> = serde_json::from_value(self.amr.0)
            .map_err(|e| StoreError::Corrupt(format!("session {}: amr: {e}", self.id.0)))?;
        Ok(Session {
            id: SessionId(self.id.0),
            user: UserId(self.user_id.0),
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
            expires_at: self.expires_at,
            auth_time: self.auth_time,
            amr,
            acr: self.acr,
            ip: self.ip,
            user_agent: self.user_agent,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = login_events)]
struct LoginRow {
    id: DbId,
    tenant_id: DbId,
    user_id: DbId,
    at: i64,
    ip: Option<String>,
    user_agent: Option<String>,
    method: String,
    result: String,
}

impl LoginRow {
    fn new(tenant: TenantId, user: UserId, event: &LoginEvent) -> LoginRow {
        LoginRow {
            id: DbId(uuid::Uuid::now_v7()),
            tenant_id: tenant.db(),
            user_id: DbId(user.0),
            at: event.at,
            ip: event.ip.clone(),
            user_agent: event.user_agent.clone(),
            method: event.method.as_str().to_owned(),
            result: event.result.as_str().to_owned(),
        }
    }

    fn into_event(self) -> Result<LoginEvent, StoreError> {
        let corrupt = |e: String| StoreError::Corrupt(format!("login event {}: {e}", self.id.0));
        Ok(LoginEvent {
            method: self.method.parse().map_err(corrupt)?,
            result: self.result.parse().map_err(corrupt)?,
            at: self.at,
            ip: self.ip,
            user_agent: self.user_agent,
        })
    }
}

impl Store {
    /// A successful sign-in, in one transaction, with the history entry and the user's last
    /// sign-in time. `replaces` is the digest of the browser's previous session token: if that
    /// session is the same person's (a re-authentication: `prompt=login`, `max_age`), it goes
    /// on under the new token with the new authentication, so the `sid` relying parties hold
    /// and the grants bound to it stay; another person's ends, with its back-channel logouts.
    /// Tokens always rotate. Returns the id of the session the browser now holds.
    pub async fn begin_session(
        &self,
        tenant: TenantId,
        session: &Session,
        token_hash: [u8; 32],
        replaces: Option<[u8; 32]>,
        idle_timeout: i64,
        event: &LoginEvent,
    ) -> Result<SessionId, StoreError> {
        let row = SessionRow::new(tenant, session, &token_hash);
        let login = LoginRow::new(tenant, session.user, event);
        let (user, now, fresh) = (session.user, session.created_at, session.id);
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move {
                    let old: Option<(DbId, DbId, i64, i64)> = match &replaces {
                        None => None,
                        Some(old) => with_tx_conn!(&mut tx, |c| sessions::table
                            .filter(sessions::tenant_id.eq(tenant.db()))
                            .filter(sessions::token_hash.eq(old.as_slice()))
                            .filter(sessions::revoked_at.is_null())
                            .select((
                                sessions::id,
                                sessions::user_id,
                                sessions::expires_at,
                                sessions::last_seen_at,
                            ))
                            .first(c)
                            .await
                            .optional())?,
                    };
                    // Continued only while live (Session::live_at): an ended one is replaced.
                    let old = old.map(|(id, owner, expires_at, seen)| {
                        let live = now < expires_at && now < seen.saturating_add(idle_timeout);
                        (id, owner, live)
                    });
                    let id = match old {
                        Some((id, owner, true)) if owner.0 == user.0 => {
                            with_tx_conn!(&mut tx, |c| diesel::update(
                                sessions::table
                                    .filter(sessions::tenant_id.eq(tenant.db()))
                                    .filter(sessions::id.eq(id))
                            )
                            .set((
                                sessions::token_hash.eq(&row.token_hash),
                                sessions::auth_time.eq(row.auth_time),
                                sessions::amr.eq(&row.amr),
                                sessions::acr.eq(&row.acr),
                                sessions::last_seen_at.eq(row.last_seen_at),
                                sessions::ip.eq(&row.ip),
                                sessions::user_agent.eq(&row.user_agent),
                            ))
                            .execute(c)
                            .await)?;
                            SessionId(id.0)
                        }
                        other => {
                            if let Some((id, owner, _)) = other {
                                tx.end_session(tenant, SessionId(id.0), UserId(owner.0), now)
                                    .await?;
                            }
                            with_tx_conn!(&mut tx, |c| diesel::insert_into(sessions::table)
                                .values(&row)
                                .execute(c)
                                .await)?;
                            fresh
                        }
                    };
                    with_tx_conn!(&mut tx, |c| diesel::insert_into(login_events::table)
                        .values(&login)
                        .execute(c)
                        .await)?;
                    with_tx_conn!(&mut tx, |c| diesel::update(
                        users::table
                            .filter(users::tenant_id.eq(tenant.db()))
                            .filter(users::id.eq(DbId(user.0)))
                    )
                    .set(users::last_login_at.eq(Some(now)))
                    .execute(c)
                    .await)?;
                    Ok(id)
                })
            })
            .await
    }

    /// The unrevoked session whose token has this digest, with its user. Whether it is still
    /// live (idle and absolute timeouts) is the caller's rule.
    pub async fn session_by_token(
        &self,
        tenant: TenantId,
        token_hash: [u8; 32],
    ) -> Result<Option<(Session, User)>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let row: Option<(SessionRow, UserRow)> =
                    with_conn!(&mut conn, |c| sessions::table
                        .inner_join(users::table)
                        .filter(sessions::tenant_id.eq(tenant.db()))
                        .filter(users::tenant_id.eq(tenant.db()))
                        .filter(sessions::token_hash.eq(token_hash.as_slice()))
                        .filter(sessions::revoked_at.is_null())
                        .select((SessionRow::as_select(), UserRow::as_select()))
                        .first(c)
                        .await
                        .optional())?;
                match row {
                    None => Ok(None),
                    Some((s, u)) => Ok(Some((s.into_session()?, u.into_user()?.0))),
                }
            })
            .await
    }

    /// The unrevoked session `id` (a grant that lives with it checks it is still there).
    pub async fn session_by_id(
        &self,
        tenant: TenantId,
        id: SessionId,
    ) -> Result<Option<Session>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let row: Option<SessionRow> = with_conn!(&mut conn, |c| sessions::table
                    .filter(sessions::tenant_id.eq(tenant.db()))
                    .filter(sessions::id.eq(DbId(id.0)))
                    .filter(sessions::revoked_at.is_null())
                    .select(SessionRow::as_select())
                    .first(c)
                    .await
                    .optional())?;
                row.map(SessionRow::into_session).transpose()
            })
            .await
    }

    /// Marks a session used at `now`, at most once per `every` seconds (the idle timeout
    /// needs no write per page view).
    pub async fn touch_session(
        &self,
        tenant: TenantId,
        id: SessionId,
        now: i64,
        every: i64,
    ) -> Result<(), StoreError> {
        self.db
            .run(move |mut conn| async move {
                with_conn!(&mut conn, |c| diesel::update(
                    sessions::table
                        .filter(sessions::tenant_id.eq(tenant.db()))
                        .filter(sessions::id.eq(DbId(id.0)))
                        .filter(sessions::last_seen_at.le(now - every))
                )
                .set(sessions::last_seen_at.eq(now))
                .execute(c)
                .await)?;
                Ok(())
            })
            .await
    }

    /// Ends one session of `user` (or, with `user` absent, the session whatever its user: the
    /// browser signing out), queuing the back-channel logout of the clients it signed in to in
    /// the same transaction. Returns whether a live one was ended.
    pub async fn revoke_session(
        &self,
        tenant: TenantId,
        id: SessionId,
        user: Option<UserId>,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move {
                    let owner: Option<DbId> = with_tx_conn!(&mut tx, |c| {
                        let mut q = sessions::table
                            .filter(sessions::tenant_id.eq(tenant.db()))
                            .filter(sessions::id.eq(DbId(id.0)))
                            .filter(sessions::revoked_at.is_null())
                            .select(sessions::user_id)
                            .into_boxed();
                        if let Some(user) = user {
                            q = q.filter(sessions::user_id.eq(DbId(user.0)));
                        }
                        q.first(c).await.optional()
                    })?;
                    let Some(owner) = owner else {
                        return Ok(false);
                    };
                    tx.end_session(tenant, id, UserId(owner.0), now).await
                })
            })
            .await
    }

    /// Ends every session of `user` but `keep` (with their back-channel logouts); returns how
    /// many.
    pub async fn revoke_sessions_of(
        &self,
        tenant: TenantId,
        user: UserId,
        keep: Option<SessionId>,
        now: i64,
    ) -> Result<usize, StoreError> {
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move { tx.end_sessions_of(tenant, user, keep, now).await })
            })
            .await
    }

    /// The unrevoked sessions of `user` that have not reached their absolute end, newest
    /// first.
    pub async fn sessions_of(
        &self,
        tenant: TenantId,
        user: UserId,
        now: i64,
    ) -> Result<Vec<Session>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let rows: Vec<SessionRow> = with_conn!(&mut conn, |c| sessions::table
                    .filter(sessions::tenant_id.eq(tenant.db()))
                    .filter(sessions::user_id.eq(DbId(user.0)))
                    .filter(sessions::revoked_at.is_null())
                    .filter(sessions::expires_at.gt(now))
                    .order(sessions::created_at.desc())
                    .limit(100)
                    .select(SessionRow::as_select())
                    .load(c)
                    .await)?;
                rows.into_iter().map(SessionRow::into_session).collect()
            })
            .await
    }

    /// Records a sign-in attempt that did not start a session.
    pub async fn record_login(
        &self,
        tenant: TenantId,
        user: UserId,
        event: &LoginEvent,
    ) -> Result<(), StoreError> {
        let row = LoginRow::new(tenant, user, event);
        self.db
            .run(move |mut conn| async move {
                with_conn!(&mut conn, |c| diesel::insert_into(login_events::table)
                    .values(&row)
                    .execute(c)
                    .await)?;
                Ok(())
            })
            .await
    }

    /// The latest `limit` sign-in attempts of `user`, newest first.
    pub async fn login_history(
        &self,
        tenant: TenantId,
        user: UserId,
        limit: i64,
    ) -> Result<Vec<LoginEvent>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let rows: Vec<LoginRow> = with_conn!(&mut conn, |c| login_events::table
                    .filter(login_events::tenant_id.eq(tenant.db()))
                    .filter(login_events::user_id.eq(DbId(user.0)))
                    .order((login_events::at.desc(), login_events::id.desc()))
                    .limit(limit)
                    .select(LoginRow::as_select())
                    .load(c)
                    .await)?;
                rows.into_iter().map(LoginRow::into_event).collect()
            })
            .await
    }

    /// Deletes sessions revoked or past their absolute end more than `grace` seconds ago,
    /// and sign-in history older than `history` seconds.
    pub async fn purge_sessions(
        &self,
        now: i64,
        grace: i64,
        history: i64,
    ) -> Result<usize, StoreError> {
        let before = now - grace;
        self.db
            .run(move |mut conn| async move {
                let n = with_conn!(&mut conn, |c| diesel::delete(
                    sessions::table.filter(
                        sessions::expires_at
                            .lt(before)
                            .or(sessions::revoked_at.lt(before))
                    )
                )
                .execute(c)
                .await)?;
                let m = with_conn!(&mut conn, |c| diesel::delete(
                    login_events::table.filter(login_events::at.lt(now - history))
                )
                .execute(c)
                .await)?;
                Ok(n + m)
            })
            .await
    }
}

impl Tx<'_> {
    /// Ends every live session of `user` but `keep`, each with its back-channel logouts;
    /// returns how many.
    pub(super) async fn end_sessions_of(
        &mut self,
        tenant: TenantId,
        user: UserId,
        keep: Option<SessionId>,
        now: i64,
    ) -> Result<usize, StoreError> {
        let keep = keep.map_or(uuid::Uuid::nil(), |k| k.0);
        let ids: Vec<DbId> = with_tx_conn!(self, |c| sessions::table
            .filter(sessions::tenant_id.eq(tenant.db()))
            .filter(sessions::user_id.eq(DbId(user.0)))
            .filter(sessions::id.ne(DbId(keep)))
            .filter(sessions::revoked_at.is_null())
            .select(sessions::id)
            .load(c)
            .await)?;
        let mut ended = 0;
        for id in ids {
            if self.end_session(tenant, SessionId(id.0), user, now).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Ends a live session and queues its back-channel logouts; false if it had ended.
    async fn end_session(
        &mut self,
        tenant: TenantId,
        id: SessionId,
        user: UserId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = with_tx_conn!(self, |c| diesel::update(
            sessions::table
                .filter(sessions::tenant_id.eq(tenant.db()))
                .filter(sessions::id.eq(DbId(id.0)))
                .filter(sessions::revoked_at.is_null())
        )
        .set(sessions::revoked_at.eq(Some(now)))
        .execute(c)
        .await)?;
        if n == 0 {
            return Ok(false);
        }
        self.notify_logout(tenant, id, user, now).await?;
        Ok(true)
    }
}
