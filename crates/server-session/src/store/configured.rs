//! The store a configuration names (`SESSION_TYPE` and its settings).

use std::sync::Arc;

use super::DynStore;
use super::memory::MemoryStore;
use crate::config::{ConfigError, RedisSettings, SessionConfig, SqlSettings, StoreType};

/// Builds the store `config` names: memory by default (on the
/// configuration's clock), Redis (feature `redis`) or SQLite (feature
/// `sqlite`), which connect on first use.
pub(crate) fn from_config(config: &SessionConfig) -> Result<Arc<dyn DynStore>, ConfigError> {
    Ok(match &config.store {
        StoreType::Memory => Arc::new(MemoryStore::builder().clock(config.clock.0.clone()).build()),
        StoreType::Redis(settings) => redis(settings)?,
        StoreType::Sql(settings) => sql(settings)?,
    })
}

/// The SQL store `settings` name: SQLite, PostgreSQL or MySQL, by the URL's
/// scheme.
fn sql(settings: &SqlSettings) -> Result<Arc<dyn DynStore>, ConfigError> {
    let invalid = |expected: String| ConfigError::InvalidValue {
        key: "SQLALCHEMY_DATABASE_URI".into(),
        value: crate::config::redacted_url(&settings.url),
        expected,
    };
    match settings.url.split([':', '+']).next().unwrap_or_default() {
        "sqlite" => sqlite(settings, invalid),
        "postgresql" | "postgres" => postgres(settings, invalid),
        "mysql" | "mariadb" => mysql(settings, invalid),
        _ => Err(invalid(
            "a sqlite:///, postgresql:// or mysql:// URL (the SQL databases this version supports)".into(),
        )),
    }
}

/// The error for a URL whose store this build leaves out.
#[cfg(not(all(feature = "sqlite", feature = "postgres", feature = "mysql")))]
fn missing(feature: &str) -> Result<Arc<dyn DynStore>, ConfigError> {
    Err(ConfigError::Invalid(format!(
        "SESSION_TYPE=sqlalchemy with this URL needs server-session's `{feature}` cargo feature"
    )))
}

#[cfg(feature = "sqlite")]
fn sqlite(
    settings: &SqlSettings,
    invalid: impl Fn(String) -> ConfigError,
) -> Result<Arc<dyn DynStore>, ConfigError> {
    if settings.schema.is_some() {
        return Err(invalid(
            "no SESSION_SQLALCHEMY_SCHEMA with SQLite, which has no schemas".into(),
        ));
    }
    let store = super::sqlite::SqliteStore::builder(&settings.url)
        .table(settings.table.clone())
        .build()
        .map_err(|err| invalid(format!("a usable SQLite database and table ({err})")))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "sqlite"))]
fn sqlite(_: &SqlSettings, _: impl Fn(String) -> ConfigError) -> Result<Arc<dyn DynStore>, ConfigError> {
    missing("sqlite")
}

#[cfg(feature = "postgres")]
fn postgres(
    settings: &SqlSettings,
    invalid: impl Fn(String) -> ConfigError,
) -> Result<Arc<dyn DynStore>, ConfigError> {
    let mut builder = super::postgres::PostgresStore::builder(&settings.url).table(settings.table.clone());
    if let Some(schema) = &settings.schema {
        builder = builder.schema(schema.clone());
    }
    let store = builder
        .build()
        .map_err(|err| invalid(format!("a usable PostgreSQL URL, schema and table ({err})")))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &SqlSettings, _: impl Fn(String) -> ConfigError) -> Result<Arc<dyn DynStore>, ConfigError> {
    missing("postgres")
}

#[cfg(feature = "mysql")]
fn mysql(
    settings: &SqlSettings,
    invalid: impl Fn(String) -> ConfigError,
) -> Result<Arc<dyn DynStore>, ConfigError> {
    let mut builder = super::mysql::MySqlStore::builder(&settings.url).table(settings.table.clone());
    if let Some(schema) = &settings.schema {
        builder = builder.schema(schema.clone());
    }
    let store = builder
        .build()
        .map_err(|err| invalid(format!("a usable MySQL URL, schema and table ({err})")))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "mysql"))]
fn mysql(_: &SqlSettings, _: impl Fn(String) -> ConfigError) -> Result<Arc<dyn DynStore>, ConfigError> {
    missing("mysql")
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
