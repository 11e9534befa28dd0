//! [`Sessions`], the one handle on a configuration's sessions: the layer,
//! the actix-web middleware, [`Users`] and the counters all come from it.

use std::fmt;
use std::sync::Arc;

use futures_util::lock::Mutex;

use crate::config::{ConfigError, SessionConfig, UserSessions};
use crate::engine::{Client, Engine, Metrics, Pending, RequestState, UserIndex, configured};
use crate::error::SessionError;
use crate::session::Session;
use crate::store::{SessionIndex, SessionStore};
use crate::users::{SessionHandle, SessionInfo};

/// A store and a configuration, ready to serve sessions.
///
/// [`SessionLayer`](crate::SessionLayer) (axum, tower) and
/// `SessionMiddleware` (actix-web, feature `actix`) are made
/// from it, and share its sessions and counters; so is [`Users`], which
/// lists and revokes a user's sessions outside requests.
///
/// ```
/// use server_session::{MemoryStore, SessionConfig, SessionLayer, Sessions, UserSessions};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let sessions = Sessions::with_user_sessions(
///     MemoryStore::new(),
///     SessionConfig::default(),
///     UserSessions::default(),
/// )?;
/// let layer = SessionLayer::from(sessions.clone());
/// assert_eq!(sessions.users().revoke_all("alice").await?, 0);
/// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Sessions {
    engine: Arc<Engine>,
}

impl Sessions {
    /// Sessions kept in `store`; refuses a configuration whose settings
    /// contradict each other, saying why.
    pub fn new(store: impl SessionStore, config: SessionConfig) -> Result<Sessions, ConfigError> {
        Ok(Sessions::from_engine(Engine::new(Arc::new(store), None, config)?))
    }

    /// Sessions kept in `store`, with an index of each user's sessions so
    /// that they can be listed and revoked
    /// ([`Session::user_sessions`](crate::Session::user_sessions),
    /// [`Users`]). Sessions are bound to a user by
    /// [`Session::login`](crate::Session::login). The store must keep
    /// indexes ([`SessionIndex`]: the memory and Redis stores do).
    ///
    /// ```
    /// use std::time::Duration;
    /// use server_session::{MemoryStore, SessionConfig, Sessions, UserSessions};
    ///
    /// let users = UserSessions::default().seen_interval(Duration::from_secs(600)).limit(5);
    /// let sessions = Sessions::with_user_sessions(MemoryStore::new(), SessionConfig::default(), users)?;
    /// # Ok::<_, server_session::ConfigError>(())
    /// ```
    ///
    /// A store without indexes does not compile here:
    ///
    /// ```compile_fail
    /// use std::time::Duration;
    /// use server_session::store::{Expect, SaveOutcome, SessionStore, StoreError};
    /// use server_session::{SessionConfig, Sessions, UserSessions};
    ///
    /// struct Plain;
    /// impl SessionStore for Plain {
    ///     async fn load(&self, _: &str, _: Option<Duration>, _: usize) -> Result<Option<Vec<u8>>, StoreError> {
    ///         Ok(None)
    ///     }
    ///     async fn save(&self, _: &str, _: &[u8], _: Duration, _: Expect<'_>) -> Result<SaveOutcome, StoreError> {
    ///         Ok(SaveOutcome::Saved)
    ///     }
    ///     async fn delete(&self, _: &str) -> Result<(), StoreError> {
    ///         Ok(())
    ///     }
    ///     async fn touch(&self, _: &str, _: Duration) -> Result<(), StoreError> {
    ///         Ok(())
    ///     }
    /// }
    /// assert!(Sessions::new(Plain, SessionConfig::default()).is_ok());
    /// let refused = Sessions::with_user_sessions(Plain, SessionConfig::default(), UserSessions::default());
    /// ```
    pub fn with_user_sessions(
        store: impl SessionIndex,
        config: SessionConfig,
        settings: UserSessions,
    ) -> Result<Sessions, ConfigError> {
        let store = Arc::new(store);
        let users = UserIndex {
            settings,
            index: store.clone(),
        };
        Ok(Sessions::from_engine(Engine::new(store, Some(users), config)?))
    }

    /// Sessions on the store `config` names ([`SessionConfig::store_type`],
    /// `SESSION_TYPE`): memory by default, Redis (feature `redis`) or an
    /// SQL database (features `sqlite`, `postgres`, `mysql`), which connect
    /// on first use, so call this inside a tokio runtime. The store is
    /// tried once in the background, and the log says whether it was
    /// reached; the application starts either way.
    ///
    /// ```
    /// use server_session::{SessionConfig, Sessions};
    ///
    /// let sessions = Sessions::from_config(SessionConfig::from_map([("SESSION_TYPE", "memory")])?)?;
    /// # Ok::<_, server_session::ConfigError>(())
    /// ```
    pub fn from_config(config: SessionConfig) -> Result<Sessions, ConfigError> {
        let store = configured::abilities(&config)?.store;
        Sessions::probed(Engine::new(store, None, config)?)
    }

    /// As [`from_config`](Self::from_config), with an index of each user's
    /// sessions as [`with_user_sessions`](Self::with_user_sessions) keeps
    /// it. Refuses a store without indexes (the SQL stores), saying so.
    pub fn from_config_with_user_sessions(
        config: SessionConfig,
        settings: UserSessions,
    ) -> Result<Sessions, ConfigError> {
        let abilities = configured::abilities(&config)?;
        let index = abilities.index.ok_or_else(|| {
            ConfigError::Invalid(
                "user sessions need a store that keeps indexes (memory or Redis); \
                 the SQL stores keep none"
                    .into(),
            )
        })?;
        let users = UserIndex { settings, index };
        Sessions::probed(Engine::new(abilities.store, Some(users), config)?)
    }

    /// Sessions on `engine`, whose store is tried once in the background.
    fn probed(engine: Engine) -> Result<Sessions, ConfigError> {
        engine.probe();
        Ok(Sessions::from_engine(engine))
    }

    pub(crate) fn from_engine(engine: Engine) -> Sessions {
        Sessions {
            engine: Arc::new(engine),
        }
    }

    /// What the sessions engine has counted so far.
    pub fn metrics(&self) -> Metrics {
        self.engine.metrics()
    }

    /// Any user's sessions, to list or revoke them outside a request; see
    /// [`Users`].
    pub fn users(&self) -> Users {
        Users {
            engine: self.engine.clone(),
        }
    }

    /// The configuration these sessions follow.
    pub(crate) fn config(&self) -> &SessionConfig {
        self.engine.config()
    }

    /// Whether adapters should pass [`Client`] details.
    pub(crate) fn wants_client(&self) -> bool {
        self.engine.wants_client()
    }

    /// A request's session, for a request that sent these `Cookie` header
    /// values from this client (given only when the configuration keeps
    /// client details), and the commit the adapter owes it after the
    /// handler. No I/O.
    pub(crate) fn open(
        &self,
        cookies: impl IntoIterator<Item = http::HeaderValue>,
        client: Option<Client>,
    ) -> (Session, Pending) {
        let state = RequestState::new(self.engine.clone(), cookies, client);
        let state = Arc::new(Mutex::new(state));
        (Session::from_state(state.clone()), Pending::new(state))
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("config", self.engine.config())
            .finish_non_exhaustive()
    }
}

/// Any user's sessions, for administration: from [`Sessions::users`] (or
/// the layer's or middleware's), usable outside requests, e.g. after a
/// password reset.
///
/// Revoking a session ends it: its cookie gets a fresh, empty session on
/// its next request, and a request still in flight on it cannot save it back.
///
/// ```
/// use server_session::{MemoryStore, SessionConfig, Sessions, UserSessions};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let sessions =
///     Sessions::with_user_sessions(MemoryStore::new(), SessionConfig::default(), UserSessions::default())?;
/// let users = sessions.users();
/// assert!(users.list("alice").await?.is_empty());
/// assert_eq!(users.revoke_all("alice").await?, 0);
/// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Users {
    engine: Arc<Engine>,
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Users").finish_non_exhaustive()
    }
}

impl Users {
    /// `user`'s live sessions. Costs one store call for the index and one
    /// per session.
    pub async fn list(&self, user: &str) -> Result<Vec<SessionInfo>, SessionError> {
        self.engine.list_sessions(user, None).await
    }

    /// Revokes the session of `user` named by `handle`; tells whether there
    /// was one.
    pub async fn revoke(&self, user: &str, handle: &SessionHandle) -> Result<bool, SessionError> {
        Ok(self.engine.revoke_sessions(user, |h| h == Some(handle)).await? > 0)
    }

    /// Revokes every session of `user` ("log out everywhere"); returns how
    /// many there were.
    pub async fn revoke_all(&self, user: &str) -> Result<usize, SessionError> {
        self.engine.revoke_sessions(user, |_| true).await
    }

    /// Revokes every session of `user` but the one named by `keep`.
    pub async fn revoke_all_except(&self, user: &str, keep: &SessionHandle) -> Result<usize, SessionError> {
        // A member whose record cannot be read yet (a login being written,
        // possibly the kept session moving to a new id) is ended too: the
        // kept session's new id is then drawn again.
        self.engine.revoke_sessions(user, |h| h != Some(keep)).await
    }
}
