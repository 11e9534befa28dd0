//! The `metrics` feature, scraped as Prometheus would: every counter equals
//! the layer's own `Metrics`, every store call is timed under its
//! operation, store errors carry their kind, and no label (nor anything
//! else in the scrape) holds a session id.
//!
//! One test, because a process has one global recorder: everything it
//! counts comes from the one layer it builds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::Reply;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use http::StatusCode;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use server_session::store::{Expect, SaveOutcome, SessionStore, StoreError};
use server_session::{MemoryStore, Metrics, Session, SessionConfig, SessionError, SessionLayer};
use tokio::sync::Notify;

/// The store calls the test counts, in the `op` label's words.
const OPS: [&str; 4] = ["load", "save", "delete", "touch"];

/// Makes the error a failing store answers with.
type Failure = fn() -> StoreError;

/// The memory store, counting its calls by operation, and failing every
/// call with a chosen error while one is set.
#[derive(Default)]
struct FlakyStore {
    inner: MemoryStore,
    calls: [AtomicU64; OPS.len()],
    failure: Mutex<Option<Failure>>,
}

impl FlakyStore {
    fn call(&self, op: usize) -> Result<(), StoreError> {
        self.calls[op].fetch_add(1, Ordering::Relaxed);
        match *self.failure.lock().unwrap() {
            Some(failure) => Err(failure()),
            None => Ok(()),
        }
    }

    fn fail_with(&self, failure: Option<Failure>) {
        *self.failure.lock().unwrap() = failure;
    }

    fn calls(&self, op: &str) -> u64 {
        let i = OPS.iter().position(|o| *o == op).unwrap();
        self.calls[i].load(Ordering::Relaxed)
    }
}

impl SessionStore for FlakyStore {
    async fn load(
        &self,
        key: &str,
        slide: Option<Duration>,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.call(0)?;
        self.inner.load(key, slide, limit).await
    }

    async fn save(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        expect: Expect<'_>,
    ) -> Result<SaveOutcome, StoreError> {
        self.call(1)?;
        self.inner.save(key, value, ttl, expect).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.call(2)?;
        self.inner.delete(key).await
    }

    async fn touch(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        self.call(3)?;
        self.inner.touch(key, ttl).await
    }
}

/// What the handlers share: the gates of `/held`.
#[derive(Clone, Default)]
struct Gates {
    loaded: Arc<Notify>,
    release: Arc<Notify>,
}

async fn incr(session: Session) -> Result<String, SessionError> {
    let n = session
        .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    // Let the other requests load the same record before this one commits.
    tokio::task::yield_now().await;
    Ok(n.to_string())
}

async fn counter(session: Session) -> Result<String, SessionError> {
    Ok(session.get::<u64>("counter").await?.unwrap_or(0).to_string())
}

/// An increment that waits, loaded, until released: its commit comes after
/// whatever ran meanwhile.
async fn held(State(gates): State<Gates>, session: Session) -> Result<String, SessionError> {
    session
        .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    gates.loaded.notify_one();
    gates.release.notified().await;
    Ok("held".into())
}

async fn logout(session: Session) -> Result<&'static str, SessionError> {
    session.destroy().await?;
    Ok("logged out")
}

fn app(layer: SessionLayer, prometheus: PrometheusHandle, gates: Gates) -> Router {
    Router::new()
        .route("/incr", get(incr))
        .route("/counter", get(counter))
        .route("/held", get(held))
        .route("/logout", get(logout))
        .with_state(gates)
        .layer(layer)
        .route("/metrics", get(move || std::future::ready(prometheus.render())))
}

/// Sends `GET path` with the session `cookie`.
async fn send(app: &Router, path: &str, cookie: Option<&str>) -> Reply {
    let cookie = cookie.map(|id| format!("session={id}"));
    crate::common::get(app, path, cookie.as_deref()).await
}

/// The session cookie's value a reply set, unless it removed it.
fn session_cookie(reply: &Reply) -> Option<String> {
    reply.cookie_value().filter(|v| !v.is_empty())
}

/// The samples of a Prometheus text exposition: series (name and labels)
/// to value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// The sum of `name`'s series whose labels include `label` (all with "").
fn total(samples: &BTreeMap<String, f64>, name: &str, label: &str) -> u64 {
    samples
        .iter()
        .filter(|(series, _)| {
            let (metric, labels) = series.split_once('{').unwrap_or((series, ""));
            metric == name && labels.contains(label)
        })
        .map(|(_, value)| *value as u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrape_counts_what_the_layer_counts() {
    // Before the layer's first request: its handles are taken then.
    let prometheus = PrometheusBuilder::new().install_recorder().unwrap();
    let store = Arc::new(FlakyStore::default());
    let layer = SessionLayer::new(store.clone(), SessionConfig::default()).unwrap();
    let gates = Gates::default();
    let app = app(layer.clone(), prometheus, gates.clone());
    let mut ids = BTreeSet::new();

    // Concurrent increments of one session, until some collide.
    let first = send(&app, "/incr", None).await;
    assert_eq!(first.status, StatusCode::OK);
    let cookie = session_cookie(&first).unwrap();
    ids.insert(cookie.clone());
    let mut expected = 1;
    for _ in 0..20 {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (app, cookie) = (app.clone(), cookie.clone());
            tasks.spawn(async move { send(&app, "/incr", Some(&cookie)).await });
        }
        for reply in tasks.join_all().await {
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        }
        expected += 50;
        if layer.metrics().conflicts > 0 {
            break;
        }
    }
    assert!(layer.metrics().conflicts > 0, "the increments collided");
    let reply = send(&app, "/counter", Some(&cookie)).await;
    assert_eq!(reply.body, expected.to_string(), "no increment was lost");

    // A session ended while a request held it: that request's change is
    // dropped.
    let held = {
        let (app, cookie) = (app.clone(), cookie.clone());
        tokio::spawn(async move { send(&app, "/held", Some(&cookie)).await })
    };
    gates.loaded.notified().await;
    assert_eq!(send(&app, "/logout", Some(&cookie)).await.status, StatusCode::OK);
    gates.release.notify_one();
    assert_eq!(held.await.unwrap().status, StatusCode::OK);
    assert_eq!(layer.metrics().gone, 1);

    // A record nobody can decode: discarded, and a new session made.
    let reply = send(&app, "/incr", None).await;
    let cookie = session_cookie(&reply).unwrap();
    ids.insert(cookie.clone());
    let key = format!("session:{cookie}");
    store.inner.delete(&key).await.unwrap();
    let ttl = Duration::from_secs(60);
    let garbage = store.inner.save(&key, b"\xc1 not a record", ttl, Expect::Absent);
    assert_eq!(garbage.await.unwrap(), SaveOutcome::Saved);
    let reply = send(&app, "/incr", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::OK);
    ids.extend(session_cookie(&reply));
    assert_eq!(layer.metrics().undecodable, 1);

    // Store failures of every kind: the request answers 503 (a record
    // over the limit or of the wrong type is discarded, and the delete
    // then fails).
    let failures: [(&str, Failure); 6] = [
        ("unavailable", || {
            StoreError::Unavailable("connection refused".into())
        }),
        ("timeout", || StoreError::Timeout(Duration::from_secs(1))),
        ("not_replicated", || StoreError::NotReplicated {
            acknowledged: 0,
            required: 1,
        }),
        ("backend", || StoreError::Backend("ERR".into())),
        ("too_large", || StoreError::TooLarge { limit: 1 }),
        ("wrong_type", || StoreError::WrongType),
    ];
    for (_, failure) in &failures {
        store.fail_with(Some(*failure));
        let reply = send(&app, "/incr", Some(&cookie)).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.body);
        store.fail_with(None);
    }

    let metrics = layer.metrics();
    let reply = send(&app, "/metrics", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = reply.body;
    let samples = samples(&text);
    let counter = |name: &str| total(&samples, name, "");
    let scraped = {
        let mut m = Metrics::default();
        m.loads = counter("server_session_loads_total");
        m.creates = counter("server_session_creates_total");
        m.saves = counter("server_session_saves_total");
        m.deletes = counter("server_session_deletes_total");
        m.conflicts = counter("server_session_conflicts_total");
        m.gone = counter("server_session_gone_total");
        m.undecodable = counter("server_session_undecodable_total");
        m.store_errors = counter("server_session_store_errors_total");
        m
    };
    assert_eq!(scraped, metrics, "{text}");
    // Every event of the test was counted (the undecodable record once by
    // its load, once more each as a store that answers with the wrong type
    // or with a record over the limit).
    assert!(metrics.loads > 50 && metrics.saves >= 50, "{metrics:?}");
    assert!(metrics.creates >= 3 && metrics.deletes >= 2, "{metrics:?}");
    assert_eq!(metrics.undecodable, 3, "{metrics:?}");
    for (kind, _) in &failures {
        let label = format!("kind=\"{kind}\"");
        assert!(
            total(&samples, "server_session_store_errors_total", &label) > 0,
            "{kind} counted: {text}"
        );
    }

    // Every store call timed, under its operation.
    for op in OPS {
        let label = format!("op=\"{op}\"");
        let timed = total(
            &samples,
            "server_session_store_call_duration_seconds_count",
            &label,
        );
        assert_eq!(timed, store.calls(op), "{op}: {text}");
    }
    assert!(store.calls("load") > 0 && store.calls("save") > 0);
    let sized = total(&samples, "server_session_record_size_bytes_count", "");
    assert_eq!(sized, metrics.creates + metrics.saves);

    // Nothing in the scrape names a session.
    for id in &ids {
        assert!(!text.contains(id.as_str()), "{id} in {text}");
    }
    let labels: BTreeSet<&str> = samples
        .keys()
        .filter_map(|series| series.split_once('{'))
        .flat_map(|(_, labels)| labels.trim_end_matches('}').split(','))
        .filter_map(|label| label.split_once('='))
        .map(|(name, _)| name)
        .collect();
    let allowed = BTreeSet::from(["kind", "op", "quantile"]);
    assert!(labels.is_subset(&allowed), "{labels:?}");
}
