//! Server-side HTTP sessions for axum and other tower services, and for
//! actix-web (feature `actix`, `SessionMiddleware`).
//!
//! The browser's cookie holds only an opaque, random session id; the data
//! lives in a store. Records use Flask-Session 0.8's layout, so a Rust service
//! and a Flask app can share sessions.
//!
//! What it guarantees, whatever the store:
//!
//! - **No lost updates.** Saves are conditional: a request that finds the
//!   session changed since it loaded it replays its own changes on the stored
//!   record and tries again. Two requests setting different keys both persist,
//!   and [`Session::update`] increments made concurrently all count.
//! - **No resurrection.** A request in flight when the session is destroyed or
//!   its id cycled drops its changes instead of recreating it.
//! - **One round trip for a read.** Nothing is loaded until a handler touches
//!   the session; a read is one store call (which also slides the expiry), a
//!   change is two, a new session one, an untouched request none.
//! - **Outages are not logouts.** When the store fails, the request gets a
//!   `503` (or, if configured, an empty session that is never saved); nothing
//!   is overwritten.
//! - **Hostile input is contained.** Cookies, stored bytes and settings are
//!   untrusted: a malformed or forged one gives a fresh session or a clear
//!   error, never a panic, an allocation sized by a length it claims, or
//!   unbounded work. Records are capped in size
//!   ([`SessionConfig::max_record_size`]) and nesting, ids carry at least
//!   128 random bits, and lifetimes are at most 400 days.
//!
//! # Example
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use server_session::{MemoryStore, Session, SessionConfig, SessionError, SessionLayer};
//!
//! async fn counter(session: Session) -> Result<String, SessionError> {
//!     let n = session.update("counter", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
//!     Ok(n.to_string())
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let sessions = SessionLayer::new(MemoryStore::new(), SessionConfig::default())?;
//!     let app = Router::new().route("/counter", get(counter)).layer(sessions);
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//! ```
//!
//! # Frameworks
//!
//! The framework adapters are thin: each reads the request's `Cookie`
//! headers, hands the handler a [`Session`], and carries out what the engine
//! decided for the response, so axum and actix-web behave the same. With
//! actix-web (feature `actix`):
//!
//! ```
//! # #[cfg(feature = "actix")] {
//! use actix_web::{App, web};
//! use server_session::{MemoryStore, Session, SessionConfig, SessionError, SessionMiddleware};
//!
//! async fn counter(session: Session) -> Result<String, SessionError> {
//!     let n = session.update("counter", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
//!     Ok(n.to_string())
//! }
//!
//! let sessions = SessionMiddleware::new(MemoryStore::new(), SessionConfig::default()).unwrap();
//! let app = App::new().wrap(sessions).route("/counter", web::get().to(counter));
//! # }
//! ```
//!
//! # Lifecycle
//!
//! | request | store | response |
//! |---|---|---|
//! | does not touch the session | nothing | nothing |
//! | reads; no valid cookie | nothing | `Vary: Cookie` |
//! | first write | create (one call) | `Set-Cookie` |
//! | reads an existing session | one load, sliding the expiry | `Set-Cookie` with a new `Expires` when refreshing a permanent session |
//! | changes an existing session | load (leaving the expiry to the save) + one conditional save | `Set-Cookie` |
//! | empties the session, or [`Session::destroy`] | delete | a deletion cookie with the same attributes |
//! | unknown, malformed or tampered id | nothing stored until the first write, under a new id | the presented id is never reused |
//! | [`Session::cycle_id`] | new record, then the old one deleted | `Set-Cookie` with the new id |
//! | [`Session::login`] | as `cycle_id`, bound to the user, indexed with [`UserSessions`] | `Set-Cookie` with the new id |
//!
//! # A user's sessions
//!
//! [`Session::login`] binds a session to a user. With
//! [`Sessions::with_user_sessions`] (for a store with indexes,
//! [`store::SessionIndex`]), the store keeps an index of each user's
//! sessions: a user lists theirs ([`Session::user_sessions`]) and ends one
//! ([`Session::revoke`]) or all others ([`Session::revoke_other_sessions`]);
//! an administrator does the same for anyone ([`Sessions::users`]).
//! Revocation is as final as a logout. [`SessionConfig::hash_ids`] keeps only
//! hashes of ids in the store.
//!
//! # Operations
//!
//! [`admin::Admin`] walks, examines, ends, checks and copies the stored
//! sessions outside requests; the `server-session` command line tool
//! (`crates/server-session-cli`) is built on it. With the `metrics` feature
//! the engine reports what it does through the `metrics` crate; requests'
//! loads and commits are `tracing` spans.
//!
//! # Guides
//!
//! The repository's `docs/` folder goes further, one topic per page, as the
//! README's map does:
//!
//! | guide | covers |
//! |---|---|
//! | `docs/redis.md` | `RedisStore` on one server, a cluster or Sentinel; TLS, durable writes, failovers |
//! | `docs/sql.md` | `SqliteStore`, `PostgresStore`, `MySqlStore` in Flask-Session's table |
//! | `docs/flask.md` | sharing sessions with a Flask-Session app |
//! | `docs/user-sessions.md` | [`Session::login`], listing and revoking a user's sessions |
//! | `docs/operations.md` | the `server-session` tool, metrics, tracing |
//! | `docs/configuration.md` | every [`SessionConfig`] setting and its Flask-Session name |
//!
//! `ARCHITECTURE.md` describes the engine and the store contract
//! ([`store::SessionStore`]), `SECURITY.md` what is defended against.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod adapters;
pub mod admin;
mod change;
mod clock;
mod config;
mod cookie;
mod engine;
mod error;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
mod id;
mod msgpack;
mod record;
mod session;
mod sessions;
pub mod store;
mod users;
mod value;

/// The services [`SessionLayer`] and `SessionMiddleware` wrap around an
/// application's, and the futures they answer with: named in types, rarely
/// written.
pub mod service {
    #[cfg(feature = "actix")]
    #[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
    pub use crate::adapters::actix::SessionMiddlewareService;
    pub use crate::adapters::tower::{ResponseFuture, SessionService};
}

/// The `redis` crate this store is built on, for building a
/// [`Client`](redis::Client) to pass to [`RedisStore::from_client`].
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use ::redis;
#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub use adapters::actix::SessionMiddleware;
pub use adapters::tower::SessionLayer;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    ConfigError, RedisSettings, SameSite, SessionConfig, SqlSettings, StoreErrorPolicy, StoreType,
    UserSessions,
};
pub use engine::Metrics;
pub use error::{RecordError, SessionError, ValueError};
pub use id::SessionId;
pub use record::Format;
pub use session::Session;
pub use sessions::{Sessions, Users};
pub use store::memory::MemoryStore;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use store::mysql::MySqlStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::postgres::PostgresStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::redis::RedisStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::sqlite::SqliteStore;
pub use users::{InvalidHandle, SessionHandle, SessionInfo};
pub use value::Timestamp;
