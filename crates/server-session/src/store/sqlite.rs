//! Sessions in an SQLite file, in the table Flask-Session 0.8's `sqlalchemy`
//! backend uses, so a Flask app on the same file shares them.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};

use super::sql::{self, Inner, Source, Statements};
use super::{Expect, SaveOutcome, ScanCursor, ScanPage, SessionStore, StoreAdmin, StoreError, StoredEntry};

/// Sessions in an SQLite database (feature `sqlite`), in Flask-Session 0.8's
/// table: `sessions (id INTEGER PRIMARY KEY, session_id VARCHAR(255) UNIQUE,
/// data BLOB, expiry DATETIME)`, where `session_id` is the key prefix and
/// the id, `data` the same record as in Redis and `expiry` a naive UTC time.
/// The table is created when missing, as SQLAlchemy would create it, so
/// either side may start first.
///
/// Every operation is one statement: a load is a `SELECT` (a sliding one
/// adds an `UPDATE` of the expiry only once it lags by more than a minute,
/// see [`slide_slack`](SqliteStoreBuilder::slide_slack)), a conditional save
/// an `UPDATE` that matches the loaded bytes, a creation an `INSERT` that
/// only replaces an expired row. Expired
/// rows are never returned, and a background task deletes them in batches
/// (every ten minutes by default). The store keeps a small pool of
/// connections to the file, in WAL mode.
///
/// ```no_run
/// use server_session::{SessionConfig, SessionLayer, SqliteStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = SqliteStore::builder("sessions.db").open().await?;
/// let layer = SessionLayer::new(store, SessionConfig::default())?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner<SqlitePool>>,
}

sql::sql_builder!(
    SqliteStore,
    SqliteStoreBuilder,
    SqliteConnectOptions,
    SqlitePool,
    4
);

impl SqliteStoreBuilder {
    /// The store; it opens the file, and creates the table, on first use.
    pub fn build(self) -> Result<SqliteStore, StoreError> {
        let sql = statements(&self.table)?;
        self.finish(sql, |options, connections, timeout| {
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(timeout);
            sql::pool_options(connections, timeout).connect_lazy_with(options)
        })
    }
}

impl SqliteStore {
    /// Settings for a store in the file at `path`, or at a URL: SQLAlchemy's
    /// `sqlite:///relative/path.db` and `sqlite:////absolute/path.db`, or
    /// sqlx's `sqlite://path.db`.
    pub fn builder(path: impl AsRef<str>) -> SqliteStoreBuilder {
        let path = path.as_ref();
        let options = match path.strip_prefix("sqlite:///") {
            // SQLAlchemy: three slashes and a relative path, four for an
            // absolute one.
            Some(file) => Ok(SqliteConnectOptions::new().filename(file)),
            None if path.starts_with("sqlite:") => {
                SqliteConnectOptions::from_str(path).map_err(|e| format!("{path:?}: {e}"))
            }
            None => Ok(SqliteConnectOptions::new().filename(Path::new(path))),
        };
        let place = match &options {
            Ok(options) => place(path, options.get_filename()),
            Err(_) => format!("the SQLite database {path:?}"),
        };
        SqliteStore::with_source(Source::Options(options), place)
    }

    /// Settings for a store on the application's own pool (whose options
    /// are the application's; the builder's `max_connections` and `timeout`
    /// do not apply to it).
    pub fn from_pool(pool: SqlitePool) -> SqliteStoreBuilder {
        SqliteStore::with_source(Source::Pool(pool), "the application's SQLite pool".into())
    }
}

/// Where the file `path` names is, in full, for errors; with a word on
/// SQLAlchemy's rule when three slashes made a relative path of what may
/// have been meant as an absolute one.
fn place(path: &str, file: &Path) -> String {
    let full = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
    let mut place = format!("the SQLite file {}", full.display());
    if let Some(relative) = path
        .strip_prefix("sqlite:///")
        .filter(|rest| !rest.starts_with('/'))
    {
        place.push_str(&format!(
            " (sqlite:///{relative} is relative to the working directory; an absolute path takes four slashes: \
             sqlite:////{relative})"
        ));
    }
    place
}

/// `data` if it is a blob no longer than the first parameter, else NULL.
const DATA: &str = "CASE WHEN typeof(data) = 'blob' AND length(data) <= ?1 THEN data END";

/// Whether `data` is longer than the first parameter.
const LONG: &str = "length(data) > ?1";

/// The size of `data`: NULL for NULL, -1 for anything but a blob.
const SIZE: &str = "CASE typeof(data) WHEN 'blob' THEN length(data) WHEN 'null' THEN NULL ELSE -1 END";

/// The seconds from the first parameter to `expiry`: infinite for an
/// expiry that is not a time (which no writer of this table stores; as
/// text, it may still compare as later than now).
const LEFT: &str = "COALESCE((julianday(expiry) - julianday(?1)) * 86400.0, 1e999)";

/// The statements, for one table.
fn statements(table: &str) -> Result<Statements, StoreError> {
    let t = sql::qualified(None, table, '"')?;
    Ok(Statements {
        table: table.to_owned(),
        // As SQLAlchemy creates Flask-Session's model on SQLite.
        create_table: sql::statement!(
            "CREATE TABLE IF NOT EXISTS {t} (\n\tid INTEGER NOT NULL, \n\tsession_id VARCHAR(255), \
             \n\tdata BLOB, \n\texpiry DATETIME, \n\tPRIMARY KEY (id), \n\tUNIQUE (session_id)\n)"
        ),
        // `length` of a blob reads no more of it than its header; data
        // stored as text (never by Flask or this store) reads as -1. A
        // record over the limit is answered whatever its expiry: `expiry`
        // comes after `data` in the row, and reading it would mean walking
        // every overflow page of the record.
        select: sql::statement!(
            "SELECT {DATA}, {SIZE} FROM {t} WHERE session_id = ?2 AND ({LONG} OR expiry > ?3)"
        ),
        select_stale: sql::statement!(
            "SELECT {DATA}, {SIZE}, CASE WHEN {LONG} THEN 0 ELSE expiry < ?2 END FROM {t} \
             WHERE session_id = ?3 AND ({LONG} OR expiry > ?4)"
        ),
        // Takes the place of an expired row, never of a live one.
        insert: sql::statement!(
            "INSERT INTO {t} (session_id, data, expiry) VALUES (?1, ?2, ?3) \
             ON CONFLICT (session_id) DO UPDATE SET data = excluded.data, expiry = excluded.expiry \
             WHERE {t}.expiry IS NULL OR {t}.expiry <= ?4"
        ),
        replace_expired: None,
        update: sql::statement!(
            "UPDATE {t} SET data = ?1, expiry = ?2 WHERE session_id = ?3 AND data = ?4 AND expiry > ?5"
        ),
        delete: sql::statement!("DELETE FROM {t} WHERE session_id = ?1"),
        touch: sql::statement!("UPDATE {t} SET expiry = ?1 WHERE session_id = ?2 AND expiry > ?3"),
        max_id: sql::statement!("SELECT max(id) FROM {t}"),
        cleanup: sql::statement!("DELETE FROM {t} WHERE id > ?1 AND id <= ?2 AND expiry <= ?3"),
        scan: sql::statement!(
            "SELECT id, session_id, data, {LEFT} FROM {t} \
             WHERE id > ?2 AND expiry > ?3 AND session_id IS NOT NULL ORDER BY id LIMIT ?4"
        ),
        inspect: sql::statement!("SELECT data, {LEFT} FROM {t} WHERE session_id = ?2 AND expiry > ?3"),
    })
}

sql::sql_store!(SqliteStore, SqlitePool);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked() {
        assert!(SqliteStore::builder("x.db").table("bad name").build().is_err());
    }
}
