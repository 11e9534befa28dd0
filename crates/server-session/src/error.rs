//! [`SessionError`], what a handler's session call can fail with, and the one
//! decision every adapter shares: which failures fail the request, and with
//! what response.

use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderName};
use http::{HeaderValue, StatusCode};

use crate::store::StoreError;

/// Errors from [`Session`](crate::Session) methods.
///
/// With the `axum` or `actix` feature it is a response: `503 Service
/// Unavailable` when the store failed or the session stayed contended, `500
/// Internal Server Error` otherwise, with a short plain-text body; so handlers
/// can use `?`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The store failed while loading or saving the session.
    #[error(transparent)]
    Store(#[from] Arc<StoreError>),
    /// A value could not be turned into a stored value.
    #[error("cannot store {key:?}: {source}")]
    Encode {
        /// The session key.
        key: String,
        /// Why.
        source: ValueError,
    },
    /// A stored value is not of the requested type.
    #[error("cannot read {key:?} as the requested type: {source}")]
    Decode {
        /// The session key.
        key: String,
        /// Why.
        source: ValueError,
    },
    /// The session would take more than
    /// [`SessionConfig::max_record_size`](crate::SessionConfig::max_record_size)
    /// bytes in the store; nothing was saved.
    #[error("the session would take {size} bytes in the store, more than the limit of {limit}")]
    TooLarge {
        /// The record's size (or, on insert, the value's).
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The key is reserved for the engine's metadata (`_permanent`, `_ss_*`).
    #[error("{0:?} is reserved for session metadata")]
    ReservedKey(String),
    /// The record could not be encoded in the configured format.
    #[error("cannot encode the session record: {0}")]
    Record(#[source] RecordError),
    /// [`Session::set_lifetime`](crate::Session::set_lifetime) was asked for
    /// more than [`SessionConfig::MAX_LIFETIME`](crate::SessionConfig::MAX_LIFETIME).
    #[error("a session lifetime of {} seconds is longer than the maximum of 400 days", .0.as_secs())]
    LifetimeTooLong(Duration),
    /// Concurrent requests kept changing the session for longer than the
    /// engine goes on merging (ten seconds); the change was not saved.
    #[error("the session changed concurrently {0} times in a row; the change was not saved")]
    Contention(usize),
    /// The store answered that every freshly drawn random id was already
    /// taken, which a working store never does; nothing was saved.
    #[error("the session store reported {0} fresh random ids in a row as taken")]
    NoFreeId(usize),
    /// The request did not pass through the session middleware.
    #[error("no session in this request: is the session middleware installed?")]
    MissingLayer,
    /// Listing or revoking a user's sessions needs
    /// [`Sessions::with_user_sessions`](crate::Sessions::with_user_sessions).
    #[error("user sessions are not configured (Sessions::with_user_sessions)")]
    UserSessionsOff,
}

/// Why a value cannot be stored, or cannot be read as the requested type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// serde could not encode the value as MessagePack.
    #[error(transparent)]
    Serialize(#[from] rmp_serde::encode::Error),
    /// The stored value does not deserialize into the requested type.
    #[error(transparent)]
    Deserialize(#[from] rmp_serde::decode::Error),
    /// A map key Flask cannot read back (it reads string and integer keys);
    /// the field says what the key is.
    #[error("a map key is {0}; Flask reads only string and integer keys")]
    MapKey(&'static str),
    /// NaN or an infinity, which the JSON format cannot hold.
    #[error("JSON has no NaN or infinity (use the MessagePack format)")]
    NonFiniteFloat,
    /// A MessagePack extension value other than a well-formed timestamp,
    /// which Flask cannot decode; the field is its type.
    #[error(
        "it holds a MessagePack extension value of type {0} that Flask cannot decode (only well-formed timestamps, type -1)"
    )]
    Extension(i8),
    /// Nested deeper than any stored value may be (100 levels).
    #[error("it nests deeper than {} levels", crate::msgpack::MAX_DEPTH)]
    TooDeep,
    /// Not one well-formed MessagePack value (a serializer bug).
    #[error("it does not encode as one well-formed MessagePack value")]
    Malformed,
}

/// A session record that could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct RecordError(#[from] pub(crate) crate::record::CodecError);

impl SessionError {
    /// The HTTP status this error answers with: `503` when the store failed
    /// or the session stayed contended (retrying can help), `500` otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            SessionError::Store(_) | SessionError::Contention(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The short plain-text body that goes with [`status`](Self::status).
    pub fn public_message(&self) -> &'static str {
        if self.status() == StatusCode::SERVICE_UNAVAILABLE {
            "session store unavailable, please retry\n"
        } else {
            "session error\n"
        }
    }

    /// The response that replaces the handler's when this error fails a
    /// request, or that a handler returning it answers with.
    pub(crate) fn response(&self) -> ErrorResponse {
        if self.status().is_server_error() {
            tracing::debug!(error = %self, "session error answered");
        }
        ErrorResponse {
            status: self.status(),
            body: self.public_message(),
        }
    }
}

/// A failed request's response, the same from every adapter: the status, a
/// short plain-text body, and [`headers`](Self::headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ErrorResponse {
    pub(crate) status: StatusCode,
    pub(crate) body: &'static str,
}

impl ErrorResponse {
    /// Its headers: plain text, never cached, and varying with the cookie
    /// like every response the session decided.
    pub(crate) fn headers(&self) -> impl Iterator<Item = (HeaderName, HeaderValue)> {
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::VARY, "Cookie"),
        ]
        .into_iter()
        .map(|(name, value)| (name, HeaderValue::from_static(value)))
    }
}
