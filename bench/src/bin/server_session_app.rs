//! server-session on axum, with its Redis store and default configuration;
//! with `BENCH_NO_REFRESH=1`, reads leave the expiry alone
//! (`refresh_each_request(false)`), as the other libraries do by default.
//! `BENCH_CLUSTER=host:port,...` puts the sessions on a Redis Cluster, and
//! `BENCH_WAIT=n` acknowledges writes only once `n` replicas have them.

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
        let builder = match std::env::var("BENCH_CLUSTER") {
            Ok(nodes) => RedisStore::cluster(nodes.split(',')),
            Err(_) => RedisStore::builder(redis.as_str()),
        };
        let builder = match std::env::var("BENCH_WAIT").ok().and_then(|n| n.parse().ok()) {
            Some(replicas) => builder.wait_for_replicas(replicas, std::time::Duration::from_secs(1)),
            None => builder,
        };
        let store = builder.connect().await.expect("Redis");
        let refresh = std::env::var_os("BENCH_NO_REFRESH").is_none();
        let config = SessionConfig::default().refresh_each_request(refresh);
        let sessions = SessionLayer::new(store, config).expect("config");
        server_session_bench::routes(login, read, incr, counter).layer(sessions)
    })
}
