//! Sessions in PostgreSQL, in the table Flask-Session 0.8's `sqlalchemy`
//! backend uses, so a Flask app on the same database shares them.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlx::postgres::{PgConnectOptions, PgPool};

use super::sql::{self, Inner, Source, Statements};
use super::{Expect, SaveOutcome, ScanCursor, ScanPage, SessionStore, StoreAdmin, StoreError, StoredEntry};

/// Sessions in PostgreSQL (feature `postgres`), in Flask-Session 0.8's
/// table: `sessions (id SERIAL PRIMARY KEY, session_id VARCHAR(255) UNIQUE,
/// data BYTEA, expiry TIMESTAMP WITHOUT TIME ZONE)`, where `session_id` is
/// the key prefix and the id, `data` the same record as in Redis and
/// `expiry` a naive UTC time (the store's connections run in UTC). The table
/// is created when missing, as SQLAlchemy would create it.
///
/// Every operation is one statement, as in [`SqliteStore`](crate::SqliteStore):
/// a load is a `SELECT` (a sliding one adds an `UPDATE` of the expiry only
/// once it lags by more than a minute, see
/// [`slide_slack`](PostgresStoreBuilder::slide_slack)), a conditional save an
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

sql::sql_builder!(
    PostgresStore,
    PostgresStoreBuilder,
    PgConnectOptions,
    PgPool,
    10,
    schema
);

impl PostgresStoreBuilder {
    /// The store; it connects, and creates the table, on first use.
    pub fn build(self) -> Result<PostgresStore, StoreError> {
        let sql = statements(self.schema.as_deref(), &self.table)?;
        self.finish(sql, |options, connections, timeout| {
            let millis = timeout.as_millis().max(1).to_string();
            let options = options.options([("timezone", "UTC"), ("statement_timeout", millis.as_str())]);
            sql::pool_options(connections, timeout).connect_lazy_with(options)
        })
    }
}

impl PostgresStore {
    /// Settings for a store at `url`: `postgresql://user:password@host/db`
    /// (with `?sslmode=require` for TLS), or as SQLAlchemy names it
    /// (`postgresql+psycopg2://...`).
    pub fn builder(url: impl AsRef<str>) -> PostgresStoreBuilder {
        let url = url.as_ref();
        let options = PgConnectOptions::from_str(&sql::without_driver(url))
            .map_err(|e| format!("{}: {e}", crate::store::redacted_url(url)));
        PostgresStore::with_source(
            Source::Options(options),
            format!("PostgreSQL at {}", crate::store::redacted_url(url)),
        )
    }

    /// Settings for a store on the application's own pool, whose
    /// connections should run in UTC (`timezone`), as `expiry` is a naive
    /// UTC time; the builder's `max_connections` and `timeout` do not apply
    /// to it.
    pub fn from_pool(pool: PgPool) -> PostgresStoreBuilder {
        PostgresStore::with_source(Source::Pool(pool), "the application's PostgreSQL pool".into())
    }
}

/// `data` if no longer than the first parameter, else NULL.
const DATA: &str = "CASE WHEN octet_length(data) <= $1 THEN data END";

/// The seconds from the first parameter to `expiry`: infinite for an
/// `infinity` expiry (which no writer of this table stores, and which
/// PostgreSQL cannot subtract from).
const LEFT: &str = "CASE WHEN isfinite(expiry) THEN EXTRACT(EPOCH FROM (expiry - $1::timestamp))::float8 \
                    ELSE 'Infinity'::float8 END";

/// The statements, for one table. Times travel as text and are cast to
/// `timestamp`.
fn statements(schema: Option<&str>, table: &str) -> Result<Statements, StoreError> {
    let t = sql::qualified(schema, table, '"')?;
    Ok(Statements {
        table: table.to_owned(),
        // As SQLAlchemy creates Flask-Session's model on PostgreSQL.
        create_table: sql::statement!(
            "CREATE TABLE IF NOT EXISTS {t} (\n\tid SERIAL NOT NULL, \n\tsession_id VARCHAR(255), \
             \n\tdata BYTEA, \n\texpiry TIMESTAMP WITHOUT TIME ZONE, \n\tPRIMARY KEY (id), \
             \n\tUNIQUE (session_id)\n)"
        ),
        // `octet_length` reads a stored value's size, not the value.
        select: sql::statement!(
            "SELECT {DATA}, octet_length(data)::int8 FROM {t} WHERE session_id = $2 AND expiry > $3::timestamp"
        ),
        select_stale: sql::statement!(
            "SELECT {DATA}, octet_length(data)::int8, \
             CASE WHEN expiry < $2::timestamp THEN 1::int8 ELSE 0::int8 END FROM {t} \
             WHERE session_id = $3 AND expiry > $4::timestamp"
        ),
        // Takes the place of an expired row, never of a live one.
        insert: sql::statement!(
            "INSERT INTO {t} (session_id, data, expiry) VALUES ($1, $2, $3::timestamp) \
             ON CONFLICT (session_id) DO UPDATE SET data = EXCLUDED.data, expiry = EXCLUDED.expiry \
             WHERE {t}.expiry IS NULL OR {t}.expiry <= $4::timestamp"
        ),
        replace_expired: None,
        update: sql::statement!(
            "UPDATE {t} SET data = $1, expiry = $2::timestamp \
             WHERE session_id = $3 AND data = $4 AND expiry > $5::timestamp"
        ),
        delete: sql::statement!("DELETE FROM {t} WHERE session_id = $1"),
        touch: sql::statement!(
            "UPDATE {t} SET expiry = $1::timestamp WHERE session_id = $2 AND expiry > $3::timestamp"
        ),
        max_id: sql::statement!("SELECT max(id)::int8 FROM {t}"),
        cleanup: sql::statement!("DELETE FROM {t} WHERE id > $1 AND id <= $2 AND expiry <= $3::timestamp"),
        scan: sql::statement!(
            "SELECT id::int8, session_id, data, {LEFT} FROM {t} \
             WHERE id > $2 AND expiry > $3::timestamp AND session_id IS NOT NULL ORDER BY id LIMIT $4"
        ),
        inspect: sql::statement!(
            "SELECT data, {LEFT} FROM {t} WHERE session_id = $2 AND expiry > $3::timestamp"
        ),
    })
}

sql::sql_store!(PostgresStore, PgPool);
