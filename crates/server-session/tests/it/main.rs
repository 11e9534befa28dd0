//! The integration tests, in one binary: each module is one suite, and
//! `common` the servers, stores and clients they share. The two suites that
//! print what they measure (`failover`, `sql_cleanup`) have binaries of
//! their own.

#[macro_use]
mod common;

#[cfg(feature = "redis")]
mod accounts_browser;
mod concurrency;
mod cookie_fuzz;
mod custom_store;
mod examples;
mod flask_fixtures;
mod flask_interop;
mod hardening;
mod layers;
mod lifecycle;
mod memory_store;
#[cfg(feature = "metrics")]
mod metrics;
#[cfg(all(feature = "mysql", feature = "redis"))]
mod mysql_store;
#[cfg(all(feature = "postgres", feature = "redis"))]
mod postgres_store;
mod redis_store;
mod spans;
#[cfg(all(
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql",
    feature = "redis"
))]
mod sql_statements;
#[cfg(all(feature = "sqlite", feature = "redis"))]
mod sqlite_store;
mod topologies;
mod users;
