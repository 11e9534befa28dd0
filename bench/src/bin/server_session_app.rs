//! server-session on axum, with its Redis store and default configuration;
//! with `BENCH_NO_REFRESH=1`, reads leave the expiry alone
//! (`refresh_each_request(false)`), as the other libraries do by default.
//! `BENCH_CLUSTER=host:port,...` puts the sessions on a Redis Cluster, and
//! `BENCH_WAIT=n` acknowledges writes only once `n` replicas have them.

use server_session::{RedisStore, SessionConfig, SessionLayer};
use server_session_bench::server_session_handlers::{counter, incr, login, read};

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
