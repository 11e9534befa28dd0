//! One app, served through the axum adapter or the actix-web one, so that a
//! suite written once runs on both (and on axum with the layer around the
//! whole router as well as on its routes). Handlers are plain
//! `async fn(Session, String) -> Result<String, SessionError>`, the string
//! being what follows a route's `/*` in the path.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use http::Uri;
use server_session::store::SessionStore;
use server_session::{Metrics, Session, SessionConfig, SessionError, SessionLayer, Sessions, Users};
use tower::Layer;

use super::Reply;

/// The web framework a suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    /// axum, with the layer on the router's routes (`Router::layer`).
    Axum,
    /// axum, with the layer around the whole router (`layer.layer(router)`).
    AxumAroundRouter,
    Actix,
}

type HandlerFuture = Pin<Box<dyn Future<Output = Result<String, SessionError>> + Send>>;
type Handler = Arc<dyn Fn(Session, String) -> HandlerFuture + Send + Sync>;

/// The routes of a test app.
#[derive(Clone, Default)]
pub struct Routes(Vec<(String, Handler)>);

impl Routes {
    pub fn new() -> Routes {
        Routes::default()
    }

    /// Serves `path` with `handler`; a path ending in `/*` serves every path
    /// under it, handing the rest to the handler.
    pub fn route<F, Fut>(mut self, path: &str, handler: F) -> Routes
    where
        F: Fn(Session, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, SessionError>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |session, rest| Box::pin(handler(session, rest)));
        self.0.push((path.to_owned(), handler));
        self
    }

    /// Adds the routes of `other`.
    pub fn extend(&mut self, other: Routes) {
        self.0.extend(other.0);
    }

    /// The handler for `path` and the argument it gets.
    fn find(&self, path: &str) -> Option<(Handler, String)> {
        self.0.iter().find_map(|(route, handler)| {
            let rest = match route.strip_suffix('*') {
                Some(prefix) => path.strip_prefix(prefix)?.to_owned(),
                None if route == path => String::new(),
                None => return None,
            };
            Some((handler.clone(), rest))
        })
    }

    async fn call(&self, session: Session, path: &str) -> Option<Result<String, SessionError>> {
        let (handler, rest) = self.find(path)?;
        Some(handler(session, rest).await)
    }
}

/// Requests held in flight: each `/slow/{i}` loads the session, counts
/// itself in `loaded`, waits for `release`, then writes, updates, cycles the
/// id or only reads (by `i % 4`), so that a test can end the session while
/// they wait.
pub fn in_flight(loaded: Arc<tokio::sync::Semaphore>, release: Arc<tokio::sync::Notify>) -> Routes {
    Routes::new().route("/slow/*", move |s: Session, i| {
        let (loaded, release) = (loaded.clone(), release.clone());
        let i: usize = i.parse().unwrap();
        async move {
            s.keys().await?;
            let wait = release.notified();
            loaded.add_permits(1);
            wait.await;
            match i % 4 {
                0 => s.insert("late", &i).await?,
                1 => drop(s.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).await?),
                2 => s.cycle_id().await?,
                _ => {} // read only
            }
            Ok::<_, SessionError>("ok".into())
        }
    })
}

/// A test app being served.
pub struct Served {
    target: Target,
    metrics: Box<dyn Fn() -> Metrics + Send + Sync>,
    /// Any user's sessions, from the layer or the middleware.
    pub users: Users,
}

enum Target {
    Axum(Router),
    AxumAroundRouter(server_session::service::SessionService<Router>),
    #[cfg(feature = "actix")]
    Actix(actix::Server),
}

impl Served {
    /// Sends `GET path` with `cookie` as the `Cookie` header.
    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        match &self.target {
            Target::Axum(router) => super::get(router, path, cookie).await,
            Target::AxumAroundRouter(app) => super::get(app, path, cookie).await,
            #[cfg(feature = "actix")]
            Target::Actix(server) => server.get(path, cookie).await,
        }
    }

    /// What the session engine counted.
    pub fn metrics(&self) -> Metrics {
        (self.metrics)()
    }
}

/// Serves `routes` on `framework`, with sessions in `store`.
pub fn serve(
    framework: Framework,
    store: impl SessionStore,
    config: SessionConfig,
    routes: Routes,
) -> Served {
    serve_sessions(framework, Sessions::new(store, config).unwrap(), routes)
}

/// `routes` served with `sessions` on `framework`.
pub fn serve_sessions(framework: Framework, sessions: Sessions, routes: Routes) -> Served {
    match framework {
        Framework::Axum | Framework::AxumAroundRouter => {
            let layer = SessionLayer::from(sessions);
            let metrics = {
                let layer = layer.clone();
                Box::new(move || layer.metrics())
            };
            let target = match framework {
                Framework::Axum => Target::Axum(axum_router(routes).layer(layer.clone())),
                _ => Target::AxumAroundRouter(layer.layer(axum_router(routes))),
            };
            Served {
                users: layer.users(),
                target,
                metrics,
            }
        }
        #[cfg(feature = "actix")]
        Framework::Actix => {
            let middleware = server_session::SessionMiddleware::from(sessions);
            let metrics = {
                let middleware = middleware.clone();
                Box::new(move || middleware.metrics())
            };
            Served {
                users: middleware.users(),
                target: Target::Actix(actix::Server::start(middleware, routes)),
                metrics,
            }
        }
        #[cfg(not(feature = "actix"))]
        Framework::Actix => panic!("the actix suites need the `actix` feature"),
    }
}

/// `routes` as an axum app, without the session layer.
fn axum_router(routes: Routes) -> Router {
    Router::new().fallback(move |session: Session, uri: Uri| {
        let routes = routes.clone();
        async move {
            match routes.call(session, uri.path()).await {
                Some(Ok(body)) => Ok((http::StatusCode::OK, body)),
                Some(Err(err)) => Err(err),
                None => Ok((http::StatusCode::NOT_FOUND, String::new())),
            }
        }
    })
}

/// A test app listening on a loopback port, for clients that speak HTTP
/// (the Flask interop tests); stopped when dropped (actix-web) or with the
/// test's runtime (axum).
pub struct Listening {
    pub addr: String,
    #[cfg(feature = "actix")]
    _actix: Option<actix::Server>,
}

/// Serves `routes` on `framework` over TCP, with the store `config` names.
pub async fn listen(framework: Framework, config: SessionConfig, routes: Routes) -> Listening {
    match framework {
        Framework::Axum | Framework::AxumAroundRouter => {
            let layer = SessionLayer::from_config(config).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            match framework {
                Framework::Axum => {
                    let app = axum_router(routes).layer(layer);
                    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
                }
                _ => {
                    let app = layer.layer(axum_router(routes));
                    let app = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
                    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
                }
            }
            Listening {
                addr,
                #[cfg(feature = "actix")]
                _actix: None,
            }
        }
        #[cfg(feature = "actix")]
        Framework::Actix => {
            let middleware = server_session::SessionMiddleware::from_config(config).unwrap();
            let server = actix::Server::start(middleware, routes);
            Listening {
                addr: server.addr.clone(),
                _actix: Some(server),
            }
        }
        #[cfg(not(feature = "actix"))]
        Framework::Actix => panic!("the actix suites need the `actix` feature"),
    }
}

#[cfg(feature = "actix")]
mod actix {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
    use server_session::{Session, SessionError, SessionMiddleware};

    use super::{Reply, Routes};

    /// An actix-web server on a loopback port, in a thread of its own with
    /// actix's runtime; stopped when dropped.
    pub struct Server {
        pub addr: String,
        system: actix_web::rt::System,
    }

    impl Server {
        pub fn start(middleware: SessionMiddleware, routes: Routes) -> Server {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        let routes = routes.clone();
                        App::new().wrap(middleware.clone()).default_service(web::to(
                            move |session: Session, request: HttpRequest| {
                                let routes = routes.clone();
                                async move {
                                    match routes.call(session, request.path()).await {
                                        Some(Ok(body)) => {
                                            Ok::<_, SessionError>(HttpResponse::Ok().body(body))
                                        }
                                        Some(Err(err)) => Err(err),
                                        None => Ok(HttpResponse::NotFound().finish()),
                                    }
                                }
                            },
                        ))
                    })
                    .workers(2)
                    .disable_signals()
                    .bind(("127.0.0.1", 0))
                    .unwrap();
                    let addr = server.addrs()[0].to_string();
                    tx.send((addr, actix_web::rt::System::current())).unwrap();
                    server.run().await.unwrap();
                });
            });
            let (addr, system) = rx.recv().unwrap();
            Server { addr, system }
        }

        pub async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
            let response = crate::common::client::get(&self.addr, path, cookie).await;
            let mut headers = HeaderMap::new();
            for (name, value) in &response.headers {
                headers.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            Reply {
                status: StatusCode::from_u16(response.status).unwrap(),
                headers,
                body: response.body,
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.system.stop();
        }
    }
}
