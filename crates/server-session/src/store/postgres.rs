//! Sessions in PostgreSQL, in the table Flask-Session 0.8's `sqlalchemy`
//! backend uses, so a Flask app on the same database shares them.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::sync::OnceCell;

use super::sql::{self, CLEANUP_EVERY, Inner, Statements, check_table};
use super::{Expect, SaveOutcome, SessionStore, StoreError};

/// Sessions in PostgreSQL (feature `postgres`), in Flask-Session 0.8's
/// table: `sessions (id SERIAL PRIMARY KEY, session_id VARCHAR(255) UNIQUE,
/// data BYTEA, expiry TIMESTAMP WITHOUT TIME ZONE)`, where `session_id` is
/// the key prefix and the id, `data` the same record as in Redis and
/// `expiry` a naive UTC time (the store's connections run in UTC). The table
/// is created when missing, as SQLAlchemy would create it.
///
/// Every operation is one statement, as in [`SqliteStore`](crate::SqliteStore):
/// a sliding load is an `UPDATE ... RETURNING`, a conditional save an
/// `UPDATE` that matches the loaded bytes, a creation an `INSERT ... ON
/// CONFLICT` that only replaces an expired row. Expired rows are never
/// returned, and a background task deletes them in batches. Each statement
/// and each wait for a connection is bounded (5 seconds by default), so a
/// database that is down or stuck answers `503`.
///
/// ```no_run
/// use server_session::{PostgresStore, SessionConfig, SessionLayer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::builder("postgresql://app:secret@db.internal/app")
///     .open()
///     .await?;
/// let layer = SessionLayer::new(store, SessionConfig::default())?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner<PgPool>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("table", &self.inner.sql.table)
            .finish_non_exhaustive()
    }
}

/// Settings for a [`PostgresStore`].
pub struct PostgresStoreBuilder {
    options: Result<PgConnectOptions, String>,
    table: String,
    cleanup_every: Option<Duration>,
    max_connections: u32,
    timeout: Duration,
}

impl std::fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

sql::sql_builder!(PostgresStoreBuilder, 10);

impl PostgresStoreBuilder {
    /// The store; it connects, and creates the table, on first use.
    pub fn build(self) -> Result<PostgresStore, StoreError> {
        check_table(&self.table)?;
        let millis = self.timeout.as_millis().max(1).to_string();
        let options = self
            .options
            .map_err(|why| StoreError::Backend(why.into()))?
            .options([("timezone", "UTC"), ("statement_timeout", millis.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.timeout)
            .connect_lazy_with(options);
        Ok(PostgresStore::with_pool(pool, &self.table, self.cleanup_every))
    }

    /// The store, connected, with the table created now.
    pub async fn open(self) -> Result<PostgresStore, StoreError> {
        let store = self.build()?;
        store.ready().await?;
        Ok(store)
    }
}

impl PostgresStore {
    /// Settings for a store at `url`: `postgresql://user:password@host/db`,
    /// or as SQLAlchemy names it (`postgresql+psycopg2://...`).
    pub fn builder(url: impl AsRef<str>) -> PostgresStoreBuilder {
        let url = url.as_ref();
        // SQLAlchemy names the Python driver after a `+`.
        let plain = match url.split_once("://") {
            Some((scheme, rest)) => format!("{}://{rest}", scheme.split('+').next().unwrap_or(scheme)),
            None => url.to_owned(),
        };
        let options = PgConnectOptions::from_str(&plain)
            .map_err(|e| format!("{}: {e}", crate::config::redacted_url(url)));
        PostgresStoreBuilder {
            options,
            table: "sessions".into(),
            cleanup_every: Some(CLEANUP_EVERY),
            max_connections: 10,
            timeout: sql::TIMEOUT,
        }
    }

    /// A store on an existing pool, in `table`. Its connections should run
    /// in UTC (`timezone`), as `expiry` is a naive UTC time.
    pub fn from_pool(pool: PgPool, table: &str) -> Result<PostgresStore, StoreError> {
        check_table(table)?;
        Ok(PostgresStore::with_pool(pool, table, Some(CLEANUP_EVERY)))
    }

    fn with_pool(pool: PgPool, table: &str, cleanup_every: Option<Duration>) -> PostgresStore {
        PostgresStore {
            inner: Arc::new(Inner {
                pool,
                sql: statements(table),
                ready: OnceCell::new(),
                cleanup_every,
            }),
        }
    }
}

/// The statements, for one table. Times travel as text and are cast to
/// `timestamp`.
fn statements(table: &str) -> Statements {
    let t = format!("\"{table}\"");
    Statements {
        table: table.to_owned(),
        // As SQLAlchemy creates Flask-Session's model on PostgreSQL.
        create_table: format!(
            "CREATE TABLE IF NOT EXISTS {t} (\n\tid SERIAL NOT NULL, \n\tsession_id VARCHAR(255), \
             \n\tdata BYTEA, \n\texpiry TIMESTAMP WITHOUT TIME ZONE, \n\tPRIMARY KEY (id), \
             \n\tUNIQUE (session_id)\n)"
        ),
        create_index: format!("CREATE INDEX IF NOT EXISTS \"{table}_expiry\" ON {t} (expiry)"),
        select: format!("SELECT data FROM {t} WHERE session_id = $1 AND expiry > $2::timestamp"),
        slide: format!(
            "UPDATE {t} SET expiry = $3::timestamp WHERE session_id = $1 AND expiry > $2::timestamp \
             RETURNING data"
        ),
        // Takes the place of an expired row, never of a live one.
        insert: format!(
            "INSERT INTO {t} (session_id, data, expiry) VALUES ($1, $2, $3::timestamp) \
             ON CONFLICT (session_id) DO UPDATE SET data = EXCLUDED.data, expiry = EXCLUDED.expiry \
             WHERE {t}.expiry IS NULL OR {t}.expiry <= $4::timestamp"
        ),
        update: format!(
            "UPDATE {t} SET data = $1, expiry = $2::timestamp \
             WHERE session_id = $3 AND data = $4 AND expiry > $5::timestamp"
        ),
        delete: format!("DELETE FROM {t} WHERE session_id = $1"),
        touch: format!(
            "UPDATE {t} SET expiry = $1::timestamp WHERE session_id = $2 AND expiry > $3::timestamp"
        ),
        cleanup: format!(
            "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE expiry <= $1::timestamp LIMIT $2)"
        ),
    }
}

sql::sql_store!(PostgresStore, PgPool);
