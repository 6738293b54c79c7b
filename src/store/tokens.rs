//! Token rows: opaque access tokens, revoked JWT ids, refresh token families and initial access
//! tokens. Every token is looked up by its SHA-256 digest; none is stored in the clear.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::db::{Db, DbConn, Tx, with_conn, with_tx_conn};
use super::schema::{
    access_tokens, clients, initial_access_tokens, refresh_families, refresh_tokens, revoked_tokens,
};
use super::types::{DbId, DbJson};
use super::{Store, StoreError, TenantId};
use crate::model::client::ClientId;
use crate::model::token::{
    FamilyState, InitialAccessToken, NewRefreshToken, RefreshTokenState, Rotation,
    StoredAccessToken, StoredRefreshToken,
};

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

#[derive(Insertable, Clone)]
#[diesel(table_name = access_tokens)]
pub(super) struct NewAccessTokenRow {
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

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_families)]
struct FamilyRow {
    id: DbId,
    tenant_id: DbId,
    client_id: String,
    expires_at: i64,
    revoked_at: Option<i64>,
    rotated_at: Option<i64>,
    created_at: i64,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
struct RefreshTokenRow {
    id: DbId,
    tenant_id: DbId,
    token_hash: Vec<u8>,
    family_id: DbId,
    client_id: String,
    claims: DbJson,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
    created_at: i64,
}

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

    /// A refresh token of `tenant` by digest, with its family's state.
    pub async fn refresh_token(
        &self,
        tenant: TenantId,
        token_hash: [u8; 32],
    ) -> Result<Option<StoredRefreshToken>, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let row: Option<(RefreshTokenRow, FamilyRow)> =
                    with_conn!(&mut conn, |c| refresh_tokens::table
                        .inner_join(
                            refresh_families::table.on(refresh_families::id
                                .eq(refresh_tokens::family_id)
                                .and(refresh_families::tenant_id.eq(refresh_tokens::tenant_id))),
                        )
                        .filter(refresh_tokens::tenant_id.eq(tenant.db()))
                        .filter(refresh_tokens::token_hash.eq(token_hash.as_slice()))
                        .select((RefreshTokenRow::as_select(), FamilyRow::as_select()))
                        .first(c)
                        .await
                        .optional())?;
                row.map(|(r, f)| {
                    Ok(StoredRefreshToken {
                        id: r.id.0,
                        family_id: r.family_id.0,
                        client_id: client_of(&r.client_id)?,
                        claims: claims_of(r.claims)?,
                        expires_at: r.expires_at,
                        state: RefreshTokenState::from_times(r.used_at, r.revoked_at),
                        family: match f.revoked_at {
                            Some(at) => FamilyState::Revoked { at },
                            None => FamilyState::Active,
                        },
                        family_expires_at: f.expires_at,
                    })
                })
                .transpose()
            })
            .await
    }

    /// Starts a family with its first token, in one transaction. The family ends at
    /// `family_expires_at` however often it rotates.
    pub async fn start_refresh_family(
        &self,
        tenant: TenantId,
        family_id: uuid::Uuid,
        family_expires_at: i64,
        token: NewRefreshToken,
    ) -> Result<(), StoreError> {
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move {
                    let family = FamilyRow {
                        id: DbId(family_id),
                        tenant_id: tenant.db(),
                        client_id: token.client_id.as_str().to_owned(),
                        expires_at: family_expires_at,
                        revoked_at: None,
                        rotated_at: None,
                        created_at: token.created_at,
                    };
                    with_tx_conn!(&mut tx, |c| diesel::insert_into(refresh_families::table)
                        .values(&family)
                        .execute(c)
                        .await)?;
                    tx.insert_refresh_token(tenant, family_id, &token).await
                })
            })
            .await
    }

    /// Adds a token to a live family (token exchange), or reports it ended.
    pub async fn join_refresh_family(
        &self,
        tenant: TenantId,
        family_id: uuid::Uuid,
        token: NewRefreshToken,
    ) -> Result<Rotation, StoreError> {
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move {
                    if !tx
                        .lock_live_family(tenant, &token.client_id, family_id, token.created_at)
                        .await?
                    {
                        return Ok(Rotation::FamilyEnded);
                    }
                    tx.insert_refresh_token(tenant, family_id, &token).await?;
                    Ok(Rotation::Done)
                })
            })
            .await
    }

    /// Rotates a refresh token (OAuth 2.1 §4.3.1) as one unit of work: the family's row is
    /// locked and checked live, the old token consumed (once: a conditional update), the new
    /// one stored. A revocation racing it waits for the family's lock, so it either ends the
    /// family before (nothing is written) or after (the new token dies with it).
    pub async fn rotate_refresh_token(
        &self,
        tenant: TenantId,
        family_id: uuid::Uuid,
        old: uuid::Uuid,
        token: NewRefreshToken,
    ) -> Result<Rotation, StoreError> {
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move {
                    let now = token.created_at;
                    if !tx
                        .lock_live_family(tenant, &token.client_id, family_id, now)
                        .await?
                    {
                        return Ok(Rotation::FamilyEnded);
                    }
                    let spent = with_tx_conn!(&mut tx, |c| diesel::update(
                        refresh_tokens::table
                            .filter(refresh_tokens::tenant_id.eq(tenant.db()))
                            .filter(refresh_tokens::id.eq(DbId(old)))
                            .filter(refresh_tokens::family_id.eq(DbId(family_id)))
                            .filter(refresh_tokens::used_at.is_null())
                            .filter(refresh_tokens::revoked_at.is_null())
                    )
                    .set(refresh_tokens::used_at.eq(now))
                    .execute(c)
                    .await)?;
                    if spent == 0 {
                        return Ok(Rotation::Reused);
                    }
                    tx.insert_refresh_token(tenant, family_id, &token).await?;
                    Ok(Rotation::Done)
                })
            })
            .await
    }

    /// Revokes a family and every token in it, in one transaction. Returns whether the family
    /// was live.
    pub async fn revoke_refresh_family(
        &self,
        tenant: TenantId,
        family_id: uuid::Uuid,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.db
            .transaction(move |mut tx| {
                Box::pin(async move {
                    let n = with_tx_conn!(&mut tx, |c| diesel::update(
                        refresh_families::table
                            .filter(refresh_families::tenant_id.eq(tenant.db()))
                            .filter(refresh_families::id.eq(DbId(family_id)))
                            .filter(refresh_families::revoked_at.is_null())
                    )
                    .set(refresh_families::revoked_at.eq(now))
                    .execute(c)
                    .await)?;
                    with_tx_conn!(&mut tx, |c| diesel::update(
                        refresh_tokens::table
                            .filter(refresh_tokens::tenant_id.eq(tenant.db()))
                            .filter(refresh_tokens::family_id.eq(DbId(family_id)))
                            .filter(refresh_tokens::revoked_at.is_null())
                    )
                    .set(refresh_tokens::revoked_at.eq(now))
                    .execute(c)
                    .await)?;
                    Ok(n > 0)
                })
            })
            .await
    }

    /// Whether a refresh token family is revoked or gone (a purged or deleted family ends
    /// what it issued too).
    pub async fn is_family_revoked(
        &self,
        tenant: TenantId,
        family_id: uuid::Uuid,
    ) -> Result<bool, StoreError> {
        self.db
            .run(move |mut conn| async move {
                let revoked: Option<Option<i64>> =
                    with_conn!(&mut conn, |c| refresh_families::table
                        .filter(refresh_families::tenant_id.eq(tenant.db()))
                        .filter(refresh_families::id.eq(DbId(family_id)))
                        .select(refresh_families::revoked_at)
                        .first(c)
                        .await
                        .optional())?;
                Ok(revoked.is_none_or(|at| at.is_some()))
            })
            .await
    }

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

impl Tx<'_> {
    /// Spends one use of a live initial access token (one conditional update).
    pub(super) async fn spend_initial_access_token(
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

    /// Locks a family's row for the rest of the transaction if it is live (not revoked, not
    /// over): concurrent rotations and revocations of the family queue behind it.
    ///
    /// On PostgreSQL the owning client's row is share-locked first. Deleting a client locks
    /// it and then its families (by cascade); a rotation that locked the family first would
    /// then wait for the client row (the new token's foreign key) while the delete waits for
    /// the family: a deadlock. Taking the client first gives both the same order.
    async fn lock_live_family(
        &mut self,
        tenant: TenantId,
        client_id: &ClientId,
        family_id: uuid::Uuid,
        now: i64,
    ) -> Result<bool, StoreError> {
        if let Tx::Pg(c) = self {
            let owner: Vec<String> = clients::table
                .filter(clients::tenant_id.eq(tenant.db()))
                .filter(clients::client_id.eq(client_id.as_str()))
                .select(clients::client_id)
                .for_key_share()
                .load(&mut **c)
                .await?;
            if owner.is_empty() {
                return Ok(false);
            }
        }
        let n = with_tx_conn!(self, |c| diesel::update(
            refresh_families::table
                .filter(refresh_families::tenant_id.eq(tenant.db()))
                .filter(refresh_families::id.eq(DbId(family_id)))
                .filter(refresh_families::revoked_at.is_null())
                .filter(refresh_families::expires_at.gt(now))
        )
        .set(refresh_families::rotated_at.eq(now))
        .execute(c)
        .await)?;
        Ok(n > 0)
    }

    async fn insert_refresh_token(
        &mut self,
        tenant: TenantId,
        family_id: uuid::Uuid,
        token: &NewRefreshToken,
    ) -> Result<(), StoreError> {
        let row = RefreshTokenRow {
            id: DbId(uuid::Uuid::now_v7()),
            tenant_id: tenant.db(),
            token_hash: token.token_hash.to_vec(),
            family_id: DbId(family_id),
            client_id: token.client_id.as_str().to_owned(),
            claims: DbJson(serde_json::Value::Object(token.claims.clone())),
            expires_at: token.expires_at,
            used_at: None,
            revoked_at: None,
            created_at: token.created_at,
        };
        with_tx_conn!(self, |c| diesel::insert_into(refresh_tokens::table)
            .values(&row)
            .execute(c)
            .await)?;
        Ok(())
    }
}

type Pending = (NewAccessTokenRow, oneshot::Sender<Result<(), StoreError>>);

/// Most rows committed in one transaction.
const BATCH: usize = 256;

/// Commits opaque access tokens in batches: one writer task takes whatever is waiting (up to
/// [`BATCH`] rows), inserts it in one transaction and then answers every waiting request.
#[derive(Default)]
pub(super) struct TokenWriter {
    sender: Mutex<Option<mpsc::Sender<Pending>>>,
}

impl TokenWriter {
    /// Starts the writer on the current runtime (the server's main one), rather than on
    /// whichever HTTP worker issues the first opaque token.
    pub(super) fn start(&self, db: &Db) {
        self.sender(db, false);
    }

    fn sender(&self, db: &Db, fresh: bool) -> mpsc::Sender<Pending> {
        let mut slot = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some(sender) if !fresh && !sender.is_closed() => sender.clone(),
            _ => {
                let sender = spawn_writer(db.clone());
                *slot = Some(sender.clone());
                sender
            }
        }
    }

    async fn insert(&self, db: &Db, row: NewAccessTokenRow) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        let mut pending = (row, ack);
        // A writer whose runtime has gone (a stopped server in the same process) is replaced.
        for fresh in [false, true] {
            match self.sender(db, fresh).send(pending).await {
                Ok(()) => {
                    return done
                        .await
                        .map_err(|_| StoreError::Unavailable("the token writer stopped".into()))?;
                }
                Err(mpsc::error::SendError(back)) => pending = back,
            }
        }
        Err(StoreError::Unavailable(
            "the token writer is not running".into(),
        ))
    }
}

/// Batches committing at once on PostgreSQL, which overlaps them. SQLite has one writer:
/// overlapping batches there only queue on its lock and stretch the tail latency.
const PG_IN_FLIGHT: usize = 4;

fn spawn_writer(db: Db) -> mpsc::Sender<Pending> {
    let (sender, mut receiver) = mpsc::channel::<Pending>(BATCH * 16);
    tokio::spawn(async move {
        let in_flight = match &db {
            Db::Pg(_) => PG_IN_FLIGHT,
            Db::Sqlite(_) => 1,
        };
        let permits = Arc::new(Semaphore::new(in_flight));
        let mut batch = Vec::with_capacity(BATCH);
        while receiver.recv_many(&mut batch, BATCH).await > 0 {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (rows, acks): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
            let db = db.clone();
            tokio::spawn(async move {
                commit(&db, Arc::new(rows), acks).await;
                drop(permit);
            });
        }
    });
    sender
}

/// Commits a batch and answers its requests; one bad row must not fail its neighbours, so a
/// failed batch is retried row by row.
async fn commit(
    db: &Db,
    rows: Arc<Vec<NewAccessTokenRow>>,
    acks: Vec<oneshot::Sender<Result<(), StoreError>>>,
) {
    let all = rows.clone();
    if db.run(move |conn| insert_batch(conn, all)).await.is_ok() {
        for ack in acks {
            // The request may have gone away meanwhile: its token is stored regardless.
            let _ = ack.send(Ok(()));
        }
        return;
    }
    for (row, ack) in rows.iter().zip(acks) {
        let one = Arc::new(vec![row.clone()]);
        let _ = ack.send(db.run(move |conn| insert_batch(conn, one)).await);
    }
}

async fn insert_batch(conn: DbConn, rows: Arc<Vec<NewAccessTokenRow>>) -> Result<(), StoreError> {
    match conn {
        DbConn::Pg(mut obj) => {
            let c: &mut diesel_async::AsyncPgConnection = &mut obj;
            diesel::insert_into(access_tokens::table)
                .values(rows.as_slice())
                .execute(c)
                .await?;
        }
        DbConn::Sqlite(mut obj) => {
            // One blocking hop and one transaction for the whole batch.
            obj.spawn_blocking(move |c| {
                // One multi-row INSERT: SQLite binds at most 32,766 values, a batch uses
                // 8 x 256.
                diesel::RunQueryDsl::execute(
                    diesel::insert_into(access_tokens::table).values(rows.as_slice()),
                    c,
                )
            })
            .await?;
        }
    }
    Ok(())
}
