//! Sessions in an SQLite file, in the table Flask-Session 0.8's `sqlalchemy`
//! backend uses, so a Flask app on the same file shares them.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::OnceCell;

use super::{Expect, SaveOutcome, SessionStore, StoreError, TTL_CEILING};

/// Expired rows removed per statement by the cleanup.
const CLEANUP_BATCH: u32 = 1000;

/// How often expired rows are deleted by default.
const CLEANUP_EVERY: Duration = Duration::from_secs(600);

/// Refuses a table name that would need quoting rules of its own.
fn check_table(table: &str) -> Result<(), StoreError> {
    if table.is_empty() || !table.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(StoreError::Backend(
            format!("table name {table:?}: use letters, digits and underscores").into(),
        ));
    }
    Ok(())
}

/// Sessions in an SQLite database (feature `sqlite`), in Flask-Session 0.8's
/// table: `sessions (id INTEGER PRIMARY KEY, session_id VARCHAR(255) UNIQUE,
/// data BLOB, expiry DATETIME)`, where `session_id` is the key prefix and
/// the id, `data` the same record as in Redis and `expiry` a naive UTC time.
/// The table is created when missing, as SQLAlchemy would create it, so
/// either side may start first.
///
/// Every operation is one statement: a sliding load is an `UPDATE ...
/// RETURNING`, a conditional save an `UPDATE` that matches the loaded
/// bytes, a creation an `INSERT` that only replaces an expired row. Expired
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
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    sql: Statements,
    ready: OnceCell<()>,
    cleanup_every: Option<Duration>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("table", &self.inner.sql.table)
            .finish_non_exhaustive()
    }
}

/// Settings for a [`SqliteStore`].
#[derive(Debug)]
pub struct SqliteStoreBuilder {
    options: Result<SqliteConnectOptions, String>,
    table: String,
    cleanup_every: Option<Duration>,
    max_connections: u32,
    timeout: Duration,
}

impl SqliteStoreBuilder {
    /// The table (`SESSION_SQLALCHEMY_TABLE`, default `sessions`): letters,
    /// digits and underscores.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// How often expired rows are deleted (default ten minutes); `None`
    /// never deletes them (they are still never returned).
    pub fn cleanup_every(mut self, every: Option<Duration>) -> Self {
        self.cleanup_every = every;
        self
    }

    /// Connections kept to the file (default 4).
    pub fn max_connections(mut self, connections: u32) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// How long a call waits for a connection or a lock before failing
    /// (default 5 seconds), so a stuck database answers `503` rather than
    /// hang.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The store; the file is opened, and the table created, on first use.
    pub fn build(self) -> Result<SqliteStore, StoreError> {
        let table = self.table;
        check_table(&table)?;
        let options = self
            .options
            .map_err(|why| StoreError::Backend(why.into()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(self.timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.timeout)
            .connect_lazy_with(options);
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                pool,
                sql: Statements::new(&table),
                ready: OnceCell::new(),
                cleanup_every: self.cleanup_every,
            }),
        })
    }

    /// The store, with the file opened and the table created now.
    pub async fn open(self) -> Result<SqliteStore, StoreError> {
        let store = self.build()?;
        store.ready().await?;
        Ok(store)
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
        SqliteStoreBuilder {
            options,
            table: "sessions".into(),
            cleanup_every: Some(CLEANUP_EVERY),
            max_connections: 4,
            timeout: Duration::from_secs(5),
        }
    }

    /// A store on an existing pool (whose options are the caller's), in
    /// `table`.
    pub fn from_pool(pool: SqlitePool, table: &str) -> Result<SqliteStore, StoreError> {
        check_table(table)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                pool,
                sql: Statements::new(table),
                ready: OnceCell::new(),
                cleanup_every: Some(CLEANUP_EVERY),
            }),
        })
    }

    /// Creates the table (and an index on `expiry` for the cleanup) when
    /// missing, once, and starts the cleanup.
    async fn ready(&self) -> Result<(), StoreError> {
        self.inner
            .ready
            .get_or_try_init(|| async {
                sqlx::query(&self.inner.sql.create_table)
                    .execute(&self.inner.pool)
                    .await
                    .map_err(classify)?;
                sqlx::query(&self.inner.sql.create_index)
                    .execute(&self.inner.pool)
                    .await
                    .map_err(classify)?;
                if let Some(every) = self.inner.cleanup_every {
                    spawn_cleanup(Arc::downgrade(&self.inner), every);
                }
                Ok(())
            })
            .await
            .map(drop)
    }

    /// Deletes expired rows, in batches; returns how many.
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.ready().await?;
        delete_expired(&self.inner).await
    }

    /// The current bytes at `key`, if live.
    async fn current(&self, key: &str, now: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query(&self.inner.sql.select)
            .bind(key)
            .bind(now)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(classify)?;
        row.map(|row| row.try_get::<Vec<u8>, _>(0).map_err(classify))
            .transpose()
    }
}

async fn delete_expired(inner: &Inner) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let deleted = sqlx::query(&inner.sql.cleanup)
            .bind(stamp(SystemTime::now()))
            .bind(CLEANUP_BATCH)
            .execute(&inner.pool)
            .await
            .map_err(classify)?
            .rows_affected();
        total += deleted;
        if deleted < u64::from(CLEANUP_BATCH) {
            return Ok(total);
        }
        // Let requests in between batches.
        tokio::task::yield_now().await;
    }
}

/// Deletes expired rows every `every`, while the store lives.
fn spawn_cleanup(inner: Weak<Inner>, every: Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(inner) = inner.upgrade() else {
                return;
            };
            match delete_expired(&inner).await {
                Ok(0) => {}
                Ok(rows) => tracing::debug!(rows, "deleted expired sessions"),
                Err(err) => tracing::warn!(error = %err, "could not delete expired sessions"),
            }
        }
    });
}

/// The statements, for one table.
struct Statements {
    table: String,
    create_table: String,
    create_index: String,
    select: String,
    slide: String,
    insert: String,
    update: String,
    delete: String,
    touch: String,
    cleanup: String,
}

impl Statements {
    fn new(table: &str) -> Statements {
        let t = format!("\"{table}\"");
        Statements {
            table: table.to_owned(),
            // As SQLAlchemy creates Flask-Session's model on SQLite.
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\n\tid INTEGER NOT NULL, \n\tsession_id VARCHAR(255), \
                 \n\tdata BLOB, \n\texpiry DATETIME, \n\tPRIMARY KEY (id), \n\tUNIQUE (session_id)\n)"
            ),
            create_index: format!("CREATE INDEX IF NOT EXISTS \"{table}_expiry\" ON {t} (expiry)"),
            select: format!("SELECT data FROM {t} WHERE session_id = ?1 AND expiry > ?2"),
            slide: format!("UPDATE {t} SET expiry = ?3 WHERE session_id = ?1 AND expiry > ?2 RETURNING data"),
            // Takes the place of an expired row, never of a live one.
            insert: format!(
                "INSERT INTO {t} (session_id, data, expiry) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (session_id) DO UPDATE SET data = excluded.data, expiry = excluded.expiry \
                 WHERE {t}.expiry IS NULL OR {t}.expiry <= ?4"
            ),
            update: format!(
                "UPDATE {t} SET data = ?1, expiry = ?2 WHERE session_id = ?3 AND data = ?4 AND expiry > ?5"
            ),
            delete: format!("DELETE FROM {t} WHERE session_id = ?1"),
            touch: format!("UPDATE {t} SET expiry = ?1 WHERE session_id = ?2 AND expiry > ?3"),
            cleanup: format!("DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE expiry <= ?1 LIMIT ?2)"),
        }
    }
}

/// A time as SQLAlchemy stores a naive UTC `DateTime` in SQLite:
/// `2026-11-27 09:30:00.000000`, which sorts as it compares.
fn stamp(time: SystemTime) -> String {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let at = time::OffsetDateTime::from_unix_timestamp(since.as_secs() as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        since.subsec_micros()
    )
}

fn expiry(now: SystemTime, ttl: Duration) -> String {
    stamp(now.checked_add(ttl.min(TTL_CEILING)).unwrap_or(now))
}

/// An sqlx error as a store error.
fn classify(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::PoolTimedOut => StoreError::Unavailable(Box::new(err)),
        sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(Box::new(err))
        }
        sqlx::Error::Database(ref db) if db.message().contains("locked") || db.message().contains("busy") => {
            StoreError::Unavailable(Box::new(err))
        }
        err => StoreError::Backend(Box::new(err)),
    }
}

impl SessionStore for SqliteStore {
    async fn load(&self, key: &str, slide: Option<Duration>) -> Result<Option<Vec<u8>>, StoreError> {
        self.ready().await?;
        let now = SystemTime::now();
        let Some(ttl) = slide else {
            return self.current(key, &stamp(now)).await;
        };
        let row = sqlx::query(&self.inner.sql.slide)
            .bind(key)
            .bind(stamp(now))
            .bind(expiry(now, ttl))
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(classify)?;
        row.map(|row| row.try_get::<Vec<u8>, _>(0).map_err(classify))
            .transpose()
    }

    async fn save(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        expect: Expect<'_>,
    ) -> Result<SaveOutcome, StoreError> {
        self.ready().await?;
        // Each attempt is one statement; another one only when the row
        // changed between the write that did not apply and the read of
        // what is there.
        for _ in 0..4 {
            let now = SystemTime::now();
            let (at, until) = (stamp(now), expiry(now, ttl));
            let written = match expect {
                Expect::Absent => sqlx::query(&self.inner.sql.insert)
                    .bind(key)
                    .bind(value)
                    .bind(&until)
                    .bind(&at),
                Expect::Unchanged(loaded) => sqlx::query(&self.inner.sql.update)
                    .bind(value)
                    .bind(&until)
                    .bind(key)
                    .bind(loaded)
                    .bind(&at),
            }
            .execute(&self.inner.pool)
            .await
            .map_err(classify)?
            .rows_affected();
            if written == 1 {
                return Ok(SaveOutcome::Saved);
            }
            match (self.current(key, &at).await?, expect) {
                (Some(current), Expect::Unchanged(loaded)) if current == loaded => continue,
                (Some(current), _) => return Ok(SaveOutcome::Conflict(current)),
                (None, Expect::Unchanged(_)) => return Ok(SaveOutcome::Gone),
                (None, Expect::Absent) => continue,
            }
        }
        Err(StoreError::Backend("the row kept changing under a save".into()))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.ready().await?;
        sqlx::query(&self.inner.sql.delete)
            .bind(key)
            .execute(&self.inner.pool)
            .await
            .map_err(classify)
            .map(drop)
    }

    async fn touch(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        self.ready().await?;
        let now = SystemTime::now();
        sqlx::query(&self.inner.sql.touch)
            .bind(expiry(now, ttl))
            .bind(key)
            .bind(stamp(now))
            .execute(&self.inner.pool)
            .await
            .map_err(classify)
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_sqlalchemy_datetimes() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_798_315_316_250_001);
        assert_eq!(stamp(t), "2026-12-26 20:01:56.250001");
    }

    #[test]
    fn table_names_are_checked() {
        assert!(SqliteStore::builder("x.db").table("bad name").build().is_err());
        assert!(SqliteStore::builder("x.db").table("").build().is_err());
    }
}
