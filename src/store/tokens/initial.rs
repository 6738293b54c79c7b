//! `initial_access_tokens`: tokens that open registration (RFC 7591 §3), with optional
//! expiry and use counts; spending one is a conditional update.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::model::token::InitialAccessToken;
use crate::store::db::{Tx, with_conn, with_tx_conn};
use crate::store::schema::initial_access_tokens;
use crate::store::types::DbId;
use crate::store::{Store, StoreError, TenantId};

#[derive(Insertable)]
#[diesel(table_name = initial_access_tokens)]
struct InitialAccessTokenRow {
    id: DbId,
    tenant_id: DbId,
    token_hash: Vec<u8>,
    label: String,
    expires_at: Option<i64>,
    uses_left: Option<i64>,
    created_at: i64,
}

/// An initial access token of `tenant` with this digest that is neither expired nor used up:
/// one rule for checking a token and for spending it.
#[diesel::dsl::auto_type(no_type_alias)]
fn live_initial_access_token(tenant: DbId, token_hash: Vec<u8>, now: i64) -> _ {
    initial_access_tokens::tenant_id
        .eq(tenant)
        .and(initial_access_tokens::token_hash.eq(token_hash))
        .and(
            initial_access_tokens::expires_at
                .is_null()
                .or(initial_access_tokens::expires_at.gt(now)),
        )
        .and(
            initial_access_tokens::uses_left
                .is_null()
                .or(initial_access_tokens::uses_left.gt(0_i64)),
        )
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = initial_access_tokens)]
struct InitialAccessTokenListRow {
    id: DbId,
    label: String,
    expires_at: Option<i64>,
    uses_left: Option<i64>,
    created_at: i64,
}

impl Store {
    /// Whether an initial access token of `tenant` could be spent now (without spending it).
    pub async fn initial_access_token_usable(
        &self,
        tenant: TenantId,
        token_hash: [u8; 32],
        now: i64,
    ) -> Result<bool, StoreError> {
        use initial_access_tokens::dsl as t;
        self.db
            .run(move |mut conn| async move {
                let n: i64 = with_conn!(&mut conn, |c| t::initial_access_tokens
                    .filter(live_initial_access_token(
                        tenant.db(),
                        token_hash.to_vec(),
                        now
                    ))
                    .count()
                    .get_result(c)
                    .await)?;
                Ok(n > 0)
            })
            .await
    }

    /// Stores an initial access token (RFC 7591 §3) by digest.
    pub async fn insert_initial_access_token(
        &self,
        tenant: TenantId,
        token_hash: [u8; 32],
        label: &str,
        expires_at: Option<i64>,
        uses_left: Option<i64>,
        now: i64,
    ) -> Result<uuid::Uuid, StoreError> {
        let id = uuid::Uuid::now_v7();
        let row = InitialAccessTokenRow {
            id: DbId(id),
            tenant_id: tenant.db(),
            token_hash: token_hash.to_vec(),
            label: label.to_owned(),
            expires_at,
            uses_left,
            created_at: now,
        };
        self.db
            .run(move |mut conn| async move {
                with_conn!(&mut conn, |c| diesel::insert_into(
                    initial_access_tokens::table
                )
                .values(&row)
                .execute(c)
                .await)?;
                Ok(id)
            })
            .await
    }

    /// The initial access tokens of `tenant`, oldest first.
    pub async fn initial_access_tokens(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<InitialAccessToken>, StoreError> {
        use initial_access_tokens::dsl as t;
        self.db
            .run(move |mut conn| async move {
                let rows: Vec<InitialAccessTokenListRow> =
                    with_conn!(&mut conn, |c| t::initial_access_tokens
                        .filter(t::tenant_id.eq(tenant.db()))
                        .order(t::created_at.asc())
                        .select(InitialAccessTokenListRow::as_select())
                        .load(c)
                        .await)?;
                Ok(rows
                    .into_iter()
                    .map(|r| InitialAccessToken {
                        id: r.id.0,
                        label: r.label,
                        expires_at: r.expires_at,
                        uses_left: r.uses_left,
                        created_at: r.created_at,
                    })
                    .collect())
            })
            .await
    }

    /// Withdraws an initial access token of `tenant`; returns whether it existed.
    pub async fn delete_initial_access_token(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
    ) -> Result<bool, StoreError> {
        use initial_access_tokens::dsl as t;
        self.db
            .run(move |mut conn| async move {
                let n = with_conn!(&mut conn, |c| diesel::delete(
                    t::initial_access_tokens
                        .filter(t::tenant_id.eq(tenant.db()))
                        .filter(t::id.eq(DbId(id)))
                )
                .execute(c)
                .await)?;
                Ok(n > 0)
            })
            .await
    }
}

impl Tx<'_> {
    /// Spends one use of a live initial access token (one conditional update).
    pub(in crate::store) async fn spend_initial_access_token(
        &mut self,
        tenant: TenantId,
        token_hash: [u8; 32],
        now: i64,
    ) -> Result<bool, StoreError> {
        use initial_access_tokens::dsl as t;
        let n = with_tx_conn!(self, |c| diesel::update(t::initial_access_tokens.filter(
            live_initial_access_token(tenant.db(), token_hash.to_vec(), now)
        ))
        .set(t::uses_left.eq(t::uses_left - 1))
        .execute(c)
        .await)?;
        Ok(n > 0)
    }
}
