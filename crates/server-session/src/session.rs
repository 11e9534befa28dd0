//! The [`Session`] handle a handler works with: lazy, typed, and recording
//! what it changes so the engine can replay the changes after a conflict.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, MutexGuard};

use crate::config::SessionConfig;
use crate::engine::{Engine, Presented};
use crate::id::SessionId;
use crate::record::{self, Format, Record};
use crate::store::StoreError;
use crate::value::flask_incompatibility;

/// Errors from [`Session`] methods.
///
/// With the `axum` feature it is a response: `503 Service Unavailable` when
/// the store failed, `500 Internal Server Error` otherwise, with a short plain
/// text body; so handlers can use `?`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The store failed while loading or saving the session.
    #[error(transparent)]
    Store(#[from] Arc<StoreError>),
    /// A value could not be turned into a stored value.
    #[error("cannot store {key:?}: {message}")]
    Encode {
        /// The session key.
        key: String,
        /// Why.
        message: String,
    },
    /// A stored value is not of the requested type.
    #[error("cannot read {key:?} as the requested type: {message}")]
    Decode {
        /// The session key.
        key: String,
        /// Why.
        message: String,
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
    Record(String),
    /// [`Session::set_lifetime`] was asked for more than
    /// [`SessionConfig::MAX_LIFETIME`](crate::SessionConfig::MAX_LIFETIME).
    #[error("a session lifetime of {} seconds is longer than the maximum of 400 days", .0.as_secs())]
    LifetimeTooLong(Duration),
    /// Concurrent requests kept changing the session; the change was not
    /// saved.
    #[error("the session changed concurrently {0} times in a row; the change was not saved")]
    Contention(usize),
    /// The store answered that every freshly drawn random id was already
    /// taken, which a working store never does; nothing was saved.
    #[error("the session store reported {0} fresh random ids in a row as taken")]
    NoFreeId(usize),
    /// The request did not pass through the session layer.
    #[error("no session in this request: is the SessionLayer installed?")]
    MissingLayer,
}

impl SessionError {
    /// The HTTP status this error answers with.
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
}

/// A closure of [`Session::update`], kept so it can be re-applied: from the
/// encoded current value to the encoded new one.
type Updater = Arc<dyn Fn(Option<&[u8]>) -> Result<Vec<u8>, SessionError> + Send + Sync>;

/// One change a handler made, replayed on the current record after a conflict.
#[derive(Clone)]
pub(crate) enum Change {
    Set(String, Vec<u8>),
    Remove(String),
    Update(String, Updater),
    Clear,
    Meta(&'static str, Option<Vec<u8>>),
}

impl Change {
    pub(crate) fn apply(&self, record: &mut Record) -> Result<(), SessionError> {
        match self {
            Change::Set(key, value) => record.set(key, value),
            Change::Remove(key) => {
                record.remove(key);
            }
            Change::Update(key, f) => {
                let value = f(record.get(key))?;
                record.set(key, &value);
            }
            Change::Clear => record.clear_data(),
            Change::Meta(key, Some(value)) => record.set(key, value),
            Change::Meta(key, None) => {
                record.remove(key);
            }
        }
        Ok(())
    }
}

/// Where the handle is in its life.
pub(crate) enum Phase {
    /// Nothing loaded yet.
    Unloaded,
    /// Loaded (or known to be new).
    Ready,
    /// The load failed and requests fail.
    Failed(Arc<StoreError>),
    /// The load failed and the request goes on with an empty session that is
    /// never saved.
    Detached,
}

/// What the response's `Set-Cookie` must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CookieOut {
    Keep,
    Set,
    Remove,
}

/// The per-request view of a session.
pub(crate) struct State {
    pub(crate) phase: Phase,
    /// The stored session this view is based on; `None` for a new one.
    pub(crate) id: Option<SessionId>,
    /// Its bytes as loaded or last saved (for the conditional save).
    pub(crate) base: Option<Vec<u8>>,
    /// The current view: base plus changes.
    pub(crate) record: Record,
    pub(crate) changes: Vec<Change>,
    pub(crate) cycle: bool,
    /// A stored session to delete at commit.
    pub(crate) destroy: Option<SessionId>,
    pub(crate) cookie: CookieOut,
}

impl State {
    /// Marks `bytes` as what the store now holds for this session.
    pub(crate) fn saved(&mut self, bytes: Vec<u8>) {
        self.base = Some(bytes);
        self.changes.clear();
        self.cookie = CookieOut::Set;
    }

    pub(crate) fn new_session(&mut self, record: Record) {
        self.id = None;
        self.base = None;
        self.record = record;
        self.changes.clear();
        self.cycle = false;
    }
}

/// The session of the current request.
///
/// Extract it in a handler (axum) or take it from the request's extensions.
/// Nothing is read from the store until the first method call, and at most
/// once per request; changes are saved after the handler returns, with one
/// conditional write that merges concurrent changes instead of losing them.
///
/// ```
/// use server_session::{Session, SessionError};
///
/// async fn counter(session: Session) -> Result<String, SessionError> {
///     let n = session.update("counter", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
///     Ok(n.to_string())
/// }
/// ```
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

struct Shared {
    engine: Arc<Engine>,
    /// The request's `Cookie` headers, read on first use so that a request
    /// that never touches the session never scans or verifies its cookie.
    cookies: CookieHeaders,
    presented: OnceLock<Presented>,
    accessed: AtomicBool,
    state: Mutex<State>,
}

/// What an adapter adds to the response after the handler.
pub(crate) struct Finish {
    pub(crate) set_cookie: Option<HeaderValue>,
    pub(crate) vary: bool,
    /// The request must fail with this error.
    pub(crate) failure: Option<SessionError>,
}

impl Session {
    /// A handle for a request with these headers. No I/O.
    pub(crate) fn open(engine: Arc<Engine>, headers: &HeaderMap) -> Session {
        let state = State {
            phase: Phase::Unloaded,
            id: None,
            base: None,
            record: Record::default(),
            changes: Vec::new(),
            cycle: false,
            destroy: None,
            cookie: CookieOut::Keep,
        };
        Session {
            shared: Arc::new(Shared {
                engine,
                cookies: CookieHeaders::new(headers),
                presented: OnceLock::new(),
                accessed: AtomicBool::new(false),
                state: Mutex::new(state),
            }),
        }
    }

    /// The session cookie the request presented.
    fn presented(&self) -> &Presented {
        let shared = &*self.shared;
        shared
            .presented
            .get_or_init(|| shared.engine.read_cookie(shared.cookies.iter()))
    }

    /// The state, loaded.
    async fn ready(&self) -> Result<MutexGuard<'_, State>, SessionError> {
        self.shared.accessed.store(true, Ordering::Relaxed);
        let mut state = self.shared.state.lock().await;
        if matches!(state.phase, Phase::Unloaded) {
            self.shared.engine.load(self.presented(), &mut state).await;
        }
        match &state.phase {
            Phase::Failed(err) => Err(SessionError::Store(err.clone())),
            _ => Ok(state),
        }
    }

    /// The value at `key`, or `None`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let state = self.ready().await?;
        state.record.get(key).map(|raw| from_raw(key, raw)).transpose()
    }

    /// Sets `key` to `value`.
    ///
    /// The value must be one Flask could read back (see the crate docs on
    /// types); anything else is refused here, before it reaches the store.
    pub async fn insert<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), SessionError> {
        check_key(key)?;
        let value = storable(key, value, self.format())?;
        let limit = self.shared.engine.config().max_record_size;
        if value.len() > limit {
            return Err(SessionError::TooLarge {
                size: value.len(),
                limit,
            });
        }
        self.change(Change::Set(key.to_owned(), value)).await
    }

    /// Removes `key`; tells whether it was there.
    pub async fn remove(&self, key: &str) -> Result<bool, SessionError> {
        check_key(key)?;
        let mut state = self.ready().await?;
        let existed = state.record.get(key).is_some();
        record_change(&mut state, Change::Remove(key.to_owned()))?;
        Ok(existed)
    }

    /// Read-modify-write of `key` that never loses an update: `f` gets the
    /// current value (or `None`) and returns the new one, which is returned
    /// too. If another request changes the session before this one is saved,
    /// the engine calls `f` again on the value that request stored, so
    /// concurrent increments all count. `f` may therefore run more than once;
    /// keep it free of side effects.
    ///
    /// The returned value is this request's view; call [`save`](Self::save)
    /// after it to answer with the committed value.
    pub async fn update<T, F>(&self, key: &str, f: F) -> Result<T, SessionError>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(Option<T>) -> T + Send + Sync + 'static,
    {
        check_key(key)?;
        let owned_key = key.to_owned();
        let format = self.format();
        let updater: Updater = Arc::new(move |current: Option<&[u8]>| {
            let current = current.map(|raw| from_raw::<T>(&owned_key, raw)).transpose()?;
            storable(&owned_key, &f(current), format)
        });
        let mut state = self.ready().await?;
        record_change(&mut state, Change::Update(key.to_owned(), updater))?;
        let value = state.record.get(key).expect("an update sets its key");
        from_raw(key, value)
    }

    /// Removes every key. A session left empty is deleted from the store and
    /// its cookie removed.
    pub async fn clear(&self) -> Result<(), SessionError> {
        self.change(Change::Clear).await
    }

    /// Whether `key` is set.
    pub async fn contains_key(&self, key: &str) -> Result<bool, SessionError> {
        Ok(self.ready().await?.record.get(key).is_some())
    }

    /// The keys, in insertion order (metadata such as `_permanent` excluded).
    pub async fn keys(&self) -> Result<Vec<String>, SessionError> {
        Ok(self
            .ready()
            .await?
            .record
            .data_keys()
            .map(str::to_owned)
            .collect())
    }

    /// Whether the session holds no key.
    pub async fn is_empty(&self) -> Result<bool, SessionError> {
        Ok(!self.ready().await?.record.has_data())
    }

    /// The id of the stored session, or `None` while it has not been saved.
    pub async fn id(&self) -> Result<Option<SessionId>, SessionError> {
        Ok(self.ready().await?.id.clone())
    }

    /// Gives the session a new id and keeps its data: call it when privileges
    /// change (at login), so an id planted before cannot ride along. The old
    /// id stops working when the request commits.
    pub async fn cycle_id(&self) -> Result<(), SessionError> {
        let mut state = self.ready().await?;
        state.cycle = true;
        Ok(())
    }

    /// Deletes the session from the store and removes the cookie (logout).
    /// A request that still holds the old session can never bring it back.
    /// Keys set after this start a new session with a new id.
    pub async fn destroy(&self) -> Result<(), SessionError> {
        self.shared.accessed.store(true, Ordering::Relaxed);
        let mut state = self.shared.state.lock().await;
        let target = match (&state.phase, self.presented()) {
            (Phase::Unloaded, Presented::Valid(id)) => Some(id.clone()),
            _ => state.id.clone(),
        };
        if target.is_some() {
            state.destroy = target;
        }
        if !matches!(self.presented(), Presented::Absent) || state.destroy.is_some() {
            state.cookie = CookieOut::Remove;
        }
        if matches!(state.phase, Phase::Unloaded | Phase::Failed(_)) {
            state.phase = Phase::Ready;
        }
        let fresh = self.shared.engine.new_record();
        state.new_session(fresh);
        Ok(())
    }

    /// Makes the session permanent (its cookie gets `Expires`) or ends it with
    /// the browser session.
    pub async fn set_permanent(&self, permanent: bool) -> Result<(), SessionError> {
        let flag = if permanent { record::TRUE } else { record::FALSE };
        self.change(Change::Meta(record::PERMANENT, Some(vec![flag])))
            .await
    }

    /// Whether the session is permanent.
    pub async fn is_permanent(&self) -> Result<bool, SessionError> {
        Ok(self.ready().await?.record.permanent())
    }

    /// Overrides the configured lifetime for this session only (say, 90 days
    /// after "remember me"); `None` returns to the configured one. Stored in
    /// the record, so it holds on later requests. The idle and absolute
    /// timeouts still apply: a session unused for longer than the idle
    /// timeout ends, however long its lifetime.
    ///
    /// A lifetime longer than
    /// [`SessionConfig::MAX_LIFETIME`](crate::SessionConfig::MAX_LIFETIME)
    /// (400 days) is refused with [`SessionError::LifetimeTooLong`].
    pub async fn set_lifetime(&self, lifetime: Option<Duration>) -> Result<(), SessionError> {
        if let Some(too_long) = lifetime.filter(|d| *d > SessionConfig::MAX_LIFETIME) {
            return Err(SessionError::LifetimeTooLong(too_long));
        }
        let secs = lifetime.map(|d| record::encode_u64(d.as_secs().max(1)));
        self.change(Change::Meta(record::LIFETIME, secs)).await
    }

    /// Commits the changes now rather than after the handler, merging with
    /// concurrent changes as usual; afterwards the session shows the committed
    /// values. For a handler that must answer with what was stored.
    pub async fn save(&self) -> Result<(), SessionError> {
        let mut state = self.ready().await?;
        self.shared.engine.commit(&mut state).await
    }

    fn format(&self) -> Format {
        self.shared.engine.config().format
    }

    async fn change(&self, change: Change) -> Result<(), SessionError> {
        let mut state = self.ready().await?;
        record_change(&mut state, change)
    }

    /// Commits after the handler and says what the response needs.
    pub(crate) async fn finish(&self) -> Finish {
        if !self.shared.accessed.load(Ordering::Relaxed) {
            return Finish {
                set_cookie: None,
                vary: false,
                failure: None,
            };
        }
        let mut state = self.shared.state.lock().await;
        let engine = &self.shared.engine;
        let failure = match &state.phase {
            Phase::Failed(err) => Some(SessionError::Store(err.clone())),
            Phase::Unloaded => None,
            Phase::Detached => {
                state.cookie = CookieOut::Keep;
                None
            }
            Phase::Ready => engine.commit(&mut state).await.err(),
        };
        let set_cookie = match failure {
            Some(_) => None,
            None => engine.cookie_header(&state),
        };
        Finish {
            set_cookie,
            vary: true,
            failure,
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

/// The values of a request's `Cookie` headers (one, or none, but HTTP/2
/// clients may send several), kept without copying their bytes.
struct CookieHeaders {
    first: Option<HeaderValue>,
    rest: Vec<HeaderValue>,
}

impl CookieHeaders {
    fn new(headers: &HeaderMap) -> CookieHeaders {
        let mut values = headers.get_all(header::COOKIE).iter().cloned();
        CookieHeaders {
            first: values.next(),
            rest: values.collect(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &HeaderValue> {
        self.first.iter().chain(&self.rest)
    }
}

fn record_change(state: &mut State, change: Change) -> Result<(), SessionError> {
    change.apply(&mut state.record)?;
    if !matches!(state.phase, Phase::Detached) {
        state.changes.push(change);
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), SessionError> {
    if Record::is_metadata(key) {
        return Err(SessionError::ReservedKey(key.to_owned()));
    }
    Ok(())
}

/// A Rust value, encoded as stored: structs become maps with named fields.
pub(crate) fn to_raw<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>, SessionError> {
    rmp_serde::to_vec_named(value).map_err(|e| SessionError::Encode {
        key: key.to_owned(),
        message: e.to_string(),
    })
}

/// A Rust value, encoded as stored, that Flask can read back.
fn storable<T: Serialize + ?Sized>(key: &str, value: &T, format: Format) -> Result<Vec<u8>, SessionError> {
    let raw = to_raw(key, value)?;
    match flask_incompatibility(&raw, format) {
        None => Ok(raw),
        Some(why) => Err(SessionError::Encode {
            key: key.to_owned(),
            message: why,
        }),
    }
}

/// A stored (encoded) value as a Rust value.
pub(crate) fn from_raw<T: DeserializeOwned>(key: &str, raw: &[u8]) -> Result<T, SessionError> {
    rmp_serde::from_slice(raw).map_err(|e| SessionError::Decode {
        key: key.to_owned(),
        message: e.to_string(),
    })
}
