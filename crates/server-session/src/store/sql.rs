//! What the SQL stores share: Flask-Session's table, names, times, errors,
//! the conditional save and the cleanup, whatever the database.

use std::future::Future;
use std::sync::Weak;
use std::time::{Duration, SystemTime};

use sqlx::SqlStr;

use super::{Expect, SaveOutcome, StoreError, TTL_CEILING};

/// How a store deletes expired rows: every `every` (if at all), walking the
/// table `batch` ids per statement.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cleanup {
    pub(super) every: Option<Duration>,
    pub(super) batch: u32,
}

impl Default for Cleanup {
    /// Every ten minutes, 1000 ids at a time.
    fn default() -> Self {
        Cleanup {
            every: Some(Duration::from_secs(600)),
            batch: 1000,
        }
    }
}

/// How long a call waits for a connection or a lock by default.
pub(super) const TIMEOUT: Duration = Duration::from_secs(5);

/// Refuses a table or schema name that would need quoting rules of its
/// own.
pub(super) fn check_table(table: &str) -> Result<(), StoreError> {
    if table.is_empty() || !table.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(StoreError::Backend(
            format!("table or schema name {table:?}: use letters, digits and underscores").into(),
        ));
    }
    Ok(())
}

/// A URL without the Python driver SQLAlchemy names after a `+`
/// (`postgresql+psycopg2://` is `postgresql://`).
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(super) fn without_driver(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{}://{rest}", scheme.split('+').next().unwrap_or(scheme)),
        None => url.to_owned(),
    }
}

/// `table`, in `schema` when there is one, quoted with `quote` (checked
/// names need no escaping).
pub(super) fn qualified(schema: Option<&str>, table: &str, quote: char) -> Result<String, StoreError> {
    check_table(table)?;
    Ok(match schema {
        Some(schema) => {
            check_table(schema)?;
            format!("{quote}{schema}{quote}.{quote}{table}{quote}")
        }
        None => format!("{quote}{table}{quote}"),
    })
}

/// A UTC time as SQLAlchemy writes a naive `DateTime`:
/// `2026-11-27 09:30:00.000000`, which sorts as it compares.
pub(super) fn stamp(time: SystemTime) -> String {
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

/// The stamp `ttl` after `now`.
pub(super) fn expiry(now: SystemTime, ttl: Duration) -> String {
    stamp(now.checked_add(ttl.min(TTL_CEILING)).unwrap_or(now))
}

/// An sqlx error as a store error: what says the database cannot be
/// reached, or is too busy to answer in time, makes it unavailable.
pub(super) fn classify(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(err)),
        // SQLite's locked or busy file, MySQL's lock wait and statement
        // time limits, PostgreSQL's cancelled statement (57) and connection
        // errors (08, in both).
        sqlx::Error::Database(ref db)
            if ["locked", "busy", "Lock wait timeout", "max_statement_time"]
                .iter()
                .any(|words| db.message().contains(words))
                || db.code().is_some_and(|code| {
                    code.starts_with("57") || code.starts_with("08") || code == "70100"
                }) =>
        {
            StoreError::Unavailable(Box::new(err))
        }
        err => StoreError::Backend(Box::new(err)),
    }
}

/// A failure that says where the database is (`place`), for a person to
/// act on: "the SQLite file /srv/app/tmp/x.db: unable to open database
/// file".
#[derive(Debug)]
struct Located {
    place: String,
    source: super::BoxError,
}

impl std::fmt::Display for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.place, self.source)
    }
}

impl std::error::Error for Located {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// `err`, of the same kind, saying where the database is.
pub(super) fn located(err: StoreError, place: &str) -> StoreError {
    let at = |source| -> super::BoxError {
        Box::new(Located {
            place: place.to_owned(),
            source,
        })
    };
    match err {
        StoreError::Unavailable(source) => StoreError::Unavailable(at(source)),
        StoreError::Backend(source) => StoreError::Backend(at(source)),
        other => other,
    }
}

/// The conditional save, for any database: `write` runs the one statement
/// (an insert that only replaces an expired row, or an update that only
/// applies to the loaded bytes) and returns the rows it changed; when it
/// changed none, `current` reads what is there to tell a conflict from a
/// session that is gone. Another attempt only when the row changed between
/// the two.
pub(super) async fn save<W, WF, C, CF>(
    expect: Expect<'_>,
    write: W,
    current: C,
) -> Result<SaveOutcome, StoreError>
where
    W: Fn() -> WF,
    WF: Future<Output = Result<u64, StoreError>>,
    C: Fn() -> CF,
    CF: Future<Output = Result<Option<Vec<u8>>, StoreError>>,
{
    for _ in 0..4 {
        if write().await? == 1 {
            return Ok(SaveOutcome::Saved);
        }
        let current = match current().await {
            // Not a record (SQLite text): no session, as on Redis.
            Err(StoreError::WrongType) if expect == Expect::Absent => {
                return Ok(SaveOutcome::Conflict(Vec::new()));
            }
            Err(StoreError::WrongType) => return Ok(SaveOutcome::Gone),
            current => current?,
        };
        match (current, expect) {
            (Some(now), Expect::Unchanged(loaded)) if now == loaded => continue,
            (Some(now), _) => return Ok(SaveOutcome::Conflict(now)),
            (None, Expect::Unchanged(_)) => return Ok(SaveOutcome::Gone),
            (None, Expect::Absent) => continue,
        }
    }
    Err(StoreError::Backend("the row kept changing under a save".into()))
}

/// Walks ids `1..=top` in windows of `batch`: `delete(from, to)` deletes
/// the expired rows whose id is in `(from, to]` and says how many. Each
/// statement's work is bounded by the window, found through the primary key
/// (no index on `expiry`, which would make every write of a session dearer),
/// and between two windows the walk waits as long as the last one took, so
/// requests waiting for a lock it held (all writers, on SQLite) get it first.
pub(super) async fn delete_expired<F, Fut>(top: i64, batch: u32, delete: F) -> Result<u64, StoreError>
where
    F: Fn(i64, i64) -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    let mut from = 0;
    while from < top {
        let to = from.saturating_add(i64::from(batch));
        let started = tokio::time::Instant::now();
        total += delete(from, to).await?;
        from = to;
        tokio::time::sleep(started.elapsed().max(Duration::from_millis(1))).await;
    }
    Ok(total)
}

/// A store whose expired rows a background task deletes.
pub(super) trait Cleaned: Send + Sync + 'static {
    fn delete_expired(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Deletes expired rows every `every`, while the store lives.
pub(super) fn spawn_cleanup<S: Cleaned>(store: Weak<S>, every: Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(store) = store.upgrade() else {
                return;
            };
            match store.delete_expired().await {
                Ok(0) => {}
                Ok(rows) => tracing::debug!(rows, "deleted expired sessions"),
                Err(err) => tracing::warn!(error = %err, "could not delete expired sessions"),
            }
        }
    });
}

/// The record a `select` row holds, if any, as a load at most `limit` long
/// sees it: a row whose `data` is NULL (which no writer of this table
/// stores) holds no session; a longer one is [`StoreError::TooLarge`], and
/// data that is not binary (SQLite's text) [`StoreError::WrongType`].
pub(super) fn bounded<R: sqlx::Row>(row: Option<R>, limit: usize) -> Result<Option<Vec<u8>>, StoreError>
where
    usize: sqlx::ColumnIndex<R>,
    Option<Vec<u8>>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let Some(row) = row else {
        return Ok(None);
    };
    let data: Option<Vec<u8>> = row.try_get(0).map_err(classify)?;
    let size: Option<i64> = row.try_get(1).map_err(classify)?;
    match (data, size) {
        (_, Some(size)) if size < 0 => Err(StoreError::WrongType),
        (Some(data), _) => Ok(Some(data)),
        (None, Some(_)) => Err(StoreError::TooLarge { limit }),
        (None, None) => Ok(None),
    }
}

/// A limit as the databases take it.
pub(super) fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A pool of `connections`, each wait for one bounded by `timeout`. A
/// connection is checked with a ping before use only once it has been idle
/// for a second (a busy one has just answered): sqlx's default pings before
/// every use, a round trip more for every statement.
pub(super) fn pool_options<DB: sqlx::Database>(
    connections: u32,
    timeout: Duration,
) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(connections)
        .acquire_timeout(timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= Duration::from_secs(1) {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// Where a builder's pool comes from: a URL's options (or why they are
/// wrong), or the application's own pool.
pub(super) enum Source<O, P> {
    Options(Result<O, String>),
    Pool(P),
}

impl<O, P> Source<O, P> {
    /// The pool: the application's, or a new one from the options.
    pub(super) fn pool(self, connect: impl FnOnce(O) -> P) -> Result<P, StoreError> {
        match self {
            Source::Options(options) => Ok(connect(options.map_err(|why| StoreError::Backend(why.into()))?)),
            Source::Pool(pool) => Ok(pool),
        }
    }
}

/// A statement of a store, made once from `format!` arguments. Only
/// checked names go into one ([`qualified`] refuses any table or schema
/// name that would need quoting), and every value is a bind parameter, so
/// the text is safe to run as it is.
macro_rules! statement {
    ($($format:tt)*) => {
        ::sqlx::SqlSafeStr::into_sql_str(::sqlx::AssertSqlSafe(format!($($format)*)))
    };
}
pub(super) use statement;

/// The statements of a store, for one table. Each takes its parameters in
/// the order the store binds them (MySQL's `?` are positional).
pub(super) struct Statements {
    pub(super) table: String,
    pub(super) create_table: SqlStr,
    /// At `(limit, key, now)`, if live: `data` if at most `limit` bytes long
    /// (else NULL), and its size (a 64-bit integer, NULL for NULL data, -1
    /// for data that is not binary).
    pub(super) select: SqlStr,
    /// As `select`, at `(limit, threshold, key, now)`, and `1` (an integer)
    /// when the expiry is before `threshold`, `0` otherwise.
    pub(super) select_stale: SqlStr,
    /// Writes `(key, value, expiry)`: with `replace_expired`, a plain insert
    /// that fails on a duplicate; without, one that also takes `now` and
    /// only replaces an expired row.
    pub(super) insert: SqlStr,
    /// Writes `(value, expiry)` at `(key, now)` over an expired row, after
    /// the insert found a duplicate.
    pub(super) replace_expired: Option<SqlStr>,
    pub(super) update: SqlStr,
    pub(super) delete: SqlStr,
    pub(super) touch: SqlStr,
    /// The highest `id`, as a 64-bit integer (NULL for an empty table).
    pub(super) max_id: SqlStr,
    /// Deletes the rows expired at `now` whose id is in `(from, to]`,
    /// taking `(from, to, now)`.
    pub(super) cleanup: SqlStr,
    /// The live rows after an id, in id order, taking `(now, from, now,
    /// limit)`: `id` (64-bit integer), `session_id` (as text), `data`, and
    /// the seconds from the first `now` to `expiry` (a double).
    pub(super) scan: SqlStr,
    /// `data` and the seconds left (as in `scan`) at `(now, key, now)`, if
    /// live.
    pub(super) inspect: SqlStr,
}

/// How far a slid expiry may lag before a read writes it again, by
/// default.
pub(super) const SLACK: Duration = Duration::from_secs(60);

/// What an SQL store holds: its pool, its statements, whether the table is
/// ready, how much a slid expiry may lag, and how it cleans up.
pub(super) struct Inner<P> {
    pub(super) pool: P,
    /// Where the database is, for errors: the SQLite file's full path,
    /// the server's address.
    pub(super) place: String,
    pub(super) slack: Duration,
    pub(super) sql: Statements,
    pub(super) ready: tokio::sync::OnceCell<()>,
    pub(super) cleanup: Cleanup,
}

/// The part of an SQL store that is the same for every database, written
/// once: `$store` holds `inner: Arc<Inner<pool>>`, whose statements take
/// the same parameters in the same order everywhere.
macro_rules! sql_store {
    ($store:ident, $pool:ty) => {
        impl $store {
            /// Creates the table when missing, once, and starts the cleanup.
            async fn ready(&self) -> Result<(), StoreError> {
                self.inner
                    .ready
                    .get_or_try_init(|| async {
                        // Two processes creating the table at once: one of
                        // them may fail on the catalog, and finds it made the
                        // second time.
                        let mut tries = 0;
                        while let Err(err) = sqlx::query(self.inner.sql.create_table.clone())
                            .execute(&self.inner.pool)
                            .await
                        {
                            tries += 1;
                            if tries == 3 || !matches!(err, sqlx::Error::Database(_)) {
                                return Err(sql::located(sql::classify(err), &self.inner.place));
                            }
                        }
                        if let Some(every) = self.inner.cleanup.every {
                            sql::spawn_cleanup(Arc::downgrade(&self.inner), every);
                        }
                        Ok(())
                    })
                    .await
                    .map(drop)
            }

            /// Deletes expired rows, walking the table in windows of ids;
            /// returns how many.
            pub async fn delete_expired(&self) -> Result<u64, StoreError> {
                self.ready().await?;
                sql::Cleaned::delete_expired(&*self.inner).await
            }

            /// Moves the expiry of a live row at `key` to `ttl` after `now`.
            async fn touch_at(&self, key: &str, ttl: Duration, now: SystemTime) -> Result<(), StoreError> {
                sqlx::query(self.inner.sql.touch.clone())
                    .bind(sql::expiry(now, ttl))
                    .bind(key)
                    .bind(sql::stamp(now))
                    .execute(&self.inner.pool)
                    .await
                    .map_err(sql::classify)
                    .map(drop)
            }

            /// The bytes at `key`, if live, up to `limit`.
            async fn current(
                &self,
                key: &str,
                now: &str,
                limit: usize,
            ) -> Result<Option<Vec<u8>>, StoreError> {
                let row = sqlx::query(self.inner.sql.select.clone())
                    .bind(sql::limit(limit))
                    .bind(key)
                    .bind(now)
                    .fetch_optional(&self.inner.pool)
                    .await
                    .map_err(sql::classify)?;
                sql::bounded(row, limit)
            }
        }

        impl sql::Cleaned for sql::Inner<$pool> {
            async fn delete_expired(&self) -> Result<u64, StoreError> {
                let top: Option<i64> = sqlx::query_scalar(self.sql.max_id.clone())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::classify)?;
                sql::delete_expired(
                    top.unwrap_or(0),
                    self.cleanup.batch,
                    |from, to| async move {
                        sqlx::query(self.sql.cleanup.clone())
                            .bind(from)
                            .bind(to)
                            .bind(sql::stamp(SystemTime::now()))
                            .execute(&self.pool)
                            .await
                            .map(|done| done.rows_affected())
                            .map_err(sql::classify)
                    },
                )
                .await
            }
        }

        impl $store {
            /// The entry of a row: its key, data and time left.
            fn entry(key: String, data: Option<Vec<u8>>, left: f64) -> StoredEntry {
                let ttl = std::time::Duration::try_from_secs_f64(left.max(0.0)).ok();
                StoredEntry::new(key, data, ttl)
            }
        }

        impl StoreAdmin for $store {
            async fn scan(
                &self,
                prefix: &str,
                cursor: &ScanCursor,
                count: usize,
            ) -> Result<ScanPage, StoreError> {
                self.ready().await?;
                let from: i64 = match cursor.is_start() {
                    true => 0,
                    false => cursor
                        .as_str()
                        .parse()
                        .map_err(|_| StoreError::Backend("not a cursor of this store".into()))?,
                };
                let limit = count.clamp(1, 100_000);
                let now = sql::stamp(SystemTime::now());
                let rows: Vec<(i64, String, Option<Vec<u8>>, f64)> =
                    sqlx::query_as(self.inner.sql.scan.clone())
                        .bind(&now)
                        .bind(from)
                        .bind(&now)
                        .bind(limit as i64)
                        .fetch_all(&self.inner.pool)
                        .await
                        .map_err(sql::classify)?;
                let next = match rows.last() {
                    Some((id, ..)) if rows.len() == limit => Some(ScanCursor::new(id.to_string())),
                    _ => None,
                };
                let entries = rows
                    .into_iter()
                    .filter(|(_, key, ..)| key.starts_with(prefix))
                    .map(|(_, key, data, left)| Self::entry(key, data, left))
                    .collect();
                Ok(ScanPage { entries, next })
            }

            async fn inspect(&self, key: &str) -> Result<Option<StoredEntry>, StoreError> {
                self.ready().await?;
                let now = sql::stamp(SystemTime::now());
                let row: Option<(Option<Vec<u8>>, f64)> = sqlx::query_as(self.inner.sql.inspect.clone())
                    .bind(&now)
                    .bind(key)
                    .bind(&now)
                    .fetch_optional(&self.inner.pool)
                    .await
                    .map_err(sql::classify)?;
                Ok(row.map(|(data, left)| Self::entry(key.to_owned(), data, left)))
            }

            async fn purge_expired(&self) -> Result<Option<u64>, StoreError> {
                self.delete_expired().await.map(Some)
            }
        }

        impl SessionStore for $store {
            async fn load(
                &self,
                key: &str,
                slide: Option<Duration>,
                limit: usize,
            ) -> Result<Option<Vec<u8>>, StoreError> {
                self.ready().await?;
                let now = SystemTime::now();
                let Some(ttl) = slide else {
                    return self.current(key, &sql::stamp(now), limit).await;
                };
                // The expiry is written again only once it lags the one this
                // read sets by more than the slack: a read is then one
                // statement that writes nothing.
                let threshold = sql::expiry(now, ttl.saturating_sub(self.inner.slack.min(ttl / 10)));
                let row = sqlx::query(self.inner.sql.select_stale.clone())
                    .bind(sql::limit(limit))
                    .bind(threshold)
                    .bind(key)
                    .bind(sql::stamp(now))
                    .fetch_optional(&self.inner.pool)
                    .await
                    .map_err(sql::classify)?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let stale: i64 = sqlx::Row::try_get(&row, 2).map_err(sql::classify)?;
                let found = sql::bounded(Some(row), limit)?;
                if found.is_some() && stale != 0 {
                    self.touch_at(key, ttl, now).await?;
                }
                Ok(found)
            }

            async fn save(
                &self,
                key: &str,
                value: &[u8],
                ttl: Duration,
                expect: Expect<'_>,
            ) -> Result<SaveOutcome, StoreError> {
                self.ready().await?;
                let write = || async {
                    let now = SystemTime::now();
                    let pool = &self.inner.pool;
                    let sql = &self.inner.sql;
                    let done = match (expect, &sql.replace_expired) {
                        (Expect::Absent, None) => {
                            sqlx::query(sql.insert.clone())
                                .bind(key)
                                .bind(value)
                                .bind(sql::expiry(now, ttl))
                                .bind(sql::stamp(now))
                                .execute(pool)
                                .await
                        }
                        (Expect::Absent, Some(replace)) => {
                            let inserted = sqlx::query(sql.insert.clone())
                                .bind(key)
                                .bind(value)
                                .bind(sql::expiry(now, ttl))
                                .execute(pool)
                                .await;
                            match inserted {
                                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                                    sqlx::query(replace.clone())
                                        .bind(value)
                                        .bind(sql::expiry(now, ttl))
                                        .bind(key)
                                        .bind(sql::stamp(now))
                                        .execute(pool)
                                        .await
                                }
                                inserted => inserted,
                            }
                        }
                        (Expect::Unchanged(loaded), _) => {
                            sqlx::query(sql.update.clone())
                                .bind(value)
                                .bind(sql::expiry(now, ttl))
                                .bind(key)
                                .bind(loaded)
                                .bind(sql::stamp(now))
                                .execute(pool)
                                .await
                        }
                    };
                    Ok(done.map_err(sql::classify)?.rows_affected())
                };
                // What a conflict hands the engine to merge with is not
                // bounded by a limit: saves know none.
                let current = || async {
                    self.current(key, &sql::stamp(SystemTime::now()), usize::MAX)
                        .await
                };
                sql::save(expect, write, current).await
            }

            async fn delete(&self, key: &str) -> Result<(), StoreError> {
                self.ready().await?;
                sqlx::query(self.inner.sql.delete.clone())
                    .bind(key)
                    .execute(&self.inner.pool)
                    .await
                    .map_err(sql::classify)
                    .map(drop)
            }

            async fn touch(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
                self.ready().await?;
                self.touch_at(key, ttl, SystemTime::now()).await
            }
        }
    };
}
pub(super) use sql_store;

/// An SQL store's builder and what goes with it, written once: `$store`
/// (holding `inner: Arc<Inner<$pool>>`) gets its `Debug` and
/// `with_source`; `$builder` is defined, with the settings every SQL store
/// has, `finish` (the store, from the statements and a way to connect) and
/// `open`; `$connections` is its default number of connections. With
/// `schema`, the builder also offers `schema`, for a database with schemas.
macro_rules! sql_builder {
    ($store:ident, $builder:ident, $options:ty, $pool:ty, $connections:literal, schema) => {
        sql::sql_builder!($store, $builder, $options, $pool, $connections);

        impl $builder {
            /// The schema the table is in (`SESSION_SQLALCHEMY_SCHEMA`;
            /// default: the connection's own): letters, digits and
            /// underscores.
            pub fn schema(mut self, schema: impl Into<String>) -> Self {
                self.schema = Some(schema.into());
                self
            }
        }
    };
    ($store:ident, $builder:ident, $options:ty, $pool:ty, $connections:literal) => {
        impl std::fmt::Debug for $store {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($store))
                    .field("table", &self.inner.sql.table)
                    .finish_non_exhaustive()
            }
        }

        #[doc = concat!("Settings for a [`", stringify!($store), "`].")]
        pub struct $builder {
            source: sql::Source<$options, $pool>,
            place: String,
            table: String,
            schema: Option<String>,
            slack: Duration,
            cleanup: sql::Cleanup,
            max_connections: u32,
            timeout: Duration,
        }

        impl std::fmt::Debug for $builder {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($builder))
                    .field("table", &self.table)
                    .field("schema", &self.schema)
                    .finish_non_exhaustive()
            }
        }

        impl $store {
            fn with_source(source: sql::Source<$options, $pool>, place: String) -> $builder {
                $builder {
                    source,
                    place,
                    table: "sessions".into(),
                    schema: None,
                    slack: sql::SLACK,
                    cleanup: sql::Cleanup::default(),
                    max_connections: $connections,
                    timeout: sql::TIMEOUT,
                }
            }
        }

        impl $builder {
            /// The store with `sql`, on the application's pool or on one
            /// `connect` makes from the options, the number of connections
            /// and the timeout.
            fn finish(
                self,
                sql: sql::Statements,
                connect: impl FnOnce($options, u32, Duration) -> $pool,
            ) -> Result<$store, StoreError> {
                let (connections, timeout) = (self.max_connections, self.timeout);
                let pool = self
                    .source
                    .pool(|options| connect(options, connections, timeout))?;
                Ok($store {
                    inner: Arc::new(sql::Inner {
                        pool,
                        place: self.place,
                        slack: self.slack,
                        sql,
                        ready: tokio::sync::OnceCell::new(),
                        cleanup: self.cleanup,
                    }),
                })
            }

            /// The store, connected, with the table created now.
            pub async fn open(self) -> Result<$store, StoreError> {
                let store = self.build()?;
                store.ready().await?;
                Ok(store)
            }

            /// The table (`SESSION_SQLALCHEMY_TABLE`, default `sessions`):
            /// letters, digits and underscores.
            pub fn table(mut self, table: impl Into<String>) -> Self {
                self.table = table.into();
                self
            }

            /// How far behind a read may leave a session's expiry before it
            /// writes it again (default one minute, and never more than a
            /// tenth of the lifetime): with refreshes on, a read then costs
            /// one statement that writes nothing, and one write a minute per
            /// session slides the expiry. `Duration::ZERO` writes it on every
            /// read (two statements).
            pub fn slide_slack(mut self, slack: Duration) -> Self {
                self.slack = slack;
                self
            }

            /// How often expired rows are deleted (default ten minutes);
            /// `None` never deletes them (they are still never returned).
            pub fn cleanup_every(mut self, every: Option<Duration>) -> Self {
                self.cleanup.every = every;
                self
            }

            /// How many ids one statement of the cleanup covers (default
            /// 1000; it walks the table by primary key, deleting the expired
            /// rows of each window): requests run between two statements,
            /// so a smaller window holds locks for less time, a larger one
            /// finishes a pass sooner.
            pub fn cleanup_batch(mut self, rows: u32) -> Self {
                self.cleanup.batch = rows.max(1);
                self
            }

            #[doc = concat!("Connections kept to the database (default ", stringify!($connections), ").")]
            pub fn max_connections(mut self, connections: u32) -> Self {
                self.max_connections = connections.max(1);
                self
            }

            /// The longest a call waits for a connection, a lock or a
            /// statement before failing (default 5 seconds), so a database
            /// that is down or stuck answers `503` rather than hang.
            pub fn timeout(mut self, timeout: Duration) -> Self {
                self.timeout = timeout;
                self
            }
        }
    };
}
pub(super) use sql_builder;

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
        assert!(check_table("sessions").is_ok());
        assert!(check_table("bad name").is_err());
        assert!(check_table("").is_err());
    }
}
