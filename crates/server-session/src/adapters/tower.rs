//! The tower layer, for axum and any other tower-based server.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response, header};
use tower::{Layer, Service};

use crate::config::{ConfigError, SessionConfig};
use crate::engine::{Client, Finish, Metrics, Pending, Plan};
use crate::error::ErrorResponse;
use crate::sessions::{Sessions, Users};
use crate::store::SessionStore;

/// Gives every request a [`Session`](crate::Session) and commits it after the handler.
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
///
/// `Router::layer` puts the layer on each route, and axum then clones and
/// boxes the layered route's service once more for every request. The layer
/// can go around the whole router instead: it then runs once, before
/// routing, sessions behave the same, and that per-request clone is spared:
/// in the benchmark, about 5% of the instructions of a request that never
/// touches the session, 1 to 2% of one that does. axum serves the wrapped
/// router through its `ServiceExt::into_make_service`:
///
/// ```no_run
/// use axum::{Router, ServiceExt, extract::Request, routing::get};
/// use server_session::{MemoryStore, SessionConfig, SessionLayer};
/// use tower::Layer;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = SessionLayer::new(MemoryStore::new(), SessionConfig::default())?;
/// let app = layer.layer(Router::new().route("/", get(|| async { "hello" })));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, ServiceExt::<Request>::into_make_service(app)).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SessionLayer {
    sessions: Sessions,
}

impl SessionLayer {
    /// A layer keeping sessions in `store`, as [`Sessions::new`].
    pub fn new(store: impl SessionStore, config: SessionConfig) -> Result<Self, ConfigError> {
        Sessions::new(store, config).map(SessionLayer::from)
    }

    /// A layer on the store `config` names, as [`Sessions::from_config`].
    ///
    /// ```
    /// use server_session::{SessionConfig, SessionLayer};
    ///
    /// let layer = SessionLayer::from_config(SessionConfig::from_map([("SESSION_TYPE", "memory")])?)?;
    /// # Ok::<_, server_session::ConfigError>(())
    /// ```
    pub fn from_config(config: SessionConfig) -> Result<Self, ConfigError> {
        Sessions::from_config(config).map(SessionLayer::from)
    }

    /// The sessions this layer serves.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// What the sessions engine has counted so far.
    pub fn metrics(&self) -> Metrics {
        self.sessions.metrics()
    }

    /// Any user's sessions, to list or revoke them outside a request; see
    /// [`Users`].
    pub fn users(&self) -> Users {
        self.sessions.users()
    }
}

impl From<Sessions> for SessionLayer {
    fn from(sessions: Sessions) -> Self {
        SessionLayer { sessions }
    }
}

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("config", self.sessions.config())
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            sessions: self.sessions.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    sessions: Sessions,
}

impl<S> std::fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let cookies = request.headers().get_all(header::COOKIE).iter().cloned();
        let client = self.sessions.wants_client().then(|| client(&request));
        let (session, pending) = self.sessions.open(cookies, client);
        request.extensions_mut().insert(session);
        ResponseFuture {
            inner: self.inner.call(request),
            pending: Some(pending),
            committing: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`SessionService`]: the inner service's
    /// response, then the session's commit and its headers.
    pub struct ResponseFuture<F, B> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
        // The inner service's response, kept while the commit runs.
        committing: Option<(Response<B>, Pin<Box<dyn Future<Output = Plan> + Send>>)>,
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: From<String>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (mut response, plan) = match this.committing {
            Some((_, commit)) => {
                let plan = std::task::ready!(commit.as_mut().poll(cx));
                let (response, _) = this.committing.take().expect("a commit in progress");
                (response, plan)
            }
            None => {
                let response = std::task::ready!(this.inner.poll(cx))?;
                let pending = this
                    .pending
                    .take()
                    .expect("ResponseFuture polled after completion");
                match pending.finish() {
                    Finish::Now(plan) => (response, plan),
                    Finish::Later(mut commit) => match commit.as_mut().poll(cx) {
                        Poll::Ready(plan) => (response, plan),
                        Poll::Pending => {
                            *this.committing = Some((response, commit));
                            return Poll::Pending;
                        }
                    },
                }
            }
        };
        Poll::Ready(Ok(match plan {
            Plan::Fail(failure) => error_response(failure),
            plan => {
                plan.decorate(response.headers_mut());
                response
            }
        }))
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// What a request tells of its client: the `User-Agent`, and the peer
/// address axum's `ConnectInfo` holds when the app is served with it.
fn client<B>(request: &Request<B>) -> Client {
    #[cfg(feature = "axum")]
    let address = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    #[cfg(not(feature = "axum"))]
    let address = None;
    Client {
        user_agent: request.headers().get(header::USER_AGENT).cloned(),
        address,
    }
}

/// The response of a request the session failed.
pub(crate) fn error_response<B: From<String>>(failure: ErrorResponse) -> Response<B> {
    let mut response = Response::new(B::from(failure.body.to_owned()));
    *response.status_mut() = failure.status;
    response.headers_mut().extend(failure.headers());
    response
}
