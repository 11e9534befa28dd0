//! Shared pieces of the benchmark apps: the command line and the server
//! loop. Every app serves the same routes on the same store (Redis, or for
//! the SQL phases PostgreSQL or an SQLite file):
//!
//! - `/plain`: never touches the session;
//! - `/login`: a new session with `user_id = 42` and `counter = 0`;
//! - `/read`: reads `user_id`;
//! - `/incr`: increments `counter` with the library's natural
//!   read-modify-write, and answers the new value;
//! - `/counter`: reads `counter` (the driver sums these afterwards to count
//!   lost increments).

use clap::Parser;

pub mod server_session_app;

/// Where an app listens and which Redis it uses.
#[derive(Parser, Debug)]
pub struct Args {
    /// Port to listen on (127.0.0.1).
    #[arg(long)]
    pub port: u16,
    /// The store's URL, with the database the app owns:
    /// `redis://127.0.0.1:6379/2`, `postgresql://postgres@127.0.0.1:5432/app2`
    /// or `sqlite:///tmp/app2.db` (the apps that support SQL).
    #[arg(long)]
    pub redis: String,
}

impl Args {
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Whether `url` names an SQL database rather than Redis.
pub fn is_sql(url: &str) -> bool {
    url.starts_with("postgresql://") || url.starts_with("sqlite:")
}

/// The SQLite file of a `sqlite:///path` URL.
pub fn sqlite_file(url: &str) -> &str {
    url.strip_prefix("sqlite://").unwrap_or(url)
}

/// The session lifetime every app is given: Flask's default of 31 days.
pub const LIFETIME_SECS: u64 = 31 * 24 * 3600;

/// What a handler answers for a value that is not there.
pub const MISSING: &str = "none";

/// Worker threads per app: `BENCH_WORKERS`, or one per core (actix-web's
/// default).
pub fn workers() -> usize {
    std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// server-session's handlers, the same on axum and on actix-web.
pub mod server_session_handlers {
    use server_session::{Session, SessionError};

    use super::MISSING;

    pub async fn login(session: Session) -> Result<&'static str, SessionError> {
        session.insert("user_id", &42u64).await?;
        session.insert("counter", &0u64).await?;
        Ok("ok")
    }

    pub async fn read(session: Session) -> Result<String, SessionError> {
        let user: Option<u64> = session.get("user_id").await?;
        Ok(user.map_or(MISSING.into(), |u| u.to_string()))
    }

    pub async fn incr(session: Session) -> Result<String, SessionError> {
        let n = session
            .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
            .await?;
        Ok(n.to_string())
    }

    pub async fn counter(session: Session) -> Result<String, SessionError> {
        let n: Option<u64> = session.get("counter").await?;
        Ok(n.map_or(MISSING.into(), |n| n.to_string()))
    }
}

/// The routes every axum app serves, with the app's own handlers.
pub fn routes<S, L, LT, R, RT, I, IT, C, CT>(login: L, read: R, incr: I, counter: C) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    L: axum::handler::Handler<LT, S>,
    R: axum::handler::Handler<RT, S>,
    I: axum::handler::Handler<IT, S>,
    C: axum::handler::Handler<CT, S>,
    LT: 'static,
    RT: 'static,
    IT: 'static,
    CT: 'static,
{
    use axum::routing::get;
    axum::Router::new()
        .route("/plain", get(|| async { "ok" }))
        .route("/login", get(login))
        .route("/read", get(read))
        .route("/incr", get(incr))
        .route("/counter", get(counter))
}

/// Parses [`Args`] and serves the router `make` builds from the Redis URL
/// the way actix-web serves its apps (or, with `BENCH_MULTI_THREAD` set, on
/// tokio's default multi-thread runtime): one single-threaded runtime per core,
/// each with its own listener (`SO_REUSEPORT`, so the kernel spreads
/// connections) and its own app, so its own Redis connection. All the axum
/// apps run this way, so the comparison with actix-session is between
/// session libraries, not between thread models.
pub fn serve<F, Fut>(make: F) -> std::io::Result<()>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = axum::Router>,
{
    let args = Args::parse();
    let addr: std::net::SocketAddr = args.addr().parse().map_err(std::io::Error::other)?;
    if std::env::var_os("BENCH_MULTI_THREAD").is_some() {
        // What `#[tokio::main]` gives: one work-stealing runtime with a
        // worker per core, one listener and one app.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers())
            .enable_all()
            .build()?;
        return runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            axum::serve(listener, make(args.redis).await).await
        });
    }
    let make = std::sync::Arc::new(make);
    let workers = workers();
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let make = make.clone();
            let redis = args.redis.clone();
            std::thread::spawn(move || -> std::io::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let socket = tokio::net::TcpSocket::new_v4()?;
                    socket.set_reuseport(true)?;
                    socket.set_reuseaddr(true)?;
                    socket.set_nodelay(true)?;
                    socket.bind(addr)?;
                    let listener = socket.listen(1024)?;
                    axum::serve(listener, make(redis).await).await
                })
            })
        })
        .collect();
    for thread in threads {
        thread
            .join()
            .map_err(|_| std::io::Error::other("a worker panicked"))??;
    }
    Ok(())
}
