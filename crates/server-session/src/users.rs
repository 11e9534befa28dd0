//! A user's sessions: the settings of the index that lists them, what a
//! listing shows, and the handle an administrator revokes them with.
//!
//! A session is bound to a user by [`Session::login`](crate::Session::login).
//! With [`SessionConfig::user_sessions`](crate::SessionConfig::user_sessions)
//! the store keeps, per user, an index of the sessions bound to them, so that
//! they can be listed and revoked: from a handler, for the user of the
//! current session ([`Session::user_sessions`](crate::Session::user_sessions)),
//! or for any user ([`Users`], from the layer).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::ConfigError;
use crate::engine::Engine;
use crate::error::SessionError;

/// How each user's sessions are indexed
/// ([`SessionConfig::user_sessions`](crate::SessionConfig::user_sessions)).
///
/// ```
/// use std::time::Duration;
/// use server_session::UserSessions;
///
/// let settings = UserSessions::default()
///     .seen_interval(Duration::from_secs(60))
///     .limit(3)
///     .client_details(true);
/// ```
#[derive(Clone, Debug)]
pub struct UserSessions {
    pub(crate) seen_interval: Duration,
    pub(crate) limit: Option<usize>,
    pub(crate) client_details: bool,
}

impl Default for UserSessions {
    fn default() -> Self {
        UserSessions {
            seen_interval: Duration::from_secs(5 * 60),
            limit: None,
            client_details: false,
        }
    }
}

impl UserSessions {
    /// How often a session's "last seen" time is brought up to date (default
    /// five minutes). Reads cost one store call; the first request after
    /// this interval costs two more (the record and the index), once.
    pub fn seen_interval(mut self, interval: Duration) -> Self {
        self.seen_interval = interval;
        self
    }

    /// At most `sessions` sessions per user (default: no limit): a login
    /// beyond the limit revokes the user's least recently seen sessions.
    pub fn limit(mut self, sessions: usize) -> Self {
        self.limit = Some(sessions);
        self
    }

    /// Keeps, from the login request, the browser's `User-Agent` and the
    /// client's network (its IPv4 /24 or IPv6 /48), shown in listings
    /// (default off: both are personal data). The address is the peer's:
    /// axum's `ConnectInfo<SocketAddr>` (serve the app with
    /// `into_make_service_with_connect_info`) or actix-web's peer address;
    /// behind a proxy, it is the proxy's.
    pub fn client_details(mut self, keep: bool) -> Self {
        self.client_details = keep;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.seen_interval < Duration::from_secs(1)
            || self.seen_interval > crate::SessionConfig::MAX_LIFETIME
        {
            return Err(ConfigError::Invalid(
                "the interval of \"last seen\" updates must be one second to 400 days".into(),
            ));
        }
        if self.limit == Some(0) {
            return Err(ConfigError::Invalid(
                "a limit of sessions per user must allow at least one".into(),
            ));
        }
        Ok(())
    }
}

/// One of a user's sessions, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// Names the session for [`Session::revoke`](crate::Session::revoke) and
    /// [`Users::revoke`]; it cannot be used as a cookie.
    pub handle: SessionHandle,
    /// When the user logged in.
    pub created: Option<SystemTime>,
    /// When the session was last used, to within the
    /// [`seen_interval`](UserSessions::seen_interval).
    pub last_seen: Option<SystemTime>,
    /// The browser's `User-Agent` at login, with
    /// [`client_details`](UserSessions::client_details).
    pub user_agent: Option<String>,
    /// The client's network at login (`203.0.113.0/24`, `2001:db8:1::/48`),
    /// with [`client_details`](UserSessions::client_details).
    pub client_network: Option<String>,
    /// Whether this is the session of the request that listed it.
    pub current: bool,
}

/// Names one of a user's sessions, to revoke it. It is a hash of a random
/// name the login got, so it can be shown in a page or a log without handing
/// out a session (it does not work as a cookie), and it stays the same when
/// the session's id is cycled.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionHandle(pub(crate) String);

impl SessionHandle {
    /// The handle as text, for a form field or a URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({})", self.0)
    }
}

/// A handle's text that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a session handle")]
pub struct InvalidHandle;

impl FromStr for SessionHandle {
    type Err = InvalidHandle;

    /// Reads a handle back from its text (say, a form field).
    fn from_str(text: &str) -> Result<Self, InvalidHandle> {
        let valid = text.len() == crate::engine::HANDLE_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid.then(|| SessionHandle(text.to_owned())).ok_or(InvalidHandle)
    }
}

/// Any user's sessions, for administration: from
/// [`SessionLayer::users`](crate::SessionLayer::users) (or the actix-web
/// middleware's), usable outside requests, e.g. after a password reset.
///
/// Revoking a session ends it: its cookie gets a fresh, empty session on
/// its next request, and a request still in flight on it cannot save it back.
///
/// ```
/// use server_session::{MemoryStore, SessionConfig, SessionLayer, UserSessions};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let config = SessionConfig::default().user_sessions(UserSessions::default());
/// let layer = SessionLayer::new(MemoryStore::new(), config)?;
/// let users = layer.users();
/// assert!(users.list("alice").await?.is_empty());
/// assert_eq!(users.revoke_all("alice").await?, 0);
/// # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Users {
    pub(crate) engine: Arc<Engine>,
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
