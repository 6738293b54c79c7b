//! User rows, and the audit trail of administrators' changes to them. Every change to a user
//! writes its audit event in the same transaction.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::db::{with_conn, with_tx, with_tx_conn};
use super::schema::{audit_events, user_tokens, users};
use super::types::{DbId, DbJson};
use super::{Store, StoreError, TenantId};
use crate::model::user::{AuditEvent, Email, Profile, User, UserId, Username};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub(super) struct UserRow {
    id: DbId,
    tenant_id: DbId,
    username: String,
    username_key: String,
    email: Option<String>,
    email_key: Option<String>,
    email_verified: bool,
    profile: DbJson,
    roles: DbJson,
    groups: DbJson,
    password_hash: Option<String>,
    password_changed_at: Option<i64>,
    disabled_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    last_login_at: Option<i64>,
}

impl UserRow {
    fn new(
        tenant: TenantId,
        user: &User,
        password_hash: Option<String>,
    ) -> Result<UserRow, StoreError> {
        let json = |v: Result<serde_json::Value, serde_json::Error>| {
            v.map(DbJson)
                .map_err(|e| StoreError::Corrupt(format!("user {}: {e}", user.id)))
        };
        Ok(UserRow {
            id: DbId(user.id.0),
            tenant_id: tenant.db(),
            username: user.username.as_str().to_owned(),
            username_key: user.username.key(),
            email: user.email.as_ref().map(|e| e.as_str().to_owned()),
            email_key: user.email.as_ref().map(Email::key),
            email_verified: user.email_verified,
            profile: json(serde_json::to_value(&user.profile))?,
            roles: json(serde_json::to_value(&user.roles))?,
            groups: json(serde_json::to_value(&user.groups))?,
            password_hash,
            password_changed_at: user.password_changed_at,
            disabled_at: user.disabled_at,
            created_at: user.created_at,
            updated_at: user.updated_at,
            last_login_at: user.last_login_at,
        })
    }

    pub(super) fn into_user(self) -> Result<(User, Option<String>), StoreError> {
        let id = UserId(self.id.0);
        let corrupt = |what: &str| StoreError::Corrupt(format!("user {id}: {what}"));
        let labels = |v: serde_json::Value| serde_json::from_value::<Vec<String>>(v);
        let user = User {
            id,
            username: Username::parse(&self.username).map_err(|_| corrupt("malformed username"))?,
            email: self
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|_| corrupt("malformed email"))?,
            email_verified: self.email_verified,
            profile: serde_json::from_value::<Profile>(self.profile.0)
                .map_err(|_| corrupt("malformed profile"))?,
            roles: labels(self.roles.0).map_err(|_| corrupt("malformed roles"))?,
            groups: labels(self.groups.0).map_err(|_| corrupt("malformed groups"))?,
            has_password: self.password_hash.is_some(),
            password_changed_at: self.password_changed_at,
            disabled_at: self.disabled_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_login_at: self.last_login_at,
        };
        Ok((user, self.password_hash))
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
struct AuditRow {
    id: DbId,
    tenant_id: DbId,
    at: i64,
    actor: String,
    action: String,
    target: String,
    detail: DbJson,
}

impl AuditRow {
    fn new(tenant: TenantId, event: &AuditEvent) -> AuditRow {
        AuditRow {
            id: DbId(uuid::Uuid::now_v7()),
            tenant_id: tenant.db(),
            at: event.at,
            actor: event.actor.clone(),
            action: event.action.clone(),
            target: event.target.clone(),
            detail: DbJson(event.detail.clone()),
        }
    }
}

/// How a user is looked up.
#[derive(Debug, Clone, Copy)]
pub enum UserRef<'a> {
    Id(UserId),
    Username(&'a Username),
    Email(&'a Email),
}

/// Which of a user's unique names a conflicting write collided with.
fn conflict(e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict(why) if why.contains("email") => StoreError::Conflict("email".into()),
        StoreError::Conflict(_) => StoreError::Conflict("username".into()),
        e => e,
    }
}

impl Store {
    /// Stores a new user (with its password hash, if any) and its audit event in one
    /// transaction. A taken username or email is a [`StoreError::Conflict`] naming which
    /// (`"username"` or `"email"`).
    pub async fn insert_user(
        &self,
        tenant: TenantId,
        user: &User,
        password_hash: Option<String>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let row = UserRow::new(tenant, user, password_hash)?;
        let audit = AuditRow::new(tenant, audit);
        self.db
            .run(move |mut conn| async move {
                with_tx!(&mut conn, |c| {
                    diesel::insert_into(users::table)
                        .values(&row)
                        .execute(c)
                        .await?;
                    diesel::insert_into(audit_events::table)
                        .values(&audit)
                        .execute(c)
                        .await?;
                    Ok::<_, StoreError>(())
                })
            })
            .await
            .map_err(conflict)
    }

    /// One user of `tenant` by id.
    pub async fn user(&self, tenant: TenantId, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self
            .user_with_hash(tenant, UserRef::Id(id))
            .await?
            .map(|(u, _)| u))
    }

    /// The account a person means by what they typed at a sign-in or reset form: a username,
    /// else an email address; with the password hash.
    pub async fn user_by_name_or_email(
        &self,
        tenant: TenantId,
        typed: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError> {
        if let Ok(username) = Username::parse(typed)
            && let Some(found) = self
                .user_with_hash(tenant, UserRef::Username(&username))
                .await?
        {
            return Ok(Some(found));
        }
        match Email::parse(typed) {
            Ok(email) => self.user_with_hash(tenant, UserRef::Email(&email)).await,
            Err(_) => Ok(None),
        }
    }

    /// One user of `tenant` by id, username or email (names in any case), with the password
    /// hash.
    pub async fn user_with_hash(
        &self,
        tenant: TenantId,
        by: UserRef<'_>,
    ) -> Result<Option<(User, Option<String>)>, StoreError> {
        enum Key {
            Id(DbId),
            Username(String),
            Email(String),
        }
        let key = match by {
            UserRef::Id(id) => Key::Id(DbId(id.0)),
            UserRef::Username(u) => Key::Username(u.key()),
            UserRef::Email(e) => Key::Email(e.key()),
        };
        self.db
            .run(move |mut conn| async move {
                let row: Option<UserRow> = with_conn!(&mut conn, |c| {
                    let q = users::table
                        .filter(users::tenant_id.eq(tenant.db()))
                        .select(UserRow::as_select())
                        .into_boxed();
                    let q = match &key {
                        Key::Id(id) => q.filter(users::id.eq(*id)),
                        Key::Username(k) => q.filter(users::username_key.eq(k.clone())),
                        Key::Email(k) => q.filter(users::email_key.eq(k.clone())),
                    };
                    q.first(c).await.optional()
                })?;
                row.map(UserRow::into_user).transpose()
            })
            .await
    }

    /// Up to `limit` users of `tenant` in username order, after the username `after` (a page).
    pub async fn users(
        &self,
        tenant: TenantId,
        after: Option<&Username>,
        limit: i64,
    ) -> Result<Vec<User>, StoreError> {
        let after = after.map(Username::key).unwrap_or_default();
        self.db
            .run(move |mut conn| async move {
                let rows: Vec<UserRow> = with_conn!(&mut conn, |c| users::table
                    .filter(users::tenant_id.eq(tenant.db()))
                    .filter(users::username_key.gt(&after))
                    .order(users::username_key.asc())
                    .limit(limit)
                    .select(UserRow::as_select())
                    .load(c)
                    .await)?;
                rows.into_iter()
                    .map(|r| r.into_user().map(|(u, _)| u))
                    .collect()
            })
            .await
    }

    /// Replaces a user's record (not its password) if it is still as last read
    /// (`expected_updated_at`), with its audit event. `Ok(false)`: it changed meanwhile or is
    /// gone. A taken username or email is a [`StoreError::Conflict`], as for
    /// [`Store::insert_user`].
    pub async fn replace_user(
        &self,
        tenant: TenantId,
        user: &User,
        expected_updated_at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let row = UserRow::new(tenant, user, None)?;
        let audit = AuditRow::new(tenant, audit);
        self.db
            .run(move |mut conn| async move {
                with_tx!(&mut conn, |c| {
                    let n = diesel::update(
                        users::table
                            .filter(users::tenant_id.eq(tenant.db()))
                            .filter(users::id.eq(&row.id))
                            .filter(users::updated_at.eq(expected_updated_at)),
                    )
                    .set((
                        users::username.eq(&row.username),
                        users::username_key.eq(&row.username_key),
                        users::email.eq(&row.email),
                        users::email_key.eq(&row.email_key),
                        users::email_verified.eq(row.email_verified),
                        users::profile.eq(&row.profile),
                        users::roles.eq(&row.roles),
                        users::groups.eq(&row.groups),
                        users::disabled_at.eq(row.disabled_at),
                        users::updated_at.eq(row.updated_at),
                    ))
                    .execute(c)
                    .await?;
                    if n > 0 {
                        diesel::insert_into(audit_events::table)
                            .values(&audit)
                            .execute(c)
                            .await?;
                    }
                    Ok::<_, StoreError>(n > 0)
                })
            })
            .await
            .map_err(conflict)
    }

    /// Sets (or with `None` removes) a user's password hash, with its audit event when one is
    /// given (a rehash at login has none). Returns whether the user exists.
    pub async fn set_password_hash(
        &self,
        tenant: TenantId,
        id: UserId,
        hash: Option<String>,
        now: i64,
        audit: Option<&AuditEvent>,
        notice: Option<serde_json::Value>,
    ) -> Result<bool, StoreError> {
        let audit = audit.map(|a| AuditRow::new(tenant, a));
        let notice = notice.map(|n| {
            super::outbox::OutboxRow::new(tenant, crate::model::outbox::OutboxKind::Mail, n, now)
        });
        self.db
            .run(move |mut conn| async move {
                with_tx!(&mut conn, |c| {
                    let n = diesel::update(
                        users::table
                            .filter(users::tenant_id.eq(tenant.db()))
                            .filter(users::id.eq(DbId(id.0))),
                    )
                    .set((
                        users::password_hash.eq(&hash),
                        users::password_changed_at.eq(Some(now)),
                    ))
                    .execute(c)
                    .await?;
                    // A reset link asked for before the change must not undo it.
                    diesel::update(
                        user_tokens::table
                            .filter(user_tokens::tenant_id.eq(tenant.db()))
                            .filter(user_tokens::user_id.eq(DbId(id.0)))
                            .filter(user_tokens::purpose.eq("password_reset"))
                            .filter(user_tokens::used_at.is_null()),
                    )
                    .set(user_tokens::used_at.eq(Some(now)))
                    .execute(c)
                    .await?;
                    if n > 0
                        && let Some(audit) = &audit
                    {
                        diesel::insert_into(audit_events::table)
                            .values(audit)
                            .execute(c)
                            .await?;
                    }
                    if n > 0
                        && let Some(notice) = &notice
                    {
                        diesel::insert_into(super::schema::outbox::table)
                            .values(notice)
                            .execute(c)
                            .await?;
                    }
                    Ok::<_, StoreError>(n > 0)
                })
            })
            .await
    }

    /// Replaces the hash of a password that was just verified, if it is still the one
    /// verified (`old`): a rehash under new parameters, which must not undo a password change
    /// made meanwhile. Not audited, and `password_changed_at` stays.
    pub async fn rehash_password(
        &self,
        tenant: TenantId,
        id: UserId,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let (old, new) = (old.to_owned(), new.to_owned());
        self.db
            .run(move |mut conn| async move {
                let n = with_conn!(&mut conn, |c| diesel::update(
                    users::table
                        .filter(users::tenant_id.eq(tenant.db()))
                        .filter(users::id.eq(DbId(id.0)))
                        .filter(users::password_hash.eq(&old))
                )
                .set(users::password_hash.eq(&new))
                .execute(c)
                .await)?;
                Ok(n > 0)
            })
            .await
    }

    /// Deletes a user, with its audit event. Returns whether it existed.
    pub async fn delete_user(
        &self,
        tenant: TenantId,
        id: UserId,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let audit = AuditRow::new(tenant, audit);
        let now = audit.at;
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move {
                    // The clients of the person's sessions are told, before the cascade takes
                    // the sessions (Back-Channel Logout 1.0 §2.5).
                    tx.end_sessions_of(tenant, id, None, now).await?;
                    let n = with_tx_conn!(&mut tx, |c| diesel::delete(
                        users::table
                            .filter(users::tenant_id.eq(tenant.db()))
                            .filter(users::id.eq(DbId(id.0)))
                    )
                    .execute(c)
                    .await)?;
                    if n > 0 {
                        with_tx_conn!(&mut tx, |c| diesel::insert_into(audit_events::table)
                            .values(&audit)
                            .execute(c)
                            .await)?;
                    }
                    Ok(n > 0)
                })
            })
            .await
    }

    /// Records an audit event on its own (for changes whose transaction is elsewhere).
    pub async fn record_audit(
        &self,
        tenant: TenantId,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let row = AuditRow::new(tenant, event);
        self.db
            .run(move |mut conn| async move {
                with_conn!(&mut conn, |c| diesel::insert_into(audit_events::table)
                    .values(&row)
                    .execute(c)
                    .await)?;
                Ok(())
            })
            .await
    }

    /// The audit events about `target` in `tenant`, oldest first.
    pub async fn audit_events(
        &self,
        tenant: TenantId,
        target: &str,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let target = target.to_owned();
        self.db
            .run(move |mut conn| async move {
                let rows: Vec<AuditRow> = with_conn!(&mut conn, |c| audit_events::table
                    .filter(audit_events::tenant_id.eq(tenant.db()))
                    .filter(audit_events::target.eq(&target))
                    .order((audit_events::at.asc(), audit_events::id.asc()))
                    .select(AuditRow::as_select())
                    .load(c)
                    .await)?;
                Ok(rows
                    .into_iter()
                    .map(|r| AuditEvent {
                        at: r.at,
                        actor: r.actor,
                        action: r.action,
                        target: r.target,
                        detail: r.detail.0,
                    })
                    .collect())
            })
            .await
    }
}
