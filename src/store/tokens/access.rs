//! `access_tokens`: opaque access tokens by digest (written through the group-commit
//! writer), revoked in place.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::*;
use crate::model::client::ClientId;
use crate::model::token::StoredAccessToken;
use crate::store::db::with_conn;
use crate::store::schema::access_tokens;
use crate::store::types::{DbId, DbJson};
use crate::store::{Store, StoreError, TenantId};

#[derive(Insertable, Clone)]
#[diesel(table_name = access_tokens)]
pub(in crate::store) struct NewAccessTokenRow {
    id: DbId,
    tenant_id: DbId,
    token_hash: Vec<u8>,
    client_id: String,
    claims: DbJson,
    expires_at: i64,
    created_at: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = access_tokens)]
struct AccessTokenRow {
    client_id: String,
    claims: DbJson,
    expires_at: i64,
    revoked_at: Option<i64>,
}

impl Store {
    /// Stores an opaque access token by its digest, durably: this returns once the row is
    /// committed. Concurrent inserts are committed together (group commit), so a burst costs
    /// one transaction instead of one each.
    pub async fn insert_access_token(
        &self,
        tenant: TenantId,
        token_hash: [u8; 32],
        client_id: &ClientId,
        claims: Claims,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let row = NewAccessTokenRow {
            id: DbId(uuid::Uuid::now_v7()),
            tenant_id: tenant.db(),
            token_hash: token_hash.to_vec(),
            client_id: client_id.as_str().to_owned(),
            claims: DbJson(serde_json::Value::Object(claims)),
            expires_at,
            created_at: now,
        };
        self.token_writer.insert(&self.db, row).await
    }

    /// An opaque access token of `tenant` by digest.
    pub async fn access_token(
        &self,
        tenant: TenantId,
        token_hash: [u8; 32],
    ) -> Result<Option<StoredAccessToken>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let row: Option<AccessTokenRow> = with_conn!(&mut conn, |c| access_tokens::table
                    .filter(access_tokens::tenant_id.eq(tenant.db()))
                    .filter(access_tokens::token_hash.eq(token_hash.as_slice()))
                    .select(AccessTokenRow::as_select())
                    .first(c)
                    .await
                    .optional())?;
                row.map(|r| {
                    Ok(StoredAccessToken {
                        client_id: client_of(&r.client_id)?,
                        claims: claims_of(r.claims)?,
                        expires_at: r.expires_at,
                        revoked: r.revoked_at.is_some(),
                    })
                })
                .transpose()
            })
            .await
    }

    /// Revokes an opaque access token of `client_id`. Returns whether one was revoked.
    pub async fn revoke_access_token(
        &self,
        tenant: TenantId,
        token_hash: [u8; 32],
        client_id: &ClientId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let client_id = client_id.as_str().to_owned();
        self.db
            .run(move |mut conn| async move {
                let n = with_conn!(&mut conn, |c| diesel::update(
                    access_tokens::table
                        .filter(access_tokens::tenant_id.eq(tenant.db()))
                        .filter(access_tokens::token_hash.eq(token_hash.as_slice()))
                        .filter(access_tokens::client_id.eq(&client_id))
                        .filter(access_tokens::revoked_at.is_null())
                )
                .set(access_tokens::revoked_at.eq(now))
                .execute(c)
                .await)?;
                Ok(n > 0)
            })
            .await
    }
}
