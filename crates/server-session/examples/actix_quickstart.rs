//! The quickstart on actix-web: the same routes, configured by the same
//! Flask-Session names from the environment (`SessionConfig::from_env`): in
//! memory by default, in Redis with `SESSION_TYPE=redis` (build with
//! `--features actix,redis`).
//!
//! ```text
//! cargo run --features actix --example actix_quickstart
//! curl -i -c jar -b jar 127.0.0.1:3000/          # stores secret = "123456"
//! curl -b jar 127.0.0.1:3000/secret              # 123456
//! curl -b jar -c jar 127.0.0.1:3000/counter      # 1, 2, 3, ...
//! curl -b jar -c jar 127.0.0.1:3000/logout       # the session is gone
//! ```

use std::error::Error;
use std::process::ExitCode;

use actix_web::{App, HttpResponse, HttpServer, web};
use server_session::{Session, SessionConfig, SessionError, SessionMiddleware};

async fn index(session: Session) -> Result<&'static str, SessionError> {
    session.insert("secret", "123456").await?;
    Ok("index")
}

async fn secret(session: Session) -> Result<HttpResponse, SessionError> {
    Ok(match session.get::<String>("secret").await? {
        Some(secret) => HttpResponse::Ok().body(secret),
        None => HttpResponse::NotFound().body("no secret in this session"),
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

#[actix_web::main]
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
    let sessions = SessionMiddleware::from_config(SessionConfig::from_env()?)?;
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let server = HttpServer::new(move || {
        App::new()
            // Outside the session middleware: never touches the session or
            // the store.
            .route("/health", web::get().to(health))
            .service(
                web::scope("")
                    .wrap(sessions.clone())
                    .route("/", web::get().to(index))
                    .route("/secret", web::get().to(secret))
                    .route("/counter", web::get().to(counter))
                    .route("/logout", web::get().to(logout)),
            )
    })
    .bind(("127.0.0.1", port.parse::<u16>()?))?;
    for address in server.addrs() {
        println!("listening on http://{address}");
    }
    server.run().await?;
    Ok(())
}
