//! server-session on axum, with its Redis store and default configuration;
//! with `BENCH_NO_REFRESH=1`, reads leave the expiry alone
//! (`refresh_each_request(false)`), as the other libraries do by default.

use server_session::{RedisStore, Session, SessionConfig, SessionError, SessionLayer};
use server_session_bench::MISSING;

async fn login(session: Session) -> Result<&'static str, SessionError> {
    session.insert("user_id", &42u64).await?;
    session.insert("counter", &0u64).await?;
    Ok("ok")
}

async fn read(session: Session) -> Result<String, SessionError> {
    let user: Option<u64> = session.get("user_id").await?;
    Ok(user.map_or(MISSING.into(), |u| u.to_string()))
}

async fn incr(session: Session) -> Result<String, SessionError> {
    let n = session
        .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(n.to_string())
}

async fn counter(session: Session) -> Result<String, SessionError> {
    let n: Option<u64> = session.get("counter").await?;
    Ok(n.map_or(MISSING.into(), |n| n.to_string()))
}

fn main() -> std::io::Result<()> {
    server_session_bench::serve(|redis| async move {
        let store = RedisStore::connect(redis.as_str()).await.expect("Redis");
        let refresh = std::env::var_os("BENCH_NO_REFRESH").is_none();
        let config = SessionConfig::default().refresh_each_request(refresh);
        let sessions = SessionLayer::new(store, config).expect("config");
        server_session_bench::routes(login, read, incr, counter).layer(sessions)
    })
}
