//! Client rows.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::db::{with_conn, with_tx, with_tx_conn};
use super::schema::{api_keys, clients};
use super::types::{DbId, DbJson};
use super::{Store, StoreError, TenantId};
use crate::model::client::{Client, ClientId};

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = clients, treat_none_as_null = true)]
struct ClientRow {
    id: DbId,
    tenant_id: DbId,
    client_id: String,
    secret_hash: Option<Vec<u8>>,
    secret_sealed: Option<Vec<u8>>,
    secret_expires_at: Option<i64>,
    metadata: DbJson,
    policy: DbJson,
    registration_token_hash: Option<Vec<u8>>,
    dynamic: bool,
    created_at: i64,
    updated_at: i64,
    last_used_at: Option<i64>,
}

fn digest(bytes: Option<Vec<u8>>, what: &str) -> Result<Option<[u8; 32]>, StoreError> {
    bytes
        .map(|b| {
            <[u8; 32]>::try_from(b.as_slice())
                .map_err(|_| StoreError::Corrupt(format!("{what} is not a SHA-256 digest")))
        })
        .transpose()
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;

    fn try_from(row: ClientRow) -> Result<Client, StoreError> {
        let corrupt =
            |what: String| StoreError::Corrupt(format!("client {}: {what}", row.client_id));
        Ok(Client {
            client_id: ClientId::parse(&row.client_id)
                .ok_or_else(|| corrupt("malformed client_id".into()))?,
            metadata: serde_json::from_value(row.metadata.0)
                .map_err(|e| corrupt(format!("metadata: {e}")))?,
            policy: serde_json::from_value(row.policy.0)
                .map_err(|e| corrupt(format!("policy: {e}")))?,
            secret_hash: digest(row.secret_hash, "secret_hash")?,
            secret_sealed: row.secret_sealed,
            secret_expires_at: row.secret_expires_at,
            registration_token_hash: digest(row.registration_token_hash, "registration token")?,
            dynamic: row.dynamic,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_used_at: row.last_used_at,
        })
    }
}

impl ClientRow {
    fn new(id: DbId, tenant: TenantId, client: &Client) -> Result<ClientRow, StoreError> {
        let json = |v: Result<serde_json::Value, serde_json::Error>| {
            v.map(DbJson)
                .map_err(|e| StoreError::Corrupt(format!("client: {e}")))
        };
        Ok(ClientRow {
            id,
            tenant_id: tenant.db(),
            client_id: client.client_id.as_str().to_owned(),
            secret_hash: client.secret_hash.map(|h| h.to_vec()),
            secret_sealed: client.secret_sealed.clone(),
            secret_expires_at: client.secret_expires_at,
            metadata: json(serde_json::to_value(&client.metadata))?,
            policy: json(serde_json::to_value(&client.policy))?,
            registration_token_hash: client.registration_token_hash.map(|h| h.to_vec()),
            dynamic: client.dynamic,
            created_at: client.created_at,
            updated_at: client.updated_at,
            last_used_at: client.last_used_at,
        })
    }
}

/// A dynamically registered client unused since `cutoff` (never used: created before it).
/// One rule for listing and for deleting.
#[diesel::dsl::auto_type(no_type_alias)]
fn unused_since(cutoff: i64) -> _ {
    clients::dynamic.eq(true).and(
        clients::last_used_at.lt(cutoff).or(clients::last_used_at
            .is_null()
            .and(clients::created_at.lt(cutoff))),
    )
}

impl Store {
    /// One client of `tenant`.
    pub async fn client(
        &self,
        tenant: TenantId,
        client_id: &ClientId,
    ) -> Result<Option<Client>, StoreError> {
        let client_id = client_id.as_str().to_owned();
        self.db
            .run(move |mut conn| async move {
                let row: Option<ClientRow> = with_conn!(&mut conn, |c| clients::table
                    .filter(clients::tenant_id.eq(tenant.db()))
                    .filter(clients::client_id.eq(&client_id))
                    .select(ClientRow::as_select())
                    .first(c)
                    .await
                    .optional())?;
                row.map(Client::try_from).transpose()
            })
            .await
    }

    /// Every client of `tenant`, by client_id.
    pub async fn clients(&self, tenant: TenantId) -> Result<Vec<Client>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let rows: Vec<ClientRow> = with_conn!(&mut conn, |c| clients::table
                    .filter(clients::tenant_id.eq(tenant.db()))
                    .order(clients::client_id.asc())
                    .select(ClientRow::as_select())
                    .load(c)
                    .await)?;
                rows.into_iter().map(Client::try_from).collect()
            })
            .await
    }

    /// Stores a new client; a taken client_id is a [`StoreError::Conflict`]. With `spend`
    /// (an initial access token's digest and the time), one use of that token is spent in the
    /// same transaction (RFC 7591 §3): `Ok(false)` when it cannot be, and nothing is stored.
    pub async fn insert_client(
        &self,
        tenant: TenantId,
        client: &Client,
        spend: Option<([u8; 32], i64)>,
    ) -> Result<bool, StoreError> {
        let row = ClientRow::new(DbId(uuid::Uuid::now_v7()), tenant, client)?;
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move {
                    if let Some((token_hash, now)) = spend
                        && !tx
                            .spend_initial_access_token(tenant, token_hash, now)
                            .await?
                    {
                        return Ok(false);
                    }
                    with_tx_conn!(&mut tx, |c| diesel::insert_into(clients::table)
                        .values(&row)
                        .execute(c)
                        .await)?;
                    Ok(true)
                })
            })
            .await
    }

    /// Replaces a client's stored fields. With `expected_updated_at`, only if nobody changed
    /// it since (compare-and-swap). Returns whether a row was replaced.
    pub async fn replace_client(
        &self,
        tenant: TenantId,
        client: &Client,
        expected_updated_at: i64,
    ) -> Result<bool, StoreError> {
        let row = ClientRow::new(DbId(uuid::Uuid::nil()), tenant, client)?;
        self.db
            .run(move |mut conn| async move {
                let n = with_conn!(&mut conn, |c| diesel::update(
                    clients::table
                        .filter(clients::tenant_id.eq(tenant.db()))
                        .filter(clients::client_id.eq(&row.client_id))
                        .filter(clients::updated_at.eq(expected_updated_at))
                )
                .set((
                    clients::secret_hash.eq(&row.secret_hash),
                    clients::secret_sealed.eq(&row.secret_sealed),
                    clients::secret_expires_at.eq(row.secret_expires_at),
                    clients::metadata.eq(&row.metadata),
                    clients::policy.eq(&row.policy),
                    clients::registration_token_hash.eq(&row.registration_token_hash),
                    clients::updated_at.eq(row.updated_at),
                ))
                .execute(c)
                .await)?;
                Ok(n > 0)
            })
            .await
    }

    /// Deletes a client and what it holds in one transaction (RFC 7592 §2.3: its grants are
    /// invalidated too). Its opaque access tokens, refresh tokens and families go by the
    /// `(tenant_id, client_id)` foreign keys' cascade; service-account API keys (whose owner
    /// may be a user instead) explicitly. Returns whether it existed.
    pub async fn delete_client(
        &self,
        tenant: TenantId,
        client_id: &ClientId,
    ) -> Result<bool, StoreError> {
        let client_id = client_id.as_str().to_owned();
        self.db
            .run(move |mut conn| async move {
                let n = with_tx!(&mut conn, |c| {
                    diesel::delete(
                        api_keys::table
                            .filter(api_keys::tenant_id.eq(tenant.db()))
                            .filter(api_keys::owner_kind.eq("client"))
                            .filter(api_keys::owner.eq(&client_id)),
                    )
                    .execute(c)
                    .await?;
                    diesel::delete(
                        clients::table
                            .filter(clients::tenant_id.eq(tenant.db()))
                            .filter(clients::client_id.eq(&client_id)),
                    )
                    .execute(c)
                    .await
                })?;
                Ok(n > 0)
            })
            .await
    }

    /// Deletes a dynamically registered client only if it is still unused since `cutoff`,
    /// checked in the delete itself (a use recorded meanwhile keeps it), with its API keys in
    /// the same transaction (its tokens go by cascade). Returns whether it was deleted.
    pub async fn delete_client_unused_since(
        &self,
        tenant: TenantId,
        client_id: &ClientId,
        cutoff: i64,
    ) -> Result<bool, StoreError> {
        let client_id = client_id.as_str().to_owned();
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move {
                    let n = with_tx_conn!(&mut tx, |c| diesel::delete(
                        clients::table
                            .filter(clients::tenant_id.eq(tenant.db()))
                            .filter(clients::client_id.eq(&client_id))
                            .filter(unused_since(cutoff))
                    )
                    .execute(c)
                    .await)?;
                    if n > 0 {
                        with_tx_conn!(&mut tx, |c| diesel::delete(
                            api_keys::table
                                .filter(api_keys::tenant_id.eq(tenant.db()))
                                .filter(api_keys::owner_kind.eq("client"))
                                .filter(api_keys::owner.eq(&client_id))
                        )
                        .execute(c)
                        .await)?;
                    }
                    Ok(n > 0)
                })
            })
            .await
    }

    /// Records that a client authenticated at `now`.
    pub async fn touch_client(
        &self,
        tenant: TenantId,
        client_id: &ClientId,
        now: i64,
    ) -> Result<(), StoreError> {
        let client_id = client_id.as_str().to_owned();
        self.db
            .run(move |mut conn| async move {
                with_conn!(&mut conn, |c| diesel::update(
                    clients::table
                        .filter(clients::tenant_id.eq(tenant.db()))
                        .filter(clients::client_id.eq(&client_id))
                )
                .set(clients::last_used_at.eq(now))
                .execute(c)
                .await)?;
                Ok(())
            })
            .await
    }

    /// Dynamically registered clients of `tenant` unused since `cutoff` (never used: created
    /// before it).
    pub async fn unused_clients(
        &self,
        tenant: TenantId,
        cutoff: i64,
    ) -> Result<Vec<ClientId>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let ids: Vec<String> = with_conn!(&mut conn, |c| clients::table
                    .filter(clients::tenant_id.eq(tenant.db()))
                    .filter(unused_since(cutoff))
                    .select(clients::client_id)
                    .load(c)
                    .await)?;
                Ok(ids.iter().filter_map(|id| ClientId::parse(id)).collect())
            })
            .await
    }
}
