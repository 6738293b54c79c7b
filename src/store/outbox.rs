//! The outbox (claimed by one worker at a time, on any replica) and the single-use links it
//! mails, whose tokens are stored as digests and consumed in the same transaction as the change
//! they allow.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::db::{with_conn, with_tx, with_tx_conn};
use super::schema::{outbox, user_tokens, users};
use super::types::{DbId, DbJson};
use super::{Store, StoreError, TenantId};
use crate::model::outbox::{LinkPurpose, OutboxItem, OutboxKind};
use crate::model::user::{Email, UserId};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox)]
pub(super) struct OutboxRow {
    id: DbId,
    tenant_id: DbId,
    kind: String,
    payload: DbJson,
    created_at: i64,
    available_at: i64,
    attempts: i32,
    claimed_by: Option<String>,
    claimed_until: Option<i64>,
    sent_at: Option<i64>,
    failed_at: Option<i64>,
    last_error: Option<String>,
}

impl OutboxRow {
    pub(super) fn new(
        tenant: TenantId,
        kind: OutboxKind,
        payload: serde_json::Value,
        now: i64,
    ) -> OutboxRow {
        OutboxRow {
            id: DbId(uuid::Uuid::now_v7()),
            tenant_id: tenant.db(),
            kind: kind.as_str().to_owned(),
            payload: DbJson(payload),
            created_at: now,
            available_at: now,
            attempts: 0,
            claimed_by: None,
            claimed_until: None,
            sent_at: None,
            failed_at: None,
            last_error: None,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = user_tokens)]
struct TokenRow {
    token_hash: Vec<u8>,
    tenant_id: DbId,
    user_id: DbId,
    purpose: String,
    email: Option<String>,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

/// A link to mail: its token digest, purpose, lifetime and (for verification) the address.
pub struct NewLink<'a> {
    pub user: UserId,
    pub purpose: LinkPurpose,
    pub token_hash: [u8; 32],
    pub email: Option<&'a Email>,
    pub now: i64,
    pub expires_at: i64,
}

impl Store {
    /// Queues a delivery outside any other change.
    pub async fn enqueue(
        &self,
        tenant: TenantId,
        kind: OutboxKind,
        payload: serde_json::Value,
        now: i64,
    ) -> Result<(), StoreError> {
        let row = OutboxRow::new(tenant, kind, payload, now);
        self.db
            .run(move |mut conn| async move {
                with_conn!(&mut conn, |c| diesel::insert_into(outbox::table)
                    .values(&row)
                    .execute(c)
                    .await)?;
                Ok(())
            })
            .await
    }

    /// Stores a single-use link and queues the mail that carries it, in one transaction;
    /// earlier unused links of the same purpose for the user stop working.
    pub async fn issue_link(
        &self,
        tenant: TenantId,
        link: NewLink<'_>,
        mail: serde_json::Value,
    ) -> Result<(), StoreError> {
        let token = TokenRow {
            token_hash: link.token_hash.to_vec(),
            tenant_id: tenant.db(),
            user_id: DbId(link.user.0),
            purpose: link.purpose.as_str().to_owned(),
            email: link.email.map(|e| e.as_str().to_owned()),
            created_at: link.now,
            expires_at: link.expires_at,
            used_at: None,
        };
        let row = OutboxRow::new(tenant, OutboxKind::Mail, mail, link.now);
        let (user, purpose, now) = (link.user, link.purpose.as_str().to_owned(), link.now);
        self.db
            .run(move |mut conn| async move {
                with_tx!(&mut conn, |c| {
                    diesel::update(
                        user_tokens::table
                            .filter(user_tokens::tenant_id.eq(tenant.db()))
                            .filter(user_tokens::user_id.eq(DbId(user.0)))
                            .filter(user_tokens::purpose.eq(&purpose))
                            .filter(user_tokens::used_at.is_null()),
                    )
                    .set(user_tokens::used_at.eq(Some(now)))
                    .execute(c)
                    .await?;
                    diesel::insert_into(user_tokens::table)
                        .values(&token)
                        .execute(c)
                        .await?;
                    diesel::insert_into(outbox::table)
                        .values(&row)
                        .execute(c)
                        .await?;
                    Ok::<_, StoreError>(())
                })
            })
            .await
    }

    /// Whether a link is still good (unused, unexpired), and whose it is: checked before
    /// expensive work (hashing a new password), then consumed by [`Store::redeem_link`].
    pub async fn peek_link(
        &self,
        tenant: TenantId,
        token_hash: [u8; 32],
        purpose: LinkPurpose,
        now: i64,
    ) -> Result<Option<UserId>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let user: Option<DbId> = with_conn!(&mut conn, |c| user_tokens::table
                    .filter(user_tokens::tenant_id.eq(tenant.db()))
                    .filter(user_tokens::token_hash.eq(token_hash.as_slice()))
                    .filter(user_tokens::purpose.eq(purpose.as_str()))
                    .filter(user_tokens::used_at.is_null())
                    .filter(user_tokens::expires_at.gt(now))
                    .select(user_tokens::user_id)
                    .first(c)
                    .await
                    .optional())?;
                Ok(user.map(|u| UserId(u.0)))
            })
            .await
    }

    /// Consumes a link and applies what it allows, in one transaction: a new password hash
    /// (every session of the user ends), or the verification of the address it was mailed to
    /// (if the account still has it). `None`: no such usable link.
    pub async fn redeem_link(
        &self,
        tenant: TenantId,
        token_hash: [u8; 32],
        purpose: LinkPurpose,
        new_password_hash: Option<String>,
        now: i64,
    ) -> Result<Option<UserId>, StoreError> {
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move {
                    let found: Option<(DbId, Option<String>)> =
                        with_tx_conn!(&mut tx, |c| user_tokens::table
                            .filter(user_tokens::tenant_id.eq(tenant.db()))
                            .filter(user_tokens::token_hash.eq(token_hash.as_slice()))
                            .filter(user_tokens::purpose.eq(purpose.as_str()))
                            .filter(user_tokens::used_at.is_null())
                            .filter(user_tokens::expires_at.gt(now))
                            .select((user_tokens::user_id, user_tokens::email))
                            .first(c)
                            .await
                            .optional())?;
                    let Some((user, email)) = found else {
                        return Ok(None);
                    };
                    // The conditional update is the single use: of two concurrent redemptions,
                    // one changes no row.
                    let taken = with_tx_conn!(&mut tx, |c| diesel::update(
                        user_tokens::table
                            .filter(user_tokens::tenant_id.eq(tenant.db()))
                            .filter(user_tokens::token_hash.eq(token_hash.as_slice()))
                            .filter(user_tokens::used_at.is_null())
                    )
                    .set(user_tokens::used_at.eq(Some(now)))
                    .execute(c)
                    .await)?;
                    if taken == 0 {
                        return Ok(None);
                    }
                    match purpose {
                        LinkPurpose::PasswordReset => {
                            with_tx_conn!(&mut tx, |c| diesel::update(
                                users::table
                                    .filter(users::tenant_id.eq(tenant.db()))
                                    .filter(users::id.eq(user))
                            )
                            .set((
                                users::password_hash.eq(&new_password_hash),
                                users::password_changed_at.eq(Some(now)),
                                users::updated_at.eq(now),
                            ))
                            .execute(c)
                            .await)?;
                            // Every session ends, with its back-channel logouts.
                            tx.end_sessions_of(tenant, UserId(user.0), None, now)
                                .await?;
                        }
                        LinkPurpose::EmailVerification => {
                            let key = email.as_deref().map(str::to_lowercase).unwrap_or_default();
                            with_tx_conn!(&mut tx, |c| diesel::update(
                                users::table
                                    .filter(users::tenant_id.eq(tenant.db()))
                                    .filter(users::id.eq(user))
                                    .filter(users::email_key.eq(&key))
                            )
                            .set((users::email_verified.eq(true), users::updated_at.eq(now)))
                            .execute(c)
                            .await)?;
                        }
                    }
                    Ok(Some(UserId(user.0)))
                })
            })
            .await
    }

    /// Claims up to `limit` due rows for `worker` until `lease_until`; each claim is a
    /// conditional update, so two workers never hold one row.
    pub async fn claim_outbox(
        &self,
        worker: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let worker = worker.to_owned();
        self.db
            .run(move |mut conn| async move {
                let due: Vec<OutboxRow> = with_conn!(&mut conn, |c| outbox::table
                    .filter(outbox::sent_at.is_null())
                    .filter(outbox::failed_at.is_null())
                    .filter(outbox::available_at.le(now))
                    .filter(
                        outbox::claimed_until
                            .is_null()
                            .or(outbox::claimed_until.lt(now))
                    )
                    .order((outbox::available_at.asc(), outbox::id.asc()))
                    .limit(limit)
                    .select(OutboxRow::as_select())
                    .load(c)
                    .await)?;
                let mut claimed = Vec::new();
                for row in due {
                    // Every condition of the selection again: a row another worker sent or
                    // put back for later since it was selected is not taken.
                    let n = with_conn!(&mut conn, |c| diesel::update(
                        outbox::table
                            .filter(outbox::id.eq(row.id))
                            .filter(outbox::sent_at.is_null())
                            .filter(outbox::failed_at.is_null())
                            .filter(outbox::available_at.le(now))
                            .filter(
                                outbox::claimed_until
                                    .is_null()
                                    .or(outbox::claimed_until.lt(now))
                            )
                    )
                    .set((
                        outbox::claimed_by.eq(Some(&worker)),
                        outbox::claimed_until.eq(Some(lease_until)),
                    ))
                    .execute(c)
                    .await)?;
                    if n == 1 {
                        let Ok(kind) = row.kind.parse::<OutboxKind>() else {
                            continue;
                        };
                        claimed.push(OutboxItem {
                            id: row.id.0,
                            tenant: TenantId(row.tenant_id.0),
                            created_at: row.created_at,
                            kind,
                            payload: row.payload.0,
                            attempts: row.attempts,
                        });
                    }
                }
                Ok(claimed)
            })
            .await
    }

    /// Settles a claimed row: sent, or failed with the next attempt at `retry_at` (or never
    /// again with `None`). Only the worker holding the claim can settle it.
    pub async fn settle_outbox(
        &self,
        id: uuid::Uuid,
        worker: &str,
        now: i64,
        outcome: Result<(), (String, Option<i64>)>,
    ) -> Result<(), StoreError> {
        let worker = worker.to_owned();
        self.db
            .run(move |mut conn| async move {
                let mine = outbox::table
                    .filter(outbox::id.eq(DbId(id)))
                    .filter(outbox::claimed_by.eq(Some(worker)))
                    .filter(outbox::sent_at.is_null());
                with_conn!(&mut conn, |c| match &outcome {
                    // What was delivered is not kept: a mailed link must not outlive its
                    // mail in the database.
                    Ok(()) => {
                        diesel::update(mine)
                            .set((
                                outbox::sent_at.eq(Some(now)),
                                outbox::claimed_until.eq(None::<i64>),
                                outbox::payload
                                    .eq(DbJson(serde_json::json!({ "delivered": true }))),
                            ))
                            .execute(c)
                            .await
                    }
                    Err((error, retry_at)) => {
                        diesel::update(mine)
                            .set((
                                outbox::attempts.eq(outbox::attempts + 1),
                                outbox::last_error
                                    .eq(Some(error.chars().take(500).collect::<String>())),
                                outbox::claimed_until.eq(None::<i64>),
                                outbox::available_at.eq(retry_at.unwrap_or(now)),
                                outbox::failed_at.eq(if retry_at.is_none() {
                                    Some(now)
                                } else {
                                    None
                                }),
                            ))
                            .execute(c)
                            .await
                    }
                })?;
                Ok(())
            })
            .await
    }

    /// Deletes delivered or abandoned rows settled more than `age` seconds ago, and used or
    /// expired links.
    pub async fn purge_outbox(&self, now: i64, age: i64) -> Result<usize, StoreError> {
        let before = now - age;
        self.db
            .run(move |mut conn| async move {
                let n = with_conn!(&mut conn, |c| diesel::delete(
                    outbox::table
                        .filter(outbox::sent_at.lt(before).or(outbox::failed_at.lt(before)))
                )
                .execute(c)
                .await)?;
                let m = with_conn!(&mut conn, |c| diesel::delete(
                    user_tokens::table.filter(
                        user_tokens::expires_at
                            .lt(before)
                            .or(user_tokens::used_at.lt(before))
                    )
                )
                .execute(c)
                .await)?;
                Ok(n + m)
            })
            .await
    }
}
