//! Helpers shared by the integration tests.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use http::{HeaderMap, Request, StatusCode, header};
use server_session::MemoryStore;
use server_session::store::{Expect, Fingerprint, SaveOutcome, SessionIndex, SessionStore, StoreError};
use tower::ServiceExt;

/// The record size limit of the tests' own loads.
pub const LIMIT: usize = 1 << 20;

/// One store call, as the engine made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Load {
        key: String,
        slide: Option<Duration>,
    },
    Save {
        key: String,
        ttl: Duration,
        /// The fingerprint of the record the save expected, `None` for a
        /// creation.
        expect: Option<Fingerprint>,
        outcome: &'static str,
    },
    Delete {
        key: String,
    },
    Touch {
        key: String,
        ttl: Duration,
    },
    /// A call on an index: `index_add`, `index_remove` or `index_members`.
    Index {
        op: &'static str,
        index: String,
    },
}

impl Call {
    pub fn name(&self) -> &'static str {
        match self {
            Call::Load { .. } => "load",
            Call::Save { .. } => "save",
            Call::Delete { .. } => "delete",
            Call::Touch { .. } => "touch",
            Call::Index { op, .. } => op,
        }
    }
}

/// A store wrapper that records every call.
#[derive(Clone)]
pub struct Counting<S> {
    pub inner: S,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl<S> Counting<S> {
    pub fn new(inner: S) -> Self {
        Counting {
            inner,
            calls: Arc::default(),
        }
    }

    /// The calls so far, forgetting them.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.calls.lock().unwrap())
    }

    /// The names of the calls so far, forgetting them.
    pub fn take_names(&self) -> Vec<&'static str> {
        self.take().iter().map(Call::name).collect()
    }

    fn push(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }
}

impl<S: SessionStore + Clone> SessionStore for Counting<S> {
    async fn load(
        &self,
        key: &str,
        slide: Option<Duration>,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.push(Call::Load {
            key: key.into(),
            slide,
        });
        self.inner.load(key, slide, limit).await
    }

    async fn save(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        expect: Expect<'_>,
    ) -> Result<SaveOutcome, StoreError> {
        let outcome = self.inner.save(key, value, ttl, expect).await?;
        let expect = match expect {
            Expect::Absent => None,
            Expect::Unchanged(loaded) => Some(Fingerprint::of(loaded)),
        };
        let label = match &outcome {
            SaveOutcome::Saved => "saved",
            SaveOutcome::Conflict(_) => "conflict",
            SaveOutcome::Gone => "gone",
        };
        self.push(Call::Save {
            key: key.into(),
            ttl,
            expect,
            outcome: label,
        });
        Ok(outcome)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.push(Call::Delete { key: key.into() });
        self.inner.delete(key).await
    }

    async fn touch(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        self.push(Call::Touch { key: key.into(), ttl });
        self.inner.touch(key, ttl).await
    }
}

impl<S: SessionIndex + Clone> SessionIndex for Counting<S> {
    async fn index_add(&self, index: &str, member: &str, until: SystemTime) -> Result<(), StoreError> {
        self.push(Call::Index {
            op: "index_add",
            index: index.into(),
        });
        self.inner.index_add(index, member, until).await
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<(), StoreError> {
        self.push(Call::Index {
            op: "index_remove",
            index: index.into(),
        });
        self.inner.index_remove(index, member).await
    }

    async fn index_members(
        &self,
        index: &str,
        now: SystemTime,
    ) -> Result<Vec<(String, SystemTime)>, StoreError> {
        self.push(Call::Index {
            op: "index_members",
            index: index.into(),
        });
        self.inner.index_members(index, now).await
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The `Set-Cookie` headers.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The single `Set-Cookie`, if any.
    pub fn set_cookie(&self) -> Option<String> {
        let all = self.set_cookies();
        assert!(all.len() <= 1, "more than one Set-Cookie: {all:?}");
        all.into_iter().next()
    }

    /// The value of the cookie set by this response (`name=value` → value).
    pub fn cookie_value(&self) -> Option<String> {
        let set = self.set_cookie()?;
        let pair = set.split(';').next().unwrap();
        Some(pair.split_once('=').unwrap().1.to_owned())
    }

    /// `name=value` to send back, from this response's `Set-Cookie`.
    pub fn cookie_pair(&self) -> Option<String> {
        self.set_cookie()
            .map(|set| set.split(';').next().unwrap().to_owned())
    }

    pub fn vary(&self) -> Option<String> {
        self.headers
            .get(header::VARY)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

/// An axum app: a `Router`, or a router wrapped in a layer from outside.
pub trait App:
    tower::Service<
        Request<Body>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future: Send,
    > + Clone
    + Send
{
}

impl<S> App for S where
    S: tower::Service<
            Request<Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send,
        > + Clone
        + Send
{
}

/// Sends `GET path` (with `cookie` as the Cookie header) through `app`.
pub async fn get(app: &impl App, path: &str, cookie: Option<&str>) -> Reply {
    let mut request = Request::builder().uri(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

/// Sends `request` through `app` and reads the whole response.
pub async fn send(app: &impl App, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// What the tracing macros print on this thread, while the guard lives.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Starts collecting, at every level.
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// Starts collecting, at every level, with a line for each span that
    /// closes (its fields as recorded by then).
    pub fn capture_spans() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// What was printed since the last call.
    pub fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.0.lock().unwrap())).into_owned()
    }

    /// Everything printed so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of hex.
pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The Flask-Session 0.8.0 fixtures.
pub fn fixtures() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/flask-session-0.8.0.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[cfg(feature = "redis")]
pub mod attack;
#[cfg(all(feature = "redis", feature = "mysql"))]
pub mod mariadb;
#[cfg(all(feature = "redis", feature = "postgres"))]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "redis")]
pub mod servers;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub mod sql;

pub mod client;
pub mod frameworks;
pub mod values;

pub mod python;

impl<S> Counting<S> {
    /// Keys that a save wrote, so far (without forgetting them).
    pub fn saved_keys(&self) -> Vec<String> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter_map(|c| match c {
                Call::Save {
                    key,
                    outcome: "saved",
                    ..
                } => Some(key.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Runs each named `async fn(framework, store)` scenario once per store
/// and framework: in memory, and (with the `redis` feature) on a real Redis,
/// on Valkey 8.1 (where saves use `SET ... IFEQ`), on a Redis Cluster and on
/// a primary found through Sentinel; each through axum and (with the `actix`
/// feature) through actix-web.
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        $crate::on_every_framework!(memory, ((), server_session::MemoryStore::new()), $($name),*);
        #[cfg(feature = "redis")]
        $crate::on_every_framework!(redis, {
            let server = $crate::common::redis::TestRedis::shared();
            let store = server_session::RedisStore::connect(server.url.as_str()).await.unwrap();
            (server, store)
        }, $($name),*);
        #[cfg(feature = "redis")]
        $crate::on_every_framework!(valkey, {
            let server = $crate::common::servers::TestValkey::start();
            let store = server_session::RedisStore::connect(server.url.as_str()).await.unwrap();
            assert_eq!(store.native_compare_and_set(), Some(true));
            (server, store)
        }, $($name),*);
        #[cfg(feature = "redis")]
        $crate::on_every_framework!(cluster, {
            let cluster = $crate::common::servers::TestCluster::shared();
            let store = server_session::RedisStore::cluster(cluster.urls()).connect().await.unwrap();
            ((), store)
        }, $($name),*);
        #[cfg(feature = "redis")]
        $crate::on_every_framework!(sentinel, {
            let setup = $crate::common::servers::TestSentinel::shared();
            let store = server_session::RedisStore::sentinel(setup.addrs(), setup.master.as_str())
                .connect()
                .await
                .unwrap();
            ((), store)
        }, $($name),*);
    };
}

/// The part of [`on_every_store`] for one store: a module named after it,
/// with one test per scenario and framework. `$make` gives a guard that
/// keeps the server up for the test, and the store.
#[macro_export]
macro_rules! on_every_framework {
    ($store:ident, $make:expr, $($name:ident),*) => {
        mod $store {
            mod axum {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $name() {
                        let (_guard, store) = $make;
                        super::super::$name($crate::common::frameworks::Framework::Axum, store).await
                    }
                )*
            }
            #[cfg(feature = "actix")]
            mod actix {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $name() {
                        let (_guard, store) = $make;
                        super::super::$name($crate::common::frameworks::Framework::Actix, store).await
                    }
                )*
            }
        }
    };
}

/// A memory store or a Redis one, behind one type.
#[derive(Clone)]
pub enum AnyStore {
    Memory(MemoryStore),
    #[cfg(feature = "redis")]
    Redis(server_session::RedisStore),
}

impl SessionStore for AnyStore {
    async fn load(
        &self,
        key: &str,
        slide: Option<Duration>,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            AnyStore::Memory(store) => store.load(key, slide, limit).await,
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => store.load(key, slide, limit).await,
        }
    }

    async fn save(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        expect: Expect<'_>,
    ) -> Result<SaveOutcome, StoreError> {
        match self {
            AnyStore::Memory(store) => store.save(key, value, ttl, expect).await,
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => store.save(key, value, ttl, expect).await,
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(store) => store.delete(key).await,
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => store.delete(key).await,
        }
    }

    async fn touch(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(store) => store.touch(key, ttl).await,
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => store.touch(key, ttl).await,
        }
    }
}

impl SessionIndex for AnyStore {
    async fn index_add(&self, index: &str, member: &str, until: SystemTime) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(store) => store.index_add(index, member, until).await,
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => store.index_add(index, member, until).await,
        }
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(store) => store.index_remove(index, member).await,
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => store.index_remove(index, member).await,
        }
    }

    async fn index_members(
        &self,
        index: &str,
        now: SystemTime,
    ) -> Result<Vec<(String, SystemTime)>, StoreError> {
        match self {
            AnyStore::Memory(store) => store.index_members(index, now).await,
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => store.index_members(index, now).await,
        }
    }
}

impl AnyStore {
    /// A memory store on `clock`, or with `redis`, a store on that Redis.
    pub fn open(redis: Option<&str>, clock: &server_session::ManualClock) -> AnyStore {
        match redis {
            None => AnyStore::Memory(MemoryStore::builder().clock(clock.clone()).build()),
            #[cfg(feature = "redis")]
            Some(url) => AnyStore::Redis(server_session::RedisStore::builder(url).build().unwrap()),
            #[cfg(not(feature = "redis"))]
            Some(_) => unreachable!("Redis scenarios need the redis feature"),
        }
    }

    /// Whether the store holds nothing (memory only).
    pub fn is_empty(&self) -> bool {
        match self {
            AnyStore::Memory(store) => store.is_empty(),
            #[cfg(feature = "redis")]
            AnyStore::Redis(_) => unreachable!("memory-only scenarios ask this"),
        }
    }
}

/// The name a session id has in the store with hashed ids.
pub fn hashed(id: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(id.as_bytes()))
}

/// A table name no other test uses, for tests that share a database.
pub fn unique_table() -> String {
    format!("sessions_{:08x}", rand::random::<u32>())
}
