//! The store a configuration names (`SESSION_TYPE` and its settings).

use std::sync::Arc;

use crate::config::{ConfigError, RedisSettings, SessionConfig, SqlSettings, StoreType};
use crate::store::memory::MemoryStore;
use crate::store::{Abilities, SessionIndex, StoreAdmin};

/// Builds the store `config` names: memory by default (on the
/// configuration's clock), Redis (feature `redis`) or SQLite (feature
/// `sqlite`), which connect on first use.
pub(crate) fn abilities(config: &SessionConfig) -> Result<Abilities, ConfigError> {
    Ok(match &config.store {
        StoreType::Memory => full(MemoryStore::builder().clock(config.clock.0.clone()).build()),
        StoreType::Redis(settings) => redis(settings)?,
        StoreType::Sql(settings) => sql(settings)?,
    })
}

/// A store with every ability: sessions, indexes and the walk.
fn full<S: SessionIndex + StoreAdmin>(store: S) -> Abilities {
    let store = Arc::new(store);
    Abilities::store(&store).index(&store).admin(&store)
}

/// A store that serves sessions and can be walked, with no indexes.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn walkable<S: StoreAdmin>(store: S) -> Abilities {
    let store = Arc::new(store);
    Abilities::store(&store).admin(&store)
}

/// An SQL store's builder with the timeout and slack `settings` give, if
/// any (the builders share these methods, not a trait).
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
macro_rules! sql_tuning {
    ($builder:expr, $settings:expr) => {{
        let mut builder = $builder;
        if let Some(timeout) = $settings.timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(slack) = $settings.slide_slack {
            builder = builder.slide_slack(slack);
        }
        builder
    }};
}

/// The SQL store `settings` name: SQLite, PostgreSQL or MySQL, by the URL's
/// scheme.
fn sql(settings: &SqlSettings) -> Result<Abilities, ConfigError> {
    let invalid = |expected: String| ConfigError::InvalidValue {
        key: "SQLALCHEMY_DATABASE_URI".into(),
        value: crate::store::redacted_url(&settings.url),
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
fn missing(feature: &str) -> Result<Abilities, ConfigError> {
    Err(ConfigError::Invalid(format!(
        "SESSION_TYPE=sqlalchemy with this URL needs server-session's `{feature}` cargo feature"
    )))
}

#[cfg(feature = "sqlite")]
fn sqlite(settings: &SqlSettings, invalid: impl Fn(String) -> ConfigError) -> Result<Abilities, ConfigError> {
    if settings.schema.is_some() {
        return Err(invalid(
            "no SESSION_SQLALCHEMY_SCHEMA with SQLite, which has no schemas".into(),
        ));
    }
    let builder = crate::store::sqlite::SqliteStore::builder(&settings.url).table(settings.table.clone());
    let store = sql_tuning!(builder, settings)
        .build()
        .map_err(|err| invalid(format!("a usable SQLite database and table ({err})")))?;
    Ok(walkable(store))
}

#[cfg(not(feature = "sqlite"))]
fn sqlite(_: &SqlSettings, _: impl Fn(String) -> ConfigError) -> Result<Abilities, ConfigError> {
    missing("sqlite")
}

#[cfg(feature = "postgres")]
fn postgres(
    settings: &SqlSettings,
    invalid: impl Fn(String) -> ConfigError,
) -> Result<Abilities, ConfigError> {
    let mut builder =
        crate::store::postgres::PostgresStore::builder(&settings.url).table(settings.table.clone());
    if let Some(schema) = &settings.schema {
        builder = builder.schema(schema.clone());
    }
    let store = sql_tuning!(builder, settings)
        .build()
        .map_err(|err| invalid(format!("a usable PostgreSQL URL, schema and table ({err})")))?;
    Ok(walkable(store))
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &SqlSettings, _: impl Fn(String) -> ConfigError) -> Result<Abilities, ConfigError> {
    missing("postgres")
}

#[cfg(feature = "mysql")]
fn mysql(settings: &SqlSettings, invalid: impl Fn(String) -> ConfigError) -> Result<Abilities, ConfigError> {
    let mut builder = crate::store::mysql::MySqlStore::builder(&settings.url).table(settings.table.clone());
    if let Some(schema) = &settings.schema {
        builder = builder.schema(schema.clone());
    }
    let store = sql_tuning!(builder, settings)
        .build()
        .map_err(|err| invalid(format!("a usable MySQL URL, schema and table ({err})")))?;
    Ok(walkable(store))
}

#[cfg(not(feature = "mysql"))]
fn mysql(_: &SqlSettings, _: impl Fn(String) -> ConfigError) -> Result<Abilities, ConfigError> {
    missing("mysql")
}

#[cfg(feature = "redis")]
fn redis(settings: &RedisSettings) -> Result<Abilities, ConfigError> {
    use crate::store::redis::{RedisStore, url_problem};
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
    if let Some(password) = &settings.sentinel_password {
        builder = builder.sentinel_password(password.clone());
    }
    if let Some(timeout) = settings.connect_timeout {
        builder = builder.connect_timeout(timeout);
    }
    if let Some(timeout) = settings.command_timeout {
        builder = builder.command_timeout(timeout);
    }
    if let Some(replicas) = settings.wait_for_replicas {
        let timeout = settings.wait_timeout.unwrap_or(std::time::Duration::from_secs(1));
        builder = builder.wait_for_replicas(replicas, timeout);
    }
    builder = redis_tls(settings, builder)?;
    let store = builder.build().map_err(|err| {
        // Say what is wrong with the value itself when it is the URL.
        // (Cluster and Sentinel lists take host:port as redis://host:port.)
        let listed = |url: &String| match url.contains("://") {
            true => url.clone(),
            false => format!("redis://{url}"),
        };
        let urls: Vec<String> = match key {
            "SESSION_REDIS" => vec![settings.url.clone()],
            "SESSION_REDIS_CLUSTER" => settings.cluster.iter().map(listed).collect(),
            _ => settings.sentinels.iter().map(listed).collect(),
        };
        let expected = match urls.iter().find_map(|url| url_problem(url)) {
            Some(problem) => format!("{expected} ({problem})"),
            None => format!("{expected} ({err})"),
        };
        ConfigError::InvalidValue {
            key: key.into(),
            value: settings.redacted(),
            expected,
        }
    })?;
    Ok(full(store))
}

/// The TLS settings of `settings` on `builder`: the CA, read from its file,
/// and how the primary is reached under Sentinel.
#[cfg(feature = "redis-tls")]
fn redis_tls(
    settings: &RedisSettings,
    mut builder: crate::store::redis::RedisStoreBuilder,
) -> Result<crate::store::redis::RedisStoreBuilder, ConfigError> {
    if let Some(path) = &settings.tls_ca {
        let pem = std::fs::read(path).map_err(|err| ConfigError::InvalidValue {
            key: "SESSION_REDIS_TLS_CA".into(),
            value: path.display().to_string(),
            expected: format!("a readable PEM file of CA certificates ({err})"),
        })?;
        builder = builder.tls_ca_certificate(pem);
    }
    if let Some(tls) = settings.primary_tls {
        builder = builder.primary_tls(tls);
    }
    Ok(builder)
}

#[cfg(all(feature = "redis", not(feature = "redis-tls")))]
fn redis_tls(
    settings: &RedisSettings,
    builder: crate::store::redis::RedisStoreBuilder,
) -> Result<crate::store::redis::RedisStoreBuilder, ConfigError> {
    for (set, name) in [
        (settings.tls_ca.is_some(), "SESSION_REDIS_TLS_CA"),
        (
            settings.primary_tls.is_some(),
            "SESSION_REDIS_SENTINEL_PRIMARY_TLS",
        ),
    ] {
        if set {
            return Err(ConfigError::Invalid(format!(
                "{name} needs server-session's `redis-tls` cargo feature"
            )));
        }
    }
    Ok(builder)
}

#[cfg(not(feature = "redis"))]
fn redis(_: &RedisSettings) -> Result<Abilities, ConfigError> {
    Err(ConfigError::Invalid(
        "SESSION_TYPE=redis needs server-session's `redis` cargo feature".into(),
    ))
}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::*;

    fn refused(pairs: &[(&str, &str)]) -> String {
        let config = SessionConfig::from_map(pairs.iter().copied()).unwrap();
        match abilities(&config) {
            Err(err) => err.to_string(),
            Ok(_) => panic!("{pairs:?} built a store"),
        }
    }

    #[test]
    fn a_bad_redis_url_is_explained_in_one_sentence() {
        let redis = |url| refused(&[("SESSION_TYPE", "redis"), ("SESSION_REDIS", url)]);
        assert_eq!(
            redis("notaurl"),
            "SESSION_REDIS: \"notaurl\" is not valid; expected a redis:// or rediss:// URL \
             (it has no scheme: write redis://host:port, or rediss://host:port for TLS)"
        );
        assert!(redis("http://h:6379").contains("its scheme \"http\" is not one of"));
        assert!(redis("redis://h:6379/x").contains("invalid database number"));
        assert!(redis("redis://h:port").contains("does not parse"));
        for url in ["notaurl", "http://h", "redis://h:6379/x", "redis://h:port"] {
            let text = redis(url);
            assert!(
                !text.contains("InvalidClientConfig") && !text.contains('\n'),
                "{text}"
            );
        }
        let cluster = refused(&[
            ("SESSION_TYPE", "redis"),
            ("SESSION_REDIS_CLUSTER", "h:1,ftp://h:2"),
        ]);
        assert!(cluster.contains("its scheme \"ftp\""), "{cluster}");
    }

    #[test]
    fn an_unreadable_ca_file_is_named() {
        let text = refused(&[
            ("SESSION_TYPE", "redis"),
            ("SESSION_REDIS", "rediss://h:6379"),
            ("SESSION_REDIS_TLS_CA", "/nonexistent/ca.pem"),
        ]);
        if cfg!(feature = "redis-tls") {
            assert!(
                text.starts_with("SESSION_REDIS_TLS_CA: \"/nonexistent/ca.pem\" is not valid"),
                "{text}"
            );
        } else {
            assert!(text.contains("redis-tls"), "{text}");
        }
    }
}
