//! tower-sessions 0.14 on axum, with tower-sessions-redis-store 0.16 (fred).
//! These two versions share tower-sessions-core 0.14; tower-sessions 0.15
//! does not fit the latest Redis store. Given a `postgresql://` or `sqlite:`
//! URL, it uses tower-sessions-sqlx-store 0.15 (the same core) there, on a
//! pool set up as server-session's stores set up theirs (10 connections to
//! PostgreSQL; 4 to SQLite, in WAL mode with a 5 s busy timeout).

use axum::http::StatusCode;
use server_session_bench::{LIFETIME_SECS, MISSING};
use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore, cookie::time::Duration};
use tower_sessions_redis_store::{RedisStore, fred::prelude::*};

type Reply = Result<String, (StatusCode, String)>;

fn fail(err: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
}

async fn login(session: Session) -> Reply {
    session.insert("user_id", 42u64).await.map_err(fail)?;
    session.insert("counter", 0u64).await.map_err(fail)?;
    Ok("ok".into())
}

async fn read(session: Session) -> Reply {
    let user: Option<u64> = session.get("user_id").await.map_err(fail)?;
    Ok(user.map_or(MISSING.into(), |u| u.to_string()))
}

async fn incr(session: Session) -> Reply {
    let n: u64 = session.get("counter").await.map_err(fail)?.unwrap_or(0);
    session.insert("counter", n + 1).await.map_err(fail)?;
    Ok((n + 1).to_string())
}

async fn counter(session: Session) -> Reply {
    let n: Option<u64> = session.get("counter").await.map_err(fail)?;
    Ok(n.map_or(MISSING.into(), |n| n.to_string()))
}

fn app(store: impl SessionStore + Clone) -> axum::Router {
    let sessions = SessionManagerLayer::new(store)
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(Duration::seconds(LIFETIME_SECS as i64)));
    server_session_bench::routes(login, read, incr, counter).layer(sessions)
}

async fn sql(url: &str) -> axum::Router {
    if url.starts_with("postgresql://") {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await
            .expect("PostgreSQL");
        let store = tower_sessions_sqlx_store::PostgresStore::new(pool);
        store.migrate().await.expect("migration");
        app(store)
    } else {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
        let options = SqliteConnectOptions::new()
            .filename(server_session_bench::sqlite_file(url))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .expect("SQLite");
        let store = tower_sessions_sqlx_store::SqliteStore::new(pool);
        store.migrate().await.expect("migration");
        app(store)
    }
}

fn main() -> std::io::Result<()> {
    server_session_bench::serve(|redis| async move {
        if server_session_bench::is_sql(&redis) {
            return sql(&redis).await;
        }
        let pool = Pool::new(Config::from_url(&redis).expect("URL"), None, None, None, 6).expect("pool");
        pool.init().await.expect("Redis");
        app(RedisStore::new(pool))
    })
}
