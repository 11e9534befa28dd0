//! Whatever a client sends as cookies, the session layer answers without
//! panicking: a valid session, or a fresh one.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderValue, Request, header};
use proptest::prelude::*;
use server_session::{MemoryStore, Session, SessionConfig, SessionError, SessionLayer};

fn app(config: SessionConfig) -> Router {
    Router::new()
        .route(
            "/",
            get(|s: Session| async move {
                let n = s
                    .update("n", |n: Option<i64>| n.unwrap_or(0).wrapping_add(1))
                    .await?;
                Ok::<_, SessionError>(n.to_string())
            }),
        )
        .layer(SessionLayer::new(MemoryStore::new(), config).unwrap())
}

/// Cookie headers: raw bytes, and near-misses of real session cookies.
fn cookie_header() -> impl Strategy<Value = Vec<u8>> {
    let raw = proptest::collection::vec(any::<u8>(), 0..300);
    let near_miss = (
        "[A-Za-z0-9_+/=.\\-]{0,90}",
        "[ ;=,\"a-z]{0,4}",
        "(session|Session|sess)",
    )
        .prop_map(|(value, junk, name)| format!("{name}={value}{junk}; session={value}").into_bytes());
    prop_oneof![raw, near_miss]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_cookie_headers_never_panic(cookies in proptest::collection::vec(cookie_header(), 0..3), signed in any::<bool>()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let config = if signed { SessionConfig::default().secret("k") } else { SessionConfig::default() };
        let app = app(config);
        let mut request = Request::builder().uri("/");
        for cookie in &cookies {
            if let Ok(value) = HeaderValue::from_bytes(cookie) {
                request = request.header(header::COOKIE, value);
            }
        }
        let reply = runtime.block_on(crate::common::send(&app, request.body(Body::empty()).unwrap()));
        // Nothing valid was presented, so this is a fresh session.
        prop_assert_eq!(reply.status, 200);
        prop_assert_eq!(reply.body.as_str(), "1");
        prop_assert!(reply.set_cookie().is_some());
    }
}
