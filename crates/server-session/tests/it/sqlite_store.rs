//! The SQLite store against the store contract, on files in temporary
//! directories: Flask-Session's table and values, expiry and the cleanup,
//! and the concurrency guarantees through both frameworks.

use std::time::{Duration, SystemTime};

use server_session::store::{Expect, SaveOutcome, SessionStore, StoreAdmin};
use server_session::{SessionConfig, SessionLayer, SqliteStore};
use sqlx::Row;

fn file(dir: &tempfile::TempDir) -> String {
    dir.path().join("sessions.db").display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conforms_to_the_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::builder(file(&dir)).open().await.unwrap();
    server_session::store::conformance::run(&store, tokio::time::sleep).await;
    server_session::store::conformance::run_scan(&store, tokio::time::sleep).await;
}

#[tokio::test]
async fn the_table_is_flask_sessions_and_holds_the_same_record() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}", file(&dir));
    let store = SqliteStore::builder(&url).open().await.unwrap();
    let app =
        crate::common::redis::routes().layer(SessionLayer::new(store, SessionConfig::default()).unwrap());
    let cookie = crate::common::get(&app, "/login", None)
        .await
        .cookie_pair()
        .unwrap();
    let id = cookie.split_once('=').unwrap().1;

    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file(&dir)))
        .await
        .unwrap();
    let columns: Vec<(String, String)> = sqlx::query("PRAGMA table_info(sessions)")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>("name"), r.get::<String, _>("type")))
        .collect();
    let expected = [
        ("id", "INTEGER"),
        ("session_id", "VARCHAR(255)"),
        ("data", "BLOB"),
        ("expiry", "DATETIME"),
    ];
    assert_eq!(
        columns,
        expected.map(|(n, t)| (n.to_owned(), t.to_owned())),
        "the columns SQLAlchemy creates for Flask-Session's model"
    );
    let row = sqlx::query("SELECT session_id, data, expiry FROM sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>(0), format!("session:{id}"));
    assert_eq!(
        row.get::<Vec<u8>, _>(1),
        crate::common::unhex("83aa5f7065726d616e656e74c3a475736572a5616c696365a16e01"),
        "the same bytes as in Redis"
    );
    let expiry: String = row.get(2);
    let month = SystemTime::now() + Duration::from_secs(31 * 24 * 3600);
    let expected = time::OffsetDateTime::from(month);
    assert!(
        expiry.starts_with(&format!(
            "{:04}-{:02}-{:02} ",
            expected.year(),
            u8::from(expected.month()),
            expected.day()
        )),
        "a naive UTC time 31 days ahead: {expiry}"
    );
    assert_eq!(expiry.len(), "2026-12-28 09:00:00.000000".len());

    assert_eq!(
        crate::common::get(&app, "/read", Some(&cookie)).await.body,
        "alice"
    );
    assert_eq!(crate::common::get(&app, "/incr", Some(&cookie)).await.body, "2");
    crate::common::get(&app, "/logout", Some(&cookie)).await;
    let left: i64 = sqlx::query("SELECT count(*) FROM sessions")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[tokio::test]
async fn expired_rows_are_never_returned_and_are_deleted_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::builder(file(&dir))
        .cleanup_every(None)
        .open()
        .await
        .unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file(&dir)))
        .await
        .unwrap();
    crate::common::sql::expired_rows_are_never_returned_and_are_deleted(
        &store,
        async || {
            sqlx::query("UPDATE sessions SET expiry = '2000-01-01 00:00:00.000000' WHERE session_id LIKE 'session:old%'")
                .execute(&pool)
                .await
                .unwrap();
        },
        async || store.delete_expired().await.unwrap(),
        async || sqlx::query_scalar("SELECT count(*) FROM sessions").fetch_one(&pool).await.unwrap(),
    )
    .await;
}

#[tokio::test]
async fn a_table_name_that_needs_quoting_is_refused() {
    let err = SqliteStore::builder("x.db")
        .table("sessions; DROP TABLE users")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("table or schema name"), "{err}");
}

#[tokio::test]
async fn flask_sqlalchemy_names_configure_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}", file(&dir));
    let config = SessionConfig::from_map([
        ("SESSION_TYPE", "sqlalchemy"),
        ("SQLALCHEMY_DATABASE_URI", url.as_str()),
        ("SESSION_SQLALCHEMY_TABLE", "flask_sessions"),
        // Accepted; the store cleans up on its own timer.
        ("SESSION_CLEANUP_N_REQUESTS", "100"),
    ])
    .unwrap();
    for bad in ["0", "often"] {
        assert!(
            SessionConfig::from_map([("SESSION_CLEANUP_N_REQUESTS", bad)]).is_err(),
            "{bad}"
        );
    }
    assert!(SessionConfig::from_map([("SESSION_CLEANUP_N_REQUESTS", "None")]).is_ok());
    let app = crate::common::redis::routes().layer(SessionLayer::from_config(config).unwrap());
    let cookie = crate::common::get(&app, "/login", None)
        .await
        .cookie_pair()
        .unwrap();
    assert_eq!(
        crate::common::get(&app, "/read", Some(&cookie)).await.body,
        "alice"
    );
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file(&dir)))
        .await
        .unwrap();
    let rows: i64 = sqlx::query("SELECT count(*) FROM flask_sessions")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);

    let missing = SessionConfig::from_map([("SESSION_TYPE", "sqlalchemy")]).unwrap_err();
    assert!(
        missing.to_string().contains("SQLALCHEMY_DATABASE_URI"),
        "{missing}"
    );
    let oracle = SessionConfig::from_map([
        ("SESSION_TYPE", "sqlalchemy"),
        ("SQLALCHEMY_DATABASE_URI", "oracle://app:secret@db/app"),
    ])
    .unwrap();
    let err = SessionLayer::from_config(oracle).unwrap_err().to_string();
    assert!(err.contains("sqlite:///") && !err.contains("secret"), "{err}");
    let schema = SessionConfig::from_map([
        ("SESSION_TYPE", "sqlalchemy"),
        ("SQLALCHEMY_DATABASE_URI", url.as_str()),
        ("SESSION_SQLALCHEMY_SCHEMA", "app"),
    ])
    .unwrap();
    let err = SessionLayer::from_config(schema).unwrap_err().to_string();
    assert!(err.contains("SQLite, which has no schemas"), "{err}");
    // A table Flask numbers with a named sequence would get rows without
    // an id here.
    let err = SessionConfig::from_map([("SESSION_SQLALCHEMY_SEQUENCE", "session_id_seq")]).unwrap_err();
    assert!(
        err.to_string().starts_with("SESSION_SQLALCHEMY_SEQUENCE"),
        "{err}"
    );
    assert!(SessionConfig::from_map([("SESSION_SQLALCHEMY_SEQUENCE", "None")]).is_ok());
}

/// A row another writer left without data holds no session: a fresh one,
/// not an error.
#[tokio::test]
async fn a_row_without_data_is_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::builder(file(&dir)).open().await.unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file(&dir)))
        .await
        .unwrap();
    sqlx::query("INSERT INTO sessions (session_id, data, expiry) VALUES ('session:empty', NULL, '2999-01-01 00:00:00.000000')")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        store
            .load("session:empty", None, crate::common::LIMIT)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .load(
                "session:empty",
                Some(Duration::from_secs(60)),
                crate::common::LIMIT
            )
            .await
            .unwrap(),
        None
    );
}

/// A sliding read leaves an expiry that is within the slack of the one it
/// would set, and moves one that lags by more.
#[tokio::test]
async fn a_read_slides_the_expiry_once_it_lags_by_more_than_the_slack() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::builder(file(&dir))
        .slide_slack(Duration::from_secs(60))
        .open()
        .await
        .unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file(&dir)))
        .await
        .unwrap();
    let left = || async {
        let row = sqlx::query("SELECT (julianday(expiry) - julianday('now')) * 86400 FROM sessions")
            .fetch_one(&pool)
            .await
            .unwrap();
        row.get::<f64, _>(0)
    };
    let hour = Duration::from_secs(3600);
    store.save("session:s", b"x", hour, Expect::Absent).await.unwrap();
    sqlx::query("UPDATE sessions SET expiry = datetime('now', '+3570 seconds')")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        store
            .load("session:s", Some(hour), crate::common::LIMIT)
            .await
            .unwrap(),
        Some(b"x".to_vec())
    );
    assert!(
        (3560.0..3571.0).contains(&left().await),
        "30 s behind: left alone"
    );
    sqlx::query("UPDATE sessions SET expiry = datetime('now', '+3000 seconds')")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        store
            .load("session:s", Some(hour), crate::common::LIMIT)
            .await
            .unwrap(),
        Some(b"x".to_vec())
    );
    assert!((3590.0..3601.0).contains(&left().await), "10 min behind: slid");
}

/// A file another process holds locked for writing makes a save fail as
/// unavailable within the store's timeout (a `503`), not hang; reads go on,
/// and the save works once the lock is released.
#[tokio::test]
async fn a_locked_file_is_unavailable_within_the_timeout() {
    use sqlx::Connection;

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::builder(file(&dir))
        .timeout(Duration::from_millis(300))
        .open()
        .await
        .unwrap();
    let ttl = Duration::from_secs(60);
    store.save("session:l", b"x", ttl, Expect::Absent).await.unwrap();
    let mut holder = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file(&dir)))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
    let save = store.save("session:l", b"y", ttl, Expect::Unchanged(b"x"));
    crate::common::sql::unavailable_within(Duration::from_secs(2), save).await;
    assert_eq!(
        store.load("session:l", None, crate::common::LIMIT).await.unwrap(),
        Some(b"x".to_vec()),
        "reads go on"
    );
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    assert_eq!(
        store
            .save("session:l", b"y", ttl, Expect::Unchanged(b"x"))
            .await
            .unwrap(),
        SaveOutcome::Saved
    );
}

/// A 100 MiB record planted in a row, requested by ten attackers at once:
/// another user's requests all succeed, and the row is deleted. The load
/// reads the blob's length from its header, not the blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_planted_record_stalls_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::builder(file(&dir)).open().await.unwrap();
    let app =
        crate::common::redis::routes().layer(SessionLayer::new(store, SessionConfig::default()).unwrap());
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file(&dir)))
        .await
        .unwrap();
    let plant = async |key: &str, record: Vec<u8>| {
        sqlx::query(
            "INSERT INTO sessions (session_id, data, expiry) VALUES (?, ?, datetime('now', '+1 hour'))",
        )
        .bind(key)
        .bind(record)
        .execute(&pool)
        .await
        .unwrap();
        // The 100 MiB the insert put in the log are moved into the file
        // now, rather than by whichever commit comes next: what is measured
        // is the record being requested, not it being planted.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&pool)
            .await
            .unwrap();
    };
    let exists = async |key: &str| {
        sqlx::query("SELECT 1 FROM sessions WHERE session_id = ?")
            .bind(key)
            .fetch_optional(&pool)
            .await
            .unwrap()
            .is_some()
    };
    crate::common::attack::huge_record_stalls_no_one("sqlite", app, plant, exists).await;
}

/// A row whose `data` is text, not a blob (which neither Flask nor this
/// store writes), is discarded like an undecodable record: the request
/// gets a fresh session that it can save, instead of failing every write.
#[tokio::test]
async fn a_row_with_text_data_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::builder(file(&dir)).open().await.unwrap();
    let layer = SessionLayer::new(store, SessionConfig::default()).unwrap();
    let app = crate::common::redis::routes().layer(layer.clone());
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file(&dir)))
        .await
        .unwrap();
    let id = "t".repeat(43);
    // A record that would decode: {"n": 1}, stored as text.
    sqlx::query(
        "INSERT INTO sessions (session_id, data, expiry) \
         VALUES (?, CAST(X'81A16E01' AS TEXT), datetime('now', '+1 hour'))",
    )
    .bind(format!("session:{id}"))
    .execute(&pool)
    .await
    .unwrap();
    let cookie = format!("session={id}");
    let reply = crate::common::get(&app, "/incr", Some(&cookie)).await;
    assert_eq!(
        (reply.status.as_u16(), reply.body.as_str()),
        (200, "1"),
        "a fresh session"
    );
    let fresh = reply.cookie_pair().unwrap();
    assert_ne!(fresh, cookie, "under a new id");
    assert_eq!(crate::common::get(&app, "/incr", Some(&fresh)).await.body, "2");
    let left: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM sessions WHERE session_id = ?")
        .bind(format!("session:{id}"))
        .fetch_optional(&pool)
        .await
        .unwrap();
    assert_eq!(left, None, "the text row is deleted");
    assert_eq!(layer.metrics().undecodable, 1);
}

/// A row whose expiry is not a time (no writer of the table stores one;
/// as text it compares as later than now) is walked and inspected as a
/// record that never expires, not as an error.
#[tokio::test]
async fn an_expiry_that_is_not_a_time_never_expires() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::builder(file(&dir)).open().await.unwrap();
    store
        .save("session:odd", b"\x80", Duration::from_secs(60), Expect::Absent)
        .await
        .unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file(&dir)))
        .await
        .unwrap();
    sqlx::query("UPDATE sessions SET expiry = 'infinity'")
        .execute(&pool)
        .await
        .unwrap();
    let entry = store.inspect("session:odd").await.unwrap().unwrap();
    assert_eq!(entry.ttl, None);
    let page = store
        .scan("session:", &server_session::store::ScanCursor::start(), 10)
        .await
        .unwrap();
    assert_eq!(page.entries, [entry]);
}
