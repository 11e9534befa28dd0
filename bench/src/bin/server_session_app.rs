//! server-session on axum, with its Redis store and default configuration;
//! with `BENCH_NO_REFRESH=1`, reads leave the expiry alone
//! (`refresh_each_request(false)`), as the other libraries do by default.
//! `BENCH_CLUSTER=host:port,...` puts the sessions on a Redis Cluster, and
//! `BENCH_WAIT=n` acknowledges writes only once `n` replicas have them.
//! Given a `postgresql://` or `sqlite:` URL instead of Redis, it keeps the
//! sessions there, with `PostgresStore` or `SqliteStore` and their defaults.

use server_session::store::SessionStore;
use server_session::{PostgresStore, RedisStore, SessionConfig, SessionLayer, SqliteStore};
use server_session_bench::server_session_handlers::{counter, incr, login, read};

fn app(store: impl SessionStore, config: SessionConfig) -> axum::Router {
    let sessions = SessionLayer::new(store, config).expect("config");
    server_session_bench::routes(login, read, incr, counter).layer(sessions)
}

async fn sql(url: &str, config: SessionConfig) -> axum::Router {
    if url.starts_with("postgresql://") {
        app(
            PostgresStore::builder(url).open().await.expect("PostgreSQL"),
            config,
        )
    } else {
        let file = server_session_bench::sqlite_file(url);
        app(SqliteStore::builder(file).open().await.expect("SQLite"), config)
    }
}

fn main() -> std::io::Result<()> {
    server_session_bench::serve(|redis| async move {
        let refresh = std::env::var_os("BENCH_NO_REFRESH").is_none();
        let config = SessionConfig::default().refresh_each_request(refresh);
        if server_session_bench::is_sql(&redis) {
            return sql(&redis, config).await;
        }
        let builder = match std::env::var("BENCH_CLUSTER") {
            Ok(nodes) => RedisStore::cluster(nodes.split(',')),
            Err(_) => RedisStore::builder(redis.as_str()),
        };
        let builder = match std::env::var("BENCH_WAIT").ok().and_then(|n| n.parse().ok()) {
            Some(replicas) => builder.wait_for_replicas(replicas, std::time::Duration::from_secs(1)),
            None => builder,
        };
        app(builder.connect().await.expect("Redis"), config)
    })
}
