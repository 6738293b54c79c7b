//! Persistence: the only module that touches diesel. Every function on tenant-owned rows takes a
//! [`TenantId`], which only this module can mint (from a stored tenant), so a query that forgets
//! the tenant filter cannot be written by accident.

mod api_keys;
mod authorization;
mod clients;
pub mod db;
mod keys;
mod outbox;
mod passkeys;
mod schema;
mod sessions;
mod tenants;
mod tokens;
mod types;
mod users;

use std::fmt;

use serde::Serialize;

pub use db::DatabaseLocation;
use db::{Db, with_conn};
pub use outbox::NewLink;
pub use tokens::NewGrant;
use types::DbId;
pub use users::UserRef;

/// The id of a tenant that exists in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(uuid::Uuid);

impl TenantId {
    /// The tenant's UUID (for logs, cache keys and sealing context).
    pub fn uuid(self) -> uuid::Uuid {
        self.0
    }

    fn db(self) -> DbId {
        DbId(self.0)
    }

    /// An id for unit tests of rules that need no store.
    #[cfg(test)]
    pub fn for_tests(n: u128) -> TenantId {
        TenantId(uuid::Uuid::from_u128(n))
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (pool exhausted, connection refused, timeout).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A uniqueness rule or a compare-and-swap refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A stored row breaks the domain's rules.
    #[error("invalid stored row: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Query(diesel::result::Error),
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                StoreError::Conflict(info.message().to_owned())
            }
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            other => StoreError::Query(other),
        }
    }
}

/// The store: one query code path over PostgreSQL or SQLite.
#[derive(Clone)]
pub struct Store {
    db: Db,
    location: DatabaseLocation,
    token_writer: std::sync::Arc<tokens::TokenWriter>,
}

impl Store {
    /// Builds the pool; connections are opened lazily.
    pub fn open(location: &DatabaseLocation, max_connections: usize) -> Result<Store, StoreError> {
        Ok(Store {
            db: Db::pool(location, max_connections)?,
            location: location.clone(),
            token_writer: std::sync::Arc::default(),
        })
    }

    /// Starts the store's background writers on the current runtime.
    pub fn start_background(&self) {
        self.token_writer.start(&self.db);
    }

    /// Applies pending migrations, returning the versions applied.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        db::migrate(&self.location).await
    }

    pub fn location(&self) -> &DatabaseLocation {
        &self.location
    }

    /// A round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        use diesel_async::RunQueryDsl;
        self.db
            .run(|mut conn| async move {
                with_conn!(&mut conn, |c| diesel::sql_query("SELECT 1")
                    .execute(c)
                    .await)?;
                Ok(())
            })
            .await
    }
}
