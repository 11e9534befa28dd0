//! The store a configuration names (`SESSION_TYPE` and its settings).

use std::sync::Arc;

use super::DynStore;
use super::memory::MemoryStore;
use crate::config::{ConfigError, RedisSettings, SessionConfig, StoreType};

/// Builds the store `config` names: memory by default (on the
/// configuration's clock), or Redis (feature `redis`), which connects on
/// first use.
pub(crate) fn from_config(config: &SessionConfig) -> Result<Arc<dyn DynStore>, ConfigError> {
    Ok(match &config.store {
        StoreType::Memory => Arc::new(MemoryStore::builder().clock(config.clock.0.clone()).build()),
        StoreType::Redis(settings) => redis(settings)?,
    })
}

#[cfg(feature = "redis")]
fn redis(settings: &RedisSettings) -> Result<Arc<dyn DynStore>, ConfigError> {
    use super::redis::RedisStore;
    let (key, expected, mut builder) = if !settings.cluster.is_empty() {
        let builder = RedisStore::cluster(&settings.cluster);
        (
            "SESSION_REDIS_CLUSTER",
            "cluster nodes as host:port or redis:// URLs",
            builder,
        )
    } else if !settings.sentinels.is_empty() {
        let master = settings.sentinel_master.clone().unwrap_or_default();
        let builder = RedisStore::sentinel(&settings.sentinels, master);
        (
            "SESSION_REDIS_SENTINEL",
            "Sentinels as host:port or redis:// URLs",
            builder,
        )
    } else {
        let builder = RedisStore::builder(settings.url.as_str());
        ("SESSION_REDIS", "a redis:// or rediss:// URL", builder)
    };
    if let Some(password) = &settings.password {
        builder = builder.password(password.clone());
    }
    if let Some(db) = settings.db {
        builder = builder.db(db);
    }
    let store = builder.build().map_err(|err| ConfigError::InvalidValue {
        key: key.into(),
        value: settings.redacted(),
        expected: format!("{expected} ({err})"),
    })?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "redis"))]
fn redis(_: &RedisSettings) -> Result<Arc<dyn DynStore>, ConfigError> {
    Err(ConfigError::Invalid(
        "SESSION_TYPE=redis needs server-session's `redis` cargo feature".into(),
    ))
}
