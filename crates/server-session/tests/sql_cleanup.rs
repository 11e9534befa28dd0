//! The SQL stores' cleanup against a backlog of one million expired rows,
//! on SQLite, PostgreSQL and MariaDB (servers the test starts): the store's
//! own timer deletes them, batch by batch, while requests keep being served,
//! and the one live session stays. No request touches an expired row.
//!
//! Prints, per database, how long the backlog took to clear, in batches of
//! what size, and the latency of the requests served meanwhile beside the
//! same requests before the cleanup. `SQL_CLEANUP_ROWS` and
//! `SQL_CLEANUP_BATCHES` (comma-separated) change the backlog and the batch
//! sizes tried.

#[macro_use]
// The shared helpers, of which this suite uses a few.
#[allow(dead_code)]
#[path = "it/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use axum::Router;
use server_session::store::{Expect, SessionStore};
use server_session::{MySqlStore, PostgresStore, SessionConfig, SessionLayer, SqliteStore};

struct Report {
    database: &'static str,
    rows: u64,
    batch: u32,
    fill: Duration,
    clear: Duration,
    before: Latencies,
    during: Latencies,
}

/// Request latencies: how many, median, 99th percentile, longest.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn at(&self, q: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        sorted[((sorted.len() - 1) as f64 * q) as usize]
    }

    fn text(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        format!(
            "{} / {:.2} / {:.2} / {:.1} ms",
            self.0.len(),
            ms(self.at(0.5)),
            ms(self.at(0.99)),
            ms(self.at(1.0))
        )
    }
}

/// One database: how to fill a table with expired rows, count them, and
/// build a store on it.
trait Database {
    const NAME: &'static str;
    type Store: SessionStore + Clone;
    /// Inserts `rows` expired rows into `table`, in one statement.
    async fn fill(&self, table: &str, rows: u64);
    /// Whether `table` still has an expired row.
    async fn any_expired(&self, table: &str) -> bool;
    /// A store on `table` that cleans up every `every`, `batch` at a time.
    async fn store(&self, table: &str, every: Option<Duration>, batch: u32) -> Self::Store;
}

const OLD: &str = "'2000-01-01 00:00:00'";

struct Sqlite {
    _dir: tempfile::TempDir,
    path: String,
    pool: sqlx::SqlitePool,
}

impl Database for Sqlite {
    const NAME: &'static str = "SQLite";
    type Store = SqliteStore;

    async fn fill(&self, table: &str, rows: u64) {
        sqlx::query(sqlx::AssertSqlSafe(&*format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
             INSERT INTO \"{table}\" (session_id, data, expiry) \
             SELECT 'session:old' || i, zeroblob(100), {OLD} FROM n"
        )))
        .execute(&self.pool)
        .await
        .unwrap();
    }

    async fn any_expired(&self, table: &str) -> bool {
        let query = format!("SELECT 1 FROM \"{table}\" WHERE expiry <= {OLD} LIMIT 1");
        sqlx::query(sqlx::AssertSqlSafe(&*query))
            .fetch_optional(&self.pool)
            .await
            .unwrap()
            .is_some()
    }

    async fn store(&self, table: &str, every: Option<Duration>, batch: u32) -> SqliteStore {
        let builder = SqliteStore::builder(&self.path).table(table).cleanup_every(every);
        builder.cleanup_batch(batch).open().await.unwrap()
    }
}

struct Postgres {
    server: common::postgres::TestPostgres,
    pool: sqlx::PgPool,
}

impl Database for Postgres {
    const NAME: &'static str = "PostgreSQL";
    type Store = PostgresStore;

    async fn fill(&self, table: &str, rows: u64) {
        sqlx::query(sqlx::AssertSqlSafe(&*format!(
            "INSERT INTO \"{table}\" (session_id, data, expiry) \
             SELECT 'session:old' || i, decode(repeat('00', 100), 'hex'), {OLD} \
             FROM generate_series(1, {rows}) i"
        )))
        .execute(&self.pool)
        .await
        .unwrap();
    }

    async fn any_expired(&self, table: &str) -> bool {
        let query = format!("SELECT 1 FROM \"{table}\" WHERE expiry <= {OLD} LIMIT 1");
        sqlx::query(sqlx::AssertSqlSafe(&*query))
            .fetch_optional(&self.pool)
            .await
            .unwrap()
            .is_some()
    }

    async fn store(&self, table: &str, every: Option<Duration>, batch: u32) -> PostgresStore {
        let builder = PostgresStore::builder(&self.server.url)
            .table(table)
            .cleanup_every(every);
        builder.cleanup_batch(batch).open().await.unwrap()
    }
}

struct MariaDb {
    server: common::mariadb::TestMariaDb,
    pool: sqlx::MySqlPool,
}

impl Database for MariaDb {
    const NAME: &'static str = "MariaDB";
    type Store = MySqlStore;

    async fn fill(&self, table: &str, rows: u64) {
        // MariaDB's sequence engine: `seq_1_to_N` is a table of 1..N.
        sqlx::query(sqlx::AssertSqlSafe(&*format!(
            "INSERT INTO `{table}` (session_id, data, expiry) \
             SELECT CONCAT('session:old', seq), REPEAT(x'00', 100), {OLD} FROM seq_1_to_{rows}"
        )))
        .execute(&self.pool)
        .await
        .unwrap();
    }

    async fn any_expired(&self, table: &str) -> bool {
        let query = format!("SELECT 1 FROM `{table}` WHERE expiry <= {OLD} LIMIT 1");
        sqlx::query(sqlx::AssertSqlSafe(&*query))
            .fetch_optional(&self.pool)
            .await
            .unwrap()
            .is_some()
    }

    async fn store(&self, table: &str, every: Option<Duration>, batch: u32) -> MySqlStore {
        let builder = MySqlStore::builder(&self.server.url)
            .table(table)
            .cleanup_every(every);
        builder.cleanup_batch(batch).open().await.unwrap()
    }
}

/// Reads the session at `cookie` until `done`, timing each request.
async fn serve(app: &Router, cookie: &str, mut done: impl AsyncFnMut() -> bool) -> Latencies {
    let mut times = Vec::new();
    loop {
        for _ in 0..20 {
            let started = Instant::now();
            let response = common::get(app, "/read", Some(cookie)).await;
            times.push(started.elapsed());
            assert_eq!(response.body, "alice", "every request is served");
        }
        if done().await {
            return Latencies(times);
        }
    }
}

async fn run<D: Database>(db: &D, rows: u64, batch: u32) -> Report {
    let table = common::unique_table();
    // The table, made by a store that never cleans up.
    let quiet = db.store(&table, None, batch).await;
    let started = Instant::now();
    db.fill(&table, rows).await;
    let fill = started.elapsed();
    let app =
        common::redis::routes().layer(SessionLayer::new(quiet.clone(), SessionConfig::default()).unwrap());
    let cookie = common::get(&app, "/login", None).await.cookie_pair().unwrap();
    let key = format!("session:{}", cookie.split_once('=').unwrap().1);
    let quiet_until = Instant::now() + Duration::from_secs(2);
    let before = serve(&app, &cookie, async || Instant::now() > quiet_until).await;

    // The same table, now with the cleanup on a short timer.
    let started = Instant::now();
    let store = db.store(&table, Some(Duration::from_millis(100)), batch).await;
    let app =
        common::redis::routes().layer(SessionLayer::new(store.clone(), SessionConfig::default()).unwrap());
    let mut checked = Instant::now();
    let during = serve(&app, &cookie, async || {
        if checked.elapsed() < Duration::from_millis(250) {
            return false;
        }
        checked = Instant::now();
        !db.any_expired(&table).await
    })
    .await;
    let clear = started.elapsed();
    assert!(
        store.load(&key, None, common::LIMIT).await.unwrap().is_some(),
        "the live session stays"
    );
    assert_ne!(
        store
            .save(&key, b"x", Duration::from_secs(60), Expect::Absent)
            .await
            .unwrap(),
        server_session::store::SaveOutcome::Saved
    );
    Report {
        database: D::NAME,
        rows,
        batch,
        fill,
        clear,
        before,
        during,
    }
}

fn main() {
    let rows: u64 = std::env::var("SQL_CLEANUP_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let batches: Vec<u32> = std::env::var("SQL_CLEANUP_BATCHES")
        .ok()
        .map(|v| v.split(',').filter_map(|b| b.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1000]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let reports = runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.db").display().to_string();
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{path}?mode=rwc"))
            .await
            .unwrap();
        let sqlite = Sqlite {
            _dir: dir,
            path,
            pool,
        };
        let server = common::postgres::TestPostgres::start();
        let pool = sqlx::PgPool::connect(&server.url).await.unwrap();
        let postgres = Postgres { server, pool };
        let server = common::mariadb::TestMariaDb::start();
        let pool = sqlx::MySqlPool::connect(&server.url).await.unwrap();
        let mariadb = MariaDb { server, pool };
        let mut reports = Vec::new();
        for &batch in &batches {
            reports.push(run(&sqlite, rows, batch).await);
            reports.push(run(&postgres, rows, batch).await);
            reports.push(run(&mariadb, rows, batch).await);
        }
        reports
    });
    println!();
    println!(
        "| database | expired rows | batch | filled in | cleared in | requests before: n / p50 / p99 / max | during: n / p50 / p99 / max |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &reports {
        println!(
            "| {} | {} | {} | {:.1} s | {:.1} s | {} | {} |",
            r.database,
            r.rows,
            r.batch,
            r.fill.as_secs_f64(),
            r.clear.as_secs_f64(),
            r.before.text(),
            r.during.text()
        );
    }
    println!();
}
