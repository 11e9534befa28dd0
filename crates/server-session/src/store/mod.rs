//! Where session records live.
//!
//! A store does four things, each atomic on its own: [`load`](SessionStore::load)
//! (optionally sliding the expiry in the same round trip, and never reading
//! more than a limit),
//! [`save`](SessionStore::save) (a conditional write), [`delete`](SessionStore::delete)
//! and [`touch`](SessionStore::touch). Everything else (merging concurrent
//! changes, retries, cookies, expiry rules) lives in the engine, once, for
//! every store. Two abilities are traits of their own, for the stores that
//! have them: [`SessionIndex`] (a user's sessions) and [`StoreAdmin`]
//! (walking and purging, for operator tools). [`conformance`] checks a store
//! against each.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha1::{Digest, Sha1};

pub mod conformance;
pub(crate) mod memory;
#[cfg(feature = "mysql")]
pub(crate) mod mysql;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
mod redact;
#[cfg(feature = "redis")]
pub(crate) mod redis;
mod scan;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod sql;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

pub use memory::MemoryStoreBuilder;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use mysql::MySqlStoreBuilder;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresStoreBuilder;
pub(crate) use redact::redacted_url;
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
}

impl StoreError {
    /// A short fixed name of the error's variant, for metrics labels and
    /// logs: `unavailable`, `timeout`, `not_replicated`, `wrong_type`,
    /// `too_large` or `backend`.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Timeout(_) => "timeout",
            StoreError::NotReplicated { .. } => "not_replicated",
            StoreError::WrongType => "wrong_type",
            StoreError::TooLarge { .. } => "too_large",
            StoreError::Backend(_) => "backend",
        }
    }
}

/// Declares a store trait, and writes its forwarding once: the same trait
/// for `Arc<S>`, and an object-safe twin (`$dyn`, every future boxed) with
/// a blanket impl, so that the engine holds any store without a type
/// parameter.
macro_rules! store_trait {
    (
        $(#[$doc:meta])*
        pub trait $name:ident: [$($bound:tt)+] as $dyn:ident {
            $(
                $(#[$method_doc:meta])*
                fn $method:ident(&self $(, $arg:ident: $ty:ty)*) -> $out:ty;
            )+
        }
    ) => {
        $(#[$doc])*
        pub trait $name: $($bound)+ {
            $(
                $(#[$method_doc])*
                fn $method<'a>(&'a self $(, $arg: $ty)*) -> impl Future<Output = $out> + Send + 'a;
            )+
        }

        impl<S: $name> $name for Arc<S> {
            $(
                fn $method<'a>(&'a self $(, $arg: $ty)*) -> impl Future<Output = $out> + Send + 'a {
                    (**self).$method($($arg),*)
                }
            )+
        }

        pub(crate) trait $dyn: Send + Sync + 'static {
            $(
                fn $method<'a>(&'a self $(, $arg: $ty)*) -> BoxFuture<'a, $out>;
            )+
        }

        impl<S: $name> $dyn for S {
            $(
                fn $method<'a>(&'a self $(, $arg: $ty)*) -> BoxFuture<'a, $out> {
                    Box::pin($name::$method(self $(, $arg)*))
                }
            )+
        }
    };
}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

store_trait! {
    /// A session store: four calls, each atomic on its own. Keys arrive
    /// complete (prefix and id); values are opaque bytes; TTLs are whole
    /// seconds or more. This is all a store needs to serve sessions; the
    /// indexes behind a user's sessions ([`SessionIndex`]) and the walk an
    /// operator tool makes ([`StoreAdmin`]) are traits of their own.
    ///
    /// `save` must check its [`Expect`] and write in one step: this is what
    /// keeps concurrent requests from losing each other's updates.
    /// [`conformance::run`] checks a store against this contract.
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
    pub trait SessionStore: [Send + Sync + 'static] as DynStore {
        /// Reads the record at `key`; with `slide`, also resets its expiry to
        /// `slide` from now, in the same round trip. A record longer than
        /// `limit` bytes is [`StoreError::TooLarge`], and the store reads no
        /// more of it than it must to tell (a store shared by many requests
        /// must not stall them all transferring one huge record). A key that
        /// holds something other than bytes is [`StoreError::WrongType`].
        fn load(&self, key: &'a str, slide: Option<Duration>, limit: usize) -> Result<Option<Vec<u8>>, StoreError>;

        /// Writes `value` at `key`, to expire after `ttl`, if `expect` holds. A
        /// key that holds something other than bytes is not a record: it is a
        /// `Conflict` for [`Expect::Absent`] and `Gone` for [`Expect::Unchanged`].
        fn save(&self, key: &'a str, value: &'a [u8], ttl: Duration, expect: Expect<'a>) -> Result<SaveOutcome, StoreError>;

        /// Removes `key`; removing a missing key is not an error.
        fn delete(&self, key: &'a str) -> Result<(), StoreError>;

        /// Resets the expiry of `key` to `ttl` from now, if it exists.
        fn touch(&self, key: &'a str, ttl: Duration) -> Result<(), StoreError>;
    }
}

store_trait! {
    /// Indexes kept beside the sessions: what [`Session::login`](crate::Session::login)
    /// and the listing and revocation of a user's sessions need. Only a
    /// store with indexes can serve
    /// [`Sessions::with_user_sessions`](crate::Sessions::with_user_sessions).
    ///
    /// An index is a set of members (session keys without their prefix),
    /// each with the time until which it counts, under its own key. Members
    /// past that time are never returned and are dropped as the index is
    /// read; the index itself disappears once its last member has expired.
    /// [`conformance::run_index`] checks it.
    pub trait SessionIndex: [SessionStore] as DynIndex {
        /// Adds `member` to the index at `index`, counting until `until`; a
        /// member already there gets the new time.
        fn index_add(&self, index: &'a str, member: &'a str, until: SystemTime) -> Result<(), StoreError>;

        /// Removes `member` from the index at `index`; removing a member that
        /// is not there is not an error.
        fn index_remove(&self, index: &'a str, member: &'a str) -> Result<(), StoreError>;

        /// The members of the index at `index` that still count at `now`,
        /// with their times, in no particular order. Members that no longer
        /// count are removed.
        fn index_members(&self, index: &'a str, now: SystemTime) -> Result<Vec<(String, SystemTime)>, StoreError>;
    }
}

store_trait! {
    /// Walking, inspecting and purging the stored records, for operator
    /// tools ([`Admin`](crate::admin::Admin) and the `server-session`
    /// command). [`conformance::run_scan`] checks it.
    pub trait StoreAdmin: [SessionStore] as DynAdmin {
        /// One page of a walk over the records whose keys start with
        /// `prefix`: about `count` keys from `cursor`
        /// ([`ScanCursor::start`], then each page's `next` until it is
        /// `None`). A walk returns every record that exists from its start
        /// to its end at least once (one that changes meanwhile may come
        /// twice), never an expired one, and changes nothing.
        fn scan(&self, prefix: &'a str, cursor: &'a ScanCursor, count: usize) -> Result<ScanPage, StoreError>;

        /// What `key` holds and its time to live, if it holds a live record,
        /// without touching it.
        fn inspect(&self, key: &'a str) -> Result<Option<StoredEntry>, StoreError>;

        /// Removes the expired records now and says how many, for a store
        /// that keeps them until a cleanup (the SQL stores); `None` for a
        /// store that expires records by itself.
        fn purge_expired(&self) -> Result<Option<u64>, StoreError>;
    }
}

/// One store, seen through each of the abilities it has.
#[derive(Clone)]
pub(crate) struct Abilities {
    pub(crate) store: Arc<dyn DynStore>,
    pub(crate) index: Option<Arc<dyn DynIndex>>,
    pub(crate) admin: Option<Arc<dyn DynAdmin>>,
}

impl Abilities {
    /// A store that can serve sessions, and nothing more.
    pub(crate) fn store<S: SessionStore>(store: &Arc<S>) -> Abilities {
        Abilities {
            store: store.clone(),
            index: None,
            admin: None,
        }
    }

    /// With the indexes of `store`, the same store.
    pub(crate) fn index<S: SessionIndex>(mut self, store: &Arc<S>) -> Abilities {
        self.index = Some(store.clone());
        self
    }

    /// With the walk of `store`, the same store.
    pub(crate) fn admin<S: StoreAdmin>(mut self, store: &Arc<S>) -> Abilities {
        self.admin = Some(store.clone());
        self
    }
}
