//! Connection pools for both backends, migrations, and the one helper every query runs through.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use deadpool_redis::Runtime;
use diesel::sqlite::SqliteConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::StoreError;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// SQLite behind diesel-async's blocking wrapper.
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// Where the source of truth lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// A `postgres://` URL.
    Postgres(String),
    /// An SQLite file (WAL mode).
    Sqlite(PathBuf),
}

impl DatabaseLocation {
    /// The backend's name, for logs and `/readyz`.
    pub fn backend(&self) -> &'static str {
        match self {
            DatabaseLocation::Postgres(_) => "postgres",
            DatabaseLocation::Sqlite(_) => "sqlite",
        }
    }
}

/// A pooled connection of either backend.
#[expect(
    clippy::large_enum_variant,
    reason = "deadpool objects are moved rarely; boxing would cost an allocation per query"
)]
pub enum DbConn {
    Pg(Object<AsyncPgConnection>),
    Sqlite(Object<SqliteConn>),
}

/// Runs `$body` with `$c` bound to the concrete connection: one query text serves both backends.
macro_rules! with_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::db::DbConn::Pg(obj) => {
                let $c: &mut diesel_async::AsyncPgConnection = &mut **obj;
                $body
            }
            $crate::store::db::DbConn::Sqlite(obj) => {
                let $c: &mut $crate::store::db::SqliteConn = &mut **obj;
                $body
            }
        }
    };
}
pub(crate) use with_conn;

/// Runs `$body` in a write transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`),
/// since a deferred transaction that upgrades its read lock fails with SQLITE_BUSY at once.
macro_rules! with_tx {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::db::DbConn::Pg(obj) => {
                let conn: &mut diesel_async::AsyncPgConnection = &mut **obj;
                diesel_async::AsyncConnection::transaction(conn, async |$c| $body).await
            }
            $crate::store::db::DbConn::Sqlite(obj) => {
                let conn: &mut $crate::store::db::SqliteConn = &mut **obj;
                conn.immediate_transaction(async |$c| $body).await
            }
        }
    };
}
pub(crate) use with_tx;

/// A connection borrowed for a unit of work, inside a transaction (see
/// [`crate::store::Store::transaction`]). Store operations written against it run in or out
/// of a transaction alike, with one query text for both backends ([`with_tx_conn`]).
pub enum Tx<'c> {
    Pg(&'c mut AsyncPgConnection),
    Sqlite(&'c mut SqliteConn),
}

/// Like [`with_conn`], for a [`Tx`].
macro_rules! with_tx_conn {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::store::db::Tx::Pg(conn) => {
                let $c: &mut diesel_async::AsyncPgConnection = &mut **conn;
                $body
            }
            $crate::store::db::Tx::Sqlite(conn) => {
                let $c: &mut $crate::store::db::SqliteConn = &mut **conn;
                $body
            }
        }
    };
}
pub(crate) use with_tx_conn;

/// What a unit of work returns: a boxed future borrowing the transaction.
pub type TxFuture<'a, T> =
    std::pin::Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The database pool.
#[derive(Clone)]
pub enum Db {
    Pg(Pool<AsyncPgConnection>),
    Sqlite(Pool<SqliteConn>),
}

const POOL_TIMEOUT: Duration = Duration::from_secs(5);

impl Db {
    /// Builds a pool; connections are made lazily, so this does not reach the database.
    pub fn pool(location: &DatabaseLocation, max_connections: usize) -> Result<Db, StoreError> {
        let built = match location {
            DatabaseLocation::Postgres(url) => {
                Pool::builder(AsyncDieselConnectionManager::<AsyncPgConnection>::new(url))
                    .max_size(max_connections)
                    .runtime(Runtime::Tokio1)
                    .wait_timeout(Some(POOL_TIMEOUT))
                    .create_timeout(Some(POOL_TIMEOUT))
                    .build()
                    .map(Db::Pg)
            }
            DatabaseLocation::Sqlite(path) => {
                ensure_parent(path)?;
                let mut config = ManagerConfig::<SqliteConn>::default();
                config.custom_setup = Box::new(|url| {
                    let url = url.to_owned();
                    Box::pin(async move {
                        let mut conn = SqliteConn::establish(&url).await?;
                        conn.batch_execute(SQLITE_PRAGMAS)
                            .await
                            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                        Ok(conn)
                    })
                });
                let url = path.to_string_lossy().into_owned();
                Pool::builder(AsyncDieselConnectionManager::<SqliteConn>::new_with_config(
                    url, config,
                ))
                .max_size(max_connections)
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(POOL_TIMEOUT))
                .create_timeout(Some(POOL_TIMEOUT))
                .build()
                .map(Db::Sqlite)
            }
        };
        built.map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Checks out a connection.
    async fn get(&self) -> Result<DbConn, StoreError> {
        let conn = match self {
            Db::Pg(pool) => pool.get().await.map(DbConn::Pg),
            Db::Sqlite(pool) => pool.get().await.map(DbConn::Sqlite),
        };
        conn.map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Runs one unit of database work in a detached task.
    ///
    /// Dropping a `JoinHandle` detaches rather than cancels, so a handler cancelled by a client
    /// disconnect never drops a query in flight: with SQLite that would panic the actix worker
    /// (diesel-async's blocking wrapper calls `block_in_place` when cancelled).
    pub async fn run<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(DbConn) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        tokio::spawn(async move { work(db.get().await?).await })
            .await
            .map_err(|e| StoreError::Unavailable(format!("database task failed: {e}")))?
    }
}

impl Db {
    /// Runs `work` in one transaction (a write transaction on SQLite, `BEGIN IMMEDIATE`),
    /// inside [`Db::run`]'s detached task, so its cancellation safety holds. An `Err` from
    /// `work` rolls everything back; an `Ok` commits.
    pub async fn transaction<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: for<'a> FnOnce(Tx<'a>) -> TxFuture<'a, T> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |mut conn| async move {
            match &mut conn {
                DbConn::Pg(obj) => {
                    let conn: &mut AsyncPgConnection = obj;
                    AsyncConnection::transaction(conn, async move |c| work(Tx::Pg(c)).await).await
                }
                DbConn::Sqlite(obj) => {
                    let conn: &mut SqliteConn = obj;
                    conn.immediate_transaction(async move |c| work(Tx::Sqlite(c)).await)
                        .await
                }
            }
        })
        .await
    }
}

/// The advisory lock that serialises migrations across replicas ("latchkey" in ASCII).
const MIGRATION_LOCK: i64 = 0x6c61_7463_686b_6579;

/// `synchronous = FULL`: in WAL mode, NORMAL may lose the last commits on power loss, and
/// those are revocations and single-use spends. Group commit amortises the extra fsync.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;";

/// Applies pending migrations and returns the versions applied.
///
/// Runs on a blocking thread: diesel-async's own migration harness calls `block_in_place`,
/// which panics on actix's current-thread runtimes.
pub async fn migrate(location: &DatabaseLocation) -> Result<Vec<String>, StoreError> {
    let location = location.clone();
    tokio::task::spawn_blocking(move || match &location {
        DatabaseLocation::Postgres(url) => {
            use diesel::Connection;
            use diesel::RunQueryDsl;
            use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
            let mut conn =
                <AsyncConnectionWrapper<AsyncPgConnection> as Connection>::establish(url)
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            // Replicas starting together migrate one at a time; the lock ends with the session.
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                .execute(&mut conn)?;
            let applied = apply(&mut conn, PG_MIGRATIONS);
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                .execute(&mut conn)?;
            applied
        }
        DatabaseLocation::Sqlite(path) => {
            use diesel::Connection;
            use diesel::connection::SimpleConnection;
            ensure_parent(path)?;
            let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            conn.batch_execute(SQLITE_PRAGMAS)?;
            apply(&mut conn, SQLITE_MIGRATIONS)
        }
    })
    .await
    .map_err(|e| StoreError::Unavailable(format!("migration task failed: {e}")))?
}

fn apply<C>(conn: &mut C, migrations: EmbeddedMigrations) -> Result<Vec<String>, StoreError>
where
    C: MigrationHarness<C::Backend> + diesel::Connection,
{
    conn.run_pending_migrations(migrations)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|e| StoreError::Migration(e.to_string()))
}

fn ensure_parent(path: &Path) -> Result<(), StoreError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display()))),
        _ => Ok(()),
    }
}
