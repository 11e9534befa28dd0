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
    let sessions = SessionLayer::from_config(SessionConfig::from_env()?)?;
    let app = Router::new()
        .route("/", get(index))
        .route("/secret", get(secret))
        .route("/counter", get(counter))
        .route("/logout", get(logout))
        .layer(sessions)
        // Outside the session layer: never touches the session or the store.
        .route("/health", get(health));
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
