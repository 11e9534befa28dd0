//! actix-session 0.11 on actix-web 4, with its redis-rs Redis store.

use actix_session::config::PersistentSession;
use actix_session::storage::RedisSessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::{Key, time::Duration};
use actix_web::{App, HttpResponse, HttpServer, error, web};
use clap::Parser;
use server_session_bench::{Args, LIFETIME_SECS, MISSING};

type Reply = actix_web::Result<HttpResponse>;

fn text(body: String) -> Reply {
    Ok(HttpResponse::Ok().body(body))
}

async fn login(session: Session) -> Reply {
    session
        .insert("user_id", 42u64)
        .map_err(error::ErrorInternalServerError)?;
    session
        .insert("counter", 0u64)
        .map_err(error::ErrorInternalServerError)?;
    text("ok".into())
}

async fn read(session: Session) -> Reply {
    let user: Option<u64> = session.get("user_id").map_err(error::ErrorInternalServerError)?;
    text(user.map_or(MISSING.into(), |u| u.to_string()))
}

async fn incr(session: Session) -> Reply {
    let n: u64 = session
        .get("counter")
        .map_err(error::ErrorInternalServerError)?
        .unwrap_or(0);
    session
        .insert("counter", n + 1)
        .map_err(error::ErrorInternalServerError)?;
    text((n + 1).to_string())
}

async fn counter(session: Session) -> Reply {
    let n: Option<u64> = session.get("counter").map_err(error::ErrorInternalServerError)?;
    text(n.map_or(MISSING.into(), |n| n.to_string()))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let store = RedisSessionStore::new(args.redis.clone())
        .await
        .map_err(std::io::Error::other)?;
    let key = Key::generate();
    HttpServer::new(move || {
        let sessions = SessionMiddleware::builder(store.clone(), key.clone())
            .cookie_secure(false)
            .session_lifecycle(
                PersistentSession::default().session_ttl(Duration::seconds(LIFETIME_SECS as i64)),
            )
            .build();
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
