//! Users' passkeys. A credential id is unique per tenant: the same authenticator cannot be
//! registered to two accounts.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::db::{with_conn, with_tx};
use super::outbox::OutboxRow;
use super::schema::{outbox, passkeys, users};
use super::types::{DbId, DbJson};
use super::users::UserRow;
use super::{Store, StoreError, TenantId};
use crate::model::outbox::OutboxKind;
use crate::model::passkey::PasskeyRecord;
use crate::model::user::{User, UserId};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = passkeys)]
struct PasskeyRow {
    id: DbId,
    tenant_id: DbId,
    user_id: DbId,
    credential_id: Vec<u8>,
    name: String,
    passkey: DbJson,
    sign_count: i64,
    backup_eligible: bool,
    backed_up: bool,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl PasskeyRow {
    fn new(tenant: TenantId, p: &PasskeyRecord) -> PasskeyRow {
        PasskeyRow {
            id: DbId(p.id),
            tenant_id: tenant.db(),
            user_id: DbId(p.user.0),
            credential_id: p.credential_id.clone(),
            name: p.name.clone(),
            passkey: DbJson(p.credential.clone()),
            sign_count: i64::from(p.sign_count),
            backup_eligible: p.backup_eligible,
            backed_up: p.backed_up,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }

    fn into_record(self) -> PasskeyRecord {
        PasskeyRecord {
            id: self.id.0,
            user: UserId(self.user_id.0),
            credential_id: self.credential_id,
            name: self.name,
            credential: self.passkey.0,
            sign_count: u32::try_from(self.sign_count).unwrap_or(u32::MAX),
            backup_eligible: self.backup_eligible,
            backed_up: self.backed_up,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
        }
    }
}

impl Store {
    /// Stores a new passkey, with the mail that tells its owner (`notice`), in one
    /// transaction; a credential id already registered in the tenant is a
    /// [`StoreError::Conflict`].
    pub async fn insert_passkey(
        &self,
        tenant: TenantId,
        passkey: &PasskeyRecord,
        notice: Option<serde_json::Value>,
        now: i64,
    ) -> Result<(), StoreError> {
        let row = PasskeyRow::new(tenant, passkey);
        let notice = notice.map(|n| OutboxRow::new(tenant, OutboxKind::Mail, n, now));
        self.db
            .run(move |mut conn| async move {
                with_tx!(&mut conn, |c| {
                    diesel::insert_into(passkeys::table)
                        .values(&row)
                        .execute(c)
                        .await?;
                    if let Some(notice) = &notice {
                        diesel::insert_into(outbox::table)
                            .values(notice)
                            .execute(c)
                            .await?;
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await
    }

    /// The passkeys of `user`, oldest first.
    pub async fn passkeys_of(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<PasskeyRecord>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let rows: Vec<PasskeyRow> = with_conn!(&mut conn, |c| passkeys::table
                    .filter(passkeys::tenant_id.eq(tenant.db()))
                    .filter(passkeys::user_id.eq(DbId(user.0)))
                    .order(passkeys::created_at.asc())
                    .select(PasskeyRow::as_select())
                    .load(c)
                    .await)?;
                Ok(rows.into_iter().map(PasskeyRow::into_record).collect())
            })
            .await
    }

    /// The passkey with this credential id, with its user.
    pub async fn passkey_by_credential(
        &self,
        tenant: TenantId,
        credential_id: &[u8],
    ) -> Result<Option<(PasskeyRecord, User)>, StoreError> {
        let credential_id = credential_id.to_vec();
        self.db
            .run(move |mut conn| async move {
                let row: Option<(PasskeyRow, UserRow)> =
                    with_conn!(&mut conn, |c| passkeys::table
                        .inner_join(users::table)
                        .filter(passkeys::tenant_id.eq(tenant.db()))
                        .filter(users::tenant_id.eq(tenant.db()))
                        .filter(passkeys::credential_id.eq(&credential_id))
                        .select((PasskeyRow::as_select(), UserRow::as_select()))
                        .first(c)
                        .await
                        .optional())?;
                match row {
                    None => Ok(None),
                    Some((p, u)) => Ok(Some((p.into_record(), u.into_user()?.0))),
                }
            })
            .await
    }

    /// Records a use: the updated credential, counter and backup state. Only if the stored
    /// counter is still `seen` (two concurrent uses of one cloned key cannot both pass).
    pub async fn passkey_used(
        &self,
        tenant: TenantId,
        passkey: &PasskeyRecord,
        seen: u32,
        now: i64,
    ) -> Result<bool, StoreError> {
        let row = PasskeyRow::new(tenant, passkey);
        self.db
            .run(move |mut conn| async move {
                let n = with_conn!(&mut conn, |c| diesel::update(
                    passkeys::table
                        .filter(passkeys::tenant_id.eq(tenant.db()))
                        .filter(passkeys::id.eq(row.id))
                        .filter(passkeys::sign_count.eq(i64::from(seen)))
                )
                .set((
                    passkeys::passkey.eq(&row.passkey),
                    passkeys::sign_count.eq(row.sign_count),
                    passkeys::backup_eligible.eq(row.backup_eligible),
                    passkeys::backed_up.eq(row.backed_up),
                    passkeys::last_used_at.eq(Some(now)),
                ))
                .execute(c)
                .await)?;
                Ok(n > 0)
            })
            .await
    }

    /// Renames one of `user`'s passkeys; false if it is not theirs.
    pub async fn rename_passkey(
        &self,
        tenant: TenantId,
        user: UserId,
        id: uuid::Uuid,
        name: &str,
    ) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.db
            .run(move |mut conn| async move {
                let n = with_conn!(&mut conn, |c| diesel::update(
                    passkeys::table
                        .filter(passkeys::tenant_id.eq(tenant.db()))
                        .filter(passkeys::user_id.eq(DbId(user.0)))
                        .filter(passkeys::id.eq(DbId(id)))
                )
                .set(passkeys::name.eq(&name))
                .execute(c)
                .await)?;
                Ok(n > 0)
            })
            .await
    }

    /// Deletes one of `user`'s passkeys; false if it is not theirs.
    pub async fn delete_passkey(
        &self,
        tenant: TenantId,
        user: UserId,
        id: uuid::Uuid,
    ) -> Result<bool, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let n = with_conn!(&mut conn, |c| diesel::delete(
                    passkeys::table
                        .filter(passkeys::tenant_id.eq(tenant.db()))
                        .filter(passkeys::user_id.eq(DbId(user.0)))
                        .filter(passkeys::id.eq(DbId(id)))
                )
                .execute(c)
                .await)?;
                Ok(n > 0)
            })
            .await
    }
}
