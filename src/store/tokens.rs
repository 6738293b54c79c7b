//! Token rows: opaque access tokens, revoked JWT ids, refresh token families and initial access
//! tokens, one file per table ([`access`]: `access_tokens`, [`revoked`]: `revoked_tokens`,
//! [`refresh`]: `refresh_families` and `refresh_tokens`, [`initial`]: `initial_access_tokens`)
//! and the group-commit writer of opaque tokens ([`writer`]).
//! Every token is looked up by its SHA-256 digest; none is stored in the clear.

mod access;
mod initial;
mod refresh;
mod revoked;
mod writer;

pub use refresh::NewGrant;
pub(super) use writer::TokenWriter;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::db::with_conn;
use super::schema::{
    access_tokens, initial_access_tokens, refresh_families, refresh_tokens, revoked_tokens,
};
use super::types::DbJson;
use super::{Store, StoreError};
use crate::model::client::ClientId;

type Claims = serde_json::Map<String, serde_json::Value>;

fn claims_of(json: DbJson) -> Result<Claims, StoreError> {
    match json.0 {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(StoreError::Corrupt("token claims are not an object".into())),
    }
}

fn client_of(raw: &str) -> Result<ClientId, StoreError> {
    ClientId::parse(raw).ok_or_else(|| StoreError::Corrupt("malformed client_id".into()))
}

impl Store {
    /// Deletes expired tokens of every tenant; returns how many rows went.
    /// Refresh token rows are kept `grace` seconds past expiry: access tokens refreshed from a
    /// family look up its revocation there until they expire themselves.
    pub async fn purge_expired_tokens(&self, now: i64, grace: i64) -> Result<usize, StoreError> {
        self.db
            .run(move |mut conn| async move {
                with_conn!(&mut conn, |c| {
                    let mut n = diesel::delete(
                        access_tokens::table.filter(access_tokens::expires_at.lt(now)),
                    )
                    .execute(c)
                    .await?;
                    n += diesel::delete(
                        revoked_tokens::table.filter(revoked_tokens::expires_at.lt(now)),
                    )
                    .execute(c)
                    .await?;
                    n += diesel::delete(
                        refresh_tokens::table
                            .filter(refresh_tokens::expires_at.lt(now.saturating_sub(grace))),
                    )
                    .execute(c)
                    .await?;
                    // A family over for `grace` takes its remaining rows along (cascade).
                    n += diesel::delete(
                        refresh_families::table
                            .filter(refresh_families::expires_at.lt(now.saturating_sub(grace))),
                    )
                    .execute(c)
                    .await?;
                    n += diesel::delete(
                        initial_access_tokens::table.filter(
                            initial_access_tokens::expires_at
                                .lt(now)
                                .or(initial_access_tokens::uses_left.le(0)),
                        ),
                    )
                    .execute(c)
                    .await?;
                    Ok::<_, StoreError>(n)
                })
            })
            .await
    }
}
