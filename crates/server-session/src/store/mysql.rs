//! Sessions in MySQL or MariaDB, in the table Flask-Session 0.8's
//! `sqlalchemy` backend uses, so a Flask app on the same database shares
//! them.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlx::mysql::{MySqlConnectOptions, MySqlPool};

use super::sql::{self, Inner, Source, Statements};
use super::{Expect, SaveOutcome, ScanCursor, ScanPage, SessionStore, StoreAdmin, StoreError, StoredEntry};

/// Sessions in MySQL 8 or MariaDB 10.5+ (feature `mysql`), in Flask-Session
/// 0.8's table: `sessions (id INTEGER AUTO_INCREMENT PRIMARY KEY, session_id
/// VARCHAR(255) UNIQUE, data BLOB, expiry DATETIME)`, where `session_id` is
/// the key prefix and the id, `data` the same record as in Redis and
/// `expiry` a naive UTC time. The table is created when missing, as
/// SQLAlchemy would create it but for two things: `session_id` is compared
/// byte for byte (`utf8mb4_bin`: ids are case-sensitive) and `data` is a
/// `MEDIUMBLOB`, as SQLAlchemy's `BLOB` holds 64 KiB, less than the
/// default [`max_record_size`](crate::SessionConfig::max_record_size). In a
/// table Flask created first, a larger record fails to save; `ALTER TABLE
/// sessions MODIFY data MEDIUMBLOB` lifts the limit for both.
///
/// A load, a save, a creation, a deletion and a touch are one statement
/// each, as in [`PostgresStore`](crate::PostgresStore) (a sliding load adds
/// an `UPDATE` of the expiry only once it lags by more than a minute, see
/// [`slide_slack`](MySqlStoreBuilder::slide_slack)), but for a creation that
/// finds an expired row under its id, which replaces it with a second
/// statement (MySQL has no conditional upsert that tells what it did).
/// Expired rows are never returned, and a background task deletes them in
/// batches. Each wait for a connection and for a row lock is
/// bounded (5 seconds by default; on MariaDB each statement too), so a
/// database that is down or stuck answers `503`.
///
/// ```no_run
/// use server_session::{MySqlStore, SessionConfig, SessionLayer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MySqlStore::builder("mysql://app:secret@db.internal/app")
///     .open()
///     .await?;
/// let layer = SessionLayer::new(store, SessionConfig::default())?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MySqlStore {
    inner: Arc<Inner<MySqlPool>>,
}

sql::sql_builder!(
    MySqlStore,
    MySqlStoreBuilder,
    MySqlConnectOptions,
    MySqlPool,
    10,
    schema
);

impl MySqlStoreBuilder {
    /// The store; it connects, and creates the table, on first use.
    pub fn build(self) -> Result<MySqlStore, StoreError> {
        let sql = statements(self.schema.as_deref(), &self.table)?;
        self.finish(sql, |options, connections, timeout| {
            let seconds = timeout.as_secs().max(1);
            let fraction = timeout.as_secs_f64().max(0.001);
            sql::pool_options::<sqlx::MySql>(connections, timeout)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        use sqlx::Executor;
                        conn.execute(sql::statement!(
                            "SET SESSION innodb_lock_wait_timeout = {seconds}"
                        ))
                        .await?;
                        // MariaDB's limit on a statement's run time; MySQL
                        // has none for writes, and refuses the name.
                        let _ = conn
                            .execute(sql::statement!("SET SESSION max_statement_time = {fraction}"))
                            .await;
                        Ok(())
                    })
                })
                .connect_lazy_with(options)
        })
    }
}

impl MySqlStore {
    /// Settings for a store at `url`: `mysql://user:password@host/db` (or
    /// `mariadb://`; with `?ssl-mode=required` for TLS), or as SQLAlchemy
    /// names it (`mysql+pymysql://...`).
    pub fn builder(url: impl AsRef<str>) -> MySqlStoreBuilder {
        let url = url.as_ref();
        let plain = sql::without_driver(url);
        let plain = match plain.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => plain,
        };
        let options = MySqlConnectOptions::from_str(&plain)
            .map_err(|e| format!("{}: {e}", crate::store::redacted_url(url)));
        MySqlStore::with_source(
            Source::Options(options),
            format!("MySQL at {}", crate::store::redacted_url(url)),
        )
    }

    /// Settings for a store on the application's own pool; the builder's
    /// `max_connections` and `timeout` do not apply to it.
    pub fn from_pool(pool: MySqlPool) -> MySqlStoreBuilder {
        MySqlStore::with_source(Source::Pool(pool), "the application's MySQL pool".into())
    }
}

/// `data` if no longer than the first parameter, else NULL.
const DATA: &str = "IF(LENGTH(data) <= ?, data, NULL)";

/// The size of `data`.
const SIZE: &str = "CAST(LENGTH(data) AS SIGNED)";

/// The seconds from the first parameter to `expiry`.
const LEFT: &str = "TIMESTAMPDIFF(MICROSECOND, ?, expiry) / 1e6";

/// The statements, for one table; times travel as text.
fn statements(schema: Option<&str>, table: &str) -> Result<Statements, StoreError> {
    let t = sql::qualified(schema, table, '`')?;
    Ok(Statements {
        table: table.to_owned(),
        // As SQLAlchemy creates Flask-Session's model on MySQL, but for the
        // collation of `session_id` and the size of `data`.
        create_table: sql::statement!(
            "CREATE TABLE IF NOT EXISTS {t} (\n\tid INTEGER NOT NULL AUTO_INCREMENT, \
             \n\tsession_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, \
             \n\tdata MEDIUMBLOB, \n\texpiry DATETIME, \n\tPRIMARY KEY (id), \n\tUNIQUE (session_id)\n)"
        ),
        select: sql::statement!("SELECT {DATA}, {SIZE} FROM {t} WHERE session_id = ? AND expiry > ?"),
        select_stale: sql::statement!(
            "SELECT {DATA}, {SIZE}, CAST(expiry < ? AS SIGNED) FROM {t} WHERE session_id = ? AND expiry > ?"
        ),
        insert: sql::statement!("INSERT INTO {t} (session_id, data, expiry) VALUES (?, ?, ?)"),
        replace_expired: Some(sql::statement!(
            "UPDATE {t} SET data = ?, expiry = ? WHERE session_id = ? AND (expiry IS NULL OR expiry <= ?)"
        )),
        update: sql::statement!(
            "UPDATE {t} SET data = ?, expiry = ? WHERE session_id = ? AND data = ? AND expiry > ?"
        ),
        delete: sql::statement!("DELETE FROM {t} WHERE session_id = ?"),
        touch: sql::statement!("UPDATE {t} SET expiry = ? WHERE session_id = ? AND expiry > ?"),
        max_id: sql::statement!("SELECT CAST(max(id) AS SIGNED) FROM {t}"),
        cleanup: sql::statement!("DELETE FROM {t} WHERE id > ? AND id <= ? AND expiry <= ?"),
        scan: sql::statement!(
            // The binary collation's text comes back as text.
            "SELECT CAST(id AS SIGNED), CONVERT(session_id USING utf8mb4), data, {LEFT} FROM {t} \
             WHERE id > ? AND expiry > ? AND session_id IS NOT NULL ORDER BY id LIMIT ?"
        ),
        inspect: sql::statement!("SELECT data, {LEFT} FROM {t} WHERE session_id = ? AND expiry > ?"),
    })
}

sql::sql_store!(MySqlStore, MySqlPool);
