//! The Redis store (feature `redis`), in Flask-Session 0.8's layout.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionInfo, IntoConnectionInfo, RedisError, Script, Value};

use super::{Expect, Fingerprint, SaveOutcome, SessionStore, StoreError, TTL_CEILING};

/// The conditional update of an existing session, on one key (so it runs
/// unchanged on Redis Cluster).
///
/// `ARGV[3]` is the SHA-1 (hex) of the record the request loaded. Answers
/// `0` when saved, the current bytes on a conflict, `2` when the record is
/// gone: plain replies, which Redis returns faster than a table. (Creating a
/// session needs no script: `SET ... NX GET`.)
const SAVE: &str = r"
local current = redis.call('GET', KEYS[1])
if not current then return 2 end
if redis.sha1hex(current) ~= ARGV[3] then return current end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 0
";

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// Sessions in Redis: one key per session (`{prefix}{id}`), the record as its
/// value, the expiry as its TTL, exactly as Flask-Session 0.8 stores them.
///
/// Every request uses one shared, multiplexed connection that reconnects by
/// itself. A read is one `GET` (or `GETEX ... EX` when the expiry slides); a
/// new session is one `SET ... NX GET EX`; a change is one `EVALSHA` of a
/// script that writes only if the record is still the one the request
/// loaded. Each call is bounded by the connect and
/// command timeouts (one second each by default), so an unreachable Redis
/// gives [`StoreError::Unavailable`] or [`StoreError::Timeout`], never a hang.
///
/// Run Redis for sessions with `maxmemory-policy noeviction` (or on an
/// instance of its own), so Redis never evicts a live session to make room.
///
/// ```no_run
/// use server_session::{RedisStore, SessionConfig, SessionLayer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379/0").connect().await?;
/// let layer = SessionLayer::new(store, SessionConfig::default().key_prefix("bruce"))?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    connection: ConnectionManager,
    save: Script,
    deadline: Duration,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("deadline", &self.inner.deadline)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`RedisStore`].
///
/// Its `Debug` output shows where it connects, never a password.
pub struct RedisStoreBuilder {
    info: Result<ConnectionInfo, RedisError>,
    username: Option<String>,
    password: Option<String>,
    db: Option<i64>,
    connect_timeout: Duration,
    command_timeout: Duration,
    #[cfg(feature = "redis-tls")]
    ca_certificate: Option<Vec<u8>>,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (addr, username, db) = match &self.info {
            Ok(info) => {
                let redis = info.redis_settings();
                let username = self.username.as_deref().or(redis.username()).map(str::to_owned);
                (info.addr().to_string(), username, self.db.unwrap_or(redis.db()))
            }
            Err(_) => (
                "<invalid URL>".to_owned(),
                self.username.clone(),
                self.db.unwrap_or(0),
            ),
        };
        let password = match (&self.password, &self.info) {
            (Some(_), _) => true,
            (None, Ok(info)) => info.redis_settings().password().is_some(),
            (None, Err(_)) => false,
        };
        f.debug_struct("RedisStoreBuilder")
            .field("addr", &addr)
            .field("username", &username)
            .field("password", &password.then_some("<redacted>"))
            .field("db", &db)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    /// The ACL user, overriding the URL's.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The password (`SESSION_REDIS_PASSWORD`), overriding the URL's.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// The database number (`SESSION_REDIS_DB`), overriding the URL's path.
    pub fn db(mut self, db: i64) -> Self {
        self.db = Some(db);
        self
    }

    /// How long to wait for a connection (default one second).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long to wait for an answer (default one second).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Trust this CA (PEM) instead of the system's roots for `rediss://`, for
    /// a Redis whose certificate comes from a private CA.
    #[cfg(feature = "redis-tls")]
    pub fn tls_ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificate = Some(pem.into());
        self
    }

    fn client(self) -> Result<(Client, ConnectionManagerConfig, Duration), StoreError> {
        let info = self.info.map_err(invalid)?;
        let mut redis = info.redis_settings().clone();
        if let Some(username) = self.username {
            redis = redis.set_username(username);
        }
        if let Some(password) = self.password {
            redis = redis.set_password(password);
        }
        if let Some(db) = self.db {
            redis = redis.set_db(db);
        }
        let info = info.set_redis_settings(redis);
        #[cfg(feature = "redis-tls")]
        let client = {
            install_crypto_provider();
            match self.ca_certificate {
                Some(root_cert) => {
                    let certificates = redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(root_cert),
                    };
                    Client::build_with_tls(info, certificates)
                }
                None => Client::open(info),
            }
        };
        #[cfg(not(feature = "redis-tls"))]
        let client = Client::open(info);
        let client = client.map_err(invalid)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_number_of_retries(2)
            .set_max_delay(self.connect_timeout);
        Ok((client, config, self.connect_timeout + self.command_timeout))
    }

    /// Connects now and loads the save script: fails if Redis cannot be
    /// reached within the timeouts.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let (client, config, deadline) = self.client()?;
        let connect = ConnectionManager::new_with_config(client, config);
        let connection = bounded(deadline, connect).await?;
        let store = RedisStore::assemble(connection, deadline);
        store.preload().await?;
        Ok(store)
    }

    /// A store that connects on first use, so an application can start while
    /// Redis is down (its session routes answer 503 until Redis is back).
    /// Needs a running tokio runtime.
    pub fn build(self) -> Result<RedisStore, StoreError> {
        let (client, config, deadline) = self.client()?;
        let connection = ConnectionManager::new_lazy_with_config(client, config).map_err(invalid)?;
        let store = RedisStore::assemble(connection, deadline);
        let preload = store.clone();
        tokio::spawn(async move {
            // Best effort: a missing script is loaded on its first use anyway.
            let _ = preload.preload().await;
        });
        Ok(store)
    }
}

impl RedisStore {
    /// Settings for a store at `url`: `redis://[user:password@]host[:port][/db]`,
    /// `rediss://...` for TLS (feature `redis-tls`), or `redis+unix:///path`.
    pub fn builder(url: impl IntoConnectionInfo) -> RedisStoreBuilder {
        RedisStoreBuilder {
            info: url.into_connection_info(),
            username: None,
            password: None,
            db: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            #[cfg(feature = "redis-tls")]
            ca_certificate: None,
        }
    }

    /// Settings for a store using the connection settings of `client`.
    pub fn from_client(client: &Client) -> RedisStoreBuilder {
        Self::builder(client.get_connection_info().clone())
    }

    /// Connects to `url` with the default settings.
    pub async fn connect(url: impl IntoConnectionInfo) -> Result<RedisStore, StoreError> {
        Self::builder(url).connect().await
    }

    fn assemble(connection: ConnectionManager, deadline: Duration) -> RedisStore {
        RedisStore {
            inner: Arc::new(Inner {
                connection,
                save: Script::new(SAVE),
                deadline,
            }),
        }
    }

    async fn preload(&self) -> Result<(), StoreError> {
        let mut connection = self.inner.connection.clone();
        let load = self.inner.save.load_async(&mut connection);
        bounded(self.inner.deadline, load).await.map(drop)
    }

    async fn run<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.inner.connection.clone();
        bounded(self.inner.deadline, async move {
            command.query_async(&mut connection).await
        })
        .await
    }
}

/// Redis expiries are whole seconds; never less than one, nor more than a
/// century (Redis refuses an expiry past its clock's range).
fn seconds(ttl: Duration) -> u64 {
    ttl.min(TTL_CEILING).as_secs().max(1)
}

async fn bounded<T>(
    deadline: Duration,
    call: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(deadline, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) if err.is_timeout() => Err(StoreError::Timeout(deadline)),
        Ok(Err(err)) if err.code() == Some("WRONGTYPE") => Err(StoreError::WrongType),
        Ok(Err(err)) if err.is_io_error() || err.is_connection_refusal() || err.is_connection_dropped() => {
            Err(StoreError::Unavailable(Box::new(err)))
        }
        Ok(Err(err)) => Err(StoreError::Backend(Box::new(err))),
        Err(_) => Err(StoreError::Timeout(deadline)),
    }
}

fn invalid(err: RedisError) -> StoreError {
    StoreError::Backend(Box::new(err))
}

/// rustls needs a process-wide crypto provider; use ring unless the
/// application installed one.
#[cfg(feature = "redis-tls")]
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl SessionStore for RedisStore {
    async fn load(&self, key: &str, slide: Option<Duration>) -> Result<Option<Vec<u8>>, StoreError> {
        let command = match slide {
            Some(ttl) => redis::cmd("GETEX")
                .arg(key)
                .arg("EX")
                .arg(seconds(ttl))
                .to_owned(),
            None => redis::cmd("GET").arg(key).to_owned(),
        };
        self.run(command).await
    }

    async fn save(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        expect: Expect<'_>,
    ) -> Result<SaveOutcome, StoreError> {
        let fingerprint = match expect {
            Expect::Absent => {
                // A plain create-if-absent; no script needed. GET makes it
                // answer what is there when the key exists.
                let command = redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("NX")
                    .arg("GET")
                    .arg("EX")
                    .arg(seconds(ttl))
                    .to_owned();
                return match self.run::<Option<Vec<u8>>>(command).await {
                    Ok(None) => Ok(SaveOutcome::Saved),
                    Ok(Some(current)) => Ok(SaveOutcome::Conflict(current)),
                    Err(StoreError::WrongType) => Ok(SaveOutcome::Conflict(Vec::new())),
                    Err(err) => Err(err),
                };
            }
            Expect::Unchanged(loaded) => Fingerprint::of(loaded),
        };
        let mut invocation = self.inner.save.key(key);
        invocation.arg(value).arg(seconds(ttl)).arg(fingerprint.to_hex());
        let mut connection = self.inner.connection.clone();
        let answer = bounded(self.inner.deadline, invocation.invoke_async(&mut connection)).await;
        match answer {
            Ok(Value::Int(0)) => Ok(SaveOutcome::Saved),
            Ok(Value::Int(2)) => Ok(SaveOutcome::Gone),
            Ok(Value::BulkString(current)) => Ok(SaveOutcome::Conflict(current)),
            Ok(other) => Err(unexpected(&other)),
            // Something else took the key's place: the session is gone.
            Err(StoreError::WrongType) => Ok(SaveOutcome::Gone),
            Err(err) => Err(err),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.run::<i64>(redis::cmd("DEL").arg(key).to_owned())
            .await
            .map(drop)
    }

    async fn touch(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        self.run::<i64>(redis::cmd("EXPIRE").arg(key).arg(seconds(ttl)).to_owned())
            .await
            .map(drop)
    }
}

fn unexpected(answer: &impl fmt::Debug) -> StoreError {
    StoreError::Backend(format!("unexpected answer from the save script: {answer:?}").into())
}
