//! Configuration by Flask-Session's names, from the environment or a map.

use std::time::Duration;

use super::{ConfigError, RedisSettings, SameSite, SessionConfig, SqlSettings, StoreType};
use crate::record::Format;

/// Every name read, in the order applied.
const NAMES: &[&str] = &[
    "SESSION_TYPE",
    "SESSION_REDIS",
    "SESSION_REDIS_CLUSTER",
    "SESSION_REDIS_SENTINEL",
    "SESSION_REDIS_SENTINEL_MASTER",
    "SESSION_REDIS_PASSWORD",
    "SESSION_REDIS_DB",
    "SESSION_REDIS_SENTINEL_PASSWORD",
    "SESSION_REDIS_SENTINEL_PRIMARY_TLS",
    "SESSION_REDIS_TLS_CA",
    "SESSION_REDIS_CONNECT_TIMEOUT",
    "SESSION_REDIS_COMMAND_TIMEOUT",
    "SESSION_REDIS_WAIT_REPLICAS",
    "SESSION_REDIS_WAIT_TIMEOUT",
    "SESSION_KEY_PREFIX",
    "SESSION_ID_LENGTH",
    "SESSION_PERMANENT",
    "PERMANENT_SESSION_LIFETIME",
    "SESSION_USE_SIGNER",
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "SESSION_SERIALIZATION_FORMAT",
    "SESSION_REFRESH_EACH_REQUEST",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_DOMAIN",
    "SESSION_COOKIE_PATH",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_PARTITIONED",
    "SESSION_HASH_IDS",
    "SESSION_SHARED_WITH_FLASK",
    "SQLALCHEMY_DATABASE_URI",
    "SESSION_SQLALCHEMY_TABLE",
    "SESSION_SQLALCHEMY_SCHEMA",
    "SESSION_SQLALCHEMY_SEQUENCE",
    "SESSION_SQLALCHEMY_TIMEOUT",
    "SESSION_SQLALCHEMY_SLIDE_SLACK",
    "SESSION_CLEANUP_N_REQUESTS",
];

/// The longest store timeout a name accepts: an hour.
const MAX_TIMEOUT_SECS: f64 = 3600.0;

const STORE_TYPES: &str = "one of: memory, redis, sqlalchemy";

impl SessionConfig {
    /// The configuration from environment variables named as in Flask and
    /// Flask-Session (`SESSION_TYPE`, `SESSION_REDIS`, `SESSION_PERMANENT`,
    /// `PERMANENT_SESSION_LIFETIME`, `SESSION_COOKIE_*`, `SECRET_KEY`, ...);
    /// see [`from_map`](Self::from_map). Variables with other names are
    /// ignored; unset ones keep their defaults.
    pub fn from_env() -> Result<SessionConfig, ConfigError> {
        SessionConfig::from_map(std::env::vars())
    }

    /// The configuration from `(name, value)` pairs, say a config file's, by
    /// Flask-Session's names:
    ///
    /// | name | value |
    /// |---|---|
    /// | `SESSION_TYPE` | `memory` (default), `redis` or `sqlalchemy` |
    /// | `SESSION_CLEANUP_N_REQUESTS` | a number, or `None`: accepted; the SQL stores delete expired rows on a timer of their own (see `SqliteStoreBuilder::cleanup_every`) |
    /// | `SQLALCHEMY_DATABASE_URI`, `SESSION_SQLALCHEMY_TABLE`, `SESSION_SQLALCHEMY_SCHEMA` | with `sqlalchemy`: the database (`sqlite:///relative.db` or `sqlite:////absolute.db`, feature `sqlite`; `postgresql://...`, feature `postgres`; `mysql://...`, feature `mysql`), the table (default `sessions`) and its schema |
    /// | `SESSION_SQLALCHEMY_SEQUENCE` | refused when set: the stores create the table with an auto-incrementing `id` |
    /// | `SESSION_SQLALCHEMY_TIMEOUT` | seconds a call waits for a connection, a lock or a statement (default 5; above 0, at most 3600) |
    /// | `SESSION_SQLALCHEMY_SLIDE_SLACK` | seconds a read may leave a sliding expiry behind before it writes it (default 60; 0 writes it on every read) |
    /// | `SESSION_REDIS` | a `redis://` or `rediss://` URL (default `redis://127.0.0.1:6379`) |
    /// | `SESSION_REDIS_CLUSTER` | nodes of a Redis Cluster, `host:port` (or URLs) separated by commas, instead of `SESSION_REDIS` |
    /// | `SESSION_REDIS_SENTINEL`, `SESSION_REDIS_SENTINEL_MASTER` | Sentinels, `host:port` separated by commas, and the name they monitor the primary under, instead of `SESSION_REDIS` |
    /// | `SESSION_REDIS_PASSWORD`, `SESSION_REDIS_DB` | override the URL's |
    /// | `SESSION_REDIS_SENTINEL_PASSWORD` | the Sentinels' own password, overriding their URLs' |
    /// | `SESSION_REDIS_SENTINEL_PRIMARY_TLS` | `true`/`false`: reach the primary over TLS or not, when it differs from the Sentinels (default: as the Sentinels; see `RedisStoreBuilder::primary_tls`) |
    /// | `SESSION_REDIS_TLS_CA` | a PEM file of the CA certificates to trust for `rediss://` instead of the system's (feature `redis-tls`) |
    /// | `SESSION_REDIS_CONNECT_TIMEOUT`, `SESSION_REDIS_COMMAND_TIMEOUT` | seconds (`0.5`, `2`), above 0 and at most 3600; default 1 each |
    /// | `SESSION_REDIS_WAIT_REPLICAS`, `SESSION_REDIS_WAIT_TIMEOUT` | durable writes: the replicas that must have each write, and the seconds to wait for them (default 1); see `RedisStoreBuilder::wait_for_replicas` |
    /// | `SESSION_KEY_PREFIX` | text |
    /// | `SESSION_ID_LENGTH` | bytes, 16 to 256 |
    /// | `SESSION_PERMANENT`, `SESSION_USE_SIGNER`, `SESSION_REFRESH_EACH_REQUEST` | `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`) |
    /// | `PERMANENT_SESSION_LIFETIME` | whole seconds, at most 400 days |
    /// | `SECRET_KEY` | text |
    /// | `SECRET_KEY_FALLBACKS` | a JSON list of strings, or comma-separated |
    /// | `SESSION_SERIALIZATION_FORMAT` | `msgpack` or `json` |
    /// | `SESSION_COOKIE_NAME`, `_DOMAIN`, `_PATH` | text (an empty domain is none) |
    /// | `SESSION_COOKIE_SECURE`, `_HTTPONLY`, `_PARTITIONED` | `true`/`false` |
    /// | `SESSION_COOKIE_SAMESITE` | `Lax`, `Strict`, `None`, or empty for no attribute |
    /// | `SESSION_HASH_IDS`, `SESSION_SHARED_WITH_FLASK` | `true`/`false` (not Flask's: see [`hash_ids`](Self::hash_ids), [`shared_with_flask`](Self::shared_with_flask)) |
    ///
    /// A value that cannot be read is an error naming the key and what it
    /// accepts; other names are ignored.
    ///
    /// ```
    /// use server_session::SessionConfig;
    ///
    /// let config = SessionConfig::from_map([
    ///     ("SESSION_TYPE", "memory"),
    ///     ("SESSION_COOKIE_NAME", "hello_session"),
    ///     ("PERMANENT_SESSION_LIFETIME", "3600"),
    /// ])?;
    ///
    /// let err = SessionConfig::from_map([("SESSION_TYPE", "filesystem")]).unwrap_err();
    /// assert_eq!(err.to_string(), r#"SESSION_TYPE: "filesystem" is not valid; expected one of: memory, redis, sqlalchemy"#);
    /// # Ok::<_, server_session::ConfigError>(())
    /// ```
    pub fn from_map<I, K, V>(pairs: I) -> Result<SessionConfig, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut found: Vec<(&'static str, String)> = Vec::new();
        for (key, value) in pairs {
            if let Some(name) = NAMES.iter().find(|n| **n == key.as_ref()) {
                found.retain(|(n, _)| n != name);
                found.push((name, value.as_ref().to_owned()));
            }
        }
        found.sort_by_key(|(name, _)| NAMES.iter().position(|n| n == name));
        let mut config = SessionConfig::default();
        let mut redis = RedisSettings::default();
        let mut sql = SqlSettings::default();
        let mut store = "memory".to_owned();
        let mut use_signer = false;
        let mut secret: Option<String> = None;
        for (name, value) in &found {
            let v = value.as_str();
            match *name {
                "SESSION_TYPE" => store = v.trim().to_ascii_lowercase(),
                "SESSION_REDIS" => redis.url = v.to_owned(),
                "SESSION_REDIS_CLUSTER" => redis.cluster = addresses(v),
                "SESSION_REDIS_SENTINEL" => redis.sentinels = addresses(v),
                "SESSION_REDIS_SENTINEL_MASTER" => {
                    redis.sentinel_master = Some(v.trim().to_owned()).filter(|m| !m.is_empty())
                }
                "SESSION_REDIS_PASSWORD" => redis.password = Some(v.to_owned()),
                "SESSION_REDIS_DB" => redis.db = Some(number(name, v, "a database number")?),
                "SESSION_REDIS_SENTINEL_PASSWORD" => redis.sentinel_password = Some(v.to_owned()),
                "SESSION_REDIS_SENTINEL_PRIMARY_TLS" => redis.primary_tls = Some(boolean(name, v)?),
                "SESSION_REDIS_TLS_CA" => {
                    redis.tls_ca =
                        Some(v.trim().into()).filter(|p: &std::path::PathBuf| !p.as_os_str().is_empty())
                }
                "SESSION_REDIS_CONNECT_TIMEOUT" => redis.connect_timeout = Some(seconds(name, v, false)?),
                "SESSION_REDIS_COMMAND_TIMEOUT" => redis.command_timeout = Some(seconds(name, v, false)?),
                "SESSION_REDIS_WAIT_REPLICAS" => {
                    let replicas: usize = number(name, v, "a number of replicas, 0 (off) to 64")?;
                    if replicas > 64 {
                        return Err(invalid(name, v, "a number of replicas, 0 (off) to 64"));
                    }
                    redis.wait_for_replicas = Some(replicas).filter(|n| *n > 0);
                }
                "SESSION_REDIS_WAIT_TIMEOUT" => redis.wait_timeout = Some(seconds(name, v, false)?),
                "SESSION_KEY_PREFIX" => config.key_prefix = v.to_owned(),
                "SESSION_ID_LENGTH" => {
                    let expected = "a number of bytes, 16 to 256 (128 random bits or more)";
                    config.id_length = number(name, v, expected)?;
                    if !(16..=256).contains(&config.id_length) {
                        return Err(invalid(name, v, expected));
                    }
                }
                "SESSION_PERMANENT" => config.permanent = boolean(name, v)?,
                "PERMANENT_SESSION_LIFETIME" => {
                    let expected = "whole seconds, from 1 to 34560000 (400 days)";
                    let secs: u64 = number(name, v, expected)?;
                    config.lifetime = Duration::from_secs(secs);
                    if !(1..=SessionConfig::MAX_LIFETIME.as_secs()).contains(&secs) {
                        return Err(invalid(name, v, expected));
                    }
                }
                "SESSION_USE_SIGNER" => use_signer = boolean(name, v)?,
                "SECRET_KEY" => secret = Some(v.to_owned()),
                "SECRET_KEY_FALLBACKS" => config = config.fallback_secrets(list(name, v)?),
                "SESSION_SERIALIZATION_FORMAT" => {
                    config.format = match v.trim().to_ascii_lowercase().as_str() {
                        "msgpack" => Format::MessagePack,
                        "json" => Format::Json,
                        _ => return Err(invalid(name, v, "msgpack or json")),
                    }
                }
                "SESSION_REFRESH_EACH_REQUEST" => config.refresh_each_request = boolean(name, v)?,
                "SESSION_COOKIE_NAME" => config.cookie.name = v.to_owned(),
                "SESSION_COOKIE_DOMAIN" => {
                    config.cookie.domain = Some(v.to_owned()).filter(|d| !d.is_empty())
                }
                "SESSION_COOKIE_PATH" => config.cookie.path = v.to_owned(),
                "SESSION_COOKIE_SECURE" => config.cookie.secure = boolean(name, v)?,
                "SESSION_COOKIE_HTTPONLY" => config.cookie.http_only = boolean(name, v)?,
                "SESSION_COOKIE_SAMESITE" => {
                    config.cookie.same_site = match v.trim().to_ascii_lowercase().as_str() {
                        "lax" => Some(SameSite::Lax),
                        "strict" => Some(SameSite::Strict),
                        "none" => Some(SameSite::None),
                        "" => None,
                        _ => return Err(invalid(name, v, "Lax, Strict, None, or empty for no attribute")),
                    }
                }
                "SESSION_COOKIE_PARTITIONED" => config.cookie.partitioned = boolean(name, v)?,
                "SQLALCHEMY_DATABASE_URI" => sql.url = v.trim().to_owned(),
                "SESSION_SQLALCHEMY_TABLE" => sql.table = v.trim().to_owned(),
                "SESSION_SQLALCHEMY_SCHEMA" => {
                    sql.schema = Some(v.trim().to_owned()).filter(|s| !s.is_empty() && s != "None")
                }
                // A table Flask made with a named sequence has an `id` with
                // no default, which an insert here would leave NULL.
                "SESSION_SQLALCHEMY_SEQUENCE" if !v.trim().is_empty() && v.trim() != "None" => {
                    return Err(invalid(
                        name,
                        v,
                        "no value: the tables here number their rows themselves (SERIAL, AUTO_INCREMENT)",
                    ));
                }
                "SESSION_SQLALCHEMY_SEQUENCE" => {}
                "SESSION_SQLALCHEMY_TIMEOUT" => sql.timeout = Some(seconds(name, v, false)?),
                "SESSION_SQLALCHEMY_SLIDE_SLACK" => sql.slide_slack = Some(seconds(name, v, true)?),
                // Flask-Session deletes expired rows on one request in N; the
                // SQL stores delete them on their own, in batches on a timer,
                // so the value is checked and the cleanup left to them.
                "SESSION_CLEANUP_N_REQUESTS" => {
                    if !v.trim().eq_ignore_ascii_case("none") {
                        let n: u64 = number(name, v, "a number of requests, or None")?;
                        if n == 0 {
                            return Err(invalid(name, v, "a number of requests, or None"));
                        }
                    }
                }
                "SESSION_HASH_IDS" => config.hash_ids = boolean(name, v)?,
                "SESSION_SHARED_WITH_FLASK" => config.shared_with_flask = boolean(name, v)?,
                _ => unreachable!("every name in NAMES is handled"),
            }
        }
        if !redis.cluster.is_empty() && !redis.sentinels.is_empty() {
            return Err(invalid(
                "SESSION_REDIS_SENTINEL",
                &redis.sentinels.join(","),
                "no value when SESSION_REDIS_CLUSTER is set (a store is a cluster or a Sentinel setup)",
            ));
        }
        match (redis.sentinels.is_empty(), &redis.sentinel_master) {
            (false, None) => {
                return Err(invalid(
                    "SESSION_REDIS_SENTINEL_MASTER",
                    "",
                    "the name the Sentinels monitor the primary under, with SESSION_REDIS_SENTINEL",
                ));
            }
            (true, Some(_)) => {
                return Err(invalid(
                    "SESSION_REDIS_SENTINEL",
                    "",
                    "Sentinel addresses, with SESSION_REDIS_SENTINEL_MASTER",
                ));
            }
            _ => {}
        }
        config.store = match store.as_str() {
            "memory" => StoreType::Memory,
            "redis" => StoreType::Redis(redis),
            "sqlalchemy" if sql.url.is_empty() => {
                return Err(invalid(
                    "SQLALCHEMY_DATABASE_URI",
                    "",
                    "the database's URL, with SESSION_TYPE=sqlalchemy (sqlite:///path.db, postgresql://..., mysql://...)",
                ));
            }
            "sqlalchemy" => StoreType::Sql(sql),
            _ => return Err(invalid("SESSION_TYPE", &store, STORE_TYPES)),
        };
        if use_signer {
            match secret {
                Some(secret) if !secret.is_empty() => config = config.secret(secret),
                _ => {
                    return Err(ConfigError::InvalidValue {
                        key: "SESSION_USE_SIGNER".into(),
                        value: "true".into(),
                        expected: "SECRET_KEY to be set as well".into(),
                    });
                }
            }
        }
        config.validate()?;
        Ok(config)
    }
}

fn invalid(key: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.into(),
        value: value.into(),
        expected: expected.into(),
    }
}

fn boolean(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(key, value, "true or false")),
    }
}

fn number<T: std::str::FromStr>(key: &str, value: &str, expected: &str) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| invalid(key, value, expected))
}

/// Seconds, whole or not (`2`, `0.5`), at most an hour; zero only where
/// `zero` allows it.
fn seconds(key: &str, value: &str, zero: bool) -> Result<Duration, ConfigError> {
    let expected = if zero {
        "seconds, such as 60 or 0.5, from 0 to 3600"
    } else {
        "seconds, such as 1 or 0.5, above 0 and at most 3600"
    };
    let secs: f64 = number(key, value, expected)?;
    if !(0.0..=MAX_TIMEOUT_SECS).contains(&secs) || (secs == 0.0 && !zero) {
        return Err(invalid(key, value, expected));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `host:port` (or URL) entries separated by commas.
fn addresses(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A JSON list of strings, or comma-separated text.
fn list(key: &str, value: &str) -> Result<Vec<String>, ConfigError> {
    let value = value.trim();
    if value.starts_with('[') {
        // The value holds secrets: never repeat it in the error.
        return serde_json::from_str(value).map_err(|_| invalid(key, "<redacted>", "a JSON list of strings"));
    }
    Ok(value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(pairs: &[(&str, &str)]) -> String {
        SessionConfig::from_map(pairs.iter().copied())
            .unwrap_err()
            .to_string()
    }

    /// The configuration guide's tables name exactly the keys read here.
    #[test]
    fn the_configuration_guide_names_every_key_read() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let guide = std::fs::read_to_string(path).expect("docs/configuration.md");
        let mut documented: Vec<&str> = guide
            .lines()
            .filter(|line| line.starts_with('|'))
            .flat_map(|line| line.split('`').skip(1).step_by(2))
            .filter(|word| {
                word.contains('_')
                    && word
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            })
            .collect();
        documented.sort_unstable();
        documented.dedup();
        let mut read = NAMES.to_vec();
        read.sort_unstable();
        assert_eq!(documented, read, "docs/configuration.md against NAMES");
    }

    #[test]
    fn defaults_without_names() {
        let config = SessionConfig::from_map([("PATH", "/usr/bin"), ("HOME", "/root")]).unwrap();
        assert_eq!(config.store, StoreType::Memory);
        assert_eq!(config.cookie.name, "session");
        assert_eq!(config.lifetime, Duration::from_secs(31 * 24 * 3600));
    }

    #[test]
    fn reads_every_name() {
        let config = SessionConfig::from_map([
            ("SESSION_TYPE", "redis"),
            ("SESSION_REDIS", "redis://cache:6380/2"),
            ("SESSION_REDIS_PASSWORD", "pw"),
            ("SESSION_REDIS_DB", "4"),
            ("SESSION_KEY_PREFIX", "bruce"),
            ("SESSION_ID_LENGTH", "16"),
            ("SESSION_PERMANENT", "False"),
            ("PERMANENT_SESSION_LIFETIME", "3600"),
            ("SESSION_USE_SIGNER", "1"),
            ("SECRET_KEY", "new"),
            ("SECRET_KEY_FALLBACKS", r#"["old", "older"]"#),
            ("SESSION_SERIALIZATION_FORMAT", "json"),
            ("SESSION_REFRESH_EACH_REQUEST", "off"),
            ("SESSION_COOKIE_NAME", "__Host-sid"),
            ("SESSION_COOKIE_DOMAIN", ""),
            ("SESSION_COOKIE_PATH", "/"),
            ("SESSION_COOKIE_SECURE", "yes"),
            ("SESSION_COOKIE_HTTPONLY", "true"),
            ("SESSION_COOKIE_SAMESITE", "None"),
            ("SESSION_COOKIE_PARTITIONED", "true"),
        ])
        .unwrap();
        let StoreType::Redis(redis) = &config.store else {
            panic!("{:?}", config.store)
        };
        assert_eq!(redis.url, "redis://cache:6380/2");
        assert_eq!((redis.password.as_deref(), redis.db), (Some("pw"), Some(4)));
        assert_eq!(config.key_prefix, "bruce");
        assert_eq!(config.id_length, 16);
        assert!(!config.permanent);
        assert_eq!(config.lifetime, Duration::from_secs(3600));
        assert_eq!(config.secret.as_ref().unwrap().0, b"new");
        let fallbacks: Vec<_> = config.fallback_secrets.iter().map(|s| s.0.clone()).collect();
        assert_eq!(fallbacks, [b"old".to_vec(), b"older".to_vec()]);
        assert_eq!(config.format, Format::Json);
        assert!(!config.refresh_each_request);
        assert_eq!(config.cookie.name, "__Host-sid");
        assert_eq!(config.cookie.domain, None);
        assert!(config.cookie.secure && config.cookie.http_only && config.cookie.partitioned);
        assert_eq!(config.cookie.same_site, Some(SameSite::None));
        let debug = format!("{config:?}");
        assert!(!debug.contains("pw") && !debug.contains("old"), "{debug}");
    }

    #[test]
    fn cluster_and_sentinel_addresses() {
        let config = SessionConfig::from_map([
            ("SESSION_TYPE", "redis"),
            ("SESSION_REDIS_CLUSTER", "10.0.0.1:7000, 10.0.0.2:7000,"),
        ])
        .unwrap();
        let StoreType::Redis(redis) = &config.store else {
            panic!("{:?}", config.store)
        };
        assert_eq!(redis.cluster, ["10.0.0.1:7000", "10.0.0.2:7000"]);
        let config = SessionConfig::from_map([
            ("SESSION_TYPE", "redis"),
            ("SESSION_REDIS_SENTINEL", "s1:26379,s2:26379"),
            ("SESSION_REDIS_SENTINEL_MASTER", "mymaster"),
        ])
        .unwrap();
        let StoreType::Redis(redis) = &config.store else {
            panic!("{:?}", config.store)
        };
        assert_eq!(redis.sentinels, ["s1:26379", "s2:26379"]);
        assert_eq!(redis.sentinel_master.as_deref(), Some("mymaster"));
        assert!(err(&[("SESSION_REDIS_SENTINEL", "s1:26379")]).starts_with("SESSION_REDIS_SENTINEL_MASTER:"));
        assert!(err(&[("SESSION_REDIS_SENTINEL_MASTER", "m")]).starts_with("SESSION_REDIS_SENTINEL:"));
        assert!(
            err(&[
                ("SESSION_REDIS_CLUSTER", "a:1"),
                ("SESSION_REDIS_SENTINEL", "s:2"),
                ("SESSION_REDIS_SENTINEL_MASTER", "m"),
            ])
            .contains("SESSION_REDIS_CLUSTER is set")
        );
    }

    #[test]
    fn deployment_settings_have_names() {
        let config = SessionConfig::from_map([
            ("SESSION_TYPE", "redis"),
            ("SESSION_REDIS_SENTINEL", "rediss://s1:26379"),
            ("SESSION_REDIS_SENTINEL_MASTER", "m"),
            ("SESSION_REDIS_SENTINEL_PASSWORD", "sentinel-secret"),
            ("SESSION_REDIS_SENTINEL_PRIMARY_TLS", "false"),
            ("SESSION_REDIS_TLS_CA", "/etc/ssl/private-ca.pem"),
            ("SESSION_REDIS_CONNECT_TIMEOUT", "0.25"),
            ("SESSION_REDIS_COMMAND_TIMEOUT", "2"),
            ("SESSION_REDIS_WAIT_REPLICAS", "1"),
            ("SESSION_REDIS_WAIT_TIMEOUT", "0.5"),
        ])
        .unwrap();
        let StoreType::Redis(redis) = &config.store else {
            panic!("{:?}", config.store)
        };
        assert_eq!(redis.sentinel_password.as_deref(), Some("sentinel-secret"));
        assert_eq!(redis.primary_tls, Some(false));
        assert_eq!(redis.tls_ca.as_deref(), Some("/etc/ssl/private-ca.pem".as_ref()));
        assert_eq!(redis.connect_timeout, Some(Duration::from_millis(250)));
        assert_eq!(redis.command_timeout, Some(Duration::from_secs(2)));
        assert_eq!(redis.wait_for_replicas, Some(1));
        assert_eq!(redis.wait_timeout, Some(Duration::from_millis(500)));
        assert!(!format!("{config:?}").contains("sentinel-secret"));
        let config = SessionConfig::from_map([
            ("SESSION_TYPE", "sqlalchemy"),
            ("SQLALCHEMY_DATABASE_URI", "sqlite:///s.db"),
            ("SESSION_SQLALCHEMY_TIMEOUT", "1.5"),
            ("SESSION_SQLALCHEMY_SLIDE_SLACK", "0"),
        ])
        .unwrap();
        let StoreType::Sql(sql) = &config.store else {
            panic!("{:?}", config.store)
        };
        assert_eq!(sql.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(sql.slide_slack, Some(Duration::ZERO));
        for (name, value) in [
            ("SESSION_REDIS_CONNECT_TIMEOUT", "0"),
            ("SESSION_REDIS_COMMAND_TIMEOUT", "-1"),
            ("SESSION_REDIS_COMMAND_TIMEOUT", "NaN"),
            ("SESSION_REDIS_WAIT_TIMEOUT", "1e9"),
            ("SESSION_SQLALCHEMY_TIMEOUT", "5s"),
            ("SESSION_SQLALCHEMY_SLIDE_SLACK", "-0.1"),
            ("SESSION_REDIS_WAIT_REPLICAS", "65"),
            ("SESSION_REDIS_SENTINEL_PRIMARY_TLS", "maybe"),
        ] {
            let text = err(&[(name, value)]);
            assert!(text.starts_with(&format!("{name}: ")), "{text}");
            assert!(!text.contains('\n'), "one sentence: {text}");
        }
    }

    #[test]
    fn a_secret_without_the_signer_flag_signs_nothing() {
        let config = SessionConfig::from_map([("SECRET_KEY", "k")]).unwrap();
        assert!(config.secret.is_none());
        let fallbacks = SessionConfig::from_map([("SECRET_KEY_FALLBACKS", "a, b")]).unwrap();
        assert_eq!(fallbacks.fallback_secrets.len(), 2);
    }

    #[test]
    fn bad_values_name_the_key_and_what_it_accepts() {
        assert_eq!(
            err(&[("SESSION_TYPE", "filesystem")]),
            r#"SESSION_TYPE: "filesystem" is not valid; expected one of: memory, redis, sqlalchemy"#
        );
        assert_eq!(
            err(&[("SESSION_PERMANENT", "maybe")]),
            r#"SESSION_PERMANENT: "maybe" is not valid; expected true or false"#
        );
        assert_eq!(
            err(&[("PERMANENT_SESSION_LIFETIME", "31 days")]),
            r#"PERMANENT_SESSION_LIFETIME: "31 days" is not valid; expected whole seconds, from 1 to 34560000 (400 days)"#
        );
        assert_eq!(
            err(&[("PERMANENT_SESSION_LIFETIME", "18446744073709551615")]),
            r#"PERMANENT_SESSION_LIFETIME: "18446744073709551615" is not valid; expected whole seconds, from 1 to 34560000 (400 days)"#
        );
        assert!(err(&[("PERMANENT_SESSION_LIFETIME", "0")]).starts_with("PERMANENT_SESSION_LIFETIME:"));
        assert!(err(&[("SESSION_ID_LENGTH", "-1")]).starts_with("SESSION_ID_LENGTH:"));
        assert!(err(&[("SESSION_REDIS_DB", "x")]).starts_with("SESSION_REDIS_DB:"));
        assert!(err(&[("SESSION_SERIALIZATION_FORMAT", "pickle")]).contains("msgpack or json"));
        assert!(err(&[("SESSION_COOKIE_SAMESITE", "sometimes")]).contains("Lax, Strict, None"));
        assert_eq!(
            err(&[("SESSION_USE_SIGNER", "true")]),
            r#"SESSION_USE_SIGNER: "true" is not valid; expected SECRET_KEY to be set as well"#
        );
        let secret_list = err(&[("SECRET_KEY_FALLBACKS", "[hunter2")]);
        assert!(!secret_list.contains("hunter2"), "{secret_list}");
        // Settings that contradict each other are caught here too.
        assert!(err(&[("SESSION_COOKIE_NAME", "__Host-x")]).contains("must be Secure"));
        assert_eq!(
            err(&[("SESSION_ID_LENGTH", "8")]),
            r#"SESSION_ID_LENGTH: "8" is not valid; expected a number of bytes, 16 to 256 (128 random bits or more)"#
        );
    }
}
