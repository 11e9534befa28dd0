//! [`SessionConfig`]: cookie attributes, lifetimes, storage layout and failure
//! policy, with Flask-Session's defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use cookie::SameSite;

use crate::clock::{Clock, SystemClock};
use crate::cookie::CookieSettings;
use crate::error::SessionError;
use crate::record::Format;
use crate::store::redacted_url;

mod flask;

/// Flask's `PERMANENT_SESSION_LIFETIME` default: 31 days.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(31 * 24 * 3600);

/// The default [`SessionConfig::max_record_size`]: 256 KiB.
const DEFAULT_MAX_RECORD_SIZE: usize = 256 * 1024;

/// What a request gets when the store fails (cannot be reached, times out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreErrorPolicy {
    /// Answer `503 Service Unavailable` with a short plain message, whatever
    /// the handler returned. Nothing is overwritten and nobody is logged out.
    #[default]
    ServiceUnavailable,
    /// Let the request go on with an empty session that is never saved and
    /// sets no cookie; the error is logged.
    ContinueEmpty,
}

impl StoreErrorPolicy {
    /// Whether `err`, met while loading or committing, fails the request.
    /// Only an unavailable store can be waved through; an oversized record,
    /// an encoding error or endless contention always fails, since the
    /// handler's changes were not saved.
    pub(crate) fn fails_on(self, err: &SessionError) -> bool {
        match err {
            SessionError::Store(_) => self == StoreErrorPolicy::ServiceUnavailable,
            _ => true,
        }
    }
}

/// How each user's sessions are indexed
/// ([`Sessions::with_user_sessions`](crate::Sessions::with_user_sessions)).
///
/// ```
/// use std::time::Duration;
/// use server_session::UserSessions;
///
/// let settings = UserSessions::default()
///     .seen_interval(Duration::from_secs(60))
///     .limit(3)
///     .client_details(true);
/// ```
#[derive(Clone, Debug)]
pub struct UserSessions {
    pub(crate) seen_interval: Duration,
    pub(crate) limit: Option<usize>,
    pub(crate) client_details: bool,
}

impl Default for UserSessions {
    fn default() -> Self {
        UserSessions {
            seen_interval: Duration::from_secs(5 * 60),
            limit: None,
            client_details: false,
        }
    }
}

impl UserSessions {
    /// How often a session's "last seen" time is brought up to date (default
    /// five minutes). Reads cost one store call; the first request after
    /// this interval costs two more (the record and the index), once.
    pub fn seen_interval(mut self, interval: Duration) -> Self {
        self.seen_interval = interval;
        self
    }

    /// At most `sessions` sessions per user (default: no limit): a login
    /// beyond the limit revokes the user's least recently seen sessions.
    pub fn limit(mut self, sessions: usize) -> Self {
        self.limit = Some(sessions);
        self
    }

    /// Keeps, from the login request, the browser's `User-Agent` and the
    /// client's network (its IPv4 /24 or IPv6 /48), shown in listings
    /// (default off: both are personal data). The address is the peer's:
    /// axum's `ConnectInfo<SocketAddr>` (serve the app with
    /// `into_make_service_with_connect_info`) or actix-web's peer address;
    /// behind a proxy, it is the proxy's.
    pub fn client_details(mut self, keep: bool) -> Self {
        self.client_details = keep;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.seen_interval < Duration::from_secs(1) || self.seen_interval > SessionConfig::MAX_LIFETIME {
            return Err(ConfigError::Invalid(
                "the interval of \"last seen\" updates must be one second to 400 days".into(),
            ));
        }
        if self.limit == Some(0) {
            return Err(ConfigError::Invalid(
                "a limit of sessions per user must allow at least one".into(),
            ));
        }
        Ok(())
    }
}

/// A configuration the layer refused, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Two settings that cannot go together, or a value out of range.
    #[error("invalid session configuration: {0}")]
    Invalid(String),
    /// A configuration value (from the environment or a map) that could not be
    /// read.
    #[error("{key}: {value:?} is not valid; expected {expected}")]
    InvalidValue {
        /// The configuration key, e.g. `SESSION_PERMANENT`.
        key: String,
        /// The value found.
        value: String,
        /// What the key accepts.
        expected: String,
    },
}

/// A secret, never printed.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How sessions behave: the cookie, lifetimes, the storage layout and what to
/// do when the store fails. The defaults are Flask-Session's (with `HttpOnly`
/// and `SameSite=Lax` cookies); the layer checks the whole configuration when
/// it is built.
///
/// ```
/// use std::time::Duration;
/// use server_session::{SameSite, SessionConfig};
///
/// let config = SessionConfig::default()
///     .cookie_name("__Host-session")
///     .cookie_secure(true)
///     .cookie_same_site(Some(SameSite::Strict))
///     .idle_timeout(Duration::from_secs(30 * 60))
///     .absolute_timeout(Duration::from_secs(12 * 3600))
///     .secret("a long random secret")
///     .fallback_secrets(["the previous secret"]);
/// ```
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub(crate) cookie: CookieSettings,
    pub(crate) permanent: bool,
    pub(crate) lifetime: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) absolute_timeout: Option<Duration>,
    pub(crate) refresh_each_request: bool,
    pub(crate) key_prefix: String,
    pub(crate) id_length: usize,
    pub(crate) format: Format,
    pub(crate) secret: Option<Secret>,
    pub(crate) fallback_secrets: Vec<Secret>,
    pub(crate) store_error_policy: StoreErrorPolicy,
    pub(crate) max_record_size: usize,
    pub(crate) clock: ClockHandle,
    pub(crate) store: StoreType,
    pub(crate) hash_ids: bool,
    pub(crate) shared_with_flask: bool,
}

/// The store [`SessionLayer::from_config`](crate::SessionLayer::from_config)
/// builds (`SESSION_TYPE`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreType {
    /// [`MemoryStore`](crate::MemoryStore), the default.
    #[default]
    Memory,
    /// `RedisStore` (feature `redis`).
    Redis(RedisSettings),
    /// An SQL database in Flask-Session's `sqlalchemy` table:
    /// `SqliteStore`, `PostgresStore` or `MySqlStore` (features `sqlite`,
    /// `postgres`, `mysql`).
    Sql(SqlSettings),
}

impl StoreType {
    /// Which store, and where, without credentials: for logs.
    pub(crate) fn describe(&self) -> String {
        match self {
            StoreType::Memory => "in memory".into(),
            StoreType::Redis(redis) => format!("Redis, {}", redis.redacted()),
            StoreType::Sql(sql) => format!("SQL, {}", redacted_url(&sql.url)),
        }
    }
}

/// Where the SQL store keeps sessions (`SQLALCHEMY_DATABASE_URI`,
/// `SESSION_SQLALCHEMY_TABLE`, `SESSION_SQLALCHEMY_SCHEMA`).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqlSettings {
    /// The database, as SQLAlchemy names it: `sqlite:///relative/path.db`,
    /// `sqlite:////absolute/path.db`, `postgresql://user@host/db`,
    /// `mysql://user@host/db` (a `+driver` after the scheme is ignored).
    pub url: String,
    /// The table (default `sessions`).
    pub table: String,
    /// The schema the table is in (PostgreSQL's schema, MySQL's database);
    /// default: the connection's own.
    pub schema: Option<String>,
    /// How long a call waits for a connection, a lock or a statement
    /// (`SESSION_SQLALCHEMY_TIMEOUT`); default the store's (5 seconds).
    pub timeout: Option<Duration>,
    /// How far behind a read may leave a sliding expiry
    /// (`SESSION_SQLALCHEMY_SLIDE_SLACK`); default the store's (a minute).
    pub slide_slack: Option<Duration>,
}

impl Default for SqlSettings {
    fn default() -> Self {
        SqlSettings {
            url: String::new(),
            table: "sessions".into(),
            schema: None,
            timeout: None,
            slide_slack: None,
        }
    }
}

impl fmt::Debug for SqlSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlSettings")
            .field("url", &redacted_url(&self.url))
            .field("table", &self.table)
            .field("schema", &self.schema)
            .field("timeout", &self.timeout)
            .field("slide_slack", &self.slide_slack)
            .finish()
    }
}

/// Where the Redis store connects: one server (`SESSION_REDIS`), a Redis
/// Cluster (`SESSION_REDIS_CLUSTER`) or the primary that Sentinels name
/// (`SESSION_REDIS_SENTINEL`, `SESSION_REDIS_SENTINEL_MASTER`), with
/// `SESSION_REDIS_PASSWORD` and `SESSION_REDIS_DB`.
///
/// ```
/// use server_session::RedisSettings;
///
/// let mut cluster = RedisSettings::default();
/// cluster.cluster = vec!["10.0.0.1:6379".into(), "10.0.0.2:6379".into()];
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisSettings {
    /// One server: `redis://[user:password@]host[:port][/db]` or `rediss://...`.
    pub url: String,
    /// Some nodes of a Redis Cluster (`host:port` or URLs); when set, `url`
    /// is not used.
    pub cluster: Vec<String>,
    /// Sentinel addresses (`host:port` or URLs); when set, `url` is not used.
    pub sentinels: Vec<String>,
    /// The name the Sentinels monitor the primary under.
    pub sentinel_master: Option<String>,
    /// A password overriding the URL's.
    pub password: Option<String>,
    /// A database number overriding the URL's.
    pub db: Option<i64>,
    /// The Sentinels' own password, overriding their URLs'
    /// (`SESSION_REDIS_SENTINEL_PASSWORD`).
    pub sentinel_password: Option<String>,
    /// Under Sentinel, whether the primary is reached over TLS when that
    /// differs from the Sentinels (`SESSION_REDIS_SENTINEL_PRIMARY_TLS`);
    /// default: as the Sentinels are.
    pub primary_tls: Option<bool>,
    /// A PEM file of the CA certificates to trust for `rediss://`
    /// (`SESSION_REDIS_TLS_CA`); default the system's.
    pub tls_ca: Option<std::path::PathBuf>,
    /// How long to wait for a connection (`SESSION_REDIS_CONNECT_TIMEOUT`).
    pub connect_timeout: Option<Duration>,
    /// How long to wait for an answer (`SESSION_REDIS_COMMAND_TIMEOUT`).
    pub command_timeout: Option<Duration>,
    /// Durable writes: the replicas that must have each write
    /// (`SESSION_REDIS_WAIT_REPLICAS`).
    pub wait_for_replicas: Option<usize>,
    /// How long a durable write waits for them (`SESSION_REDIS_WAIT_TIMEOUT`,
    /// default one second).
    pub wait_timeout: Option<Duration>,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: "redis://127.0.0.1:6379".into(),
            cluster: Vec::new(),
            sentinels: Vec::new(),
            sentinel_master: None,
            password: None,
            db: None,
            sentinel_password: None,
            primary_tls: None,
            tls_ca: None,
            connect_timeout: None,
            command_timeout: None,
            wait_for_replicas: None,
            wait_timeout: None,
        }
    }
}

impl RedisSettings {
    /// Where it connects, without credentials, fit for logs and errors.
    pub(crate) fn redacted(&self) -> String {
        let list = |nodes: &[String]| {
            nodes
                .iter()
                .map(|n| redacted_url(n))
                .collect::<Vec<_>>()
                .join(",")
        };
        if !self.cluster.is_empty() {
            format!("cluster {}", list(&self.cluster))
        } else if !self.sentinels.is_empty() {
            let master = self.sentinel_master.as_deref().unwrap_or("?");
            format!("{master} via sentinels {}", list(&self.sentinels))
        } else {
            redacted_url(&self.url)
        }
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |secret: &Option<String>| secret.as_ref().map(|_| "<redacted>");
        f.debug_struct("RedisSettings")
            .field("target", &self.redacted())
            .field("password", &hidden(&self.password))
            .field("db", &self.db)
            .field("sentinel_password", &hidden(&self.sentinel_password))
            .field("primary_tls", &self.primary_tls)
            .field("tls_ca", &self.tls_ca)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("wait_for_replicas", &self.wait_for_replicas)
            .field("wait_timeout", &self.wait_timeout)
            .finish()
    }
}

/// The configured clock, shown by name only.
#[derive(Clone)]
pub(crate) struct ClockHandle(pub(crate) Arc<dyn Clock>);

impl fmt::Debug for ClockHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            cookie: CookieSettings::default(),
            permanent: true,
            lifetime: DEFAULT_LIFETIME,
            idle_timeout: None,
            absolute_timeout: None,
            refresh_each_request: true,
            key_prefix: "session:".into(),
            id_length: 32,
            format: Format::MessagePack,
            secret: None,
            fallback_secrets: Vec::new(),
            store_error_policy: StoreErrorPolicy::ServiceUnavailable,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
            clock: ClockHandle(Arc::new(SystemClock)),
            store: StoreType::Memory,
            hash_ids: false,
            shared_with_flask: false,
        }
    }
}

impl SessionConfig {
    /// The longest lifetime or timeout a session can have: 400 days, the
    /// most browsers keep a cookie (RFC 6265bis caps `Expires` there). Longer
    /// settings are refused when the layer is built, a longer
    /// [`Session::set_lifetime`](crate::Session::set_lifetime) with an error,
    /// and a longer lifetime found in a stored record is cut to this.
    pub const MAX_LIFETIME: Duration = Duration::from_secs(400 * 24 * 3600);

    /// The cookie's name (`SESSION_COOKIE_NAME`, default `session`). A
    /// `__Host-` name requires Secure, Path `/` and no Domain; a `__Secure-`
    /// name requires Secure.
    #[must_use]
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie.name = name.into();
        self
    }

    /// The cookie's Domain (`SESSION_COOKIE_DOMAIN`, default none: this host only).
    #[must_use]
    pub fn cookie_domain(mut self, domain: Option<impl Into<String>>) -> Self {
        self.cookie.domain = domain.map(Into::into);
        self
    }

    /// The cookie's Path (`SESSION_COOKIE_PATH`, default `/`).
    #[must_use]
    pub fn cookie_path(mut self, path: impl Into<String>) -> Self {
        self.cookie.path = path.into();
        self
    }

    /// Send the cookie over HTTPS only (`SESSION_COOKIE_SECURE`, default off).
    #[must_use]
    pub fn cookie_secure(mut self, secure: bool) -> Self {
        self.cookie.secure = secure;
        self
    }

    /// Hide the cookie from scripts (`SESSION_COOKIE_HTTPONLY`, default on).
    #[must_use]
    pub fn cookie_http_only(mut self, http_only: bool) -> Self {
        self.cookie.http_only = http_only;
        self
    }

    /// The cookie's SameSite (`SESSION_COOKIE_SAMESITE`, default `Lax`).
    /// `None` (the attribute, not the option) requires Secure.
    #[must_use]
    pub fn cookie_same_site(mut self, same_site: Option<SameSite>) -> Self {
        self.cookie.same_site = same_site;
        self
    }

    /// Mark the cookie Partitioned (CHIPS; `SESSION_COOKIE_PARTITIONED`,
    /// default off). Requires Secure.
    #[must_use]
    pub fn cookie_partitioned(mut self, partitioned: bool) -> Self {
        self.cookie.partitioned = partitioned;
        self
    }

    /// Whether new sessions are permanent (`SESSION_PERMANENT`, default on):
    /// a permanent session's cookie carries `Expires`; any other cookie ends
    /// with the browser session. A handler can change it per session with
    /// [`Session::set_permanent`](crate::Session::set_permanent).
    #[must_use]
    pub fn permanent(mut self, permanent: bool) -> Self {
        self.permanent = permanent;
        self
    }

    /// How long a session lives after it was last saved or refreshed
    /// (`PERMANENT_SESSION_LIFETIME`, default 31 days): the store's TTL and
    /// the permanent cookie's `Expires`.
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// End a session after this long without a request that reads it. The
    /// store's TTL becomes this (or the lifetime, if shorter) and slides on
    /// every access, even with
    /// [`refresh_each_request`](Self::refresh_each_request) off; a longer
    /// per-session lifetime ([`Session::set_lifetime`](crate::Session::set_lifetime))
    /// does not lift it. Default none.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// End a session this long after it was created, however active. Stored
    /// in the record (`_ss_created`) only when set. A session found without
    /// that stamp (written by Flask, or before this was set) is stamped on its
    /// first read, with one conditional save, so its deadline runs from then.
    /// Default none.
    #[must_use]
    pub fn absolute_timeout(mut self, timeout: Duration) -> Self {
        self.absolute_timeout = Some(timeout);
        self
    }

    /// Slide the expiry on every request that reads the session
    /// (`SESSION_REFRESH_EACH_REQUEST`, default on). The store resets the TTL
    /// in the same read (no rewrite), and a permanent session's cookie is sent
    /// again with a new `Expires`.
    #[must_use]
    pub fn refresh_each_request(mut self, refresh: bool) -> Self {
        self.refresh_each_request = refresh;
        self
    }

    /// Prefix of store keys (`SESSION_KEY_PREFIX`, default `session:`).
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Random bytes per session id (`SESSION_ID_LENGTH`, default 32, which
    /// gives 43 characters); 16 to 256, so that ids are never guessable
    /// (128 random bits or more).
    #[must_use]
    pub fn id_length(mut self, bytes: usize) -> Self {
        self.id_length = bytes;
        self
    }

    /// The record format (`SESSION_SERIALIZATION_FORMAT`, default MessagePack).
    /// Records in the other format are still read.
    #[must_use]
    pub fn serialization_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Sign the id in the cookie with `secret` (`SESSION_USE_SIGNER` with
    /// `SECRET_KEY`), exactly as Flask-Session does.
    #[must_use]
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secret = Some(Secret(secret.as_ref().to_vec()));
        self
    }

    /// Earlier secrets that still verify cookies (`SECRET_KEY_FALLBACKS`), so
    /// the secret can be rotated without logging anyone out.
    #[must_use]
    pub fn fallback_secrets<I>(mut self, secrets: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.fallback_secrets = secrets.into_iter().map(|s| Secret(s.as_ref().to_vec())).collect();
        self
    }

    /// What a request gets when the store fails; default
    /// [`StoreErrorPolicy::ServiceUnavailable`].
    #[must_use]
    pub fn store_error_policy(mut self, policy: StoreErrorPolicy) -> Self {
        self.store_error_policy = policy;
        self
    }

    /// The most bytes one session may take in the store, encoded (default
    /// 256 KiB), whatever the store. A larger value is refused by
    /// [`Session::insert`](crate::Session::insert), and a commit that would
    /// store a larger record fails, with [`SessionError::TooLarge`](crate::SessionError::TooLarge)
    /// (a `500`), saving nothing. A stored record over the limit (written by
    /// another application, or planted) is not read: the store reads no
    /// more of it than it needs to tell, and the engine discards it like an
    /// undecodable record, so keep the limit above what an application that
    /// shares the store writes.
    #[must_use]
    pub fn max_record_size(mut self, bytes: usize) -> Self {
        self.max_record_size = bytes;
        self
    }

    /// Read time from `clock` (expiry decisions and cookie dates); a
    /// [`ManualClock`](crate::ManualClock) in tests.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = ClockHandle(Arc::new(clock));
        self
    }

    /// The store [`SessionLayer::from_config`](crate::SessionLayer::from_config)
    /// builds (`SESSION_TYPE`); [`SessionLayer::new`](crate::SessionLayer::new)
    /// takes its store directly and ignores this.
    #[must_use]
    pub fn store_type(mut self, store: StoreType) -> Self {
        self.store = store;
        self
    }

    /// Stores each session under a one-way hash of its id instead of the id
    /// (`SESSION_HASH_IDS`, default off), so that what the store holds (a
    /// backup, a replica, `MONITOR` output) holds nothing that works as a
    /// cookie. Flask-Session looks sessions up by the raw id, so this cannot
    /// go with [`shared_with_flask`](Self::shared_with_flask). Turning it on
    /// or off ends the sessions stored the other way.
    pub fn hash_ids(mut self, hash: bool) -> Self {
        self.hash_ids = hash;
        self
    }

    /// Declares that a Flask-Session app reads and writes the same sessions
    /// (`SESSION_SHARED_WITH_FLASK`, default off): the layer then refuses
    /// settings Flask-Session cannot follow, such as
    /// [`hash_ids`](Self::hash_ids).
    pub fn shared_with_flask(mut self, shared: bool) -> Self {
        self.shared_with_flask = shared;
        self
    }

    /// Checks that the settings make sense together.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let fail = |why: String| Err(ConfigError::Invalid(why));
        let name = &self.cookie.name;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return fail(format!(
                "cookie name {name:?} must be non-empty letters, digits or !#$%&'*+-.^_`|~"
            ));
        }
        if !self.cookie.path.starts_with('/') || !self.cookie.path.bytes().all(is_attribute_byte) {
            return fail(format!(
                "cookie path {:?} must start with '/' and hold no ';', space or control character",
                self.cookie.path
            ));
        }
        if let Some(domain) = &self.cookie.domain {
            let valid = !domain.is_empty()
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !valid {
                return fail(format!("cookie domain {domain:?} must be a host name"));
            }
        }
        let secure = self.cookie.secure;
        // Browsers match the prefixes whatever their case (RFC 6265bis).
        let prefixed = |prefix: &str| {
            name.get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        };
        if prefixed("__Host-") {
            if !secure {
                return fail(format!("a {name} cookie (__Host- prefix) must be Secure"));
            }
            if self.cookie.domain.is_some() {
                return fail(format!("a {name} cookie (__Host- prefix) must not have a Domain"));
            }
            if self.cookie.path != "/" {
                return fail(format!("a {name} cookie (__Host- prefix) must have Path=/"));
            }
        }
        if prefixed("__Secure-") && !secure {
            return fail(format!("a {name} cookie (__Secure- prefix) must be Secure"));
        }
        if self.cookie.same_site == Some(SameSite::None) && !secure {
            return fail("SameSite=None cookies must be Secure (browsers drop them otherwise)".into());
        }
        if self.cookie.partitioned && !secure {
            return fail("Partitioned cookies must be Secure".into());
        }
        if !(16..=256).contains(&self.id_length) {
            return fail(format!(
                "an id length (id_length, SESSION_ID_LENGTH) of {} bytes gives {}-bit ids; \
                 it must be 16 to 256 bytes, so that ids have at least 128 random bits",
                self.id_length,
                self.id_length.saturating_mul(8)
            ));
        }
        // Browsers drop a cookie whose name and value exceed 4096 bytes.
        let signature = if self.secret.is_some() { 28 } else { 0 };
        let cookie_len = name.len() + crate::id::encoded_len(self.id_length) + signature;
        if cookie_len > 4096 {
            return fail(format!(
                "the session cookie would take {cookie_len} bytes (name and value); browsers keep at most 4096"
            ));
        }
        for (what, value) in [
            ("lifetime", Some(self.lifetime)),
            ("idle timeout", self.idle_timeout),
            ("absolute timeout", self.absolute_timeout),
        ] {
            if value.is_some_and(|d| d < Duration::from_secs(1)) {
                return fail(format!("the {what} must be at least one second"));
            }
            if let Some(value) = value.filter(|d| *d > Self::MAX_LIFETIME) {
                return fail(format!(
                    "the {what} of {} seconds is longer than the maximum of 400 days ({} seconds)",
                    value.as_secs(),
                    Self::MAX_LIFETIME.as_secs()
                ));
            }
        }
        if self.max_record_size < 64 {
            return fail(format!(
                "the record size limit of {} bytes is too small for any session",
                self.max_record_size
            ));
        }
        if self.hash_ids && self.shared_with_flask {
            return fail(
                "hashed ids (hash_ids, SESSION_HASH_IDS) cannot be shared with Flask-Session \
                 (shared_with_flask, SESSION_SHARED_WITH_FLASK), which looks sessions up by the raw id"
                    .into(),
            );
        }
        if self.secret.as_ref().is_some_and(|s| s.0.is_empty())
            || self.fallback_secrets.iter().any(|s| s.0.is_empty())
        {
            return fail("signing secrets must not be empty".into());
        }
        Ok(())
    }
}

/// RFC 6265 `token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_attribute_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b';'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(config: SessionConfig, needle: &str) {
        match config.validate() {
            Err(ConfigError::Invalid(why)) => assert!(why.contains(needle), "{why}"),
            other => panic!("expected an error mentioning {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        SessionConfig::default().validate().unwrap();
    }

    #[test]
    fn refuses_bad_combinations() {
        let c = SessionConfig::default;
        invalid(c().cookie_name("__Host-s"), "must be Secure");
        invalid(
            c().cookie_name("__Host-s")
                .cookie_secure(true)
                .cookie_domain(Some("a.com")),
            "Domain",
        );
        invalid(
            c().cookie_name("__Host-s")
                .cookie_secure(true)
                .cookie_path("/app"),
            "Path=/",
        );
        invalid(c().cookie_name("__Secure-s"), "must be Secure");
        invalid(c().cookie_name("__host-s"), "must be Secure");
        invalid(
            c().cookie_name("__HOST-s")
                .cookie_secure(true)
                .cookie_path("/app"),
            "Path=/",
        );
        invalid(c().cookie_name("__secure-s"), "must be Secure");
        invalid(c().cookie_same_site(Some(SameSite::None)), "SameSite=None");
        invalid(c().cookie_partitioned(true), "Partitioned");
        invalid(c().cookie_name("a b"), "cookie name");
        invalid(c().cookie_name(""), "cookie name");
        invalid(c().cookie_path("app"), "cookie path");
        invalid(c().cookie_domain(Some("a;b")), "cookie domain");
        invalid(c().id_length(4), "id length");
        invalid(c().id_length(15), "SESSION_ID_LENGTH");
        invalid(c().id_length(257), "id_length");
        invalid(c().cookie_name("s".repeat(3800)).id_length(256), "at most 4096");
        invalid(c().cookie_name("s".repeat(4090)), "at most 4096");
        c().cookie_name("s".repeat(3700))
            .id_length(256)
            .validate()
            .unwrap();
        c().id_length(16).validate().unwrap();
        invalid(c().lifetime(Duration::ZERO), "lifetime");
        invalid(c().idle_timeout(Duration::from_millis(10)), "idle timeout");
        invalid(c().lifetime(Duration::MAX), "maximum of 400 days");
        invalid(
            c().idle_timeout(Duration::from_secs(401 * 24 * 3600)),
            "idle timeout",
        );
        invalid(c().absolute_timeout(Duration::MAX), "absolute timeout");
        c().lifetime(SessionConfig::MAX_LIFETIME).validate().unwrap();
        invalid(c().secret(""), "secrets");
        c().cookie_name("__Host-s")
            .cookie_secure(true)
            .validate()
            .unwrap();
        c().cookie_same_site(Some(SameSite::None))
            .cookie_secure(true)
            .cookie_partitioned(true)
            .validate()
            .unwrap();
    }

    #[test]
    fn redis_urls_lose_their_credentials() {
        assert_eq!(redacted_url("redis://h:6379/0"), "redis://h:6379/0");
        assert_eq!(redacted_url("redis://:pw@h:6379"), "redis://<credentials>@h:6379");
        assert_eq!(
            redacted_url("rediss://u:p@ss@w0rd@h/1"),
            "rediss://<credentials>@h/1"
        );
        assert_eq!(redacted_url("redis://u:p/s@h"), "redis://<credentials>@h");
        assert_eq!(redacted_url("u:secret@h:1"), "<credentials>@h:1");
        assert_eq!(
            redacted_url("postgresql://app@db/app?password=s3cret&sslmode=require&SSLPassword=k3y"),
            "postgresql://<credentials>@db/app?password=<redacted>&sslmode=require&SSLPassword=<redacted>"
        );
        assert_eq!(
            redacted_url("mysql://db/app?user=app&pwd=x&auth_token=y&ssl-key=/k.pem"),
            "mysql://db/app?user=app&pwd=<redacted>&auth_token=<redacted>&ssl-key=<redacted>"
        );
        for url in ["redis://u:Zq@x9@w0rd@h/1", "redis://u:Zq/x9@w0rd@h"] {
            let settings = RedisSettings {
                url: url.into(),
                password: Some("hunter2".into()),
                ..RedisSettings::default()
            };
            let mut cluster = settings.clone();
            cluster.cluster = vec![url.into(), "h2:7000".into()];
            let mut sentinel = settings.clone();
            sentinel.sentinels = vec![url.into()];
            sentinel.sentinel_master = Some("sessions".into());
            for settings in [settings, cluster, sentinel] {
                let config = SessionConfig::default().store_type(StoreType::Redis(settings));
                let debug = format!("{config:?}");
                for secret in ["Zq", "x9", "w0rd", "hunter2"] {
                    assert!(!debug.contains(secret), "{debug}");
                }
            }
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let text = format!("{:?}", SessionConfig::default().secret("hunter2"));
        assert!(!text.contains("hunter2"));
    }
}
