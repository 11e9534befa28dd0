//! How the Redis store reaches its servers: one server, a Redis Cluster, or
//! the primary a set of Sentinels names, and the dedicated connections that
//! durable writes wait on.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::sentinel::SentinelClient;
use redis::{AsyncConnectionConfig, Client, Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use tokio::sync::Mutex;

/// A connection a command can be sent on.
#[derive(Clone)]
pub(super) enum Handle {
    /// The shared, multiplexed connection to one server that reconnects by
    /// itself.
    Shared(ConnectionManager),
    /// A connection of its own to one server.
    Own(MultiplexedConnection),
    /// Connections to every node of a cluster, routing each command by its
    /// key and following redirections.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Handle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Handle::Shared(c) => c.req_packed_command(cmd),
            Handle::Own(c) => c.req_packed_command(cmd),
            Handle::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Handle::Shared(c) => c.req_packed_commands(pipeline, offset, count),
            Handle::Own(c) => c.req_packed_commands(pipeline, offset, count),
            Handle::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Handle::Shared(c) => c.get_db(),
            Handle::Own(c) => c.get_db(),
            Handle::Cluster(c) => c.get_db(),
        }
    }
}

impl Handle {
    /// `WAIT replicas timeout` on this connection, sent to the node that
    /// holds `key`: how many replicas have every write made on it so far.
    pub(super) async fn wait(&mut self, key: &str, replicas: usize, timeout: Duration) -> RedisResult<usize> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(timeout.as_millis().max(1) as u64);
        match self {
            Handle::Cluster(c) => {
                let node = SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
                let answer = c.route_command(wait, RoutingInfo::SingleNode(node)).await?;
                Ok(redis::from_redis_value(answer)?)
            }
            _ => wait.query_async(self).await,
        }
    }
}

/// Where the store's servers are.
// One per store, behind its Arc: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum Topology {
    Single {
        client: Client,
        shared: ConnectionManager,
    },
    Cluster {
        client: ClusterClient,
        /// The shared connection, when made; replaced when it stops
        /// answering at all (see [`Connection::failed`]).
        shared: RwLock<Option<ClusterConnection>>,
        /// One connection attempt at a time.
        connecting: Mutex<()>,
    },
    Sentinel(Sentinel),
}

/// The primary that the Sentinels name, found again after a failover.
pub(super) struct Sentinel {
    /// Asks the Sentinels for the primary and checks its `ROLE`; one
    /// discovery at a time.
    discovery: Mutex<SentinelClient>,
    /// The primary found last, and the shared connection to it.
    primary: RwLock<Option<(Client, ConnectionManager)>>,
    config: ConnectionManagerConfig,
    master: String,
    /// Whether the primary is reached over TLS.
    tls: bool,
}

/// Settings of connections made later.
#[derive(Clone)]
pub(super) struct Timeouts {
    pub(super) connect: Duration,
    pub(super) response: Duration,
}

impl Timeouts {
    pub(super) fn manager(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect))
            .set_response_timeout(Some(self.response))
            // A request waits for a reconnection in progress: one attempt
            // keeps that wait within the connect timeout. The next request
            // after a failed attempt starts another.
            .set_number_of_retries(0)
            .set_max_delay(self.connect)
    }

    /// A connection of its own, whose answers may take `longer` (a `WAIT`).
    fn own(&self, longer: Duration) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect))
            .set_response_timeout(Some(self.response + longer))
    }

    fn own_cluster(&self, longer: Duration) -> ClusterConfig {
        ClusterConfig::new()
            .set_connection_timeout(self.connect)
            .set_response_timeout(self.response + longer)
    }
}

/// The servers, and the number of times the primary changed (Sentinel), so
/// connections to a former primary are replaced.
pub(super) struct Connection {
    topology: Topology,
    timeouts: Timeouts,
    generation: AtomicU64,
    /// Since when every call failed, in microseconds after `epoch` (0:
    /// the last call answered): on a cluster, a connection that answers
    /// nothing for a whole deadline is replaced.
    failing_since: AtomicU64,
    epoch: Instant,
}

impl Connection {
    pub(super) fn new(topology: Topology, timeouts: Timeouts) -> Connection {
        Connection {
            topology,
            timeouts,
            generation: AtomicU64::new(0),
            failing_since: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    pub(super) fn cluster(client: ClusterClient) -> Topology {
        Topology::Cluster {
            client,
            shared: RwLock::new(None),
            connecting: Mutex::new(()),
        }
    }

    /// Called with every call that answered.
    pub(super) fn succeeded(&self) {
        if self.failing_since.load(Ordering::Relaxed) != 0 {
            self.failing_since.store(0, Ordering::Relaxed);
        }
    }

    pub(super) fn sentinel(
        client: SentinelClient,
        master: String,
        tls: bool,
        timeouts: &Timeouts,
    ) -> Topology {
        Topology::Sentinel(Sentinel {
            discovery: Mutex::new(client),
            primary: RwLock::new(None),
            config: timeouts.manager(),
            master,
            tls,
        })
    }

    /// The shared connection to one server (the server, or the primary the
    /// Sentinels named last), when there is one. It bounds every command by
    /// itself: one connection attempt of at most the connect timeout (it
    /// makes no retries), then the response timeout.
    pub(super) fn managed(&self) -> Option<Handle> {
        match &self.topology {
            Topology::Single { shared, .. } => Some(Handle::Shared(shared.clone())),
            Topology::Sentinel(sentinel) => sentinel.known_shared().map(Handle::Shared),
            Topology::Cluster { .. } => None,
        }
    }

    /// The shared connection: to the server, the cluster, or the current
    /// primary (found through the Sentinels if not known).
    pub(super) async fn shared(&self) -> RedisResult<Handle> {
        let made = match &self.topology {
            Topology::Single { shared, .. } => Some(Handle::Shared(shared.clone())),
            Topology::Cluster { shared, .. } => known(shared).map(Handle::Cluster),
            Topology::Sentinel(sentinel) => sentinel.known_shared().map(Handle::Shared),
        };
        match made {
            Some(handle) => Ok(handle),
            // Connecting is rare and its future large: boxed, so that every
            // request's future stays small.
            None => Box::pin(self.connect()).await,
        }
    }

    /// The shared connection, made: the cluster's, or the primary's after
    /// asking the Sentinels.
    async fn connect(&self) -> RedisResult<Handle> {
        match &self.topology {
            Topology::Single { shared, .. } => Ok(Handle::Shared(shared.clone())),
            Topology::Cluster {
                client,
                shared,
                connecting,
            } => {
                let _one = connecting.lock().await;
                if let Some(connection) = known(shared) {
                    return Ok(Handle::Cluster(connection));
                }
                let connection = client.get_async_connection().await?;
                *shared.write().unwrap_or_else(|e| e.into_inner()) = Some(connection.clone());
                Ok(Handle::Cluster(connection))
            }
            Topology::Sentinel(sentinel) => Ok(Handle::Shared(self.primary(sentinel).await?.1)),
        }
    }

    /// A new connection used by one request at a time, for a write and the
    /// `WAIT` (of up to `wait`) after it.
    async fn own(&self, wait: Duration) -> RedisResult<Handle> {
        let client = match &self.topology {
            Topology::Single { client, .. } => client.clone(),
            Topology::Cluster { client, .. } => {
                let config = self.timeouts.own_cluster(wait);
                return Ok(Handle::Cluster(
                    client.get_async_connection_with_config(config).await?,
                ));
            }
            Topology::Sentinel(sentinel) => self.primary(sentinel).await?.0,
        };
        let config = self.timeouts.own(wait);
        Ok(Handle::Own(
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await?,
        ))
    }

    async fn primary(&self, sentinel: &Sentinel) -> RedisResult<(Client, ConnectionManager)> {
        if let Some(known) = sentinel.known() {
            return Ok(known);
        }
        let mut discovery = sentinel.discovery.lock().await;
        if let Some(known) = sentinel.known() {
            return Ok(known);
        }
        let client = discovery
            .async_get_client()
            .await
            .map_err(|err| sentinel.explain(err))?;
        let shared = ConnectionManager::new_with_config(client.clone(), sentinel.config.clone()).await?;
        tracing::info!(
            master = %sentinel.master,
            primary = %client.get_connection_info().addr(),
            "session store found the primary through Sentinel"
        );
        *sentinel.primary.write().unwrap_or_else(|e| e.into_inner()) = Some((client.clone(), shared.clone()));
        Ok((client, shared))
    }

    /// Called with every failed command (`None`: it did not answer in time).
    /// Under Sentinel, an error that says the primary is gone or demoted
    /// (unreachable, `READONLY`, ...) makes the next request ask the
    /// Sentinels again. On a cluster, where the client follows failovers by
    /// itself, the shared connection is replaced when no call at all has
    /// answered for a whole deadline: the client can wedge after a
    /// primary's crash (its slot refreshes, each waiting on the dead node
    /// under one lock, queue up behind each other), and then serves no slot
    /// at all until it is dropped.
    pub(super) fn failed(&self, err: Option<&RedisError>) {
        let gone = err.is_none_or(|err| {
            err.is_io_error()
                || err.is_connection_refusal()
                || err.is_connection_dropped()
                || err.is_timeout()
                || matches!(
                    super::error_code(err).as_deref(),
                    Some("READONLY" | "MASTERDOWN" | "LOADING")
                )
        });
        if let Topology::Cluster { shared, .. } = &self.topology {
            if gone {
                self.cluster_failed(shared);
            }
            return;
        }
        let Topology::Sentinel(sentinel) = &self.topology else {
            return;
        };
        if gone
            && sentinel
                .primary
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .is_some()
        {
            self.generation.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(master = %sentinel.master, "session store lost its primary; asking the Sentinels again");
        }
    }
}

impl Connection {
    /// One more call on the cluster failed: replaces the shared connection
    /// if nothing answered for a deadline since the first failure, and
    /// starts a new window.
    fn cluster_failed(&self, shared: &RwLock<Option<ClusterConnection>>) {
        let now = (self.epoch.elapsed().as_micros() as u64).max(1);
        let since = self.failing_since.load(Ordering::Relaxed);
        if since == 0 {
            let _ = self
                .failing_since
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            return;
        }
        let deadline = (self.timeouts.connect + self.timeouts.response).as_micros() as u64;
        if now.saturating_sub(since) < deadline
            || self
                .failing_since
                .compare_exchange(since, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if shared.write().unwrap_or_else(|e| e.into_inner()).take().is_some() {
            tracing::warn!(
                "the session store's cluster connection answered nothing for a deadline; reconnecting"
            );
        }
    }
}

/// The shared cluster connection, if made.
fn known(shared: &RwLock<Option<ClusterConnection>>) -> Option<ClusterConnection> {
    shared.read().unwrap_or_else(|e| e.into_inner()).clone()
}

impl Sentinel {
    /// A failure to find the primary, saying that it was wanted over TLS
    /// when it was: a primary that does not speak TLS fails the handshake,
    /// and is never used in clear instead.
    fn explain(&self, err: RedisError) -> RedisError {
        if !self.tls || !(err.is_io_error() || err.kind() == redis::ErrorKind::Client) {
            return err;
        }
        RedisError::from((
            err.kind(),
            "the primary could not be reached over TLS",
            format!(
                "the Sentinels name a primary for {:?}, which must speak TLS as the Sentinels do \
                 (RedisStoreBuilder::primary_tls to choose otherwise): {err}",
                self.master
            ),
        ))
    }

    fn known(&self) -> Option<(Client, ConnectionManager)> {
        self.primary.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The shared connection to the primary found last.
    fn known_shared(&self) -> Option<ConnectionManager> {
        let primary = self.primary.read().unwrap_or_else(|e| e.into_inner());
        primary.as_ref().map(|(_, shared)| shared.clone())
    }
}

/// Connections of their own, each used by one durable write at a time:
/// `WAIT` blocks the connection it is sent on, and on the shared connection
/// every other request would queue behind it.
pub(super) struct Pool {
    slots: Box<[Slot]>,
    next: AtomicUsize,
}

/// A pool place: the connection, made for the primary of a generation.
type Slot = Mutex<Option<(u64, Handle)>>;

/// A pool connection, lent to one write.
pub(super) struct Lent<'p> {
    slot: tokio::sync::MutexGuard<'p, Option<(u64, Handle)>>,
}

impl Lent<'_> {
    pub(super) fn handle(&self) -> Handle {
        self.slot
            .as_ref()
            .expect("a lent slot holds a connection")
            .1
            .clone()
    }

    /// Drops the connection after a failure; the next write makes a new one.
    pub(super) fn discard(mut self) {
        *self.slot = None;
    }
}

impl Pool {
    pub(super) fn new(size: usize) -> Pool {
        Pool {
            slots: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// A free connection (waiting for one if all are lent), made or remade
    /// for the current primary as needed.
    pub(super) async fn lend<'p>(&'p self, connection: &Connection, wait: Duration) -> RedisResult<Lent<'p>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let free =
            (0..self.slots.len()).find_map(|i| self.slots[(start + i) % self.slots.len()].try_lock().ok());
        let mut slot = match free {
            Some(slot) => slot,
            None => self.slots[start].lock().await,
        };
        let generation = connection.generation.load(Ordering::Relaxed);
        if slot.as_ref().is_none_or(|(made, _)| *made != generation) {
            *slot = Some((generation, connection.own(wait).await?));
        }
        Ok(Lent { slot })
    }
}
