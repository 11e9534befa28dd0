//! server-session on actix-web 4, with its Redis store and default
//! configuration, on actix's own thread model (one single-threaded runtime
//! per worker); each worker has its own store and so its own Redis
//! connection, as the axum apps have one per runtime.

use actix_web::{App, HttpServer, web};
use clap::Parser;
use server_session::{RedisStore, Session, SessionConfig, SessionError, SessionMiddleware};
use server_session_bench::{Args, MISSING};

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

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let url = args.redis.clone();
    HttpServer::new(move || {
        // Connects on this worker's first request, on this worker's runtime.
        let store = RedisStore::builder(url.as_str()).build().expect("a Redis URL");
        let sessions = SessionMiddleware::new(store, SessionConfig::default()).expect("config");
        App::new()
            .wrap(sessions)
            .route("/plain", web::get().to(|| async { "ok" }))
            .route("/login", web::get().to(login))
            .route("/read", web::get().to(read))
            .route("/incr", web::get().to(incr))
            .route("/counter", web::get().to(counter))
    })
    .workers(server_session_bench::workers())
    .bind(args.addr())?
    .run()
    .await
}
