//! The PostgreSQL store against a PostgreSQL server the tests start
//! (`initdb` and `postgres` in a temporary directory): the store contract,
//! Flask-Session's table and values, expiry and the cleanup, configuration
//! by Flask's names, and a database that goes away (`tests/concurrency.rs`
//! runs the concurrency guarantees on it too).

use std::time::Duration;

use crate::common::postgres::TestPostgres;
use crate::common::unique_table as table;
use server_session::store::{Expect, SessionStore};
use server_session::{PostgresStore, SessionConfig, SessionLayer};
use sqlx::Row;

async fn pool(server: &TestPostgres) -> sqlx::PgPool {
    sqlx::PgPool::connect(&server.url).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conforms_to_the_store_contract() {
    let server = TestPostgres::shared();
    let store = PostgresStore::builder(&server.url)
        .table(table())
        .open()
        .await
        .unwrap();
    server_session::store::conformance::run(&store, tokio::time::sleep).await;
    server_session::store::conformance::run_scan(&store, tokio::time::sleep).await;
}

#[tokio::test]
async fn the_table_is_flask_sessions_and_holds_the_same_record() {
    let server = TestPostgres::shared();
    let name = table();
    // SQLAlchemy's spelling of the URL works too.
    let url = server.url.replace("postgresql://", "postgresql+psycopg2://");
    let store = PostgresStore::builder(&url)
        .table(name.clone())
        .open()
        .await
        .unwrap();
    let app =
        crate::common::redis::routes().layer(SessionLayer::new(store, SessionConfig::default()).unwrap());
    let cookie = crate::common::get(&app, "/login", None)
        .await
        .cookie_pair()
        .unwrap();
    let id = cookie.split_once('=').unwrap().1;

    let pool = pool(server).await;
    let columns: Vec<(String, String, Option<i32>)> = sqlx::query(
        "SELECT column_name::text, data_type::text, character_maximum_length FROM information_schema.columns \
         WHERE table_name = $1 ORDER BY ordinal_position",
    )
    .bind(&name)
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    let expected = [
        ("id", "integer", None),
        ("session_id", "character varying", Some(255)),
        ("data", "bytea", None),
        ("expiry", "timestamp without time zone", None),
    ];
    assert_eq!(
        columns,
        expected.map(|(n, t, l)| (n.to_owned(), t.to_owned(), l)),
        "the columns SQLAlchemy creates for Flask-Session's model"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(&*format!(
        "SELECT session_id, data, to_char(expiry, 'YYYY-MM-DD HH24:MI:SS'), \
         extract(epoch from (expiry - (now() at time zone 'UTC')))::float8 FROM \"{name}\""
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>(0), format!("session:{id}"));
    assert_eq!(
        row.get::<Vec<u8>, _>(1),
        crate::common::unhex("83aa5f7065726d616e656e74c3a475736572a5616c696365a16e01"),
        "the same bytes as in Redis"
    );
    let left: f64 = row.get(3);
    let month = 31.0 * 24.0 * 3600.0;
    assert!(
        (month - 60.0..=month + 1.0).contains(&left),
        "a naive UTC time 31 days ahead: {left}"
    );

    assert_eq!(
        crate::common::get(&app, "/read", Some(&cookie)).await.body,
        "alice"
    );
    assert_eq!(crate::common::get(&app, "/incr", Some(&cookie)).await.body, "2");
    crate::common::get(&app, "/logout", Some(&cookie)).await;
    let rows: i64 = sqlx::query(sqlx::AssertSqlSafe(&*format!("SELECT count(*) FROM \"{name}\"")))
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn expired_rows_are_never_returned_and_are_deleted_in_batches() {
    let server = TestPostgres::shared();
    let name = table();
    let store = PostgresStore::builder(&server.url)
        .table(name.clone())
        .cleanup_every(None)
        .open()
        .await
        .unwrap();
    let pool = pool(server).await;
    crate::common::sql::expired_rows_are_never_returned_and_are_deleted(
        &store,
        async || {
            let old = format!(
                "UPDATE \"{name}\" SET expiry = '2000-01-01 00:00:00' WHERE session_id LIKE 'session:old%'"
            );
            sqlx::query(sqlx::AssertSqlSafe(&*old))
                .execute(&pool)
                .await
                .unwrap();
        },
        async || store.delete_expired().await.unwrap(),
        async || {
            let count = format!("SELECT count(*) FROM \"{name}\"");
            sqlx::query_scalar(sqlx::AssertSqlSafe(&*count))
                .fetch_one(&pool)
                .await
                .unwrap()
        },
    )
    .await;
}

#[tokio::test]
async fn flask_sqlalchemy_names_configure_it() {
    let server = TestPostgres::shared();
    let name = table();
    let config = SessionConfig::from_map([
        ("SESSION_TYPE", "sqlalchemy"),
        ("SQLALCHEMY_DATABASE_URI", server.url.as_str()),
        ("SESSION_SQLALCHEMY_TABLE", name.as_str()),
    ])
    .unwrap();
    let app = crate::common::redis::routes().layer(SessionLayer::from_config(config).unwrap());
    let cookie = crate::common::get(&app, "/login", None)
        .await
        .cookie_pair()
        .unwrap();
    assert_eq!(
        crate::common::get(&app, "/read", Some(&cookie)).await.body,
        "alice"
    );
    let rows: i64 = sqlx::query(sqlx::AssertSqlSafe(&*format!("SELECT count(*) FROM \"{name}\"")))
        .fetch_one(&pool(server).await)
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
}

/// A database that stops answering makes calls fail as unavailable within
/// the store's timeout, and the store works again once it is back.
#[tokio::test]
async fn a_stopped_database_is_unavailable_within_the_timeout() {
    let mut server = TestPostgres::start();
    let store = PostgresStore::builder(&server.url)
        .table(table())
        .timeout(Duration::from_millis(500))
        .open()
        .await
        .unwrap();
    let ttl = Duration::from_secs(60);
    store.save("session:a", b"x", ttl, Expect::Absent).await.unwrap();
    server.kill();
    crate::common::sql::unavailable_while_stopped(&store).await;
    server.process.restart();
    crate::common::sql::back_after_restart(&store).await;
}

/// `SESSION_SQLALCHEMY_SCHEMA` puts the table in that schema.
#[tokio::test]
async fn a_schema_holds_the_table() {
    let server = TestPostgres::shared();
    let name = table();
    let pool = pool(server).await;
    sqlx::query("CREATE SCHEMA IF NOT EXISTS flask")
        .execute(&pool)
        .await
        .unwrap();
    let config = SessionConfig::from_map([
        ("SESSION_TYPE", "sqlalchemy"),
        ("SQLALCHEMY_DATABASE_URI", server.url.as_str()),
        ("SESSION_SQLALCHEMY_TABLE", name.as_str()),
        ("SESSION_SQLALCHEMY_SCHEMA", "flask"),
    ])
    .unwrap();
    let app = crate::common::redis::routes().layer(SessionLayer::from_config(config).unwrap());
    let cookie = crate::common::get(&app, "/login", None)
        .await
        .cookie_pair()
        .unwrap();
    assert_eq!(crate::common::get(&app, "/incr", Some(&cookie)).await.body, "2");
    let rows: i64 = sqlx::query(sqlx::AssertSqlSafe(&*format!(
        "SELECT count(*) FROM flask.\"{name}\""
    )))
    .fetch_one(&pool)
    .await
    .unwrap()
    .get(0);
    assert_eq!(rows, 1);
    let bad = PostgresStore::builder(&server.url).schema("a b").build();
    assert!(bad.is_err());
}

/// A 100 MiB record planted in a row, requested by ten attackers at once:
/// another user's requests all succeed, and the row is deleted. The load
/// reads the value's size, not the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_planted_record_stalls_no_one() {
    let server = TestPostgres::shared();
    let name = table();
    let store = PostgresStore::builder(&server.url)
        .table(name.clone())
        .open()
        .await
        .unwrap();
    let app =
        crate::common::redis::routes().layer(SessionLayer::new(store, SessionConfig::default()).unwrap());
    let pool = pool(server).await;
    let plant = async |key: &str, record: Vec<u8>| {
        sqlx::query(sqlx::AssertSqlSafe(&*format!(
            "INSERT INTO \"{name}\" (session_id, data, expiry) \
             VALUES ($1, $2, (now() at time zone 'utc') + interval '1 hour')"
        )))
        .bind(key)
        .bind(record)
        .execute(&pool)
        .await
        .unwrap();
    };
    let exists = async |key: &str| {
        sqlx::query(sqlx::AssertSqlSafe(&*format!(
            "SELECT 1 FROM \"{name}\" WHERE session_id = $1"
        )))
        .bind(key)
        .fetch_optional(&pool)
        .await
        .unwrap()
        .is_some()
    };
    crate::common::attack::huge_record_stalls_no_one("postgres", app, plant, exists).await;
}
