//! `authorization_codes` (single use by one conditional update), `consents` and
//! `session_clients` (whom to tell when a session ends: Back-Channel Logout 1.0 §2.5).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::db::{Tx, with_conn, with_tx_conn};
use super::outbox::OutboxRow;
use super::schema::{authorization_codes, consents, outbox, session_clients};
use super::types::{DbId, DbJson};
use super::{Store, StoreError, TenantId};
use crate::model::authorization::{CodeGrant, CodeState, Consent, StoredCode};
use crate::model::client::ClientId;
use crate::model::outbox::OutboxKind;
use crate::model::session::SessionId;
use crate::model::token::Scope;
use crate::model::user::UserId;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
struct CodeRow {
    id: DbId,
    tenant_id: DbId,
    code_hash: Vec<u8>,
    client_id: String,
    user_id: DbId,
    grant_data: DbJson,
    created_at: i64,
    expires_at: i64,
    redeemed_at: Option<i64>,
    family_id: Option<DbId>,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = consents)]
struct ConsentRow {
    tenant_id: DbId,
    user_id: DbId,
    client_id: String,
    scope: String,
    created_at: i64,
    updated_at: i64,
}

impl ConsentRow {
    fn into_consent(self) -> Result<Consent, StoreError> {
        Ok(Consent {
            client_id: ClientId::parse(&self.client_id)
                .ok_or_else(|| StoreError::Corrupt("consent: client_id".into()))?,
            scope: Scope::parse(&self.scope)
                .map_err(|_| StoreError::Corrupt("consent: scope".into()))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = session_clients)]
struct SessionClientRow {
    session_id: DbId,
    tenant_id: DbId,
    client_id: String,
    created_at: i64,
}

/// A code to store: its digest, what it grants and when it ends.
pub struct NewCode<'a> {
    pub code_hash: [u8; 32],
    pub grant: &'a CodeGrant,
    pub created_at: i64,
    pub expires_at: i64,
    /// The client registered a `backchannel_logout_uri`: remember that it holds this session.
    pub notify_on_logout: bool,
}

impl Store {
    /// Stores a code and, for clients to notify at logout, that its session signed in there.
    pub async fn insert_code(&self, tenant: TenantId, code: NewCode<'_>) -> Result<(), StoreError> {
        let grant = serde_json::to_value(code.grant)
            .map_err(|e| StoreError::Corrupt(format!("code grant: {e}")))?;
        let row = CodeRow {
            id: DbId(uuid::Uuid::now_v7()),
            tenant_id: tenant.db(),
            code_hash: code.code_hash.to_vec(),
            client_id: code.grant.client_id.as_str().to_owned(),
            user_id: DbId(code.grant.user.0),
            grant_data: DbJson(grant),
            created_at: code.created_at,
            expires_at: code.expires_at,
            redeemed_at: None,
            family_id: None,
        };
        let holder = code.notify_on_logout.then(|| SessionClientRow {
            session_id: DbId(code.grant.session.0),
            tenant_id: tenant.db(),
            client_id: code.grant.client_id.as_str().to_owned(),
            created_at: code.created_at,
        });
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move {
                    with_tx_conn!(&mut tx, |c| diesel::insert_into(authorization_codes::table)
                        .values(&row)
                        .execute(c)
                        .await)?;
                    if let Some(holder) = &holder {
                        with_tx_conn!(&mut tx, |c| diesel::insert_into(session_clients::table)
                            .values(holder)
                            .on_conflict_do_nothing()
                            .execute(c)
                            .await)?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// The code with this digest, whatever its state.
    pub async fn code(
        &self,
        tenant: TenantId,
        code_hash: [u8; 32],
    ) -> Result<Option<StoredCode>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let row: Option<CodeRow> = with_conn!(&mut conn, |c| authorization_codes::table
                    .filter(authorization_codes::tenant_id.eq(tenant.db()))
                    .filter(authorization_codes::code_hash.eq(code_hash.as_slice()))
                    .select(CodeRow::as_select())
                    .first(c)
                    .await
                    .optional())?;
                row.map(|r| {
                    let grant: CodeGrant = serde_json::from_value(r.grant_data.0)
                        .map_err(|e| StoreError::Corrupt(format!("code {}: {e}", r.id.0)))?;
                    Ok(StoredCode {
                        id: r.id.0,
                        grant,
                        expires_at: r.expires_at,
                        state: match r.redeemed_at {
                            None => CodeState::Pending,
                            Some(at) => CodeState::Redeemed {
                                at,
                                family: r.family_id.map(|f| f.0),
                            },
                        },
                    })
                })
                .transpose()
            })
            .await
    }

    /// Spends a code for the grant `family`: true for the one call that finds it pending and
    /// live (single use, RFC 6749 §4.1.2).
    pub async fn redeem_code(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
        family: uuid::Uuid,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let n = with_conn!(&mut conn, |c| diesel::update(
                    authorization_codes::table
                        .filter(authorization_codes::tenant_id.eq(tenant.db()))
                        .filter(authorization_codes::id.eq(DbId(id)))
                        .filter(authorization_codes::redeemed_at.is_null())
                        .filter(authorization_codes::expires_at.gt(now))
                )
                .set((
                    authorization_codes::redeemed_at.eq(Some(now)),
                    authorization_codes::family_id.eq(Some(DbId(family))),
                ))
                .execute(c)
                .await)?;
                Ok(n > 0)
            })
            .await
    }

    /// Deletes codes that ended before `before`; returns how many.
    pub async fn purge_codes(&self, before: i64) -> Result<usize, StoreError> {
        self.db
            .run(move |mut conn| async move {
                Ok(with_conn!(&mut conn, |c| diesel::delete(
                    authorization_codes::table.filter(authorization_codes::expires_at.lt(before))
                )
                .execute(c)
                .await)?)
            })
            .await
    }

    /// What `user` let `client` have, if anything.
    pub async fn consent(
        &self,
        tenant: TenantId,
        user: UserId,
        client: &ClientId,
    ) -> Result<Option<Consent>, StoreError> {
        let client = client.as_str().to_owned();
        self.db
            .run(move |mut conn| async move {
                let row: Option<ConsentRow> = with_conn!(&mut conn, |c| consents::table
                    .filter(consents::tenant_id.eq(tenant.db()))
                    .filter(consents::user_id.eq(DbId(user.0)))
                    .filter(consents::client_id.eq(&client))
                    .select(ConsentRow::as_select())
                    .first(c)
                    .await
                    .optional())?;
                row.map(ConsentRow::into_consent).transpose()
            })
            .await
    }

    /// Remembers that `user` let `client` have `scope` (replacing what was remembered).
    pub async fn save_consent(
        &self,
        tenant: TenantId,
        user: UserId,
        client: &ClientId,
        scope: &Scope,
        now: i64,
    ) -> Result<(), StoreError> {
        let row = ConsentRow {
            tenant_id: tenant.db(),
            user_id: DbId(user.0),
            client_id: client.as_str().to_owned(),
            scope: scope.to_string(),
            created_at: now,
            updated_at: now,
        };
        self.db
            .run(move |mut conn| async move {
                with_conn!(&mut conn, |c| diesel::insert_into(consents::table)
                    .values(&row)
                    .on_conflict((consents::tenant_id, consents::user_id, consents::client_id))
                    .do_update()
                    .set((
                        consents::scope.eq(&row.scope),
                        consents::updated_at.eq(row.updated_at),
                    ))
                    .execute(c)
                    .await)?;
                Ok(())
            })
            .await
    }

    /// Every consent `user` gave, most recent first.
    pub async fn consents_of(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<Consent>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let rows: Vec<ConsentRow> = with_conn!(&mut conn, |c| consents::table
                    .filter(consents::tenant_id.eq(tenant.db()))
                    .filter(consents::user_id.eq(DbId(user.0)))
                    .order(consents::updated_at.desc())
                    .select(ConsentRow::as_select())
                    .load(c)
                    .await)?;
                rows.into_iter().map(ConsentRow::into_consent).collect()
            })
            .await
    }

    /// Forgets a consent; true if there was one.
    pub async fn delete_consent(
        &self,
        tenant: TenantId,
        user: UserId,
        client: &ClientId,
    ) -> Result<bool, StoreError> {
        let client = client.as_str().to_owned();
        self.db
            .run(move |mut conn| async move {
                let n = with_conn!(&mut conn, |c| diesel::delete(
                    consents::table
                        .filter(consents::tenant_id.eq(tenant.db()))
                        .filter(consents::user_id.eq(DbId(user.0)))
                        .filter(consents::client_id.eq(&client))
                )
                .execute(c)
                .await)?;
                Ok(n > 0)
            })
            .await
    }
}

impl Tx<'_> {
    /// Queues a back-channel logout notification (Back-Channel Logout 1.0 §2.5) for every
    /// client `session` signed in to, in the transaction that ends it.
    pub(super) async fn notify_logout(
        &mut self,
        tenant: TenantId,
        session: SessionId,
        user: UserId,
        now: i64,
    ) -> Result<(), StoreError> {
        let clients: Vec<String> = with_tx_conn!(self, |c| session_clients::table
            .filter(session_clients::tenant_id.eq(tenant.db()))
            .filter(session_clients::session_id.eq(DbId(session.0)))
            .select(session_clients::client_id)
            .load(c)
            .await)?;
        for client in clients {
            let payload = serde_json::json!({
                "client_id": client,
                "sid": session.to_string(),
                "sub": user.to_string(),
            });
            let row = OutboxRow::new(tenant, OutboxKind::BackchannelLogout, payload, now);
            with_tx_conn!(self, |c| diesel::insert_into(outbox::table)
                .values(&row)
                .execute(c)
                .await)?;
        }
        Ok(())
    }
}
