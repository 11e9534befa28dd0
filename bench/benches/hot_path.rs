//! The I/O-free hot path of server-session: what the layer itself costs per
//! request, on the in-memory store, with no HTTP server and no network.
//!
//! Each case is one request through `SessionLayer` around a handler that
//! does the named thing: `untouched` (the request carries a session cookie
//! but the handler never uses the session), `read` (load, decode, read one key, refresh the
//! cookie), `incr` (load, decode, `update`, encode, conditional save, cookie),
//! `new` (create a session with two keys), and `signed_untouched` and
//! `signed_read` (the same with the signer on: an HMAC check per request that
//! uses the session).

use std::convert::Infallible;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderValue, Request, Response, header};
use server_session::{MemoryStore, Session, SessionConfig, SessionLayer};
use tower::{Layer, ServiceExt, service_fn};

type Body = String;

async fn handler(request: Request<Body>) -> Result<Response<Body>, Infallible> {
    let session = request
        .extensions()
        .get::<Session>()
        .cloned()
        .expect("the layer adds it");
    let body = match request.uri().path() {
        "/read" => session.get::<u64>("user_id").await.unwrap().unwrap().to_string(),
        "/incr" => session
            .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
            .await
            .unwrap()
            .to_string(),
        "/new" => {
            session.insert("user_id", &42u64).await.unwrap();
            session.insert("counter", &0u64).await.unwrap();
            "ok".into()
        }
        _ => "ok".into(),
    };
    Ok(Response::new(body))
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    layer: SessionLayer,
    cookie: HeaderValue,
}

impl Fixture {
    fn new(config: SessionConfig) -> Fixture {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let layer = SessionLayer::new(MemoryStore::new(), config).unwrap();
        let mut fixture = Fixture {
            runtime,
            layer,
            cookie: HeaderValue::from_static(""),
        };
        let response = fixture.call("/new", None);
        let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
        fixture.cookie = HeaderValue::from_str(set.split(';').next().unwrap()).unwrap();
        fixture
    }

    fn call(&self, path: &str, cookie: Option<&HeaderValue>) -> Response<Body> {
        let mut request = Request::builder().uri(path).body(Body::new()).unwrap();
        if let Some(cookie) = cookie {
            request.headers_mut().insert(header::COOKIE, cookie.clone());
        }
        let service = self.layer.layer(service_fn(handler));
        self.runtime
            .block_on(async move { service.oneshot(request).await.unwrap() })
    }
}

fn hot_path(c: &mut Criterion) {
    let plain = Fixture::new(SessionConfig::default());
    let signed = Fixture::new(SessionConfig::default().secret("a benchmark secret"));
    let mut group = c.benchmark_group("request");
    group.bench_function("untouched", |b| {
        b.iter(|| plain.call("/plain", Some(&plain.cookie)))
    });
    group.bench_function("read", |b| b.iter(|| plain.call("/read", Some(&plain.cookie))));
    group.bench_function("incr", |b| b.iter(|| plain.call("/incr", Some(&plain.cookie))));
    group.bench_function("new", |b| b.iter(|| plain.call("/new", None)));
    group.bench_function("signed_untouched", |b| {
        b.iter(|| signed.call("/plain", Some(&signed.cookie)))
    });
    group.bench_function("signed_read", |b| {
        b.iter(|| signed.call("/read", Some(&signed.cookie)))
    });
    group.bench_function("no_layer", |b| {
        b.iter(|| {
            let request = Request::builder().uri("/plain").body(Body::new()).unwrap();
            plain
                .runtime
                .block_on(service_fn(handler_without_session).oneshot(request))
                .unwrap()
        })
    });
    group.finish();
}

/// The same request with no session layer: the baseline the cases add to.
async fn handler_without_session(_: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new("ok".into()))
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
