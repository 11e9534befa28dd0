//! The tower layer, for axum and any other tower-based server.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, header};
use tower::{Layer, Service};

use crate::config::{ConfigError, RedisSettings, SessionConfig, StoreErrorPolicy, StoreType};
use crate::engine::{Engine, Metrics};
use crate::session::{Finish, Session, SessionError};
use crate::store::MemoryStore;
use crate::store::SessionStore;

/// Gives every request a [`Session`] and commits it after the handler.
///
/// ```
/// use axum::{Router, routing::get};
/// use server_session::{MemoryStore, Session, SessionConfig, SessionError, SessionLayer};
///
/// async fn hello(session: Session) -> Result<String, SessionError> {
///     let visits = session.update("visits", |n: Option<u32>| n.unwrap_or(0) + 1).await?;
///     Ok(format!("visit {visits}"))
/// }
///
/// let layer = SessionLayer::new(MemoryStore::new(), SessionConfig::default())?;
/// let app: Router = Router::new().route("/", get(hello)).layer(layer);
/// # Ok::<_, server_session::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct SessionLayer {
    engine: Arc<Engine>,
}

impl SessionLayer {
    /// A layer keeping sessions in `store`; refuses a configuration whose
    /// settings contradict each other, saying why.
    pub fn new(store: impl SessionStore, config: SessionConfig) -> Result<Self, ConfigError> {
        Ok(SessionLayer {
            engine: Arc::new(Engine::new(Arc::new(store), config)?),
        })
    }

    /// A layer with the store `config` names
    /// ([`SessionConfig::store_type`], `SESSION_TYPE`): memory by default, or
    /// Redis (feature `redis`), which connects on first use, so call this
    /// inside a tokio runtime.
    ///
    /// ```
    /// use server_session::{SessionConfig, SessionLayer};
    ///
    /// let layer = SessionLayer::from_config(SessionConfig::from_map([("SESSION_TYPE", "memory")])?)?;
    /// # Ok::<_, server_session::ConfigError>(())
    /// ```
    pub fn from_config(config: SessionConfig) -> Result<Self, ConfigError> {
        match config.store.clone() {
            StoreType::Memory => {
                let store = MemoryStore::builder().clock(config.clock.0.clone()).build();
                Self::new(store, config)
            }
            StoreType::Redis(settings) => Self::new(redis_store(settings)?, config),
        }
    }

    /// What the sessions engine has counted so far.
    pub fn metrics(&self) -> Metrics {
        self.engine.metrics()
    }
}

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("config", self.engine.config())
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            engine: self.engine.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    engine: Arc<Engine>,
}

impl<S> std::fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let session = Session::open(self.engine.clone(), request.headers());
        request.extensions_mut().insert(session.clone());
        let response = self.inner.call(request);
        let policy = self.engine.config().store_error_policy;
        Box::pin(async move {
            let response = response.await?;
            let finish = session.finish().await;
            Ok(respond(finish, response, policy))
        })
    }
}

/// Adds the session's headers to `response`, or replaces it with an error
/// when the session could not be loaded or saved.
fn respond<B: From<String>>(
    finish: Finish,
    mut response: Response<B>,
    policy: StoreErrorPolicy,
) -> Response<B> {
    if let Some(err) = finish.failure.filter(|err| must_fail(err, policy)) {
        let mut failed = Response::new(B::from(err.public_message().to_owned()));
        *failed.status_mut() = err.status();
        let headers = failed.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::VARY, HeaderValue::from_static("Cookie"));
        return failed;
    }
    let headers = response.headers_mut();
    if finish.vary && !varies_on_cookie(headers) {
        headers.append(header::VARY, HeaderValue::from_static("Cookie"));
    }
    if let Some(cookie) = finish.set_cookie {
        headers.append(header::SET_COOKIE, cookie);
        if !headers.contains_key(header::CACHE_CONTROL) {
            // A response that hands out a session cookie must not be stored by
            // a shared cache and replayed to someone else.
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
        }
    }
    response
}

/// Whether `err` fails the request under `policy`. Only an unavailable store
/// can be waved through; an oversized record, an encoding error or endless
/// contention always fails, since the handler's changes were not saved.
pub(crate) fn must_fail(err: &SessionError, policy: StoreErrorPolicy) -> bool {
    match err {
        SessionError::Store(_) => policy == StoreErrorPolicy::ServiceUnavailable,
        _ => true,
    }
}

#[cfg(feature = "redis")]
fn redis_store(settings: RedisSettings) -> Result<crate::store::RedisStore, ConfigError> {
    use crate::store::RedisStore;
    let (key, expected, mut builder) = if !settings.cluster.is_empty() {
        let builder = RedisStore::cluster(&settings.cluster);
        (
            "SESSION_REDIS_CLUSTER",
            "cluster nodes as host:port or redis:// URLs",
            builder,
        )
    } else if !settings.sentinels.is_empty() {
        let master = settings.sentinel_master.clone().unwrap_or_default();
        let builder = RedisStore::sentinel(&settings.sentinels, master);
        (
            "SESSION_REDIS_SENTINEL",
            "Sentinels as host:port or redis:// URLs",
            builder,
        )
    } else {
        let builder = RedisStore::builder(settings.url.as_str());
        ("SESSION_REDIS", "a redis:// or rediss:// URL", builder)
    };
    if let Some(password) = &settings.password {
        builder = builder.password(password.clone());
    }
    if let Some(db) = settings.db {
        builder = builder.db(db);
    }
    builder.build().map_err(|err| ConfigError::InvalidValue {
        key: key.into(),
        value: settings.redacted(),
        expected: format!("{expected} ({err})"),
    })
}

#[cfg(not(feature = "redis"))]
fn redis_store(_: RedisSettings) -> Result<MemoryStore, ConfigError> {
    Err(ConfigError::Invalid(
        "SESSION_TYPE=redis needs server-session's `redis` cargo feature".into(),
    ))
}

fn varies_on_cookie(headers: &http::HeaderMap) -> bool {
    headers.get_all(header::VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|part| {
                let part = part.trim();
                part == "*" || part.eq_ignore_ascii_case("cookie")
            })
        })
    })
}
