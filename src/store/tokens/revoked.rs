//! `revoked_tokens`: revoked JWT ids, kept until the token would have expired.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::store::db::with_conn;
use crate::store::schema::revoked_tokens;
use crate::store::{Store, StoreError, TenantId};

impl Store {
    /// Remembers a revoked JWT by `jti` until it would have expired anyway.
    pub async fn revoke_jti(
        &self,
        tenant: TenantId,
        jti: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let jti = jti.to_owned();
        self.db
            .run(move |mut conn| async move {
                with_conn!(&mut conn, |c| diesel::insert_into(revoked_tokens::table)
                    .values((
                        revoked_tokens::tenant_id.eq(tenant.db()),
                        revoked_tokens::jti.eq(&jti),
                        revoked_tokens::expires_at.eq(expires_at),
                    ))
                    .on_conflict_do_nothing()
                    .execute(c)
                    .await)?;
                Ok(())
            })
            .await
    }

    /// Whether a JWT with this `jti` was revoked.
    pub async fn is_jti_revoked(&self, tenant: TenantId, jti: &str) -> Result<bool, StoreError> {
        let jti = jti.to_owned();
        self.db
            .run(move |mut conn| async move {
                let n: i64 = with_conn!(&mut conn, |c| revoked_tokens::table
                    .filter(revoked_tokens::tenant_id.eq(tenant.db()))
                    .filter(revoked_tokens::jti.eq(&jti))
                    .count()
                    .get_result(c)
                    .await)?;
                Ok(n > 0)
            })
            .await
    }
}
