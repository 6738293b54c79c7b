//! `consents` and `session_clients` (whom to tell when a session ends: Back-Channel Logout
//! 1.0 §2.5). Authorization codes live in the shared cache ([`crate::oauth::grants::authorization_code`]).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::db::{Tx, with_conn, with_tx_conn};
use super::outbox::OutboxRow;
use super::schema::{consents, outbox, session_clients};
use super::types::DbId;
use super::{Store, StoreError, TenantId};
use crate::model::authorization::Consent;
use crate::model::client::ClientId;
use crate::model::outbox::OutboxKind;
use crate::model::session::SessionId;
use crate::model::token::Scope;
use crate::model::user::UserId;

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

impl Store {
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
    /// Remembers that `client` holds a grant of `session`, to tell it when the session ends.
    pub(super) async fn remember_session_client(
        &mut self,
        tenant: TenantId,
        session: SessionId,
        client: &ClientId,
        now: i64,
    ) -> Result<(), StoreError> {
        let row = SessionClientRow {
            session_id: DbId(session.0),
            tenant_id: tenant.db(),
            client_id: client.as_str().to_owned(),
            created_at: now,
        };
        with_tx_conn!(self, |c| diesel::insert_into(session_clients::table)
            .values(&row)
            .on_conflict_do_nothing()
            .execute(c)
            .await)?;
        Ok(())
    }

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
