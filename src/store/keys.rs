//! Signing-key rows.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::db::{with_conn, with_tx};
use super::schema::signing_keys;
use super::types::{DbId, DbJson};
use super::{Store, StoreError, TenantId};
use crate::model::{KeyState, NewSigningKey, SealedSigningKey, SigningAlg, SigningKey};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub(super) struct KeyRow {
    id: DbId,
    tenant_id: DbId,
    kid: String,
    alg: String,
    state: String,
    public_jwk: DbJson,
    private_jwk: Vec<u8>,
    master_key_id: String,
    created_at: i64,
    activated_at: Option<i64>,
    retired_at: Option<i64>,
    expires_at: Option<i64>,
}

impl KeyRow {
    pub(super) fn new(tenant: TenantId, key: &NewSigningKey) -> KeyRow {
        KeyRow {
            id: DbId(uuid::Uuid::now_v7()),
            tenant_id: tenant.db(),
            kid: key.key.kid.clone(),
            alg: key.key.alg.as_str().to_owned(),
            state: key.key.state.as_str().to_owned(),
            public_jwk: DbJson(serde_json::Value::Object(key.key.public_jwk.clone())),
            private_jwk: key.sealed_private.clone(),
            master_key_id: key.master_key_id.clone(),
            created_at: key.key.created_at,
            activated_at: key.key.activated_at,
            retired_at: key.key.retired_at,
            expires_at: key.key.expires_at,
        }
    }
}

impl TryFrom<KeyRow> for SealedSigningKey {
    type Error = StoreError;

    fn try_from(row: KeyRow) -> Result<SealedSigningKey, StoreError> {
        let corrupt =
            |what: String| StoreError::Corrupt(format!("signing key {}: {what}", row.kid));
        let serde_json::Value::Object(public_jwk) = row.public_jwk.0 else {
            return Err(corrupt("public_jwk is not an object".into()));
        };
        Ok(SealedSigningKey {
            key: SigningKey {
                alg: row.alg.parse::<SigningAlg>().map_err(corrupt)?,
                state: row.state.parse::<KeyState>().map_err(corrupt)?,
                kid: row.kid,
                public_jwk,
                created_at: row.created_at,
                activated_at: row.activated_at,
                retired_at: row.retired_at,
                expires_at: row.expires_at,
            },
            sealed_private: row.private_jwk,
            master_key_id: row.master_key_id,
        })
    }
}

/// A scheduled job's view of one tenant's key (maintenance spans tenants, so it yields their ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    pub tenant: TenantId,
    pub alg: SigningAlg,
    pub kid: String,
}

impl Store {
    /// All of a tenant's keys: active first, then next, then retired; newest first within each.
    pub async fn signing_keys(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<SealedSigningKey>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let rows: Vec<KeyRow> = with_conn!(&mut conn, |c| signing_keys::table
                    .filter(signing_keys::tenant_id.eq(tenant.db()))
                    .order(signing_keys::created_at.desc())
                    .select(KeyRow::as_select())
                    .load(c)
                    .await)?;
                let mut keys = rows
                    .into_iter()
                    .map(SealedSigningKey::try_from)
                    .collect::<Result<Vec<_>, _>>()?;
                keys.sort_by_key(|k| match k.key.state {
                    KeyState::Active => 0,
                    KeyState::Next => 1,
                    KeyState::Retired => 2,
                });
                Ok(keys)
            })
            .await
    }

    /// A cheap fingerprint of a tenant's keys: each `kid` with its state, in `kid` order. Equal
    /// fingerprints mean an equal key set (keys never change but by state), so a hot copy can
    /// be revalidated without loading or unsealing anything.
    pub async fn signing_key_stamp(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let mut stamp: Vec<(String, String)> =
                    with_conn!(&mut conn, |c| signing_keys::table
                        .filter(signing_keys::tenant_id.eq(tenant.db()))
                        .select((signing_keys::kid, signing_keys::state))
                        .load(c)
                        .await)?;
                // Byte order, sorted here: SQL `ORDER BY` follows the database's collation,
                // which on PostgreSQL need not match the stamp built from the loaded set.
                stamp.sort();
                Ok(stamp)
            })
            .await
    }

    /// One of a tenant's keys by `kid`.
    pub async fn signing_key(
        &self,
        tenant: TenantId,
        kid: &str,
    ) -> Result<Option<SealedSigningKey>, StoreError> {
        let kid = kid.to_owned();
        self.db
            .run(move |mut conn| async move {
                let row: Option<KeyRow> = with_conn!(&mut conn, |c| signing_keys::table
                    .filter(signing_keys::tenant_id.eq(tenant.db()))
                    .filter(signing_keys::kid.eq(&kid))
                    .select(KeyRow::as_select())
                    .first(c)
                    .await
                    .optional())?;
                row.map(SealedSigningKey::try_from).transpose()
            })
            .await
    }

    /// Adds keys to a tenant. A second active or next key for an algorithm is a conflict.
    pub async fn insert_signing_keys(
        &self,
        tenant: TenantId,
        keys: &[NewSigningKey],
    ) -> Result<(), StoreError> {
        let rows: Vec<KeyRow> = keys.iter().map(|k| KeyRow::new(tenant, k)).collect();
        self.db
            .run(move |mut conn| async move {
                with_tx!(&mut conn, |c| {
                    for row in &rows {
                        diesel::insert_into(signing_keys::table)
                            .values(row)
                            .execute(c)
                            .await?;
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await
    }

    /// Rotates one algorithm's keys as a compare-and-swap on `expected_active`: that key retires
    /// (published until `retire_until`), the next key starts signing, and `new_next` is published.
    /// If another replica rotated first, nothing changes and the result is a conflict.
    pub async fn rotate_signing_key(
        &self,
        tenant: TenantId,
        alg: SigningAlg,
        expected_active: &str,
        new_next: &NewSigningKey,
        now: i64,
        retire_until: i64,
    ) -> Result<(), StoreError> {
        let expected = expected_active.to_owned();
        let row = KeyRow::new(tenant, new_next);
        let alg = alg.as_str();
        self.db
            .run(move |mut conn| async move {
                with_tx!(&mut conn, |c| {
                    let scope = signing_keys::tenant_id
                        .eq(tenant.db())
                        .and(signing_keys::alg.eq(alg));
                    let retired = diesel::update(
                        signing_keys::table
                            .filter(scope)
                            .filter(signing_keys::kid.eq(&expected))
                            .filter(signing_keys::state.eq(KeyState::Active.as_str())),
                    )
                    .set((
                        signing_keys::state.eq(KeyState::Retired.as_str()),
                        signing_keys::retired_at.eq(now),
                        signing_keys::expires_at.eq(retire_until),
                    ))
                    .execute(c)
                    .await?;
                    if retired != 1 {
                        return Err(StoreError::Conflict(format!(
                            "{alg} key {expected} is no longer active"
                        )));
                    }
                    let promoted = diesel::update(
                        signing_keys::table
                            .filter(scope)
                            .filter(signing_keys::state.eq(KeyState::Next.as_str())),
                    )
                    .set((
                        signing_keys::state.eq(KeyState::Active.as_str()),
                        signing_keys::activated_at.eq(now),
                    ))
                    .execute(c)
                    .await?;
                    if promoted != 1 {
                        return Err(StoreError::Conflict(format!(
                            "no next {alg} key to promote"
                        )));
                    }
                    diesel::insert_into(signing_keys::table)
                        .values(&row)
                        .execute(c)
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    /// Removes a key that does not sign (next or retired), for a key that must stop being
    /// trusted at once. Returns whether a key was removed.
    pub async fn delete_signing_key(
        &self,
        tenant: TenantId,
        kid: &str,
    ) -> Result<bool, StoreError> {
        let kid = kid.to_owned();
        self.db
            .run(move |mut conn| async move {
                let n = with_conn!(&mut conn, |c| diesel::delete(
                    signing_keys::table
                        .filter(signing_keys::tenant_id.eq(tenant.db()))
                        .filter(signing_keys::kid.eq(&kid))
                        .filter(signing_keys::state.ne(KeyState::Active.as_str()))
                )
                .execute(c)
                .await)?;
                Ok(n > 0)
            })
            .await
    }

    /// Active keys, across tenants, that started signing at or before `activated_before`.
    pub async fn keys_due_for_rotation(
        &self,
        activated_before: i64,
    ) -> Result<Vec<KeyRef>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let rows: Vec<(DbId, String, String)> =
                    with_conn!(&mut conn, |c| signing_keys::table
                        .filter(signing_keys::state.eq(KeyState::Active.as_str()))
                        .filter(signing_keys::activated_at.le(activated_before))
                        .select((
                            signing_keys::tenant_id,
                            signing_keys::alg,
                            signing_keys::kid
                        ))
                        .load(c)
                        .await)?;
                rows.into_iter()
                    .map(|(tenant, alg, kid)| {
                        Ok(KeyRef {
                            tenant: TenantId(tenant.0),
                            alg: alg.parse().map_err(StoreError::Corrupt)?,
                            kid,
                        })
                    })
                    .collect()
            })
            .await
    }

    /// Deletes retired keys whose publication window has ended; returns the tenants affected.
    pub async fn purge_expired_keys(&self, now: i64) -> Result<Vec<TenantId>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let tenants: Vec<DbId> = with_conn!(&mut conn, |c| diesel::delete(
                    signing_keys::table
                        .filter(signing_keys::state.eq(KeyState::Retired.as_str()))
                        .filter(signing_keys::expires_at.le(now))
                )
                .returning(signing_keys::tenant_id)
                .get_results(c)
                .await)?;
                let mut ids: Vec<TenantId> = tenants.into_iter().map(|t| TenantId(t.0)).collect();
                ids.sort();
                ids.dedup();
                Ok(ids)
            })
            .await
    }
}
