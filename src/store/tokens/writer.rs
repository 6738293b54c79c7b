//! The group-commit writer of opaque access tokens: concurrent inserts share one
//! transaction.

use diesel_async::RunQueryDsl;

use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::access::NewAccessTokenRow;
use crate::store::StoreError;
use crate::store::db::{Db, DbConn};
use crate::store::schema::access_tokens;

type Pending = (NewAccessTokenRow, oneshot::Sender<Result<(), StoreError>>);

/// Most rows committed in one transaction.
const BATCH: usize = 256;

/// Commits opaque access tokens in batches: one writer task takes whatever is waiting (up to
/// [`BATCH`] rows), inserts it in one transaction and then answers every waiting request.
#[derive(Default)]
pub(in crate::store) struct TokenWriter {
    sender: Mutex<Option<mpsc::Sender<Pending>>>,
}

impl TokenWriter {
    /// Starts the writer on the current runtime (the server's main one), rather than on
    /// whichever HTTP worker issues the first opaque token.
    pub(in crate::store) fn start(&self, db: &Db) {
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

    pub(in crate::store) async fn insert(
        &self,
        db: &Db,
        row: NewAccessTokenRow,
    ) -> Result<(), StoreError> {
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
