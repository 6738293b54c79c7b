//! API key rows.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::db::with_conn;
use super::schema::api_keys;
use super::types::DbId;
use super::{Store, StoreError, TenantId};
use crate::model::api_key::{ApiKey, ApiKeyOwner};
use crate::model::client::ClientId;
use crate::model::token::Scope;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
struct ApiKeyRow {
    id: DbId,
    tenant_id: DbId,
    key_id: String,
    key_hash: Vec<u8>,
    owner_kind: String,
    owner: String,
    label: String,
    scope: String,
    not_before: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
    created_at: i64,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;

    fn try_from(row: ApiKeyRow) -> Result<ApiKey, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("api key {}: {what}", row.key_id));
        let owner = match row.owner_kind.as_str() {
            "client" => ApiKeyOwner::Client(
                ClientId::parse(&row.owner).ok_or_else(|| corrupt("malformed client id"))?,
            ),
            "user" => ApiKeyOwner::User(row.owner.clone()),
            _ => return Err(corrupt("unknown owner kind")),
        };
        Ok(ApiKey {
            owner,
            scope: Scope::parse(&row.scope).map_err(|_| corrupt("malformed scope"))?,
            key_hash: <[u8; 32]>::try_from(row.key_hash.as_slice())
                .map_err(|_| corrupt("malformed digest"))?,
            key_id: row.key_id,
            label: row.label,
            not_before: row.not_before,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            revoked: row.revoked_at.is_some(),
            created_at: row.created_at,
        })
    }
}

fn owner_columns(owner: &ApiKeyOwner) -> (&'static str, String) {
    match owner {
        ApiKeyOwner::Client(id) => ("client", id.as_str().to_owned()),
        ApiKeyOwner::User(sub) => ("user", sub.clone()),
    }
}

impl Store {
    pub async fn insert_api_key(&self, tenant: TenantId, key: &ApiKey) -> Result<(), StoreError> {
        let (owner_kind, owner) = owner_columns(&key.owner);
        let row = ApiKeyRow {
            id: DbId(uuid::Uuid::now_v7()),
            tenant_id: tenant.db(),
            key_id: key.key_id.clone(),
            key_hash: key.key_hash.to_vec(),
            owner_kind: owner_kind.to_owned(),
            owner,
            label: key.label.clone(),
            scope: key.scope.to_string(),
            not_before: key.not_before,
            expires_at: key.expires_at,
            last_used_at: None,
            revoked_at: None,
            created_at: key.created_at,
        };
        self.db
            .run(move |mut conn| async move {
                with_conn!(&mut conn, |c| diesel::insert_into(api_keys::table)
                    .values(&row)
                    .execute(c)
                    .await)?;
                Ok(())
            })
            .await
    }

    /// One API key of `tenant` by its public id.
    pub async fn api_key(
        &self,
        tenant: TenantId,
        key_id: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        let key_id = key_id.to_owned();
        self.db
            .run(move |mut conn| async move {
                let row: Option<ApiKeyRow> = with_conn!(&mut conn, |c| api_keys::table
                    .filter(api_keys::tenant_id.eq(tenant.db()))
                    .filter(api_keys::key_id.eq(&key_id))
                    .select(ApiKeyRow::as_select())
                    .first(c)
                    .await
                    .optional())?;
                row.map(ApiKey::try_from).transpose()
            })
            .await
    }

    /// The API keys of `tenant`, optionally of one owner, oldest first.
    pub async fn api_keys(
        &self,
        tenant: TenantId,
        owner: Option<&ApiKeyOwner>,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let owner = owner.map(owner_columns);
        self.db
            .run(move |mut conn| async move {
                let rows: Vec<ApiKeyRow> = with_conn!(&mut conn, |c| {
                    let mut query = api_keys::table
                        .filter(api_keys::tenant_id.eq(tenant.db()))
                        .into_boxed();
                    if let Some((kind, id)) = &owner {
                        query = query
                            .filter(api_keys::owner_kind.eq(*kind))
                            .filter(api_keys::owner.eq(id.clone()));
                    }
                    query
                        .order(api_keys::created_at.asc())
                        .select(ApiKeyRow::as_select())
                        .load(c)
                        .await
                })?;
                rows.into_iter().map(ApiKey::try_from).collect()
            })
            .await
    }

    /// Revokes an API key; returns whether a live one was revoked.
    pub async fn revoke_api_key(
        &self,
        tenant: TenantId,
        key_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let key_id = key_id.to_owned();
        self.db
            .run(move |mut conn| async move {
                let n = with_conn!(&mut conn, |c| diesel::update(
                    api_keys::table
                        .filter(api_keys::tenant_id.eq(tenant.db()))
                        .filter(api_keys::key_id.eq(&key_id))
                        .filter(api_keys::revoked_at.is_null())
                )
                .set(api_keys::revoked_at.eq(now))
                .execute(c)
                .await)?;
                Ok(n > 0)
            })
            .await
    }

    /// Records a use of an API key.
    pub async fn touch_api_key(
        &self,
        tenant: TenantId,
        key_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let key_id = key_id.to_owned();
        self.db
            .run(move |mut conn| async move {
                with_conn!(&mut conn, |c| diesel::update(
                    api_keys::table
                        .filter(api_keys::tenant_id.eq(tenant.db()))
                        .filter(api_keys::key_id.eq(&key_id))
                )
                .set(api_keys::last_used_at.eq(now))
                .execute(c)
                .await)?;
                Ok(())
            })
            .await
    }
}
