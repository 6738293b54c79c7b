//! `refresh_families` and `refresh_tokens`: families (grants) and the rotating tokens in
//! them; rotation is one unit of work against the family's row.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::*;
use crate::model::authorization::GrantOwner;
use crate::model::client::ClientId;
use crate::model::session::SessionId;
use crate::model::token::{
    FamilyState, NewRefreshToken, RefreshTokenState, Rotation, StoredRefreshToken,
};
use crate::store::db::{Tx, with_conn, with_tx_conn};
use crate::store::schema::{clients, refresh_families, refresh_tokens};
use crate::store::types::{DbId, DbJson};
use crate::store::{Store, StoreError, TenantId};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_families)]
struct FamilyRow {
    id: DbId,
    tenant_id: DbId,
    client_id: String,
    expires_at: i64,
    revoked_at: Option<i64>,
    rotated_at: Option<i64>,
    created_at: i64,
    subject: Option<String>,
    session_id: Option<DbId>,
}

impl FamilyRow {
    fn of(tenant: TenantId, grant: &NewGrant) -> FamilyRow {
        FamilyRow {
            id: DbId(grant.id),
            tenant_id: tenant.db(),
            client_id: grant.client_id.as_str().to_owned(),
            expires_at: grant.expires_at,
            revoked_at: None,
            rotated_at: None,
            created_at: grant.created_at,
            subject: grant.owner.as_ref().map(|o| o.subject.clone()),
            session_id: grant
                .owner
                .as_ref()
                .and_then(|o| o.session)
                .map(|s| DbId(s.0)),
        }
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
struct RefreshTokenRow {
    id: DbId,
    tenant_id: DbId,
    token_hash: Vec<u8>,
    family_id: DbId,
    client_id: String,
    claims: DbJson,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
    created_at: i64,
}

/// A grant to start: a refresh token family, owned by a person or not.
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub id: uuid::Uuid,
    pub client_id: ClientId,
    /// The family's absolute end.
    pub expires_at: i64,
    pub owner: Option<GrantOwner>,
    pub created_at: i64,
}

impl Store {
    /// A refresh token of `tenant` by digest, with its family's state.
    pub async fn refresh_token(
        &self,
        tenant: TenantId,
        token_hash: [u8; 32],
    ) -> Result<Option<StoredRefreshToken>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let row: Option<(RefreshTokenRow, FamilyRow)> =
                    with_conn!(&mut conn, |c| refresh_tokens::table
                        .inner_join(
                            refresh_families::table.on(refresh_families::id
                                .eq(refresh_tokens::family_id)
                                .and(refresh_families::tenant_id.eq(refresh_tokens::tenant_id))),
                        )
                        .filter(refresh_tokens::tenant_id.eq(tenant.db()))
                        .filter(refresh_tokens::token_hash.eq(token_hash.as_slice()))
                        .select((RefreshTokenRow::as_select(), FamilyRow::as_select()))
                        .first(c)
                        .await
                        .optional())?;
                row.map(|(r, f)| {
                    Ok(StoredRefreshToken {
                        id: r.id.0,
                        family_id: r.family_id.0,
                        client_id: client_of(&r.client_id)?,
                        claims: claims_of(r.claims)?,
                        expires_at: r.expires_at,
                        state: RefreshTokenState::from_times(r.used_at, r.revoked_at),
                        family: match f.revoked_at {
                            Some(at) => FamilyState::Revoked { at },
                            None => FamilyState::Active,
                        },
                        family_expires_at: f.expires_at,
                        family_session: f.session_id.map(|s| SessionId(s.0)),
                    })
                })
                .transpose()
            })
            .await
    }

    /// Starts a family with its first token, in one transaction. The family ends at
    /// `family_expires_at` however often it rotates.
    pub async fn start_refresh_family(
        &self,
        tenant: TenantId,
        family_id: uuid::Uuid,
        family_expires_at: i64,
        token: NewRefreshToken,
    ) -> Result<(), StoreError> {
        let client = token.client_id.clone();
        let now = token.created_at;
        self.start_grant(
            tenant,
            NewGrant {
                id: family_id,
                client_id: client,
                expires_at: family_expires_at,
                owner: None,
                created_at: now,
            },
            Some(token),
        )
        .await
    }

    /// Starts a grant (a family), with its first refresh token if it has one: the access
    /// tokens of a code name it even without, so revoking it ends them.
    pub async fn start_grant(
        &self,
        tenant: TenantId,
        grant: NewGrant,
        token: Option<NewRefreshToken>,
    ) -> Result<(), StoreError> {
        // A code's grant without a refresh token and without a session to remember is one
        // row: one statement, no transaction around it.
        let notify = grant.owner.as_ref().and_then(|o| o.notify);
        if token.is_none() && notify.is_none() {
            let family = FamilyRow::of(tenant, &grant);
            return self
                .db
                .run(move |mut conn| async move {
                    with_conn!(&mut conn, |c| diesel::insert_into(refresh_families::table)
                        .values(&family)
                        .execute(c)
                        .await)?;
                    Ok(())
                })
                .await;
        }
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move {
                    let family = FamilyRow::of(tenant, &grant);
                    with_tx_conn!(&mut tx, |c| diesel::insert_into(refresh_families::table)
                        .values(&family)
                        .execute(c)
                        .await)?;
                    if let Some(token) = &token {
                        tx.insert_refresh_token(tenant, grant.id, token).await?;
                    }
                    if let Some(session) = grant.owner.as_ref().and_then(|o| o.notify) {
                        tx.remember_session_client(
                            tenant,
                            session,
                            &grant.client_id,
                            grant.created_at,
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Revokes every grant of `subject` (of one client, or all), with their tokens: a person
    /// withdrew consent, or was disabled or deleted. Returns how many were live.
    pub async fn revoke_grants_of(
        &self,
        tenant: TenantId,
        subject: &str,
        client: Option<&ClientId>,
        now: i64,
    ) -> Result<usize, StoreError> {
        let subject = subject.to_owned();
        let client = client.map(|c| c.as_str().to_owned());
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move {
                    let ids: Vec<DbId> = with_tx_conn!(&mut tx, |c| {
                        let mut q = refresh_families::table
                            .filter(refresh_families::tenant_id.eq(tenant.db()))
                            .filter(refresh_families::subject.eq(&subject))
                            .filter(refresh_families::revoked_at.is_null())
                            .select(refresh_families::id)
                            .into_boxed();
                        if let Some(client) = &client {
                            q = q.filter(refresh_families::client_id.eq(client));
                        }
                        q.load(c).await
                    })?;
                    for id in &ids {
                        with_tx_conn!(&mut tx, |c| diesel::update(
                            refresh_families::table
                                .filter(refresh_families::tenant_id.eq(tenant.db()))
                                .filter(refresh_families::id.eq(*id))
                        )
                        .set(refresh_families::revoked_at.eq(now))
                        .execute(c)
                        .await)?;
                        with_tx_conn!(&mut tx, |c| diesel::update(
                            refresh_tokens::table
                                .filter(refresh_tokens::tenant_id.eq(tenant.db()))
                                .filter(refresh_tokens::family_id.eq(*id))
                                .filter(refresh_tokens::revoked_at.is_null())
                        )
                        .set(refresh_tokens::revoked_at.eq(now))
                        .execute(c)
                        .await)?;
                    }
                    Ok(ids.len())
                })
            })
            .await
    }

    /// Adds a token to a live family (token exchange), or reports it ended.
    pub async fn join_refresh_family(
        &self,
        tenant: TenantId,
        family_id: uuid::Uuid,
        token: NewRefreshToken,
    ) -> Result<Rotation, StoreError> {
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move {
                    if !tx
                        .lock_live_family(tenant, &token.client_id, family_id, token.created_at)
                        .await?
                    {
                        return Ok(Rotation::FamilyEnded);
                    }
                    tx.insert_refresh_token(tenant, family_id, &token).await?;
                    Ok(Rotation::Done)
                })
            })
            .await
    }

    /// Rotates a refresh token (OAuth 2.1 §4.3.1) as one unit of work: the family's row is
    /// locked and checked live, the old token consumed (once: a conditional update), the new
    /// one stored. A revocation racing it waits for the family's lock, so it either ends the
    /// family before (nothing is written) or after (the new token dies with it).
    pub async fn rotate_refresh_token(
        &self,
        tenant: TenantId,
        family_id: uuid::Uuid,
        old: uuid::Uuid,
        token: NewRefreshToken,
    ) -> Result<Rotation, StoreError> {
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move {
                    let now = token.created_at;
                    if !tx
                        .lock_live_family(tenant, &token.client_id, family_id, now)
                        .await?
                    {
                        return Ok(Rotation::FamilyEnded);
                    }
                    let spent = with_tx_conn!(&mut tx, |c| diesel::update(
                        refresh_tokens::table
                            .filter(refresh_tokens::tenant_id.eq(tenant.db()))
                            .filter(refresh_tokens::id.eq(DbId(old)))
                            .filter(refresh_tokens::family_id.eq(DbId(family_id)))
                            .filter(refresh_tokens::used_at.is_null())
                            .filter(refresh_tokens::revoked_at.is_null())
                    )
                    .set(refresh_tokens::used_at.eq(now))
                    .execute(c)
                    .await)?;
                    if spent == 0 {
                        return Ok(Rotation::Reused);
                    }
                    tx.insert_refresh_token(tenant, family_id, &token).await?;
                    Ok(Rotation::Done)
                })
            })
            .await
    }

    /// Revokes a family and every token in it, in one transaction. Returns whether the family
    /// was live.
    pub async fn revoke_refresh_family(
        &self,
        tenant: TenantId,
        family_id: uuid::Uuid,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move {
                    let n = with_tx_conn!(&mut tx, |c| diesel::update(
                        refresh_families::table
                            .filter(refresh_families::tenant_id.eq(tenant.db()))
                            .filter(refresh_families::id.eq(DbId(family_id)))
                            .filter(refresh_families::revoked_at.is_null())
                    )
                    .set(refresh_families::revoked_at.eq(now))
                    .execute(c)
                    .await)?;
                    with_tx_conn!(&mut tx, |c| diesel::update(
                        refresh_tokens::table
                            .filter(refresh_tokens::tenant_id.eq(tenant.db()))
                            .filter(refresh_tokens::family_id.eq(DbId(family_id)))
                            .filter(refresh_tokens::revoked_at.is_null())
                    )
                    .set(refresh_tokens::revoked_at.eq(now))
                    .execute(c)
                    .await)?;
                    Ok(n > 0)
                })
            })
            .await
    }

    /// Whether a refresh token family is revoked or gone (a purged or deleted family ends
    /// what it issued too).
    pub async fn is_family_revoked(
        &self,
        tenant: TenantId,
        family_id: uuid::Uuid,
    ) -> Result<bool, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let revoked: Option<Option<i64>> =
                    with_conn!(&mut conn, |c| refresh_families::table
                        .filter(refresh_families::tenant_id.eq(tenant.db()))
                        .filter(refresh_families::id.eq(DbId(family_id)))
                        .select(refresh_families::revoked_at)
                        .first(c)
                        .await
                        .optional())?;
                Ok(revoked.is_none_or(|at| at.is_some()))
            })
            .await
    }
}

impl Tx<'_> {
    /// Locks a family's row for the rest of the transaction if it is live (not revoked, not
    /// over): concurrent rotations and revocations of the family queue behind it.
    ///
    /// On PostgreSQL the owning client's row is share-locked first. Deleting a client locks
    /// it and then its families (by cascade); a rotation that locked the family first would
    /// then wait for the client row (the new token's foreign key) while the delete waits for
    /// the family: a deadlock. Taking the client first gives both the same order.
    async fn lock_live_family(
        &mut self,
        tenant: TenantId,
        client_id: &ClientId,
        family_id: uuid::Uuid,
        now: i64,
    ) -> Result<bool, StoreError> {
        if let Tx::Pg(c) = self {
            let owner: Vec<String> = clients::table
                .filter(clients::tenant_id.eq(tenant.db()))
                .filter(clients::client_id.eq(client_id.as_str()))
                .select(clients::client_id)
                .for_key_share()
                .load(&mut **c)
                .await?;
            if owner.is_empty() {
                return Ok(false);
            }
        }
        let n = with_tx_conn!(self, |c| diesel::update(
            refresh_families::table
                .filter(refresh_families::tenant_id.eq(tenant.db()))
                .filter(refresh_families::id.eq(DbId(family_id)))
                .filter(refresh_families::revoked_at.is_null())
                .filter(refresh_families::expires_at.gt(now))
        )
        .set(refresh_families::rotated_at.eq(now))
        .execute(c)
        .await)?;
        Ok(n > 0)
    }

    async fn insert_refresh_token(
        &mut self,
        tenant: TenantId,
        family_id: uuid::Uuid,
        token: &NewRefreshToken,
    ) -> Result<(), StoreError> {
        let row = RefreshTokenRow {
            id: DbId(uuid::Uuid::now_v7()),
            tenant_id: tenant.db(),
            token_hash: token.token_hash.to_vec(),
            family_id: DbId(family_id),
            client_id: token.client_id.as_str().to_owned(),
            claims: DbJson(serde_json::Value::Object(token.claims.clone())),
            expires_at: token.expires_at,
            used_at: None,
            revoked_at: None,
            created_at: token.created_at,
        };
        with_tx_conn!(self, |c| diesel::insert_into(refresh_tokens::table)
            .values(&row)
            .execute(c)
            .await)?;
        Ok(())
    }
}
