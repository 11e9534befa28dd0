//! Hostile stored bytes, headers and settings: none of them crashes, stalls or
//! weakens the server. Records are planted as an attacker with write access to
//! the store would plant them: with the store's own `save` on the memory
//! store, with a raw client on a real Redis.

use std::time::Duration;

use crate::common::Reply;
use axum::Router;
use axum::routing::get;
use server_session::store::SessionStore;
use server_session::{MemoryStore, Session, SessionConfig, SessionError, SessionLayer, ValueError};

const HOUR: Duration = Duration::from_secs(3600);

/// A store under test and a way to write raw bytes under its keys.
#[derive(Clone)]
enum Backend {
    Memory(MemoryStore),
    #[cfg(feature = "redis")]
    Redis(server_session::RedisStore, String),
}

impl Backend {
    fn memory() -> Backend {
        Backend::Memory(MemoryStore::new())
    }

    /// The Redis store on the server at `url`: a Redis 7.0, which saves
    /// with the script, or a Valkey 8.1, which saves with `SET ... IFEQ`.
    #[cfg(feature = "redis")]
    async fn redis(url: &str) -> Backend {
        let store = server_session::RedisStore::connect(url).await.unwrap();
        Backend::Redis(store, url.to_owned())
    }

    fn app(&self, config: SessionConfig) -> (Router, SessionLayer) {
        let layer = SessionLayer::new(self.clone(), config).unwrap();
        (routes().layer(layer.clone()), layer)
    }

    /// Writes `bytes` under `key` as they are, bypassing the engine.
    async fn plant(&self, key: &str, bytes: &[u8]) {
        match self {
            Backend::Memory(store) => {
                store.delete(key).await.unwrap();
                let saved = store
                    .save(key, bytes, HOUR, server_session::store::Expect::Absent)
                    .await
                    .unwrap();
                assert_eq!(saved, server_session::store::SaveOutcome::Saved);
            }
            #[cfg(feature = "redis")]
            Backend::Redis(_, url) => {
                let mut raw = redis::Client::open(url.as_str())
                    .unwrap()
                    .get_connection()
                    .unwrap();
                let _: () = redis::cmd("SET")
                    .arg(key)
                    .arg(bytes)
                    .arg("EX")
                    .arg(HOUR.as_secs())
                    .query(&mut raw)
                    .unwrap();
            }
        }
    }

    /// The seconds `key` has left, where the store can tell (Redis).
    #[cfg_attr(not(feature = "redis"), allow(unused_variables))]
    fn ttl(&self, key: &str) -> Option<i64> {
        match self {
            Backend::Memory(_) => None,
            #[cfg(feature = "redis")]
            Backend::Redis(_, url) => {
                let mut raw = redis::Client::open(url.as_str())
                    .unwrap()
                    .get_connection()
                    .unwrap();
                Some(redis::cmd("TTL").arg(key).query(&mut raw).unwrap())
            }
        }
    }

    /// What the store holds under `key`, read without the engine.
    async fn raw(&self, key: &str) -> Option<Vec<u8>> {
        match self {
            Backend::Memory(store) => store.load(key, None, crate::common::LIMIT).await.unwrap(),
            #[cfg(feature = "redis")]
            Backend::Redis(_, url) => {
                let mut raw = redis::Client::open(url.as_str())
                    .unwrap()
                    .get_connection()
                    .unwrap();
                redis::cmd("GET").arg(key).query(&mut raw).unwrap()
            }
        }
    }
}

/// Runs each `async fn(Backend)` on the memory store and on a real Redis.
macro_rules! on_backends {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::memory()).await
                }
            )*
        }
        #[cfg(feature = "redis")]
        mod redis_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let server = crate::common::redis::TestRedis::shared();
                    super::$name(super::Backend::redis(&server.url).await).await
                }
            )*
        }
        #[cfg(feature = "redis")]
        mod valkey {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let server = crate::common::servers::TestValkey::shared();
                    super::$name(super::Backend::redis(&server.url).await).await
                }
            )*
        }
    };
}

/// The store itself, to wrap in a faulty one.
impl SessionStore for Backend {
    async fn load(
        &self,
        key: &str,
        slide: Option<Duration>,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, server_session::store::StoreError> {
        match self {
            Backend::Memory(store) => store.load(key, slide, limit).await,
            #[cfg(feature = "redis")]
            Backend::Redis(store, _) => store.load(key, slide, limit).await,
        }
    }

    async fn save(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        expect: server_session::store::Expect<'_>,
    ) -> Result<server_session::store::SaveOutcome, server_session::store::StoreError> {
        match self {
            Backend::Memory(store) => store.save(key, value, ttl, expect).await,
            #[cfg(feature = "redis")]
            Backend::Redis(store, _) => store.save(key, value, ttl, expect).await,
        }
    }

    async fn delete(&self, key: &str) -> Result<(), server_session::store::StoreError> {
        match self {
            Backend::Memory(store) => store.delete(key).await,
            #[cfg(feature = "redis")]
            Backend::Redis(store, _) => store.delete(key).await,
        }
    }

    async fn touch(&self, key: &str, ttl: Duration) -> Result<(), server_session::store::StoreError> {
        match self {
            Backend::Memory(store) => store.touch(key, ttl).await,
            #[cfg(feature = "redis")]
            Backend::Redis(store, _) => store.touch(key, ttl).await,
        }
    }
}

fn routes() -> Router {
    Router::new()
        .route(
            "/keys",
            get(|s: Session| async move { Ok::<_, SessionError>(s.keys().await?.join(",")) }),
        )
        .route(
            "/json",
            get(|s: Session| async move {
                let mut out = Vec::new();
                for key in s.keys().await? {
                    let value: serde_json::Value = s.get(&key).await?.unwrap();
                    out.push(format!("{key}={value}"));
                }
                Ok::<_, SessionError>(out.join(";"))
            }),
        )
        .route(
            "/write",
            get(|s: Session| async move {
                s.insert("written", &true).await?;
                Ok::<_, SessionError>("ok")
            }),
        )
        .route(
            "/lifetime/{secs}",
            get(
                |s: Session, axum::extract::Path(secs): axum::extract::Path<u64>| async move {
                    match s.set_lifetime(Some(Duration::from_secs(secs))).await {
                        Ok(()) => Ok("set".to_owned()),
                        Err(err @ SessionError::LifetimeTooLong(_)) => Ok(err.to_string()),
                        Err(err) => Err(err),
                    }
                },
            ),
        )
        .route(
            "/big/{key}/{size}",
            get(
                |s: Session, axum::extract::Path((key, size)): axum::extract::Path<(String, usize)>| async move {
                    match s.insert(&key, &"x".repeat(size)).await {
                        Ok(()) => Ok("stored".to_owned()),
                        Err(err @ SessionError::TooLarge { .. }) => Ok(err.to_string()),
                        Err(err) => Err(err),
                    }
                },
            ),
        )
        .route(
            "/cycle",
            get(|s: Session| async move { s.cycle_id().await.map(|_| "cycled") }),
        )
        .route(
            "/deep/{depth}",
            get(
                |s: Session, axum::extract::Path(depth): axum::extract::Path<usize>| async move {
                    let mut value = serde_json::Value::Null;
                    for _ in 0..depth {
                        value = serde_json::Value::Array(vec![value]);
                    }
                    s.insert("deep", &value).await?;
                    Ok::<_, SessionError>("stored")
                },
            ),
        )
}

/// Sends a request from a tokio worker thread (a 2 MiB stack), as a server
/// would run it.
async fn on_worker(app: &Router, path: &str, cookie: Option<String>) -> Reply {
    let (app, path) = (app.clone(), path.to_owned());
    tokio::spawn(async move { crate::common::get(&app, &path, cookie.as_deref()).await })
        .await
        .expect("the request must not bring its task down")
}

/// A fresh, well-formed id's cookie and store key.
fn session() -> (String, String) {
    use base64::Engine as _;
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    (format!("session={id}"), format!("session:{id}"))
}

/// A record `{"deep": v}` where `v` nests `depth` arrays (or maps).
fn nested_record(depth: usize, maps: bool) -> Vec<u8> {
    let mut out = b"\x81\xa4deep".to_vec();
    for _ in 0..depth {
        if maps {
            out.extend_from_slice(b"\x81\xa1k");
        } else {
            out.push(0x91);
        }
    }
    out.push(0xc0);
    out
}

/// Records whose headers claim far more than they hold, or that nest far too
/// deep: each is discarded and the request gets a fresh session.
async fn hostile_records_give_a_fresh_session(backend: Backend) {
    let (app, layer) = backend.app(SessionConfig::default());
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        (
            "a map header claiming 2^32-1 entries",
            b"\xdf\xff\xff\xff\xff".to_vec(),
        ),
        (
            "an array of 2^32-1 values",
            b"\x81\xa1a\xdd\xff\xff\xff\xff".to_vec(),
        ),
        (
            "a map of 2^32-1 entries inside",
            b"\x81\xa1a\xdf\xff\xff\xff\xff".to_vec(),
        ),
        ("a 4 GiB string", b"\x81\xa1a\xdb\xff\xff\xff\xff".to_vec()),
        ("4 GiB of bytes", b"\x81\xa1a\xc6\xff\xff\xff\xff".to_vec()),
        ("a 4 GiB extension", b"\x81\xa1a\xc9\xff\xff\xff\xff\x01".to_vec()),
        ("arrays 1,000 deep", nested_record(1000, false)),
        ("maps 1,000 deep", nested_record(1000, true)),
        ("arrays 100,000 deep", nested_record(100_000, false)),
        ("one level past the limit", nested_record(101, false)),
    ];
    for (what, bytes) in hostile {
        let (cookie, key) = session();
        backend.plant(&key, &bytes).await;
        let reply = on_worker(&app, "/keys", Some(cookie.clone())).await;
        assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, ""), "{what}");
        assert_eq!(backend.raw(&key).await, None, "{what}: the record is deleted");
        let reply = on_worker(&app, "/write", Some(cookie)).await;
        assert_eq!(reply.status, 200, "{what}");
        assert!(
            reply.cookie_value().is_some_and(|v| !key.ends_with(&v)),
            "{what}: a new id"
        );
    }
    assert_eq!(layer.metrics().undecodable, 10);
}

/// The deepest value the limit allows is read, converted to JSON and written
/// back on a worker's stack; one level more is refused on insert.
async fn the_deepest_allowed_value_round_trips(backend: Backend) {
    for format in [server_session::Format::MessagePack, server_session::Format::Json] {
        let (app, _) = backend.app(SessionConfig::default().serialization_format(format));
        let (cookie, key) = session();
        backend.plant(&key, &nested_record(100, false)).await;
        let reply = on_worker(&app, "/json", Some(cookie.clone())).await;
        assert_eq!(reply.status, 200, "{format:?}");
        assert!(reply.body.starts_with("deep=[[[["), "{format:?}: {}", reply.body);
        let reply = on_worker(&app, "/write", Some(cookie.clone())).await;
        assert_eq!(reply.status, 200, "{format:?}: saved in the configured format");
        assert!(backend.raw(&key).await.is_some());
        let reply = on_worker(&app, "/deep/100", Some(cookie.clone())).await;
        assert_eq!(reply.status, 200);
        let reply = on_worker(&app, "/deep/101", Some(cookie.clone())).await;
        assert_eq!(reply.status, 500, "{format:?}: a value past the limit is refused");
        let reply = on_worker(&app, "/json", Some(cookie)).await;
        assert!(reply.body.contains("written=true"), "the session is intact");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_values_refused_on_insert_with_a_typed_error() {
    let session_error = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = session_error.clone();
    let app = Router::new()
        .route(
            "/",
            get(move |s: Session| {
                let seen = seen.clone();
                async move {
                    let mut value = serde_json::Value::Null;
                    for _ in 0..101 {
                        value = serde_json::Value::Array(vec![value]);
                    }
                    let err = s.insert("deep", &value).await.unwrap_err();
                    *seen.lock().unwrap() = Some(err.to_string());
                    matches!(
                        err,
                        SessionError::Encode {
                            source: ValueError::TooDeep,
                            ..
                        }
                    )
                    .to_string()
                }
            }),
        )
        .layer(SessionLayer::new(MemoryStore::new(), SessionConfig::default()).unwrap());
    let reply = on_worker(&app, "/", None).await;
    assert_eq!(reply.body, "true");
    let message = session_error.lock().unwrap().clone().unwrap();
    assert!(message.contains("100 levels"), "{message}");
}

/// A map record of `(key, raw MessagePack value)` pairs.
fn record(pairs: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    rmp::encode::write_map_len(&mut out, pairs.len() as u32).unwrap();
    for (key, value) in pairs {
        rmp::encode::write_str(&mut out, key).unwrap();
        out.extend_from_slice(value);
    }
    out
}

fn uint(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    rmp::encode::write_uint(&mut out, n).unwrap();
    out
}

const MAX_LIFETIME_SECS: u64 = 400 * 24 * 3600;

#[test]
fn lifetimes_past_400_days_are_refused_when_configured() {
    let too_long = [
        SessionConfig::default().lifetime(Duration::MAX),
        SessionConfig::default().lifetime(Duration::from_secs(MAX_LIFETIME_SECS + 1)),
        SessionConfig::default().idle_timeout(Duration::MAX),
        SessionConfig::default().absolute_timeout(Duration::from_secs(u64::MAX)),
    ];
    for config in too_long {
        let err = SessionLayer::new(MemoryStore::new(), config).unwrap_err();
        assert!(err.to_string().contains("maximum of 400 days"), "{err}");
    }
    let err = SessionConfig::from_map([("PERMANENT_SESSION_LIFETIME", "18446744073709551615")]).unwrap_err();
    assert!(
        err.to_string().starts_with("PERMANENT_SESSION_LIFETIME:"),
        "the error names the setting: {err}"
    );
    let longest = SessionConfig::default().lifetime(SessionConfig::MAX_LIFETIME);
    SessionLayer::new(MemoryStore::new(), longest).unwrap();
}

/// `set_lifetime` past the maximum is a typed error, not a panic in the
/// store or a 503 on every later request; a forged lifetime or creation stamp
/// in a stored record is contained.
async fn lifetimes_never_overflow(backend: Backend) {
    let config = SessionConfig::default().absolute_timeout(Duration::from_secs(7 * 24 * 3600));
    let (app, _) = backend.app(config);
    let reply = on_worker(&app, "/write", None).await;
    let cookie = reply.cookie_pair().unwrap();
    let reply = on_worker(&app, &format!("/lifetime/{}", u64::MAX), Some(cookie.clone())).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.body.contains("longer than the maximum of 400 days"),
        "{}",
        reply.body
    );
    let reply = on_worker(
        &app,
        &format!("/lifetime/{MAX_LIFETIME_SECS}"),
        Some(cookie.clone()),
    )
    .await;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, "set"));
    let reply = on_worker(&app, "/keys", Some(cookie.clone())).await;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, "written"));

    let (cookie, key) = session();
    let forged = record(&[
        ("_permanent", b"\xc3"),
        ("_ss_lifetime", &uint(u64::MAX)),
        ("_ss_created", &uint(u64::MAX)),
        ("user", b"\xa1x"),
    ]);
    backend.plant(&key, &forged).await;
    for path in ["/keys", "/write", "/keys"] {
        let reply = on_worker(&app, path, Some(cookie.clone())).await;
        assert_eq!(reply.status, 200, "{path}");
        let expires = reply
            .set_cookie()
            .expect("a permanent session's cookie is refreshed");
        assert!(expires.contains("Expires="), "{expires}");
    }
    let stored = backend.raw(&key).await.unwrap();
    assert!(
        stored.ends_with(b"\xa7written\xc3"),
        "the forged record is usable: {stored:?}"
    );
}

#[tokio::test]
async fn stores_take_any_ttl_without_panicking() {
    let store = MemoryStore::new();
    let max = Duration::MAX;
    let saved = store
        .save("k", b"\x80", max, server_session::store::Expect::Absent)
        .await;
    assert_eq!(saved.unwrap(), server_session::store::SaveOutcome::Saved);
    store.touch("k", max).await.unwrap();
    assert!(
        store
            .load("k", Some(max), crate::common::LIMIT)
            .await
            .unwrap()
            .is_some()
    );
    #[cfg(feature = "redis")]
    {
        let server = crate::common::redis::TestRedis::shared();
        let store = server_session::RedisStore::connect(server.url.as_str())
            .await
            .unwrap();
        let (_, key) = session();
        let saved = store
            .save(&key, b"\x80", max, server_session::store::Expect::Absent)
            .await;
        assert_eq!(saved.unwrap(), server_session::store::SaveOutcome::Saved);
        store.touch(&key, max).await.unwrap();
        assert!(
            store
                .load(&key, Some(max), crate::common::LIMIT)
                .await
                .unwrap()
                .is_some()
        );
        assert!(server.ttl(&key) > 0, "the key still expires");
    }
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_key_of_another_type_is_a_fresh_session() {
    a_key_of_another_type_is_a_fresh_session(&crate::common::redis::TestRedis::shared().url).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valkey_key_of_another_type_is_a_fresh_session() {
    a_key_of_another_type_is_a_fresh_session(&crate::common::servers::TestValkey::shared().url).await;
}

/// A key of another type under a session's name is discarded like an
/// undecodable record: a fresh session, not a 503 until the user logs out.
#[cfg(feature = "redis")]
async fn a_key_of_another_type_is_a_fresh_session(url: &str) {
    let backend = Backend::redis(url).await;
    let (app, layer) = backend.app(SessionConfig::default());
    let mut raw = redis::Client::open(url).unwrap().get_connection().unwrap();
    let kinds: [(&str, &[&str]); 4] = [
        ("hash", &["HSET", "f", "v"]),
        ("list", &["RPUSH", "a", "b"]),
        ("set", &["SADD", "m"]),
        ("sorted set", &["ZADD", "1", "m"]),
    ];
    for (kind, command) in kinds {
        let (cookie, key) = session();
        let _: () = redis::cmd(command[0])
            .arg(&key)
            .arg(&command[1..])
            .query(&mut raw)
            .unwrap();
        let reply = on_worker(&app, "/keys", Some(cookie.clone())).await;
        assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, ""), "{kind}");
        let exists: bool = redis::cmd("EXISTS").arg(&key).query(&mut raw).unwrap();
        assert!(!exists, "{kind}: the key is deleted");
        let reply = on_worker(&app, "/write", Some(cookie)).await;
        assert_eq!(reply.status, 200, "{kind}");
    }
    assert_eq!(layer.metrics().undecodable, 4);
    assert_eq!(layer.metrics().store_errors, 0);

    // Replaced by a hash between the load and the save: the session is gone,
    // and the request's change is dropped rather than failing.
    let store = server_session::RedisStore::connect(url).await.unwrap();
    let (_, key) = session();
    let saved = store
        .save(
            &key,
            b"\x81\xa1a\x01",
            HOUR,
            server_session::store::Expect::Absent,
        )
        .await;
    assert_eq!(saved.unwrap(), server_session::store::SaveOutcome::Saved);
    let _: () = redis::cmd("DEL").arg(&key).query(&mut raw).unwrap();
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("f")
        .arg("v")
        .query(&mut raw)
        .unwrap();
    let expect = server_session::store::Expect::Unchanged(b"\x81\xa1a\x01");
    let outcome = store.save(&key, b"\x81\xa1a\x02", HOUR, expect).await.unwrap();
    assert_eq!(outcome, server_session::store::SaveOutcome::Gone);
    let outcome = store
        .save(&key, b"\x80", HOUR, server_session::store::Expect::Absent)
        .await
        .unwrap();
    assert!(
        matches!(outcome, server_session::store::SaveOutcome::Conflict(_)),
        "a creation never overwrites it"
    );
}

/// A store with a fault: one that claims every key it is asked to create
/// already exists, or one whose deletes fail.
#[derive(Clone)]
struct Faulty<S> {
    inner: S,
    every_key_taken: bool,
    deletes_fail: bool,
}

impl<S> Faulty<S> {
    fn every_key_taken(inner: S) -> Self {
        Faulty {
            inner,
            every_key_taken: true,
            deletes_fail: false,
        }
    }

    fn deletes_fail(inner: S) -> Self {
        Faulty {
            inner,
            every_key_taken: false,
            deletes_fail: true,
        }
    }
}

impl<S: SessionStore + Clone> SessionStore for Faulty<S> {
    async fn load(
        &self,
        key: &str,
        slide: Option<Duration>,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, server_session::store::StoreError> {
        self.inner.load(key, slide, limit).await
    }

    async fn save(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        expect: server_session::store::Expect<'_>,
    ) -> Result<server_session::store::SaveOutcome, server_session::store::StoreError> {
        let outcome = self.inner.save(key, value, ttl, expect).await?;
        if !self.every_key_taken {
            return Ok(outcome);
        }
        // A real store's answer takes a while; let timers run.
        tokio::task::yield_now().await;
        Ok(server_session::store::SaveOutcome::Conflict(
            b"\x81\xa1a\x01".to_vec(),
        ))
    }

    async fn delete(&self, key: &str) -> Result<(), server_session::store::StoreError> {
        if self.deletes_fail {
            return Err(server_session::store::StoreError::Unavailable(
                "delete refused".into(),
            ));
        }
        self.inner.delete(key).await
    }

    async fn touch(&self, key: &str, ttl: Duration) -> Result<(), server_session::store::StoreError> {
        self.inner.touch(key, ttl).await
    }
}

/// A store that keeps answering that a new key exists ends the request with
/// an error after a few draws instead of drawing ids forever.
async fn creating_a_session_gives_up_when_every_id_is_taken(backend: Backend) {
    let store = Faulty::every_key_taken(crate::common::Counting::new(backend));
    let app = routes().layer(SessionLayer::new(store.clone(), SessionConfig::default()).unwrap());
    let reply = tokio::time::timeout(Duration::from_secs(5), crate::common::get(&app, "/write", None))
        .await
        .expect("the request ends instead of drawing ids forever");
    assert_eq!(reply.status, 500);
    assert_eq!(reply.set_cookie(), None);
    let draws = store.inner.take_names();
    assert!(
        (2..=8).contains(&draws.len()),
        "a few draws, then an error: {draws:?}"
    );
}

#[tokio::test]
async fn foreign_bytes_in_other_cookies_do_not_hide_the_session() {
    for config in [
        SessionConfig::default(),
        SessionConfig::default().secret([7u8; 32]),
    ] {
        let (app, _) = Backend::memory().app(config);
        let cookie = crate::common::get(&app, "/write", None)
            .await
            .cookie_pair()
            .unwrap();
        for other in [
            &b"x=\xc3\xa9"[..],
            b"x=\xff\xfe",
            b"\xe2\x98\x83=1",
            b"x=\"\x80\"",
        ] {
            let mut header = other.to_vec();
            header.extend_from_slice(b"; ");
            header.extend_from_slice(cookie.as_bytes());
            let request = http::Request::builder()
                .uri("/keys")
                .header(
                    http::header::COOKIE,
                    http::HeaderValue::from_bytes(&header).unwrap(),
                )
                .body(axum::body::Body::empty())
                .unwrap();
            let reply = crate::common::send(&app, request).await;
            assert_eq!(reply.body, "written", "{:?}", String::from_utf8_lossy(&header));
        }
    }
}

#[tokio::test]
async fn only_the_first_few_session_cookies_are_checked() {
    let signed = SessionConfig::default().secret([7u8; 32]);
    let (app, _) = Backend::memory().app(signed);
    let cookie = crate::common::get(&app, "/write", None)
        .await
        .cookie_pair()
        .unwrap();
    let forged = |n: usize| {
        let (name, value) = cookie.split_once('=').unwrap();
        let last = if value.ends_with('A') { 'B' } else { 'A' };
        let bad = format!("{name}={}{last}", &value[..value.len() - 1]);
        vec![bad; n].join("; ")
    };
    let reply = crate::common::get(&app, "/keys", Some(&format!("{}; {cookie}", forged(3)))).await;
    assert_eq!(reply.body, "written", "found after three forged candidates");
    let reply = crate::common::get(&app, "/keys", Some(&format!("{}; {cookie}", forged(4500)))).await;
    assert_eq!(reply.body, "", "not looked for after thousands of forged ones");
}

/// One size limit for every store, applied by the engine: a value or a
/// record over it is refused and nothing is stored.
async fn records_over_the_size_limit_are_refused(backend: Backend) {
    let (app, _) = backend.app(SessionConfig::default());
    let reply = on_worker(&app, "/big/a/300000", None).await;
    assert_eq!(
        reply.body,
        "the session would take 300005 bytes in the store, more than the limit of 262144"
    );
    assert_eq!(reply.set_cookie(), None, "nothing stored");
    let reply = on_worker(&app, "/big/a/20000000", None).await;
    assert!(reply.body.contains("more than the limit"), "{}", reply.body);

    let (app, _) = backend.app(SessionConfig::default().max_record_size(1024));
    let reply = on_worker(&app, "/big/a/600", None).await;
    assert_eq!(reply.body, "stored");
    let cookie = reply.cookie_pair().unwrap();
    let key = format!("session:{}", cookie.split_once('=').unwrap().1);
    let before = backend.raw(&key).await.unwrap();
    let reply = on_worker(&app, "/big/b/600", Some(cookie.clone())).await;
    assert_eq!(reply.status, 500, "each value fits, the record does not");
    assert_eq!(reply.body, "session error\n");
    assert_eq!(
        backend.raw(&key).await,
        Some(before),
        "the stored record is untouched"
    );
    let reply = on_worker(&app, "/keys", Some(cookie)).await;
    assert_eq!(reply.body, "a");
}

/// No `Debug`, `Display` or error text shows a password or a secret key.
#[cfg(feature = "redis")]
#[tokio::test]
async fn no_debug_or_error_text_shows_a_password() {
    use server_session::{RedisSettings, RedisStore, StoreType};
    let secret = "Zq7@x9/w0rd";
    let encoded = "Zq7%40x9%2Fw0rd";
    let builder = RedisStore::builder(format!("redis://alice:{encoded}@cache.internal:6380/2").as_str())
        .password(secret);
    let debug = format!("{builder:?}");
    assert!(debug.contains("cache.internal:6380"), "{debug}");
    assert!(!debug.contains("Zq7") && !debug.contains("w0rd"), "{debug}");

    let urls = [
        format!("redis://alice:{secret}@cache.internal:6380/2"),
        format!("redis://:{secret}@cache.internal:notaport"),
        format!("rediss://:{secret}@"),
        format!("ftp://:{secret}@host"),
    ];
    for url in urls {
        let mut settings = RedisSettings::default();
        settings.url = url.clone();
        settings.password = Some(secret.into());
        let config = SessionConfig::default()
            .secret(secret)
            .fallback_secrets([secret])
            .store_type(StoreType::Redis(settings));
        for text in texts_of(config) {
            assert!(!text.contains("Zq7") && !text.contains("w0rd"), "{url}: {text}");
        }
    }
}

/// What a configuration shows: its `Debug` output, and the layer's, or the
/// error that refused it.
fn texts_of(config: SessionConfig) -> [String; 2] {
    [
        format!("{config:?}"),
        match SessionLayer::from_config(config) {
            Ok(layer) => format!("{layer:?}"),
            Err(err) => format!("{err} / {err:?}"),
        },
    ]
}

/// A password in a database URL's query string shows in no `Debug` output
/// and no error, whether the URL works or not.
#[cfg(all(feature = "postgres", feature = "mysql"))]
#[tokio::test]
async fn no_debug_or_error_text_shows_a_password_in_a_query_string() {
    use server_session::{SqlSettings, StoreType};
    let urls = [
        "postgresql://app@db.internal/app?password=Zq7x9w0rd&sslmode=require",
        "postgresql://app@db.internal:notaport/app?password=Zq7x9w0rd",
        "postgresql://app@db.internal/app?sslmode=nonsense&sslpassword=Zq7x9w0rd",
        "mysql://app@db.internal/app?password=Zq7x9w0rd",
        "mysql://app@db.internal:notaport/app?ssl-mode=required&password=Zq7x9w0rd",
    ];
    for url in urls {
        let mut settings = SqlSettings::default();
        settings.url = url.into();
        let config = SessionConfig::default().store_type(StoreType::Sql(settings));
        for text in texts_of(config) {
            assert!(!text.contains("Zq7x9w0rd"), "{url}: {text}");
        }
    }
}

#[test]
fn ids_shorter_than_128_bits_are_refused_and_short_secrets_warned_about() {
    for bytes in [8, 15] {
        let err =
            SessionLayer::new(MemoryStore::new(), SessionConfig::default().id_length(bytes)).unwrap_err();
        assert!(err.to_string().contains("SESSION_ID_LENGTH"), "{err}");
    }
    let err = SessionConfig::from_map([("SESSION_ID_LENGTH", "8")]).unwrap_err();
    assert!(err.to_string().starts_with("SESSION_ID_LENGTH:"), "{err}");
    SessionLayer::new(MemoryStore::new(), SessionConfig::default().id_length(16)).unwrap();

    let (logs, _guard) = crate::common::Logs::capture();
    SessionLayer::new(MemoryStore::new(), SessionConfig::default().secret("dev-secret")).unwrap();
    let text = logs.text();
    assert_eq!(text.matches("shorter than 32 bytes").count(), 1, "{text}");
    assert!(text.contains("WARN") && !text.contains("dev-secret"), "{text}");
    SessionLayer::new(MemoryStore::new(), SessionConfig::default().secret([1u8; 32])).unwrap();
    assert_eq!(logs.text(), text, "no warning for a 32-byte secret");
}

/// Cycling an id whose old key cannot be deleted still succeeds: the data
/// moved, and the old key's marker ends the old id by itself, for seconds,
/// however often the old cookie comes back.
async fn cycle_id_survives_a_failed_delete(backend: Backend) {
    let app = routes()
        .layer(SessionLayer::new(Faulty::deletes_fail(backend.clone()), SessionConfig::default()).unwrap());
    let old = crate::common::get(&app, "/write", None)
        .await
        .cookie_pair()
        .unwrap();
    let reply = crate::common::get(&app, "/cycle", Some(&old)).await;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, "cycled"));
    let new = reply.cookie_pair().unwrap();
    assert_ne!(new, old);
    assert_eq!(
        crate::common::get(&app, "/keys", Some(&new)).await.body,
        "written"
    );
    for _ in 0..3 {
        assert_eq!(
            crate::common::get(&app, "/keys", Some(&old)).await.body,
            "",
            "the old id is over"
        );
    }
    let old_key = format!("session:{}", old.split_once('=').unwrap().1);
    assert_eq!(backend.raw(&old_key).await.as_deref(), Some(&b"\x80"[..]));
    if let Some(ttl) = backend.ttl(&old_key) {
        assert!((1..=5).contains(&ttl), "the marker expires in seconds, not {ttl}");
    }
}

/// A record that holds values JSON cannot express (stored by another
/// writer) stays writable under the JSON format: it is kept as MessagePack,
/// which Flask reads too, instead of failing every write.
async fn records_json_cannot_hold_stay_writable(backend: Backend) {
    let config = SessionConfig::default().serialization_format(server_session::Format::Json);
    let (app, _) = backend.app(config);
    let (cookie, key) = session();
    let nan = f64::NAN.to_be_bytes();
    let mut nan_value = vec![0xcb];
    nan_value.extend_from_slice(&nan);
    let foreign = record(&[
        ("ext", b"\xd4\x05\x01"),
        ("nan", &nan_value),
        ("list_key", b"\x81\x91\x01\x02"),
    ]);
    backend.plant(&key, &foreign).await;
    let reply = on_worker(&app, "/write", Some(cookie.clone())).await;
    assert_eq!(reply.status, 200);
    let stored = backend.raw(&key).await.unwrap();
    assert_eq!(stored[0], 0x84, "a MessagePack map of four keys: {stored:?}");
    assert_eq!(
        stored[1..foreign.len()],
        foreign[1..],
        "the foreign values are kept as they were"
    );
    let reply = on_worker(&app, "/keys", Some(cookie)).await;
    assert_eq!(reply.body, "ext,nan,list_key,written");
}

/// A record planted over the size limit, a valid session but for its size,
/// is not read: it is discarded like an undecodable one, and the request
/// gets a fresh session.
async fn planted_records_over_the_size_limit_are_discarded(backend: Backend) {
    let (app, layer) = backend.app(SessionConfig::default().max_record_size(1024));
    let (cookie, key) = session();
    backend
        .plant(&key, &crate::common::attack::huge_record(5000))
        .await;
    let reply = on_worker(&app, "/keys", Some(cookie.clone())).await;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, ""));
    assert_eq!(backend.raw(&key).await, None, "the record is deleted");
    assert_eq!(layer.metrics().undecodable, 1);
    assert_eq!(layer.metrics().store_errors, 0, "not a store failure");
    let (cookie, key) = session();
    let fits = crate::common::attack::huge_record(1000);
    backend.plant(&key, &fits).await;
    let reply = on_worker(&app, "/keys", Some(cookie)).await;
    assert_eq!(reply.body, "blob,n", "a record within the limit is read");
}

/// A 100 MiB record planted under a session key, requested by ten
/// attackers at once, does not hold up another user's requests on the
/// shared connection: their answers all succeed (how much slower they are
/// is printed), Redis sends out a few times the size limit at most, and
/// the record is gone.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_planted_record_stalls_no_one_on_redis() {
    let server = crate::common::redis::TestRedis::start();
    a_huge_planted_record_stalls_no_one("redis", &server.url).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_planted_record_stalls_no_one_on_valkey() {
    let server = crate::common::servers::TestValkey::start();
    a_huge_planted_record_stalls_no_one("valkey", &server.url).await;
}

#[cfg(feature = "redis")]
async fn a_huge_planted_record_stalls_no_one(name: &str, url: &str) {
    let store = server_session::RedisStore::connect(url).await.unwrap();
    let app =
        crate::common::redis::routes().layer(SessionLayer::new(store, SessionConfig::default()).unwrap());
    let (cookie, key) = session();
    let mut raw = redis::Client::open(url).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(crate::common::attack::huge_record(crate::common::attack::HUGE))
        .arg("EX")
        .arg(3600)
        .query(&mut raw)
        .unwrap();
    let sent = |raw: &mut redis::Connection| -> u64 {
        let info: String = redis::cmd("INFO").arg("stats").query(raw).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("total_net_output_bytes:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap()
    };
    let before = sent(&mut raw);
    let (quiet, attacked, statuses) =
        crate::common::attack::measure(app, cookie, 10, Duration::from_secs(2)).await;
    let out = sent(&mut raw) - before;
    println!("{name}: quiet {quiet:?}, attacked {attacked:?}, {out} bytes sent");
    assert_eq!((quiet.failed, attacked.failed), (0, 0), "{attacked:?}");
    assert!(
        out < 16 << 20,
        "{out} bytes sent: the record crossed the connection"
    );
    assert!(
        statuses.iter().all(|s| *s == 200),
        "the attackers get fresh sessions"
    );
    let exists: bool = redis::cmd("EXISTS").arg(&key).query(&mut raw).unwrap();
    assert!(!exists, "the record is deleted");
}

on_backends!(
    planted_records_over_the_size_limit_are_discarded,
    hostile_records_give_a_fresh_session,
    the_deepest_allowed_value_round_trips,
    lifetimes_never_overflow,
    records_over_the_size_limit_are_refused,
    records_json_cannot_hold_stay_writable,
    creating_a_session_gives_up_when_every_id_is_taken,
    cycle_id_survives_a_failed_delete,
);
