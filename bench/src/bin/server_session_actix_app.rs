//! server-session on actix-web 4, with its Redis store and default
//! configuration, on actix's own thread model (one single-threaded runtime
//! per worker); each worker has its own store and so its own Redis
//! connection, as the axum apps have one per runtime.

use actix_web::{App, HttpServer, web};
use clap::Parser;
use server_session::{RedisStore, SessionConfig, SessionMiddleware};
use server_session_bench::Args;
use server_session_bench::server_session_handlers::{counter, incr, login, read};

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
