//! [`RedisStoreBuilder`]: where a [`RedisStore`] connects and how.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU8;
use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError, Script};

use super::connection::{Connection, Pool, Timeouts, Topology};
use super::{CAS_UNKNOWN, Durability, Inner, RedisStore, SAVE};
use crate::store::StoreError;

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_DURABLE_CONNECTIONS: usize = 8;

/// Where a [`RedisStoreBuilder`] connects.
pub(super) enum Target {
    Single(Result<ConnectionInfo, RedisError>),
    Cluster(Vec<Result<ConnectionInfo, RedisError>>),
    Sentinel {
        sentinels: Vec<Result<ConnectionInfo, RedisError>>,
        master: String,
    },
}

/// Settings of a [`RedisStore`].
///
/// Its `Debug` output shows where it connects, never a password.
pub struct RedisStoreBuilder {
    target: Target,
    username: Option<String>,
    password: Option<String>,
    sentinel_password: Option<String>,
    db: Option<i64>,
    connect_timeout: Duration,
    command_timeout: Duration,
    wait: Option<(usize, Duration)>,
    durable_connections: usize,
    #[cfg(feature = "redis-tls")]
    ca_certificate: Option<Vec<u8>>,
    #[cfg(feature = "redis-tls")]
    primary_tls: Option<bool>,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = |info: &Result<ConnectionInfo, RedisError>| match info {
            Ok(info) => info.addr().to_string(),
            Err(_) => "<invalid URL>".to_owned(),
        };
        let infos: Vec<&Result<ConnectionInfo, RedisError>> = match &self.target {
            Target::Single(info) => vec![info],
            Target::Cluster(nodes) => nodes.iter().collect(),
            Target::Sentinel { sentinels, .. } => sentinels.iter().collect(),
        };
        let settings = infos
            .first()
            .and_then(|info| info.as_ref().ok())
            .map(|i| i.redis_settings());
        let username = self
            .username
            .clone()
            .or_else(|| settings.and_then(|s| s.username().map(str::to_owned)));
        let password = self.password.is_some() || settings.is_some_and(|s| s.password().is_some());
        let mut debug = f.debug_struct("RedisStoreBuilder");
        match &self.target {
            Target::Single(info) => debug.field("addr", &addr(info)),
            Target::Cluster(nodes) => debug.field("cluster", &nodes.iter().map(addr).collect::<Vec<_>>()),
            Target::Sentinel { sentinels, master } => debug
                .field("sentinels", &sentinels.iter().map(addr).collect::<Vec<_>>())
                .field("master", master),
        };
        debug
            .field("username", &username)
            .field("password", &password.then_some("<redacted>"))
            .field("db", &self.db.unwrap_or_else(|| settings.map_or(0, |s| s.db())))
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    pub(super) fn new(target: Target) -> RedisStoreBuilder {
        RedisStoreBuilder {
            target,
            username: None,
            password: None,
            sentinel_password: None,
            db: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            wait: None,
            durable_connections: DEFAULT_DURABLE_CONNECTIONS,
            #[cfg(feature = "redis-tls")]
            ca_certificate: None,
            #[cfg(feature = "redis-tls")]
            primary_tls: None,
        }
    }

    /// The ACL user, overriding the URL's (every node's, on a cluster).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The password (`SESSION_REDIS_PASSWORD`), overriding the URL's (every
    /// node's, on a cluster; the primary's and replicas', under Sentinel).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// The password of the Sentinels themselves, when they have one
    /// (`SESSION_REDIS_SENTINEL_PASSWORD`), overriding the Sentinel URLs'
    /// (`redis://user:password@host:26379`).
    pub fn sentinel_password(mut self, password: impl Into<String>) -> Self {
        self.sentinel_password = Some(password.into());
        self
    }

    /// The database number (`SESSION_REDIS_DB`), overriding the URL's path.
    /// A cluster has only database 0.
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

    /// Acknowledge a write (a save, a logout, a new id) only once `replicas`
    /// replicas have it, waiting at most `timeout` (Redis `WAIT`); a write
    /// they did not confirm in time fails with
    /// [`StoreError::NotReplicated`] (the request answers `503`).
    ///
    /// Redis replicates asynchronously, so without this a primary that
    /// crashes can take the writes of its last moments with it, and the
    /// replica that takes over serves sessions as they were before them;
    /// with it, no acknowledged write is lost. `WAIT` holds the connection it
    /// is sent on, so these writes go over connections of their own
    /// ([`durable_connections`](Self::durable_connections)); reads stay on
    /// the shared one. It costs a replication round trip per write.
    pub fn wait_for_replicas(mut self, replicas: usize, timeout: Duration) -> Self {
        self.wait = (replicas > 0).then_some((replicas, timeout));
        self
    }

    /// How many connections durable writes share (default 8); see
    /// [`wait_for_replicas`](Self::wait_for_replicas).
    pub fn durable_connections(mut self, connections: usize) -> Self {
        self.durable_connections = connections.max(1);
        self
    }

    /// Trust this CA (PEM) instead of the system's roots for `rediss://`
    /// (`SESSION_REDIS_TLS_CA`, a file), for a Redis whose certificate comes
    /// from a private CA: every node of a cluster, and under Sentinel both
    /// the Sentinels and the primary.
    #[cfg(feature = "redis-tls")]
    pub fn tls_ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificate = Some(pem.into());
        self
    }

    /// Under Sentinel: whether the primary is reached over TLS
    /// (`SESSION_REDIS_SENTINEL_PRIMARY_TLS`). By default it is exactly when
    /// the Sentinels are (`rediss://` Sentinel URLs), with the same
    /// certificates, and a primary that does not speak TLS is refused,
    /// never fallen back to in clear. Set this only where the Sentinels and
    /// the primary really differ: `true` for a TLS primary behind plain
    /// Sentinels, `false` for a plain primary behind TLS ones (its password
    /// and the sessions then cross the network in clear).
    #[cfg(feature = "redis-tls")]
    pub fn primary_tls(mut self, tls: bool) -> Self {
        self.primary_tls = Some(tls);
        self
    }

    /// `info` with the builder's credentials and database.
    fn settle(&self, info: Result<ConnectionInfo, RedisError>) -> Result<ConnectionInfo, StoreError> {
        let info = info.map_err(invalid)?;
        let mut redis = info.redis_settings().clone();
        if let Some(username) = &self.username {
            redis = redis.set_username(username);
        }
        if let Some(password) = &self.password {
            redis = redis.set_password(password);
        }
        if let Some(db) = self.db {
            redis = redis.set_db(db);
        }
        Ok(info.set_redis_settings(redis))
    }

    #[cfg(feature = "redis-tls")]
    fn certificates(&self) -> Option<redis::TlsCertificates> {
        install_crypto_provider();
        self.ca_certificate
            .clone()
            .map(|root_cert| redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            })
    }

    fn client(&self, info: ConnectionInfo) -> Result<Client, StoreError> {
        #[cfg(feature = "redis-tls")]
        let client = match self.certificates() {
            Some(certificates) => Client::build_with_tls(info, certificates),
            None => Client::open(info),
        };
        #[cfg(not(feature = "redis-tls"))]
        let client = Client::open(info);
        client.map_err(invalid)
    }

    /// The topology, to connect on first use.
    fn topology(&mut self, timeouts: &Timeouts) -> Result<Topology, StoreError> {
        match std::mem::replace(&mut self.target, Target::Cluster(Vec::new())) {
            Target::Single(info) => {
                let client = self.client(self.settle(info)?)?;
                let shared =
                    redis::aio::ConnectionManager::new_lazy_with_config(client.clone(), timeouts.manager())
                        .map_err(invalid)?;
                Ok(Topology::Single { client, shared })
            }
            Target::Cluster(nodes) => {
                if self.db.is_some_and(|db| db != 0) {
                    return Err(StoreError::Backend("a Redis Cluster has only database 0".into()));
                }
                let nodes = nodes
                    .into_iter()
                    .map(|info| self.settle(info))
                    .collect::<Result<Vec<_>, _>>()?;
                if nodes.is_empty() {
                    return Err(StoreError::Backend(
                        "a Redis Cluster needs at least one node".into(),
                    ));
                }
                let mut builder = ClusterClient::builder(nodes)
                    .connection_timeout(timeouts.connect)
                    .response_timeout(timeouts.response)
                    .retries(2)
                    .max_retry_wait(timeouts.connect.as_millis() as u64);
                #[cfg(feature = "redis-tls")]
                if let Some(certificates) = self.certificates() {
                    builder = builder.certs(certificates);
                }
                if let Some(username) = &self.username {
                    builder = builder.username(username);
                }
                if let Some(password) = &self.password {
                    builder = builder.password(password);
                }
                let client = builder.build().map_err(invalid)?;
                Ok(Connection::cluster(client))
            }
            Target::Sentinel { sentinels, master } => {
                let sentinels = sentinels
                    .into_iter()
                    .map(|info| info.map_err(invalid))
                    .collect::<Result<Vec<_>, _>>()?;
                let reach = SentinelReach::of(&sentinels)?;
                let addrs = sentinels.iter().map(|info| info.addr().clone());
                let mut builder = SentinelClientBuilder::new(addrs, &master, SentinelServerType::Master)
                    .map_err(invalid)?;
                if let Some(username) = &self.username {
                    builder = builder.set_client_to_redis_username(username);
                }
                if let Some(password) = &self.password {
                    builder = builder.set_client_to_redis_password(password);
                }
                if let Some(db) = self.db {
                    builder = builder.set_client_to_redis_db(db);
                }
                if let Some(username) = &reach.username {
                    builder = builder.set_client_to_sentinel_username(username);
                }
                if let Some(password) = self.sentinel_password.as_ref().or(reach.password.as_ref()) {
                    builder = builder.set_client_to_sentinel_password(password);
                }
                #[cfg(feature = "redis-tls")]
                let primary_tls = {
                    let certificates = self.certificates();
                    if let (Some(_), Some(certificates)) = (reach.tls, &certificates) {
                        builder = builder.set_client_to_sentinel_certificates(certificates.clone());
                    }
                    let primary_tls = self.primary_tls.unwrap_or(reach.tls.is_some());
                    if primary_tls {
                        // As the Sentinels are reached: `#insecure` in their
                        // URLs skips verification for the primary too.
                        let mode = match reach.tls {
                            Some(true) => redis::TlsMode::Insecure,
                            _ => redis::TlsMode::Secure,
                        };
                        builder = builder.set_client_to_redis_tls_mode(mode);
                        if let Some(certificates) = certificates {
                            builder = builder.set_client_to_redis_certificates(certificates);
                        }
                    }
                    primary_tls
                };
                #[cfg(not(feature = "redis-tls"))]
                let primary_tls = false;
                let client = builder.build().map_err(invalid)?;
                Ok(Connection::sentinel(client, master, primary_tls, timeouts))
            }
        }
    }

    fn assemble(mut self) -> Result<RedisStore, StoreError> {
        let timeouts = Timeouts {
            connect: self.connect_timeout,
            response: self.command_timeout,
        };
        let topology = self.topology(&timeouts)?;
        let durability = self.wait.map(|(replicas, timeout)| Durability {
            replicas,
            timeout,
            pool: Pool::new(self.durable_connections),
        });
        Ok(RedisStore {
            inner: Arc::new(Inner {
                connection: Connection::new(topology, timeouts.clone()),
                save: Script::new(SAVE),
                deadline: timeouts.connect + timeouts.response,
                cas: AtomicU8::new(CAS_UNKNOWN),
                durability,
            }),
        })
    }

    /// Connects now (under Sentinel: finds the primary), learns whether the
    /// server has `SET ... IFEQ`, and loads the save script where it is
    /// needed: fails if Redis cannot be reached within the timeouts.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let store = self.assemble()?;
        store.prepare().await?;
        Ok(store)
    }

    /// A store that connects on first use, so an application can start while
    /// Redis is down (its session routes answer 503 until Redis is back).
    /// Needs a running tokio runtime.
    pub fn build(self) -> Result<RedisStore, StoreError> {
        let store = self.assemble()?;
        let prepare = store.clone();
        tokio::spawn(async move {
            // Best effort: what it learns is learnt on first use anyway.
            let _ = prepare.prepare().await;
        });
        Ok(store)
    }
}

/// What is wrong with `url` as a Redis server's address, in a few words
/// fit for a configuration error, or `None` when nothing obvious is.
pub(crate) fn url_problem(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() {
        return Some("it is empty".into());
    }
    let Some((scheme, _)) = url.split_once("://") else {
        return Some("it has no scheme: write redis://host:port, or rediss://host:port for TLS".into());
    };
    let known = [
        "redis",
        "rediss",
        "valkey",
        "valkeys",
        "redis+unix",
        "valkey+unix",
        "unix",
    ];
    if !known.contains(&scheme) {
        return Some(format!(
            "its scheme {scheme:?} is not one of redis, rediss (TLS), redis+unix, valkey, valkeys"
        ));
    }
    if cfg!(not(feature = "redis-tls")) && matches!(scheme, "rediss" | "valkeys") {
        return Some("TLS URLs need server-session's `redis-tls` cargo feature".into());
    }
    if redis::parse_redis_url(url).is_none() {
        return Some("it does not parse as redis://[user:password@]host[:port][/db]".into());
    }
    match url.into_connection_info() {
        Ok(_) => None,
        Err(err) => Some(
            format!("{err}")
                .trim_end_matches("- InvalidClientConfig")
                .trim()
                .to_lowercase(),
        ),
    }
}

/// How the Sentinels are reached, the same for all of them: over TLS or not
/// (and then whether certificates are verified), and with which credentials.
struct SentinelReach {
    /// `Some(insecure)` over TLS.
    tls: Option<bool>,
    username: Option<String>,
    password: Option<String>,
}

impl SentinelReach {
    fn of(sentinels: &[ConnectionInfo]) -> Result<SentinelReach, StoreError> {
        let Some(first) = sentinels.first() else {
            return Err(StoreError::Backend(
                "Sentinel needs at least one sentinel address".into(),
            ));
        };
        let reach = |info: &ConnectionInfo| {
            let tls = match info.addr() {
                ConnectionAddr::TcpTls { insecure, .. } => Some(*insecure),
                _ => None,
            };
            let settings = info.redis_settings();
            SentinelReach {
                tls,
                username: settings.username().map(str::to_owned),
                password: settings.password().map(str::to_owned),
            }
        };
        let first = reach(first);
        for other in sentinels[1..].iter().map(reach) {
            if other.tls != first.tls {
                return Err(StoreError::Backend(
                    "the Sentinels must all be reached the same way: all with rediss:// URLs (TLS) or none"
                        .into(),
                ));
            }
            if other.username != first.username || other.password != first.password {
                return Err(StoreError::Backend(
                    "the Sentinel URLs must all carry the same credentials, or none".into(),
                ));
            }
        }
        Ok(first)
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
