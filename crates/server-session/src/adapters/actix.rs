//! actix-web integration: [`SessionMiddleware`], [`Session`] as an
//! extractor and [`SessionError`] as a response. Glue only: the engine
//! decides everything.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};

use crate::config::{ConfigError, SessionConfig};
use crate::engine::{Client, Metrics, Plan, ResponseHeaders};
use crate::error::{ErrorResponse, SessionError};
use crate::session::Session;
use crate::sessions::{Sessions, Users};
use crate::store::SessionStore;

/// actix-web middleware that gives every request a [`Session`] and commits it
/// after the handler, as [`SessionLayer`](crate::SessionLayer) does for
/// tower and axum: same configuration, stores, guarantees and responses.
///
/// ```
/// use actix_web::{App, web};
/// use server_session::{MemoryStore, Session, SessionConfig, SessionError, SessionMiddleware};
///
/// async fn hello(session: Session) -> Result<String, SessionError> {
///     let visits = session.update("visits", |n: Option<u32>| n.unwrap_or(0) + 1).await?;
///     Ok(format!("visit {visits}"))
/// }
///
/// let sessions = SessionMiddleware::new(MemoryStore::new(), SessionConfig::default())?;
/// let app = App::new().wrap(sessions).route("/", web::get().to(hello));
/// # Ok::<_, server_session::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct SessionMiddleware {
    sessions: Sessions,
}

impl SessionMiddleware {
    /// Middleware keeping sessions in `store`, as [`Sessions::new`].
    pub fn new(store: impl SessionStore, config: SessionConfig) -> Result<Self, ConfigError> {
        Sessions::new(store, config).map(SessionMiddleware::from)
    }

    /// Middleware on the store `config` names, as [`Sessions::from_config`].
    pub fn from_config(config: SessionConfig) -> Result<Self, ConfigError> {
        Sessions::from_config(config).map(SessionMiddleware::from)
    }

    /// The sessions this middleware serves.
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

impl From<Sessions> for SessionMiddleware {
    fn from(sessions: Sessions) -> Self {
        SessionMiddleware { sessions }
    }
}

impl std::fmt::Debug for SessionMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("config", self.sessions.config())
            .finish_non_exhaustive()
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionMiddlewareService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionMiddlewareService {
            service: Rc::new(service),
            sessions: self.sessions.clone(),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an inner service.
pub struct SessionMiddlewareService<S> {
    service: Rc<S>,
    sessions: Sessions,
}

impl<S> std::fmt::Debug for SessionMiddlewareService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddlewareService").finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for SessionMiddlewareService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let cookies = request
            .headers()
            .get_all(header::COOKIE)
            .filter_map(|value| http::HeaderValue::from_bytes(value.as_bytes()).ok());
        let client = self.sessions.wants_client().then(|| Client {
            user_agent: request
                .headers()
                .get(header::USER_AGENT)
                .and_then(|agent| http::HeaderValue::from_bytes(agent.as_bytes()).ok()),
            address: request.peer_addr().map(|peer| peer.ip()),
        });
        let (session, pending) = self.sessions.open(cookies, client);
        request.extensions_mut().insert(session);
        let response = self.service.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            Ok(match pending.finish().plan().await {
                Plan::Fail(failure) => response
                    .into_response(error_response(failure))
                    .map_into_right_body(),
                plan => {
                    plan.decorate(&mut ActixHeaders(response.headers_mut()));
                    response.map_into_left_body()
                }
            })
        })
    }
}

impl FromRequest for Session {
    type Error = SessionError;
    type Future = Ready<Result<Session, SessionError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            request
                .extensions()
                .get::<Session>()
                .cloned()
                .ok_or(SessionError::MissingLayer),
        )
    }
}

impl ResponseError for SessionError {
    fn status_code(&self) -> StatusCode {
        actix_status(self.status())
    }

    fn error_response(&self) -> HttpResponse {
        error_response(self.response())
    }
}

/// The response of a request the session failed.
fn error_response(failure: ErrorResponse) -> HttpResponse {
    let mut response = HttpResponse::build(actix_status(failure.status));
    for (name, value) in failure.headers() {
        if let Some(header) = actix_header(&name, &value) {
            response.insert_header(header);
        }
    }
    response.body(failure.body)
}

fn actix_status(status: http::StatusCode) -> StatusCode {
    StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A header in actix-web's types (from the `http` crate's 0.2 line).
fn actix_header(name: &http::HeaderName, value: &http::HeaderValue) -> Option<(HeaderName, HeaderValue)> {
    let name = HeaderName::from_bytes(name.as_str().as_bytes()).ok()?;
    let value = HeaderValue::from_bytes(value.as_bytes()).ok()?;
    Some((name, value))
}

/// actix-web's response headers, as a [`Plan`] uses them.
struct ActixHeaders<'a>(&'a mut HeaderMap);

impl ResponseHeaders for ActixHeaders<'_> {
    fn add_unless(
        &mut self,
        name: http::HeaderName,
        value: http::HeaderValue,
        covers: impl Fn(&[u8]) -> bool,
    ) {
        if !self.0.get_all(name.as_str()).any(|old| covers(old.as_bytes())) {
            self.append(name, value);
        }
    }

    fn append(&mut self, name: http::HeaderName, value: http::HeaderValue) {
        if let Some((name, value)) = actix_header(&name, &value) {
            self.0.append(name, value);
        }
    }
}
