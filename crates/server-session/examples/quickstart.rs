//! The quickstart: an axum app whose sessions are configured by
//! Flask-Session's names from the environment (`SessionConfig::from_env`):
//! in memory by default, in Redis with `SESSION_TYPE=redis` (at
//! `SESSION_REDIS`, default `redis://127.0.0.1:6379`; build with
//! `--features redis`), in an SQL database with `SESSION_TYPE=sqlalchemy` and
//! `SQLALCHEMY_DATABASE_URI=sqlite:///sessions.db` (`--features sqlite`),
//! `postgresql://...` (`--features postgres`) or `mysql://...` (`--features
//! mysql`).
//!
//! ```text
//! cargo run --example quickstart
//! curl -i -c jar -b jar 127.0.0.1:3000/          # stores secret = "123456"
//! curl -b jar 127.0.0.1:3000/secret              # 123456
//! curl -b jar -c jar 127.0.0.1:3000/counter      # 1, 2, 3, ...
//! curl -b jar -c jar 127.0.0.1:3000/logout       # the session is gone
//! ```
//!
//! Built with `--features metrics`, it also serves the engine's counters and
//! store latencies at `GET /metrics`, in Prometheus's text format:
//!
//! ```text
//! cargo run --example quickstart --features metrics
//! curl 127.0.0.1:3000/metrics                    # server_session_loads_total 3, ...
//! ```

use axum::{Router, http::StatusCode, routing::get};
use std::error::Error;
use std::process::ExitCode;

use server_session::{Session, SessionConfig, SessionError, SessionLayer};

async fn index(session: Session) -> Result<&'static str, SessionError> {
    session.insert("secret", "123456").await?;
    Ok("index")
}

async fn secret(session: Session) -> Result<(StatusCode, String), SessionError> {
    Ok(match session.get::<String>("secret").await? {
        Some(secret) => (StatusCode::OK, secret),
        None => (StatusCode::NOT_FOUND, "no secret in this session".into()),
    })
}

async fn counter(session: Session) -> Result<String, SessionError> {
    // `update` keeps concurrent increments: the closure is re-applied to the
    // stored value if another request changed the session meanwhile.
    let n = session
        .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(n.to_string())
}

async fn logout(session: Session) -> Result<&'static str, SessionError> {
    session.destroy().await?;
    Ok("logged out")
}

async fn health() -> &'static str {
    "ok"
}

#[tokio::main]
async fn main() -> ExitCode {
    // A misconfiguration is told as a sentence, not as a debug dump.
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    // The recorder goes in before the layer serves its first request.
    #[cfg(feature = "metrics")]
    let metrics = prometheus()?;
    let sessions = SessionLayer::from_config(SessionConfig::from_env()?)?;
    let app = Router::new()
        .route("/", get(index))
        .route("/secret", get(secret))
        .route("/counter", get(counter))
        .route("/logout", get(logout))
        .layer(sessions)
        // Outside the session layer: never touches the session or the store.
        .route("/health", get(health));
    #[cfg(feature = "metrics")]
    let app = app.merge(metrics);
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// Installs the Prometheus recorder that the `metrics` feature reports to,
/// and the route that serves what it holds.
#[cfg(feature = "metrics")]
fn prometheus() -> Result<Router, Box<dyn Error>> {
    use axum::http::header::CONTENT_TYPE;

    let handle = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    // Folds the latency samples into their summaries now and then, so that
    // memory stays flat between two scrapes.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    let render = move || std::future::ready(([(CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()));
    Ok(Router::new().route("/metrics", get(render)))
}
