//! Sessions in Redis, set up by configuration with Flask-Session's names.
//!
//! ```text
//! SESSION_TYPE=redis SESSION_REDIS=redis://127.0.0.1:6379 \
//!     cargo run --example redis_config --features redis
//! curl -i 127.0.0.1:3000/
//! ```
//!
//! Every name `SessionConfig::from_env` reads applies: `SESSION_KEY_PREFIX`,
//! `SESSION_COOKIE_NAME`, `PERMANENT_SESSION_LIFETIME`, `SESSION_USE_SIGNER`
//! with `SECRET_KEY`, and the rest. `PORT` (default 3000) says where to listen.

use axum::{Router, routing::get};
use server_session::{Session, SessionConfig, SessionError, SessionLayer};

async fn index(session: Session) -> Result<&'static str, SessionError> {
    session.insert("secret", "123456").await?;
    Ok("index")
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let sessions = SessionLayer::from_config(SessionConfig::from_env()?)?;
    let app = Router::new().route("/", get(index)).layer(sessions);

    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
