//! Tenant rows.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::db::{with_conn, with_tx};
use super::keys::KeyRow;
use super::schema::{signing_keys, tenants};
use super::types::{DbId, DbJson};
use super::{Store, StoreError, TenantId};
use crate::model::{NewSigningKey, Tenant, TenantSettings, TenantSlug};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants)]
struct TenantRow {
    id: DbId,
    slug: String,
    display_name: String,
    created_at: i64,
    settings: DbJson,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;

    fn try_from(row: TenantRow) -> Result<Tenant, StoreError> {
        Ok(Tenant {
            id: TenantId(row.id.0),
            slug: TenantSlug::parse(&row.slug).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            display_name: row.display_name,
            created_at: row.created_at,
            settings: serde_json::from_value(row.settings.0)
                .map_err(|e| StoreError::Corrupt(format!("tenant settings: {e}")))?,
        })
    }
}

impl Store {
    /// Looks a tenant up by its slug: the one way a [`TenantId`] comes into being for a request.
    pub async fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Option<Tenant>, StoreError> {
        let slug = slug.as_str().to_owned();
        self.db
            .run(|mut conn| async move {
                let row: Option<TenantRow> = with_conn!(&mut conn, |c| tenants::table
                    .filter(tenants::slug.eq(&slug))
                    .select(TenantRow::as_select())
                    .first(c)
                    .await
                    .optional())?;
                row.map(Tenant::try_from).transpose()
            })
            .await
    }

    /// The tenant of a row that names it (outbox items delivered in the background).
    pub async fn tenant_by_id(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let row: Option<TenantRow> = with_conn!(&mut conn, |c| tenants::table
                    .filter(tenants::id.eq(id.db()))
                    .select(TenantRow::as_select())
                    .first(c)
                    .await
                    .optional())?;
                row.map(Tenant::try_from).transpose()
            })
            .await
    }

    /// All tenants, by slug.
    pub async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.db
            .run(|mut conn| async move {
                let rows: Vec<TenantRow> = with_conn!(&mut conn, |c| tenants::table
                    .order(tenants::slug.asc())
                    .select(TenantRow::as_select())
                    .load(c)
                    .await)?;
                rows.into_iter().map(Tenant::try_from).collect()
            })
            .await
    }

    /// Creates a tenant and its initial signing keys in one transaction. `keys` receives the new
    /// tenant's id (sealed keys are bound to it) and runs before the transaction opens.
    /// A taken slug is a [`StoreError::Conflict`].
    pub async fn create_tenant<E>(
        &self,
        slug: &TenantSlug,
        display_name: &str,
        created_at: i64,
        keys: impl FnOnce(TenantId) -> Result<Vec<NewSigningKey>, E>,
    ) -> Result<Result<Tenant, E>, StoreError> {
        let id = TenantId(uuid::Uuid::now_v7());
        let key_rows = match keys(id) {
            Ok(keys) => keys.iter().map(|k| KeyRow::new(id, k)).collect::<Vec<_>>(),
            Err(e) => return Ok(Err(e)),
        };
        let row = TenantRow {
            id: id.db(),
            slug: slug.as_str().to_owned(),
            display_name: display_name.to_owned(),
            created_at,
            settings: DbJson(serde_json::json!({})),
        };
        let tenant = self
            .db
            .run(|mut conn| async move {
                with_tx!(&mut conn, |c| {
                    diesel::insert_into(tenants::table)
                        .values(&row)
                        .execute(c)
                        .await?;
                    for key in &key_rows {
                        diesel::insert_into(signing_keys::table)
                            .values(key)
                            .execute(c)
                            .await?;
                    }
                    Ok::<_, StoreError>(())
                })?;
                Tenant::try_from(row)
            })
            .await?;
        Ok(Ok(tenant))
    }

    /// Replaces a tenant's settings. Returns whether the tenant exists.
    pub async fn update_tenant_settings(
        &self,
        tenant: TenantId,
        settings: &TenantSettings,
    ) -> Result<bool, StoreError> {
        let json =
            DbJson(serde_json::to_value(settings).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        self.db
            .run(move |mut conn| async move {
                let n = with_conn!(&mut conn, |c| diesel::update(
                    tenants::table.filter(tenants::id.eq(tenant.db()))
                )
                .set(tenants::settings.eq(&json))
                .execute(c)
                .await)?;
                Ok(n > 0)
            })
            .await
    }

    /// Deletes a tenant and, by cascade, everything it owns. Returns whether it existed.
    pub async fn delete_tenant(&self, tenant: TenantId) -> Result<bool, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let n = with_conn!(&mut conn, |c| diesel::delete(
                    tenants::table.filter(tenants::id.eq(tenant.db()))
                )
                .execute(c)
                .await)?;
                Ok(n > 0)
            })
            .await
    }
}
