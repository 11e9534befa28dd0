//! Where session records live.
//!
//! A store does four things, each atomic on its own: [`load`](SessionStore::load)
//! (optionally sliding the expiry in the same round trip, and never reading
//! more than a limit),
//! [`save`](SessionStore::save) (a conditional write), [`delete`](SessionStore::delete)
//! and [`touch`](SessionStore::touch). Everything else (merging concurrent
//! changes, retries, cookies, expiry rules) lives in the engine, once, for
//! every store. [`conformance`] checks a store against this contract.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha1::{Digest, Sha1};

mod configured;
pub mod conformance;
pub(crate) mod memory;
#[cfg(feature = "mysql")]
pub(crate) mod mysql;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "redis")]
pub(crate) mod redis;
mod scan;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod sql;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

pub(crate) use configured::from_config;
pub use memory::MemoryStoreBuilder;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use mysql::MySqlStoreBuilder;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresStoreBuilder;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisStoreBuilder;
pub use scan::{ScanCursor, ScanPage, StoredEntry};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteStoreBuilder;

/// The longest TTL the built-in stores apply; a longer one is cut to it.
pub(crate) const TTL_CEILING: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A boxed error from a store's backend.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The SHA-1 of a stored record, used to tell whether it changed since it was
/// loaded.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 20]);

impl Fingerprint {
    /// The fingerprint of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Fingerprint(Sha1::digest(bytes).into())
    }

    /// The raw 20 bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Lowercase hex, as Redis's `redis.sha1hex` prints it.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(40);
        for byte in self.0 {
            hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
            hex.push(char::from(DIGITS[usize::from(byte & 0xf)]));
        }
        hex
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// The condition of a [`SessionStore::save`].
///
/// A store compares what the key holds with the loaded bytes as it can do
/// it cheapest and atomically: byte for byte (in memory, SQL's `WHERE data
/// = ?`, Valkey's `SET ... IFEQ`), or by [`Fingerprint`] (a Lua script).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Expect<'a> {
    /// A new session: the key must not exist.
    Absent,
    /// An existing session: the key must still hold exactly these bytes (the
    /// record the request loaded).
    Unchanged(&'a [u8]),
}

impl fmt::Debug for Expect<'_> {
    /// Shows the loaded record's fingerprint, never its bytes (session data).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Absent => f.write_str("Absent"),
            Expect::Unchanged(bytes) => f.debug_tuple("Unchanged").field(&Fingerprint::of(bytes)).finish(),
        }
    }
}

/// What a conditional save did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaveOutcome {
    /// The record was written.
    Saved,
    /// The condition failed because the key holds other bytes: these, so the
    /// engine can merge without reading again.
    Conflict(Vec<u8>),
    /// The condition expected an existing record and there is none: the
    /// session was destroyed, regenerated or expired meanwhile.
    Gone,
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached.
    #[error("session store unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The store did not answer in time.
    #[error("session store did not answer within {0:?}")]
    Timeout(Duration),
    /// A durable write reached fewer replicas than required in time (see
    /// `RedisStoreBuilder::wait_for_replicas`): it was made, but a failover
    /// could still lose it.
    #[error("the write reached {acknowledged} of the {required} replicas required in time")]
    NotReplicated {
        /// Replicas that confirmed the write.
        acknowledged: usize,
        /// Replicas required.
        required: usize,
    },
    /// The key holds something other than a record, which the store cannot
    /// read as bytes (in Redis, a hash or a list, say). The engine treats it
    /// as an undecodable record: logged, deleted, a fresh session.
    #[error("the session key holds a value of another type")]
    WrongType,
    /// The record is longer than the limit the load was given, and was not
    /// read. The engine treats it as an undecodable record: logged, deleted,
    /// a fresh session.
    #[error("the stored record is larger than {limit} bytes; not read")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The store answered with an error.
    #[error("session store error: {0}")]
    Backend(#[source] BoxError),
    /// The store does not implement this optional part of the contract.
    #[error("the session store does not support {0}")]
    Unsupported(&'static str),
}

impl StoreError {
    /// A short fixed name of the error's variant, for metrics labels and
    /// logs: `unavailable`, `timeout`, `not_replicated`, `wrong_type`,
    /// `too_large`, `backend` or `unsupported`.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Timeout(_) => "timeout",
            StoreError::NotReplicated { .. } => "not_replicated",
            StoreError::WrongType => "wrong_type",
            StoreError::TooLarge { .. } => "too_large",
            StoreError::Backend(_) => "backend",
            StoreError::Unsupported(_) => "unsupported",
        }
    }
}

/// A session store. Keys arrive complete (prefix and id); values are opaque
/// bytes; TTLs are whole seconds or more.
///
/// Implementations must make each method atomic on its own, and `save` must
/// check its [`Expect`] and write in one step: this is what keeps concurrent
/// requests from losing each other's updates.
///
/// ```
/// use server_session::MemoryStore;
/// use server_session::store::{Expect, SaveOutcome, SessionStore};
/// use std::time::Duration;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let ttl = Duration::from_secs(60);
/// assert_eq!(store.save("session:a", b"v1", ttl, Expect::Absent).await?, SaveOutcome::Saved);
/// assert_eq!(store.load("session:a", None, 1024).await?, Some(b"v1".to_vec()));
/// // A second creation of the same key reports what is there instead.
/// assert_eq!(
///     store.save("session:a", b"v2", ttl, Expect::Absent).await?,
///     SaveOutcome::Conflict(b"v1".to_vec())
/// );
/// # Ok::<_, server_session::store::StoreError>(()) }).unwrap();
/// ```
pub trait SessionStore: Send + Sync + 'static {
    /// Reads the record at `key`; with `slide`, also resets its expiry to
    /// `slide` from now, in the same round trip. A record longer than
    /// `limit` bytes is [`StoreError::TooLarge`], and the store reads no
    /// more of it than it must to tell (a store shared by many requests must
    /// not stall them all transferring one huge record). A key that holds
    /// something other than bytes is [`StoreError::WrongType`].
    fn load(
        &self,
        key: &str,
        slide: Option<Duration>,
        limit: usize,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Writes `value` at `key`, to expire after `ttl`, if `expect` holds. A
    /// key that holds something other than bytes is not a record: it is a
    /// `Conflict` for [`Expect::Absent`] and `Gone` for [`Expect::Unchanged`].
    fn save(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        expect: Expect<'_>,
    ) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send;

    /// Removes `key`; removing a missing key is not an error.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Resets the expiry of `key` to `ttl` from now, if it exists.
    fn touch(&self, key: &str, ttl: Duration) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether the store keeps indexes: the optional methods below, which
    /// [`login`](crate::Session::login) and the listing and revocation of a
    /// user's sessions need. A layer configured with
    /// [`SessionConfig::user_sessions`](crate::SessionConfig::user_sessions)
    /// refuses a store without them.
    ///
    /// An index is a set of members (session keys without their prefix), each
    /// with the time until which it counts, under its own key. Members past
    /// that time are never returned and are dropped as the index is read; the
    /// index itself disappears once its last member has expired.
    /// [`conformance::run_index`] checks these methods.
    fn supports_index(&self) -> bool {
        false
    }

    /// Adds `member` to the index at `index`, counting until `until`; a
    /// member already there gets the new time.
    fn index_add(
        &self,
        index: &str,
        member: &str,
        until: SystemTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (index, member, until);
        async { Err(StoreError::Unsupported("indexes")) }
    }

    /// Removes `member` from the index at `index`; removing a member that is
    /// not there is not an error.
    fn index_remove(&self, index: &str, member: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (index, member);
        async { Err(StoreError::Unsupported("indexes")) }
    }

    /// The members of the index at `index` that still count at `now`, with
    /// their times, in no particular order. Members that no longer count are
    /// removed.
    fn index_members(
        &self,
        index: &str,
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<(String, SystemTime)>, StoreError>> + Send {
        let _ = (index, now);
        async { Err(StoreError::Unsupported("indexes")) }
    }

    /// One page of a walk over the records whose keys start with `prefix`,
    /// for operator tools (optional): about `count` keys from `cursor`
    /// ([`ScanCursor::start`], then each page's `next` until it is `None`).
    /// A walk returns every record that exists from its start to its end at
    /// least once (one that changes meanwhile may come twice), never an
    /// expired one, and changes nothing. [`conformance::run_scan`] checks it.
    fn scan(
        &self,
        prefix: &str,
        cursor: &ScanCursor,
        count: usize,
    ) -> impl Future<Output = Result<ScanPage, StoreError>> + Send {
        let _ = (prefix, cursor, count);
        async { Err(StoreError::Unsupported("walking the records")) }
    }

    /// What `key` holds and its time to live, if it holds a live record,
    /// without touching it (optional, for operator tools).
    fn inspect(&self, key: &str) -> impl Future<Output = Result<Option<StoredEntry>, StoreError>> + Send {
        let _ = key;
        async { Err(StoreError::Unsupported("inspecting a record")) }
    }

    /// Removes the expired records now, for a store that keeps them until a
    /// cleanup (the SQL stores; optional); returns how many.
    fn purge_expired(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        async { Err(StoreError::Unsupported("purging expired records")) }
    }
}

impl<S: SessionStore> SessionStore for Arc<S> {
    fn load(
        &self,
        key: &str,
        slide: Option<Duration>,
        limit: usize,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        (**self).load(key, slide, limit)
    }

    fn save(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        expect: Expect<'_>,
    ) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send {
        (**self).save(key, value, ttl, expect)
    }

    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delete(key)
    }

    fn touch(&self, key: &str, ttl: Duration) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).touch(key, ttl)
    }

    fn supports_index(&self) -> bool {
        (**self).supports_index()
    }

    fn index_add(
        &self,
        index: &str,
        member: &str,
        until: SystemTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).index_add(index, member, until)
    }

    fn index_remove(&self, index: &str, member: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).index_remove(index, member)
    }

    fn index_members(
        &self,
        index: &str,
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<(String, SystemTime)>, StoreError>> + Send {
        (**self).index_members(index, now)
    }

    fn scan(
        &self,
        prefix: &str,
        cursor: &ScanCursor,
        count: usize,
    ) -> impl Future<Output = Result<ScanPage, StoreError>> + Send {
        (**self).scan(prefix, cursor, count)
    }

    fn inspect(&self, key: &str) -> impl Future<Output = Result<Option<StoredEntry>, StoreError>> + Send {
        (**self).inspect(key)
    }

    fn purge_expired(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).purge_expired()
    }
}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe face of [`SessionStore`], so the engine and the
/// [`Session`](crate::Session) handle need no type parameter.
pub(crate) trait DynStore: Send + Sync + 'static {
    fn load<'a>(
        &'a self,
        key: &'a str,
        slide: Option<Duration>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
    fn save<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
        expect: Expect<'a>,
    ) -> BoxFuture<'a, Result<SaveOutcome, StoreError>>;
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
    fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<(), StoreError>>;
    fn supports_index(&self) -> bool;
    fn index_add<'a>(
        &'a self,
        index: &'a str,
        member: &'a str,
        until: SystemTime,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    fn index_remove<'a>(&'a self, index: &'a str, member: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
    fn index_members<'a>(
        &'a self,
        index: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<(String, SystemTime)>, StoreError>>;
    fn scan<'a>(
        &'a self,
        prefix: &'a str,
        cursor: &'a ScanCursor,
        count: usize,
    ) -> BoxFuture<'a, Result<ScanPage, StoreError>>;
    fn inspect<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredEntry>, StoreError>>;
    fn purge_expired(&self) -> BoxFuture<'_, Result<u64, StoreError>>;
}

impl<S: SessionStore> DynStore for S {
    fn load<'a>(
        &'a self,
        key: &'a str,
        slide: Option<Duration>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(SessionStore::load(self, key, slide, limit))
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
        expect: Expect<'a>,
    ) -> BoxFuture<'a, Result<SaveOutcome, StoreError>> {
        Box::pin(SessionStore::save(self, key, value, ttl, expect))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(SessionStore::delete(self, key))
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(SessionStore::touch(self, key, ttl))
    }

    fn supports_index(&self) -> bool {
        SessionStore::supports_index(self)
    }

    fn index_add<'a>(
        &'a self,
        index: &'a str,
        member: &'a str,
        until: SystemTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(SessionStore::index_add(self, index, member, until))
    }

    fn index_remove<'a>(&'a self, index: &'a str, member: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(SessionStore::index_remove(self, index, member))
    }

    fn index_members<'a>(
        &'a self,
        index: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<(String, SystemTime)>, StoreError>> {
        Box::pin(SessionStore::index_members(self, index, now))
    }

    fn scan<'a>(
        &'a self,
        prefix: &'a str,
        cursor: &'a ScanCursor,
        count: usize,
    ) -> BoxFuture<'a, Result<ScanPage, StoreError>> {
        Box::pin(SessionStore::scan(self, prefix, cursor, count))
    }

    fn inspect<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredEntry>, StoreError>> {
        Box::pin(SessionStore::inspect(self, key))
    }

    fn purge_expired(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(SessionStore::purge_expired(self))
    }
}
