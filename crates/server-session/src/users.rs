//! A user's sessions as a listing shows them, and the handle that names
//! one to revoke it.
//!
//! A session is bound to a user by [`Session::login`](crate::Session::login).
//! With [`Sessions::with_user_sessions`](crate::Sessions::with_user_sessions)
//! the store keeps, per user, an index of the sessions bound to them, so that
//! they can be listed and revoked: from a handler, for the user of the
//! current session ([`Session::user_sessions`](crate::Session::user_sessions)),
//! or for any user ([`Users`](crate::Users)).

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

/// Characters of a [`SessionHandle`]: 128 bits, base64url.
pub(crate) const HANDLE_LEN: usize = 22;

/// One of a user's sessions, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// Names the session for [`Session::revoke`](crate::Session::revoke) and
    /// [`Users::revoke`](crate::Users::revoke); it cannot be used as a cookie.
    pub handle: SessionHandle,
    /// When the user logged in.
    pub created: Option<SystemTime>,
    /// When the session was last used, to within the
    /// [`seen_interval`](crate::UserSessions::seen_interval).
    pub last_seen: Option<SystemTime>,
    /// The browser's `User-Agent` at login, with
    /// [`client_details`](crate::UserSessions::client_details).
    pub user_agent: Option<String>,
    /// The client's network at login (`203.0.113.0/24`, `2001:db8:1::/48`),
    /// with [`client_details`](crate::UserSessions::client_details).
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
        let valid = text.len() == HANDLE_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid.then(|| SessionHandle(text.to_owned())).ok_or(InvalidHandle)
    }
}
