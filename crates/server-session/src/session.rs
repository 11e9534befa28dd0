//! The [`Session`] handle a handler works with: typed values over the
//! request's [`RequestState`], which it locks and delegates to.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::change::{Change, Updater};
use crate::config::SessionConfig;
use crate::engine::SharedState;
use crate::error::{SessionError, ValueError};
use crate::id::SessionId;
use crate::record::{self, Format, Record};
use crate::users::{SessionHandle, SessionInfo};
use crate::value::flask_incompatibility;

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
    state: SharedState,
}

impl Session {
    /// The handle on a request's state, which [`Sessions::open`](crate::Sessions)
    /// makes. No I/O.
    pub(crate) fn from_state(state: SharedState) -> Session {
        Session { state }
    }

    /// The value at `key`, or `None`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let mut state = self.state.lock().await;
        let record = state.load().await?;
        record.get(key).map(|raw| from_raw(key, raw)).transpose()
    }

    /// Sets `key` to `value`.
    ///
    /// The value must be one Flask could read back (see the crate docs on
    /// types); anything else is refused here, before it reaches the store.
    pub async fn insert<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), SessionError> {
        check_key(key)?;
        let mut state = self.state.lock().await;
        state.load_to_change().await?;
        let config = state.engine().config();
        let (format, limit) = (config.format, config.max_record_size);
        state.set_encoded(key, |out| {
            let start = out.len();
            storable(out, key, value, format)?;
            let size = out.len() - start;
            if size > limit {
                return Err(SessionError::TooLarge { size, limit });
            }
            Ok(())
        })
    }

    /// Removes `key`; tells whether it was there.
    pub async fn remove(&self, key: &str) -> Result<bool, SessionError> {
        check_key(key)?;
        let mut state = self.state.lock().await;
        let existed = state.load_to_change().await?.get(key).is_some();
        state.apply(Change::Remove(key))?;
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
        let mut state = self.state.lock().await;
        let updater = updater(f, state.engine().config().format);
        state.load_to_change().await?;
        let record = state.apply(Change::Update(key, updater))?;
        let value = record.get(key).expect("an update sets its key");
        from_raw(key, value)
    }

    /// Removes every key. A session left empty is deleted from the store and
    /// its cookie removed.
    pub async fn clear(&self) -> Result<(), SessionError> {
        self.change(Change::Clear).await
    }

    /// Whether `key` is set.
    pub async fn contains_key(&self, key: &str) -> Result<bool, SessionError> {
        Ok(self.state.lock().await.load().await?.get(key).is_some())
    }

    /// The keys, in insertion order (metadata such as `_permanent` excluded).
    pub async fn keys(&self) -> Result<Vec<String>, SessionError> {
        let mut state = self.state.lock().await;
        Ok(state.load().await?.data_keys().map(str::to_owned).collect())
    }

    /// Whether the session holds no key.
    pub async fn is_empty(&self) -> Result<bool, SessionError> {
        Ok(self.state.lock().await.load().await?.data_keys().next().is_none())
    }

    /// The id of the stored session, or `None` while it has not been saved.
    pub async fn id(&self) -> Result<Option<SessionId>, SessionError> {
        self.state.lock().await.id().await
    }

    /// Gives the session a new id and keeps its data: call it when privileges
    /// change (at login), so an id planted before cannot ride along. The old
    /// id stops working when the request commits.
    pub async fn cycle_id(&self) -> Result<(), SessionError> {
        self.state.lock().await.cycle().await
    }

    /// Binds the session to `user` (an id of yours, say a user id or an
    /// email address) and gives it a new id, as [`cycle_id`](Self::cycle_id)
    /// does, so an id planted before login cannot ride along. With
    /// [`Sessions::with_user_sessions`](crate::Sessions::with_user_sessions)
    /// the session joins the user's index, and can be listed and revoked.
    /// [`destroy`](Self::destroy) (logout) and [`clear`](Self::clear) end
    /// the binding. The login time is the session's creation time from then
    /// on, so an [absolute timeout](crate::SessionConfig::absolute_timeout)
    /// counts from the last login.
    ///
    /// It keeps the session's data: what a handler stored before the login
    /// (a cart, a locale, a CSRF token) is still there after it. Remove or
    /// replace what must not cross a change of privilege, a CSRF token
    /// above all (a page seen before logging in may have leaked it); call
    /// [`clear`](Self::clear) first to keep nothing.
    ///
    /// ```
    /// use server_session::{Session, SessionError};
    ///
    /// async fn login(session: Session) -> Result<&'static str, SessionError> {
    ///     // ... after checking the password of "alice":
    ///     session.login("alice").await?;
    ///     Ok("welcome")
    /// }
    /// ```
    pub async fn login(&self, user: &str) -> Result<(), SessionError> {
        self.state.lock().await.login(user).await
    }

    /// The user the session is bound to by [`login`](Self::login), if any.
    pub async fn user(&self) -> Result<Option<String>, SessionError> {
        self.state.lock().await.user().await
    }

    /// The live sessions of this session's user, this one marked
    /// [`current`](SessionInfo::current), most recently seen first; none
    /// when no user is logged in. Costs one store call for the index and one
    /// per session. Needs
    /// [`Sessions::with_user_sessions`](crate::Sessions::with_user_sessions).
    pub async fn user_sessions(&self) -> Result<Vec<SessionInfo>, SessionError> {
        self.state.lock().await.user_sessions().await
    }

    /// Revokes the session of this session's user named by `handle` (from
    /// [`user_sessions`](Self::user_sessions)); tells whether there was one.
    /// Another user's sessions cannot be named this way. Revoking the current
    /// session ends it as [`destroy`](Self::destroy) would, without removing
    /// the cookie in this response.
    pub async fn revoke(&self, handle: &SessionHandle) -> Result<bool, SessionError> {
        let revoked = self.state.lock().await.revoke(|h, _| h == handle).await?;
        Ok(revoked > 0)
    }

    /// Revokes every other session of this session's user ("log out
    /// everywhere else", say after a password change); returns how many.
    pub async fn revoke_other_sessions(&self) -> Result<usize, SessionError> {
        self.state.lock().await.revoke(|_, current| !current).await
    }

    /// Deletes the session from the store and removes the cookie (logout).
    /// A request that still holds the old session can never bring it back.
    /// Keys set after this start a new session with a new id.
    pub async fn destroy(&self) -> Result<(), SessionError> {
        self.state.lock().await.destroy();
        Ok(())
    }

    /// Makes the session permanent (its cookie gets `Expires`) or ends it with
    /// the browser session.
    pub async fn set_permanent(&self, permanent: bool) -> Result<(), SessionError> {
        let flag = if permanent { record::TRUE } else { record::FALSE };
        self.change(Change::Set(record::PERMANENT, &[flag])).await
    }

    /// Whether the session is permanent.
    pub async fn is_permanent(&self) -> Result<bool, SessionError> {
        Ok(self.state.lock().await.load().await?.permanent())
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
        match lifetime {
            Some(lifetime) => {
                let secs = record::encode_u64(lifetime.as_secs().max(1));
                self.change(Change::Set(record::LIFETIME, &secs)).await
            }
            None => self.change(Change::Remove(record::LIFETIME)).await,
        }
    }

    /// Commits the changes now rather than after the handler, merging with
    /// concurrent changes as usual; afterwards the session shows the committed
    /// values. For a handler that must answer with what was stored.
    pub async fn save(&self) -> Result<(), SessionError> {
        self.state.lock().await.save().await
    }

    async fn change(&self, change: Change<'_>) -> Result<(), SessionError> {
        let mut state = self.state.lock().await;
        state.load_to_change().await?;
        state.apply(change)?;
        Ok(())
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

/// The [`Updater`] of [`Session::update`]'s `f`. One closure per format, so
/// that each holds `f` alone: a closure that captures nothing then needs no
/// allocation.
fn updater<T, F>(f: F, format: Format) -> Updater
where
    T: Serialize + DeserializeOwned,
    F: Fn(Option<T>) -> T + Send + Sync + 'static,
{
    match format {
        Format::MessagePack => Box::new(move |key: &str, current: Option<&[u8]>, out: &mut Vec<u8>| {
            updated(&f, key, current, out, Format::MessagePack)
        }),
        Format::Json => Box::new(move |key: &str, current: Option<&[u8]>, out: &mut Vec<u8>| {
            updated(&f, key, current, out, Format::Json)
        }),
    }
}

/// Appends what `f` makes of the encoded `current` value of `key` to `out`.
fn updated<T, F>(
    f: &F,
    key: &str,
    current: Option<&[u8]>,
    out: &mut Vec<u8>,
    format: Format,
) -> Result<(), SessionError>
where
    T: Serialize + DeserializeOwned,
    F: Fn(Option<T>) -> T,
{
    let current = current.map(|raw| from_raw::<T>(key, raw)).transpose()?;
    storable(out, key, &f(current), format)
}

fn check_key(key: &str) -> Result<(), SessionError> {
    if Record::is_metadata(key) {
        return Err(SessionError::ReservedKey(key.to_owned()));
    }
    Ok(())
}

/// A Rust value, encoded as stored: structs become maps with named fields.
#[cfg(test)]
pub(crate) fn to_raw<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>, SessionError> {
    let mut out = Vec::new();
    encode_into(&mut out, key, value)?;
    Ok(out)
}

/// Appends `value`, encoded as stored, to `out`.
fn encode_into<T: Serialize + ?Sized>(out: &mut Vec<u8>, key: &str, value: &T) -> Result<(), SessionError> {
    rmp_serde::encode::write_named(out, value).map_err(|e| SessionError::Encode {
        key: key.to_owned(),
        source: ValueError::Serialize(e),
    })
}

/// Appends `value`, encoded as stored, to `out`, if Flask can read it back;
/// otherwise fails and may leave part of it there.
fn storable<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    key: &str,
    value: &T,
    format: Format,
) -> Result<(), SessionError> {
    let start = out.len();
    encode_into(out, key, value)?;
    match flask_incompatibility(&out[start..], format) {
        None => Ok(()),
        Some(why) => Err(SessionError::Encode {
            key: key.to_owned(),
            source: why,
        }),
    }
}

/// A stored (encoded) value as a Rust value.
pub(crate) fn from_raw<T: DeserializeOwned>(key: &str, raw: &[u8]) -> Result<T, SessionError> {
    rmp_serde::from_slice(raw).map_err(|e| SessionError::Decode {
        key: key.to_owned(),
        source: ValueError::Deserialize(e),
    })
}
