//! The MySQL store against a MariaDB server the tests start
//! (`mariadb-install-db` and `mariadbd` in a temporary directory): the store
//! contract, Flask-Session's table and values, expiry and the cleanup,
//! configuration by Flask's names, a table Flask created first, and a
//! database that goes away (`tests/concurrency.rs` runs the concurrency
//! guarantees on it too).

use std::time::Duration;

use crate::common::mariadb::TestMariaDb;
use crate::common::unique_table as table;
use server_session::store::{Expect, SaveOutcome, SessionStore};
use server_session::{MySqlStore, SessionConfig, SessionLayer};
use sqlx::Row;

async fn pool(server: &TestMariaDb) -> sqlx::MySqlPool {
    sqlx::MySqlPool::connect(&server.url).await.unwrap()
}

async fn count(pool: &sqlx::MySqlPool, table: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(&*format!("SELECT count(*) FROM `{table}`")))
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conforms_to_the_store_contract() {
    let server = TestMariaDb::shared();
    let store = MySqlStore::builder(&server.url)
        .table(table())
        .open()
        .await
        .unwrap();
    server_session::store::conformance::run(&store, tokio::time::sleep).await;
    server_session::store::conformance::run_scan(&store, tokio::time::sleep).await;
}

#[tokio::test]
async fn the_table_is_flask_sessions_and_holds_the_same_record() {
    let server = TestMariaDb::shared();
    let name = table();
    // SQLAlchemy's spelling of the URL works too.
    let url = server.url.replace("mysql://", "mysql+pymysql://");
    let store = MySqlStore::builder(&url)
        .table(name.clone())
        .open()
        .await
        .unwrap();
    // A second store on the same table finds it made.
    MySqlStore::builder(&server.url)
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
    let columns: Vec<(String, String)> = sqlx::query(
        "SELECT CAST(column_name AS CHAR), CAST(column_type AS CHAR) FROM information_schema.columns \
         WHERE table_schema = 'test' AND table_name = ? ORDER BY ordinal_position",
    )
    .bind(&name)
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    let expected = [
        ("id", "int(11)"),
        ("session_id", "varchar(255)"),
        // SQLAlchemy's `BLOB` holds 64 KiB, less than a record may take.
        ("data", "mediumblob"),
        ("expiry", "datetime"),
    ];
    assert_eq!(
        columns,
        expected.map(|(n, t)| (n.to_owned(), t.to_owned())),
        "the columns SQLAlchemy creates for Flask-Session's model"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(&*format!(
        "SELECT session_id, data, TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), expiry) FROM `{name}`"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    // `utf8mb4_bin` text reads as bytes.
    assert_eq!(row.get::<Vec<u8>, _>(0), format!("session:{id}").into_bytes());
    assert_eq!(
        row.get::<Vec<u8>, _>(1),
        crate::common::unhex("83aa5f7065726d616e656e74c3a475736572a5616c696365a16e01"),
        "the same bytes as in Redis"
    );
    let left: i64 = row.get(2);
    let month = 31 * 24 * 3600;
    assert!(
        (month - 60..=month + 1).contains(&left),
        "a naive UTC time 31 days ahead: {left}"
    );

    assert_eq!(
        crate::common::get(&app, "/read", Some(&cookie)).await.body,
        "alice"
    );
    assert_eq!(crate::common::get(&app, "/incr", Some(&cookie)).await.body, "2");
    // Ids are case-sensitive: the same id in other letters finds nothing.
    let swapped: String = cookie
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let swapped = format!("session={}", swapped.split_once('=').unwrap().1);
    assert_eq!(crate::common::get(&app, "/read", Some(&swapped)).await.body, "");
    crate::common::get(&app, "/logout", Some(&cookie)).await;
    assert_eq!(count(&pool, &name).await, 0);
}

/// A table SQLAlchemy made first (its DDL for Flask-Session's model on
/// MySQL, in a schema of its own) serves the store as it is.
#[tokio::test]
async fn a_table_flask_created_first_in_a_schema() {
    let server = TestMariaDb::shared();
    let name = table();
    let pool = pool(server).await;
    sqlx::query("CREATE DATABASE IF NOT EXISTS flask")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(&*format!(
        "\nCREATE TABLE flask.{name} (\n\tid INTEGER NOT NULL AUTO_INCREMENT, \n\tsession_id VARCHAR(255), \
         \n\tdata BLOB, \n\texpiry DATETIME, \n\tPRIMARY KEY (id), \n\tUNIQUE (session_id)\n)\n\n"
    )))
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
    assert_eq!(
        crate::common::get(&app, "/read", Some(&cookie)).await.body,
        "alice"
    );
    assert_eq!(crate::common::get(&app, "/incr", Some(&cookie)).await.body, "2");
    let rows: i64 = sqlx::query(sqlx::AssertSqlSafe(&*format!(
        "SELECT count(*) FROM flask.`{name}`"
    )))
    .fetch_one(&pool)
    .await
    .unwrap()
    .get(0);
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn expired_rows_are_never_returned_and_are_deleted_in_batches() {
    let server = TestMariaDb::shared();
    let name = table();
    let store = MySqlStore::builder(&server.url)
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
                "UPDATE `{name}` SET expiry = '2000-01-01 00:00:00' WHERE session_id LIKE 'session:old%'"
            );
            sqlx::query(sqlx::AssertSqlSafe(&*old))
                .execute(&pool)
                .await
                .unwrap();
        },
        async || store.delete_expired().await.unwrap(),
        async || {
            let count = format!("SELECT count(*) FROM `{name}`");
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
    let server = TestMariaDb::shared();
    let name = table();
    let url = server.url.replace("mysql://", "mariadb+mariadbconnector://");
    let config = SessionConfig::from_map([
        ("SESSION_TYPE", "sqlalchemy"),
        ("SQLALCHEMY_DATABASE_URI", url.as_str()),
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
    assert_eq!(count(&pool(server).await, &name).await, 1);
}

/// A database that stops answering makes calls fail as unavailable within
/// the store's timeout, and the store works again once it is back.
#[tokio::test]
async fn a_stopped_database_is_unavailable_within_the_timeout() {
    let mut server = TestMariaDb::start();
    let store = MySqlStore::builder(&server.url)
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

/// A row lock held elsewhere (a transaction that went to sleep) fails the
/// save as unavailable within the timeout instead of waiting on it.
#[tokio::test]
async fn a_held_row_lock_is_unavailable_within_the_timeout() {
    let server = TestMariaDb::shared();
    let name = table();
    let store = MySqlStore::builder(&server.url)
        .table(name.clone())
        .timeout(Duration::from_secs(1))
        .open()
        .await
        .unwrap();
    let ttl = Duration::from_secs(60);
    store.save("session:l", b"x", ttl, Expect::Absent).await.unwrap();
    let pool = pool(server).await;
    let mut holder = pool.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(&*format!(
        "SELECT data FROM `{name}` WHERE session_id = 'session:l' FOR UPDATE"
    )))
    .fetch_one(&mut *holder)
    .await
    .unwrap();
    let save = store.save("session:l", b"y", ttl, Expect::Unchanged(b"x"));
    crate::common::sql::unavailable_within(Duration::from_secs(3), save).await;
    holder.rollback().await.unwrap();
    assert_eq!(
        store
            .save("session:l", b"y", ttl, Expect::Unchanged(b"x"))
            .await
            .unwrap(),
        SaveOutcome::Saved
    );
}
