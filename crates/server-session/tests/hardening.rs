//! Hostile stored bytes, headers and settings: none of them crashes, stalls or
//! weakens the server. Records are planted as an attacker with write access to
//! the store would plant them: with the store's own `save` on the memory
//! store, with a raw client on a real Redis.

mod common;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::Reply;
use server_session::{MemoryStore, Session, SessionConfig, SessionError, SessionLayer, SessionStore};

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

    #[cfg(feature = "redis")]
    async fn redis(server: &common::redis::TestRedis) -> Backend {
        let store = server_session::RedisStore::connect(server.url.as_str())
            .await
            .unwrap();
        Backend::Redis(store, server.url.clone())
    }

    fn app(&self, config: SessionConfig) -> (Router, SessionLayer) {
        let layer = match self {
            Backend::Memory(store) => SessionLayer::new(store.clone(), config),
            #[cfg(feature = "redis")]
            Backend::Redis(store, _) => SessionLayer::new(store.clone(), config),
        }
        .unwrap();
        (routes().layer(layer.clone()), layer)
    }

    /// Writes `bytes` under `key` as they are, bypassing the engine.
    async fn plant(&self, key: &str, bytes: &[u8]) {
        match self {
            Backend::Memory(store) => {
                store.delete(key).await.unwrap();
                let saved = store
                    .save(key, bytes, HOUR, server_session::Expect::Absent)
                    .await
                    .unwrap();
                assert_eq!(saved, server_session::SaveOutcome::Saved);
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

    /// What the store holds under `key`, read without the engine.
    async fn raw(&self, key: &str) -> Option<Vec<u8>> {
        match self {
            Backend::Memory(store) => store.load(key, None).await.unwrap(),
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
                    super::$name(super::Backend::redis(&server).await).await
                }
            )*
        }
    };
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
    tokio::spawn(async move { common::get(&app, &path, cookie.as_deref()).await })
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
                    matches!(err, SessionError::Encode { .. }).to_string()
                }
            }),
        )
        .layer(SessionLayer::new(MemoryStore::new(), SessionConfig::default()).unwrap());
    let reply = on_worker(&app, "/", None).await;
    assert_eq!(reply.body, "true");
    let message = session_error.lock().unwrap().clone().unwrap();
    assert!(message.contains("deeper than 100"), "{message}");
}

on_backends!(
    hostile_records_give_a_fresh_session,
    the_deepest_allowed_value_round_trips,
);
