//! server-session on axum, with its Redis store and default configuration;
//! with `BENCH_NO_REFRESH=1`, reads leave the expiry alone
//! (`refresh_each_request(false)`), as the other libraries do by default.
//! `BENCH_CLUSTER=host:port,...` puts the sessions on a Redis Cluster, and
//! `BENCH_WAIT=n` acknowledges writes only once `n` replicas have them.
//! Given a `postgresql://` or `sqlite:` URL instead of Redis, it keeps the
//! sessions there, with `PostgresStore` or `SqliteStore` and their defaults.
//! `BENCH_METRICS=1` installs a Prometheus recorder for the `metrics`
//! feature's counters and store latencies (scraped at `/metrics`); without
//! it the feature is compiled in but reports to no recorder.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use server_session::store::SessionStore;
use server_session::{PostgresStore, RedisStore, SessionConfig, SessionLayer, SqliteStore};
use server_session_bench::server_session_handlers::{counter, incr, login, read};

/// The Prometheus recorder, with `BENCH_METRICS` set.
static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

fn app(store: impl SessionStore, config: SessionConfig) -> axum::Router {
    let sessions = SessionLayer::new(store, config).expect("config");
    let app = server_session_bench::routes(login, read, incr, counter).layer(sessions);
    match PROMETHEUS.get() {
        Some(handle) => app.route(
            "/metrics",
            axum::routing::get(move || std::future::ready(handle.render())),
        ),
        None => app,
    }
}

/// Installs the recorder once for the process, with the upkeep a deployment
/// would run (every 5 s, as the exporter's own listener does), so that the
/// latency samples do not pile up between scrapes.
fn install_prometheus() {
    let handle = PrometheusBuilder::new().install_recorder().expect("recorder");
    let upkeep = handle.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(5));
            upkeep.run_upkeep();
        }
    });
    let _ = PROMETHEUS.set(handle);
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
    if std::env::var_os("BENCH_METRICS").is_some() {
        install_prometheus();
    }
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
