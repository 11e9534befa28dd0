//! tower-sessions 0.14 on axum, with tower-sessions-redis-store 0.16 (fred).
//! These two versions share tower-sessions-core 0.14; tower-sessions 0.15
//! does not fit the latest Redis store.

use axum::http::StatusCode;
use server_session_bench::{LIFETIME_SECS, MISSING};
use tower_sessions::{Expiry, Session, SessionManagerLayer, cookie::time::Duration};
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

fn main() -> std::io::Result<()> {
    server_session_bench::serve(|redis| async move {
        let pool = Pool::new(Config::from_url(&redis).expect("URL"), None, None, None, 6).expect("pool");
        pool.init().await.expect("Redis");
        let sessions = SessionManagerLayer::new(RedisStore::new(pool))
            .with_secure(false)
            .with_expiry(Expiry::OnInactivity(Duration::seconds(LIFETIME_SECS as i64)));
        server_session_bench::routes(login, read, incr, counter).layer(sessions)
    })
}
