//! Runs N read requests through the session layer on the memory store, for
//! instruction-count profiles: `valgrind --tool=callgrind`.
use std::convert::Infallible;

use http::{Request, Response, header};
use server_session::{MemoryStore, Session, SessionConfig, SessionLayer};
use tower::{Layer, ServiceExt, service_fn};

async fn handler(request: Request<String>) -> Result<Response<String>, Infallible> {
    let session = request.extensions().get::<Session>().cloned().unwrap();
    let body = match request.uri().path() {
        "/new" => {
            session.insert("user_id", &42u64).await.unwrap();
            session.insert("counter", &0u64).await.unwrap();
            "ok".to_string()
        }
        "/incr" => session
            .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
            .await
            .unwrap()
            .to_string(),
        _ => session.get::<u64>("user_id").await.unwrap().unwrap().to_string(),
    };
    Ok(Response::new(body))
}

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| "/read".into());
    let n: usize = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let layer = SessionLayer::new(MemoryStore::new(), SessionConfig::default()).unwrap();
    let call = |path: &str, cookie: Option<&str>| {
        let mut request = Request::builder().uri(path).body(String::new()).unwrap();
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert(header::COOKIE, cookie.parse().unwrap());
        }
        runtime
            .block_on(layer.layer(service_fn(handler)).oneshot(request))
            .unwrap()
    };
    let created = call("/new", None);
    let cookie = created.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    for _ in 0..n {
        std::hint::black_box(call(&path, Some(&cookie)));
    }
}
