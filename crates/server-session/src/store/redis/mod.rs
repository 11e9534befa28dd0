//! The Redis store (feature `redis`), in Flask-Session 0.8's layout, on one
//! server, a Redis Cluster, or a primary watched by Sentinel; Valkey too.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime};

use redis::{
    Client, ErrorKind, FromRedisValue, IntoConnectionInfo, RedisError, RedisResult, Script, ServerErrorKind,
    Value,
};

use super::{
    Expect, SaveOutcome, ScanCursor, ScanPage, SessionIndex, SessionStore, StoreAdmin, StoreError,
    StoredEntry, TTL_CEILING,
};
use crate::clock::unix_secs;

mod builder;
mod connection;
mod scan;

pub use builder::RedisStoreBuilder;
use builder::Target;
pub(crate) use builder::url_problem;
use connection::{Connection, Handle, Pool};

/// The conditional update of an existing session, on one key (so it runs
/// unchanged on Redis Cluster), for servers without `SET ... IFEQ`.
///
/// `ARGV[3]` is the record the request loaded, compared byte for byte, as
/// `SET ... IFEQ` compares it: cheaper for both sides than hashing it, for
/// records of the sizes sessions have. Answers `0` when saved, the current
/// bytes on a conflict, `2` when the record is gone: plain replies, which
/// Redis returns faster than a table. (Creating a session needs no script:
/// `SET ... NX GET`.)
const SAVE: &str = r"
local current = redis.call('GET', KEYS[1])
if not current then return 2 end
if current ~= ARGV[3] then return current end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 0
";

/// How the store makes a conditional save, decided once from the server.
const CAS_UNKNOWN: u8 = 0;
/// `SET key value IFEQ loaded GET EX ttl` (Valkey 8.1+, Redis 8.4+).
const CAS_NATIVE: u8 = 1;
/// The Lua script.
const CAS_SCRIPT: u8 = 2;

/// Sessions in Redis: one key per session (`{prefix}{id}`), the record as its
/// value, the expiry as its TTL, exactly as Flask-Session 0.8 stores them.
///
/// Every request uses one shared, multiplexed connection that reconnects by
/// itself. A read is one `GETRANGE` of at most the record size limit (with
/// an `EXPIRE` in the same round trip when the expiry slides); a new
/// session is one `SET ... NX GET EX`; a change is one conditional
/// write: `SET ... IFEQ ... GET EX` where the server has it (Valkey 8.1 and
/// later, Redis 8.4 and later), else one `EVALSHA` of a script that writes
/// only if the record is still the one the request loaded. Each call is
/// bounded by the connect and command timeouts (one second each by
/// default), so an unreachable Redis gives [`StoreError::Unavailable`] or
/// [`StoreError::Timeout`], never a hang.
///
/// Every command touches one key, so the same commands run on a Redis
/// Cluster ([`RedisStore::cluster`]) and on a primary found through Sentinel
/// ([`RedisStore::sentinel`]), which the store follows through failovers by
/// itself.
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
    connection: Connection,
    save: Script,
    deadline: Duration,
    cas: AtomicU8,
    durability: Option<Durability>,
}

/// Saves acknowledged only once replicas have them.
struct Durability {
    replicas: usize,
    timeout: Duration,
    pool: Pool,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("deadline", &self.inner.deadline)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Settings for a store at `url`: `redis://[user:password@]host[:port][/db]`,
    /// `rediss://...` for TLS (feature `redis-tls`), or `redis+unix:///path`.
    pub fn builder(url: impl IntoConnectionInfo) -> RedisStoreBuilder {
        RedisStoreBuilder::new(Target::Single(url.into_connection_info()))
    }

    /// Settings for a store on the Redis Cluster that `nodes` (some of its
    /// nodes: `redis://host:port` or `host:port`) belong to
    /// (`SESSION_REDIS_CLUSTER`). The client learns the rest of the cluster
    /// from them, routes each command to the node that holds its key,
    /// follows `MOVED` and `ASK` redirections, and learns the new layout
    /// after a failover.
    ///
    /// ```no_run
    /// use server_session::RedisStore;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = RedisStore::cluster(["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"])
    ///     .password("from SESSION_REDIS_PASSWORD")
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn cluster<I>(nodes: I) -> RedisStoreBuilder
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        RedisStoreBuilder::new(Target::Cluster(nodes.into_iter().map(node).collect()))
    }

    /// Settings for a store on the primary that `sentinels` (Sentinel
    /// addresses, `host:port`) name `master` (`SESSION_REDIS_SENTINEL`,
    /// `SESSION_REDIS_SENTINEL_MASTER`). When the primary fails or is demoted
    /// (it then answers writes with `READONLY`), requests answer 503 until
    /// the Sentinels have promoted a replica, and the store then finds and
    /// uses it, with no restart.
    ///
    /// ```no_run
    /// use server_session::RedisStore;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = RedisStore::sentinel(["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"], "mymaster")
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn sentinel<I>(sentinels: I, master: impl Into<String>) -> RedisStoreBuilder
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        RedisStoreBuilder::new(Target::Sentinel {
            sentinels: sentinels.into_iter().map(node).collect(),
            master: master.into(),
        })
    }

    /// Settings for a store using the connection settings of `client`.
    pub fn from_client(client: &Client) -> RedisStoreBuilder {
        Self::builder(client.get_connection_info().clone())
    }

    /// Connects to `url` with the default settings.
    pub async fn connect(url: impl IntoConnectionInfo) -> Result<RedisStore, StoreError> {
        Self::builder(url).connect().await
    }

    /// Whether conditional saves use the server's `SET ... IFEQ` (Valkey 8.1
    /// and later, Redis 8.4 and later) rather than the Lua script; `None`
    /// until the store has asked the server.
    pub fn native_compare_and_set(&self) -> Option<bool> {
        match self.inner.cas.load(Ordering::Relaxed) {
            CAS_NATIVE => Some(true),
            CAS_SCRIPT => Some(false),
            _ => None,
        }
    }

    /// Asks the server what it is, to choose how to save, and loads the
    /// script if it is the way.
    async fn prepare(&self) -> Result<(), StoreError> {
        if self.cas().await? == CAS_SCRIPT {
            let script = &self.inner.save;
            self.shared(|mut handle| async move { script.load_async(&mut handle).await })
                .await?;
        }
        Ok(())
    }

    /// How conditional saves are made, learnt from `HELLO` the first time.
    async fn cas(&self) -> Result<u8, StoreError> {
        match self.inner.cas.load(Ordering::Relaxed) {
            CAS_UNKNOWN => Box::pin(self.learn_cas()).await,
            known => Ok(known),
        }
    }

    async fn learn_cas(&self) -> Result<u8, StoreError> {
        let hello = self
            .shared(|mut handle| async move {
                redis::cmd("HELLO")
                    .query_async::<std::collections::HashMap<String, Value>>(&mut handle)
                    .await
            })
            .await;
        let mode = match hello {
            Ok(hello) if has_ifeq(&hello) => CAS_NATIVE,
            // Old servers and ACLs without HELLO: the script works everywhere.
            Ok(_) | Err(StoreError::Backend(_)) => CAS_SCRIPT,
            Err(err) => return Err(err),
        };
        self.inner.cas.store(mode, Ordering::Relaxed);
        Ok(mode)
    }

    /// Runs `op` on the shared connection, within the deadline: the one a
    /// server's connection keeps by itself (no timer of our own on the
    /// common path), else a timer around finding the connection and the
    /// call.
    async fn shared<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Handle) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let connection = &self.inner.connection;
        let outcome = match connection.managed() {
            Some(handle) => Ok(op(handle).await),
            // Boxed: the timer and the connection lookup would make every
            // call's future larger, on one server too.
            None => {
                Box::pin(tokio::time::timeout(self.inner.deadline, async {
                    let handle = connection.shared().await?;
                    op(handle).await
                }))
                .await
            }
        };
        self.settle(outcome)
    }

    /// Runs the write `op` to `key`: on the shared connection, or with
    /// durability on, on a connection of its own followed by `WAIT`.
    async fn write<T, F, Fut>(&self, key: &str, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Handle) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        match &self.inner.durability {
            None => self.shared(op).await,
            // Its future is large: boxed, so that the common case stays small.
            Some(durability) => Box::pin(self.durable(durability, key, op)).await,
        }
    }

    /// [`write`](Self::write) with durability on.
    async fn durable<T, F, Fut>(&self, durability: &Durability, key: &str, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Handle) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let connection = &self.inner.connection;
        let outcome = tokio::time::timeout(self.inner.deadline + durability.timeout, async {
            let lent = durability.pool.lend(connection, durability.timeout).await?;
            let mut handle = lent.handle();
            let written = op(handle.clone()).await;
            let replicated = match &written {
                Ok(_) => handle.wait(key, durability.replicas, durability.timeout).await,
                Err(_) => Ok(0),
            };
            if written.is_err() || replicated.is_err() {
                lent.discard();
            }
            Ok((written?, replicated?))
        })
        .await;
        let (value, replicated) = self.settle(outcome)?;
        if replicated < durability.replicas {
            return Err(StoreError::NotReplicated {
                acknowledged: replicated,
                required: durability.replicas,
            });
        }
        Ok(value)
    }

    /// The result of a call, with the connection told of a failure.
    fn settle<T>(
        &self,
        outcome: Result<RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, StoreError> {
        let connection = &self.inner.connection;
        match outcome {
            Ok(Ok(value)) => {
                connection.succeeded();
                Ok(value)
            }
            Ok(Err(err)) => {
                connection.failed(Some(&err));
                Err(classify(err, self.inner.deadline))
            }
            Err(_) => {
                connection.failed(None);
                Err(StoreError::Timeout(self.inner.deadline))
            }
        }
    }

    /// The conditional update of an existing record, as the server allows.
    async fn update(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        loaded: &[u8],
    ) -> Result<SaveOutcome, StoreError> {
        if self.cas().await? == CAS_NATIVE {
            let mut command = command("SET", 7, key.len() + value.len() + loaded.len() + NUMBER + 10);
            command
                .arg(key)
                .arg(value)
                .arg("IFEQ")
                .arg(loaded)
                .arg("GET")
                .arg("EX")
                .arg(seconds(ttl));
            let previous = self
                .write(key, |mut handle| async move {
                    command.query_async::<Option<Vec<u8>>>(&mut handle).await
                })
                .await;
            return match previous {
                Ok(None) => Ok(SaveOutcome::Gone),
                Ok(Some(previous)) if previous == loaded => Ok(SaveOutcome::Saved),
                Ok(Some(current)) => Ok(SaveOutcome::Conflict(current)),
                Err(StoreError::WrongType) => Ok(SaveOutcome::Gone),
                Err(err) if is_syntax_error(&err) => {
                    // A server without IFEQ after all (a failover to an older
                    // one): nothing was written; use the script from now on.
                    tracing::warn!("the session store's server has no SET IFEQ; saving with the script");
                    self.inner.cas.store(CAS_SCRIPT, Ordering::Relaxed);
                    Box::pin(self.update(key, value, ttl, loaded)).await
                }
                Err(err) => Err(err),
            };
        }
        let script = &self.inner.save;
        let mut command = command(
            "EVALSHA",
            6,
            40 + 1 + key.len() + value.len() + NUMBER + loaded.len(),
        );
        command
            .arg(script.get_hash())
            .arg(1)
            .arg(key)
            .arg(value)
            .arg(seconds(ttl))
            .arg(loaded);
        let answer = self
            .write(key, |mut handle| async move {
                match command.query_async::<Value>(&mut handle).await {
                    // A restarted or failed-over server forgot the script
                    // (boxed: rare, and it would double the common future).
                    Err(err) if err.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                        Box::pin(async move {
                            script.prepare_invoke().load_async(&mut handle).await?;
                            command.query_async(&mut handle).await
                        })
                        .await
                    }
                    answer => answer,
                }
            })
            .await;
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
}

/// A node's address: a `redis://` or `rediss://` URL, or `host:port`.
fn node(addr: impl AsRef<str>) -> Result<redis::ConnectionInfo, RedisError> {
    let addr = addr.as_ref().trim();
    if addr.contains("://") {
        addr.into_connection_info()
    } else {
        format!("redis://{addr}").into_connection_info()
    }
}

/// Whether a `HELLO` reply names a server with `SET ... IFEQ`: Valkey 8.1 and
/// later, Redis 8.4 and later.
fn has_ifeq(hello: &std::collections::HashMap<String, Value>) -> bool {
    let text = |field: &str| {
        hello
            .get(field)
            .and_then(|v| String::from_redis_value(v.clone()).ok())
    };
    let (Some(server), Some(version)) = (text("server"), text("version")) else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    match server.as_str() {
        "valkey" => version >= (8, 1),
        "redis" => version >= (8, 4),
        _ => false,
    }
}

fn is_syntax_error(err: &StoreError) -> bool {
    matches!(err, StoreError::Backend(source) if source.to_string().contains("syntax error"))
}

/// The most bytes a number argument takes.
const NUMBER: usize = 20;

/// The command `name`, with room for `args` more arguments taking `data`
/// bytes in all: building it then never grows its buffers.
fn command(name: &str, args: usize, data: usize) -> redis::Cmd {
    let mut command = redis::Cmd::with_capacity(args + 1, name.len() + data);
    command.arg(name);
    command
}

/// Redis expiries are whole seconds; never less than one, nor more than a
/// century (Redis refuses an expiry past its clock's range).
fn seconds(ttl: Duration) -> u64 {
    ttl.min(TTL_CEILING).as_secs().max(1)
}

/// The server's error code in `err`, also when a command of a pipeline
/// failed (the first failure's).
pub(super) fn error_code(err: &RedisError) -> Option<String> {
    if let Some(code) = err.code() {
        return Some(code.to_owned());
    }
    let failed = err.clone().into_server_errors()?;
    failed.first().map(|(_, failure)| failure.code().to_owned())
}

/// A Redis error as a store error.
fn classify(err: RedisError, deadline: Duration) -> StoreError {
    let code = error_code(&err);
    if err.is_timeout() {
        StoreError::Timeout(deadline)
    } else if code.as_deref() == Some("WRONGTYPE") {
        StoreError::WrongType
    } else if err.is_io_error()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || matches!(
            code.as_deref(),
            Some("READONLY" | "MASTERDOWN" | "LOADING" | "CLUSTERDOWN" | "TRYAGAIN")
        )
    {
        StoreError::Unavailable(Box::new(err))
    } else {
        StoreError::Backend(Box::new(err))
    }
}

impl SessionStore for RedisStore {
    /// `GETRANGE key 0 limit`, which reads at most one byte more than the
    /// limit (so a huge record planted under a session key never crosses
    /// the shared connection), with `EXPIRE` in the same pipeline when the
    /// expiry slides: one round trip, at about 1.6 times `GETEX`'s server
    /// time, where a script checking `STRLEN` first would take six times.
    /// A missing key reads as an empty string, which no record is.
    async fn load(
        &self,
        key: &str,
        slide: Option<Duration>,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let end = limit.min(i64::MAX as usize - 1);
        let found = match slide {
            None => {
                let mut command = command("GETRANGE", 3, key.len() + 1 + NUMBER);
                command.arg(key).arg(0).arg(end);
                self.shared(|mut handle| async move { command.query_async::<Vec<u8>>(&mut handle).await })
                    .await?
            }
            Some(ttl) => {
                let mut pipe = redis::Pipeline::with_capacity(2);
                pipe.cmd("GETRANGE").arg(key).arg(0).arg(end);
                pipe.cmd("EXPIRE").arg(key).arg(seconds(ttl)).ignore();
                let (found,): (Vec<u8>,) = self
                    .shared(|mut handle| async move { pipe.query_async(&mut handle).await })
                    .await?;
                found
            }
        };
        match found.len() {
            0 => Ok(None),
            n if n > limit => Err(StoreError::TooLarge { limit }),
            _ => Ok(Some(found)),
        }
    }

    async fn save(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        expect: Expect<'_>,
    ) -> Result<SaveOutcome, StoreError> {
        let Expect::Unchanged(loaded) = expect else {
            // A plain create-if-absent; no script needed. GET makes it
            // answer what is there when the key exists.
            let mut command = command("SET", 6, key.len() + value.len() + NUMBER + 7);
            command
                .arg(key)
                .arg(value)
                .arg("NX")
                .arg("GET")
                .arg("EX")
                .arg(seconds(ttl));
            let created = self
                .write(key, |mut handle| async move {
                    command.query_async::<Option<Vec<u8>>>(&mut handle).await
                })
                .await;
            return match created {
                Ok(None) => Ok(SaveOutcome::Saved),
                Ok(Some(current)) => Ok(SaveOutcome::Conflict(current)),
                Err(StoreError::WrongType) => Ok(SaveOutcome::Conflict(Vec::new())),
                Err(err) => Err(err),
            };
        };
        self.update(key, value, ttl, loaded).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut command = command("DEL", 1, key.len());
        command.arg(key);
        self.write(key, |mut handle| async move {
            command.query_async::<i64>(&mut handle).await
        })
        .await
        .map(drop)
    }

    async fn touch(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        let mut command = command("EXPIRE", 2, key.len() + NUMBER);
        command.arg(key).arg(seconds(ttl));
        self.shared(|mut handle| async move { command.query_async::<i64>(&mut handle).await })
            .await
            .map(drop)
    }
}

impl StoreAdmin for RedisStore {
    async fn scan(&self, prefix: &str, cursor: &ScanCursor, count: usize) -> Result<ScanPage, StoreError> {
        let pattern = scan::pattern(prefix);
        let pattern = pattern.as_str();
        self.shared(|handle| scan::page(handle, pattern, cursor, count))
            .await?
    }

    async fn inspect(&self, key: &str) -> Result<Option<StoredEntry>, StoreError> {
        let keys = [key.as_bytes().to_vec()];
        let values: Vec<Value> = self
            .shared(|mut handle| async move { scan::read(&keys).query_async(&mut handle).await })
            .await?;
        let mut values = values.into_iter();
        match (values.next(), values.next()) {
            (Some(ttl), Some(value)) => scan::entry(key.as_bytes().to_vec(), ttl, value)
                .map_err(|err| classify(err, self.inner.deadline)),
            _ => Err(StoreError::Backend("no answer to PTTL and GET".into())),
        }
    }

    /// Redis expires keys by itself: nothing to purge.
    async fn purge_expired(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
}

/// An index is a sorted set scored by the Unix second until which each
/// member counts; the set expires with its last member. Every command
/// touches the one key, so it runs unchanged on a cluster.
impl SessionIndex for RedisStore {
    async fn index_add(&self, index: &str, member: &str, until: SystemTime) -> Result<(), StoreError> {
        // Whole seconds for the key's expiry, milliseconds in the score so
        // that members keep the order they were added in.
        let at = unix_secs(until) + 1;
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD").arg(index).arg(score(until)).arg(member).ignore();
        // NX gives a new set its expiry, GT pushes it back for a later member.
        pipe.cmd("EXPIREAT").arg(index).arg(at).arg("NX").ignore();
        pipe.cmd("EXPIREAT").arg(index).arg(at).arg("GT").ignore();
        self.write(index, |mut handle| async move {
            pipe.query_async::<()>(&mut handle).await
        })
        .await
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<(), StoreError> {
        let mut command = command("ZREM", 2, index.len() + member.len());
        command.arg(index).arg(member);
        self.write(index, |mut handle| async move {
            command.query_async::<i64>(&mut handle).await
        })
        .await
        .map(drop)
    }

    async fn index_members(
        &self,
        index: &str,
        now: SystemTime,
    ) -> Result<Vec<(String, SystemTime)>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(index)
            .arg("-inf")
            .arg(score(now))
            .ignore();
        pipe.cmd("ZRANGE").arg(index).arg(0).arg(-1).arg("WITHSCORES");
        let (members,): (Vec<(Vec<u8>, f64)>,) = self
            .shared(|mut handle| async move { pipe.query_async(&mut handle).await })
            .await?;
        let mut listed = Vec::with_capacity(members.len());
        let mut foreign = Vec::new();
        for (member, at) in members {
            match String::from_utf8(member) {
                Ok(member) => {
                    let millis = (at.max(0.0) * 1000.0).round() as u64;
                    listed.push((member, SystemTime::UNIX_EPOCH + Duration::from_millis(millis)));
                }
                Err(err) => foreign.push(err.into_bytes()),
            }
        }
        if !foreign.is_empty() {
            // No writer of this library puts them there, and no session
            // has such a name: dropped, so they cannot break a listing.
            tracing::warn!(
                members = foreign.len(),
                "dropping index members that are not text, which name no session"
            );
            let mut command = command(
                "ZREM",
                1 + foreign.len(),
                index.len() + foreign.iter().map(Vec::len).sum::<usize>(),
            );
            command.arg(index);
            for member in &foreign {
                command.arg(member.as_slice());
            }
            self.write(index, |mut handle| async move {
                command.query_async::<i64>(&mut handle).await
            })
            .await?;
        }
        Ok(listed)
    }
}

/// An index score: Unix seconds, to the millisecond.
fn score(time: SystemTime) -> String {
    let millis = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

fn unexpected(answer: &impl fmt::Debug) -> StoreError {
    StoreError::Backend(format!("unexpected answer from the save script: {answer:?}").into())
}
