//! Sessions in Redis, set up in code: a Redis client, the key prefix `bruce`
//! and the cookie name `hello_session`.
//!
//! ```text
//! cargo run --example redis_explicit --features redis
//! curl -i 127.0.0.1:3000/      # Set-Cookie: hello_session=...; the key is bruce<id>
//! ```
//!
//! `REDIS_URL` (default `redis://127.0.0.1:6379`) and `PORT` (default 3000)
//! say where.

use axum::{Router, routing::get};
use server_session::redis::Client;
use server_session::{RedisStore, Session, SessionConfig, SessionError, SessionLayer};

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
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = Client::open(url)?;
    let store = RedisStore::from_client(&client).connect().await?;
    let config = SessionConfig::default()
        .key_prefix("bruce")
        .cookie_name("hello_session");
    let app = Router::new()
        .route("/", get(index))
        .layer(SessionLayer::new(store, config)?);

    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
