//! The server-session app on axum, with its Redis store and default
//! configuration; with `BENCH_NO_REFRESH=1`, reads leave the expiry alone
//! (`refresh_each_request(false)`), as the other libraries do by default.
//! `BENCH_CLUSTER=host:port,...` puts the sessions on a Redis Cluster, and
//! `BENCH_WAIT=n` acknowledges writes only once `n` replicas have them.
//! Given a `postgresql://` or `sqlite:` URL instead of Redis, it keeps the
//! sessions there, with `PostgresStore` or `SqliteStore` and their defaults.
//!
//! Two binaries serve it: `server_session_app`, built with the library's
//! features but not `metrics` (off by default), and
//! `server_session_metrics_app`, built with `metrics` and a Prometheus
//! recorder whose page it adds as `extra`.

use server_session::store::SessionStore;
use server_session::{PostgresStore, RedisStore, SessionConfig, SessionLayer, SqliteStore};

use crate::server_session_handlers::{counter, incr, login, read};

fn app(store: impl SessionStore, config: SessionConfig, extra: Option<axum::Router>) -> axum::Router {
    let sessions = SessionLayer::new(store, config).expect("config");
    let app = crate::routes(login, read, incr, counter).layer(sessions);
    match extra {
        Some(extra) => app.merge(extra),
        None => app,
    }
}

async fn sql(url: &str, config: SessionConfig, extra: Option<axum::Router>) -> axum::Router {
    if url.starts_with("postgresql://") {
        let store = PostgresStore::builder(url).open().await.expect("PostgreSQL");
        app(store, config, extra)
    } else {
        let file = crate::sqlite_file(url);
        app(
            SqliteStore::builder(file).open().await.expect("SQLite"),
            config,
            extra,
        )
    }
}

/// Serves the app, with the routes of `extra` beside the session's (outside
/// its layer).
pub fn run(extra: Option<axum::Router>) -> std::io::Result<()> {
    crate::serve(move |redis| {
        let extra = extra.clone();
        async move {
            let refresh = std::env::var_os("BENCH_NO_REFRESH").is_none();
            let config = SessionConfig::default().refresh_each_request(refresh);
            if crate::is_sql(&redis) {
                return sql(&redis, config, extra).await;
            }
            let builder = match std::env::var("BENCH_CLUSTER") {
                Ok(nodes) => RedisStore::cluster(nodes.split(',')),
                Err(_) => RedisStore::builder(redis.as_str()),
            };
            let builder = match std::env::var("BENCH_WAIT").ok().and_then(|n| n.parse().ok()) {
                Some(replicas) => builder.wait_for_replicas(replicas, std::time::Duration::from_secs(1)),
                None => builder,
            };
            app(builder.connect().await.expect("Redis"), config, extra)
        }
    })
}
