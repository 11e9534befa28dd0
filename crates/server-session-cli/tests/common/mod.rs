//! The library's test servers, shared with its own integration tests.
#![allow(dead_code)]

#[path = "../../../server-session/tests/it/common/postgres.rs"]
pub mod postgres;
#[path = "../../../server-session/tests/it/common/python.rs"]
pub mod python;
#[path = "../../../server-session/tests/it/common/redis.rs"]
pub mod redis;
#[path = "../../../server-session/tests/it/common/servers.rs"]
pub mod servers;
