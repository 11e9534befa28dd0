//! The engine, free of any framework: what every request shares (the
//! configuration, the store, the cookie writer, the counters) and the store
//! calls with their logging. One request's state machine is
//! [`RequestState`], in `request.rs`, its only owner; what a response gets is
//! a [`Plan`], in `plan.rs`; what is counted and measured (and, with the
//! `metrics` feature, reported through the `metrics` crate), in
//! `telemetry.rs`.

mod admin;
pub(crate) mod configured;
mod pending;
mod plan;
mod request;
mod telemetry;
mod users;

pub(crate) use pending::{Finish, Pending, SharedState};
pub(crate) use plan::Plan;
#[cfg(feature = "actix")]
pub(crate) use plan::ResponseHeaders;
pub(crate) use request::RequestState;
pub(crate) use users::{Client, UserIndex};

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::FutureExt as _;
use http::HeaderValue;

use crate::change::ChangeLog;
use crate::clock::unix_secs;
use crate::config::{ConfigError, SessionConfig};
use crate::cookie::{CookieWriter, Signer};
use crate::error::{RecordError, SessionError};
use crate::id::{LogHasher, SessionId};
use crate::record::{self, Format, Record};
use crate::store::{DynStore, Expect, SaveOutcome, StoreError};
use telemetry::{Event, Op, Telemetry};

/// How long one commit goes on merging and saving again while other
/// requests keep changing its session, before it gives up: the commits of
/// one process take turns, so this bounds a wait behind the other
/// processes' commits, not a number of tries.
const CONTENTION_LIMIT: Duration = Duration::from_secs(10);

/// Fresh ids drawn for one new session before giving up. With 128 random
/// bits or more, a second draw is already a sign that the store answers
/// wrongly.
const MAX_ID_DRAWS: usize = 4;

/// Locks that serialize the retries of conflicting commits of one session
/// within this process; picked by a hash of the id.
const RETRY_LOCKS: usize = 256;

/// Session cookies looked at per request. Browsers send more than one only
/// for cookies of the same name set for other paths or domains; a header
/// stuffed with forged candidates costs at most this many signature checks.
const MAX_CANDIDATES: usize = 4;

/// What a cycled id's old key holds until it expires: a record without data,
/// which every reader treats as no session, and which makes a concurrent save
/// on the old id fail instead of bringing the session back.
const TOMBSTONE: &[u8] = &[0x80];
const TOMBSTONE_TTL: Duration = Duration::from_secs(5);

/// The session cookie a request presented.
#[derive(Debug)]
pub(crate) enum Presented {
    /// No session cookie.
    Absent,
    /// A session cookie that is malformed, unsigned or wrongly signed.
    Invalid,
    /// A well-formed (and, with a signer, verified) id.
    Valid(SessionId),
}

/// Counters of what the engine did, for monitoring and tests.
///
/// With the `metrics` feature, each is also a counter of the `metrics`
/// crate, counted at the same point (`server_session_{field}_total`), so
/// the two always agree. A store call that fails counts in `store_errors`
/// only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Store loads that answered, with a record or without: the requests'
    /// loads, and those of logouts, listings and revocations.
    pub loads: u64,
    /// Records stored under a new id: new sessions, and sessions whose id
    /// was cycled (`cycle_id`, `login`).
    pub creates: u64,
    /// Conditional saves of an existing session's record that applied
    /// (after a conflict, only the one that applied counts).
    pub saves: u64,
    /// Store deletes done: logouts, emptied sessions, the old id of a
    /// cycled session, records nobody can use.
    pub deletes: u64,
    /// Saves that found the session changed by another request and merged.
    pub conflicts: u64,
    /// Saves dropped because the session had been destroyed, regenerated or
    /// expired meanwhile.
    pub gone: u64,
    /// Records that could not be decoded and were discarded.
    pub undecodable: u64,
    /// Store calls that failed.
    pub store_errors: u64,
}

/// The shared half of a session layer.
pub(crate) struct Engine {
    config: SessionConfig,
    store: Arc<dyn DynStore>,
    /// The index of each user's sessions, when they are kept.
    users: Option<UserIndex>,
    cookie: CookieWriter,
    signer: Option<Signer>,
    log: LogHasher,
    telemetry: Telemetry,
    retry_locks: Box<[tokio::sync::Mutex<()>]>,
    lock_hasher: RandomState,
}

impl Engine {
    pub(crate) fn new(
        store: Arc<dyn DynStore>,
        users: Option<UserIndex>,
        config: SessionConfig,
    ) -> Result<Engine, ConfigError> {
        config.validate()?;
        if let Some(users) = &users {
            users.settings.validate()?;
        }
        if let Some(secret) = config.secret.as_ref().filter(|s| s.0.len() < 32) {
            tracing::warn!(
                bytes = secret.0.len(),
                "the secret that signs session cookies (SECRET_KEY) is shorter than 32 bytes; \
                 use at least 32 random bytes"
            );
        }
        let signer = config
            .secret
            .as_ref()
            .map(|secret| Signer::new(&secret.0, config.fallback_secrets.iter().map(|s| s.0.as_slice())));
        let cookie = CookieWriter::new(config.cookie.clone());
        let log = LogHasher::new(config.secret.as_ref().map(|s| s.0.as_slice()));
        Ok(Engine {
            config,
            store,
            users,
            cookie,
            signer,
            log,
            telemetry: Telemetry::default(),
            retry_locks: (0..RETRY_LOCKS).map(|_| tokio::sync::Mutex::new(())).collect(),
            lock_hasher: RandomState::new(),
        })
    }

    /// Tries the store once in the background, when there is a runtime:
    /// the log then says at info level which store the application
    /// reached, or warns that it could not (the application starts anyway,
    /// and its session requests answer 503 until it can).
    pub(crate) fn probe(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let what = self.config.store.describe();
        // No session id has this key: '!' is not in the id alphabet.
        let key = format!("{}startup-check!", self.config.key_prefix);
        let store = self.store.clone();
        runtime.spawn(async move {
            match store.load(&key, None, 1).await {
                Ok(_) | Err(StoreError::TooLarge { .. } | StoreError::WrongType) => {
                    tracing::info!(store = %what, "session store reached");
                }
                Err(err) => tracing::warn!(
                    store = %what,
                    error = %err,
                    "session store not reached; session requests answer 503 until it is"
                ),
            }
        });
    }

    pub(crate) fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub(crate) fn metrics(&self) -> Metrics {
        self.telemetry.metrics()
    }
    /// The first session cookie that holds a valid id, among the first
    /// [`MAX_CANDIDATES`]. No I/O.
    pub(crate) fn read_cookie<'h>(&self, headers: impl Iterator<Item = &'h HeaderValue>) -> Presented {
        let mut presented = Presented::Absent;
        for value in self.cookie.settings().find(headers).take(MAX_CANDIDATES) {
            let sid = match &self.signer {
                Some(signer) => std::str::from_utf8(value)
                    .ok()
                    .and_then(|value| signer.unsign(value))
                    .map(str::as_bytes),
                None => Some(value),
            };
            match sid.and_then(|sid| self.parse_id(sid)) {
                Some(id) => return Presented::Valid(id),
                None => presented = Presented::Invalid,
            }
        }
        presented
    }

    /// `value` as a session id, if it is one, carrying its store key.
    pub(crate) fn parse_id(&self, value: impl AsRef<[u8]>) -> Option<SessionId> {
        SessionId::parse_under(self.id_prefix(), value, self.config.id_length)
    }

    /// A fresh session id, carrying its store key.
    fn new_id(&self) -> SessionId {
        SessionId::generate_under(self.id_prefix(), self.config.id_length)
    }

    /// The prefix an id carries: the key prefix, unless keys hold a hash
    /// of the id instead.
    fn id_prefix(&self) -> &str {
        if self.config.hash_ids {
            ""
        } else {
            &self.config.key_prefix
        }
    }

    pub(super) fn now(&self) -> SystemTime {
        self.config.clock.0.now()
    }

    /// The record of a session that has never been stored.
    pub(crate) fn new_record(&self) -> Record {
        let mut record = Record::new();
        if self.config.permanent {
            record.set(record::PERMANENT, &[record::TRUE]);
        }
        if self.config.absolute_timeout.is_some() {
            record.set(record::CREATED, &record::encode_u64(unix_secs(self.now())));
        }
        record
    }

    /// The TTL every session gets unless its record says otherwise.
    fn default_ttl(&self) -> Duration {
        self.idle_capped(self.config.lifetime)
    }

    /// `lifetime`, or the idle timeout when that is shorter: a longer
    /// lifetime ("remember me") never lifts the idle timeout.
    fn idle_capped(&self, lifetime: Duration) -> Duration {
        self.config
            .idle_timeout
            .map_or(lifetime, |idle| idle.min(lifetime))
    }

    /// Whether reads slide the expiry.
    fn slides(&self) -> bool {
        self.config.refresh_each_request || self.config.idle_timeout.is_some()
    }

    /// Time left before the absolute deadline (zero once it passed).
    fn absolute_left(&self, record: &Record, now: SystemTime) -> Option<Duration> {
        let limit = self.config.absolute_timeout?;
        let age = Self::created(record, now).map_or(0, |created| unix_secs(now) - created);
        Some(limit.saturating_sub(Duration::from_secs(age)))
    }

    /// When the session was created, if the record says and the stamp is
    /// not in the future (which only a forged or corrupt record holds).
    fn created(record: &Record, now: SystemTime) -> Option<u64> {
        record
            .meta_u64(record::CREATED)
            .filter(|created| *created <= unix_secs(now))
    }

    /// The record's own lifetime, cut to the maximum a configuration allows:
    /// the stored number is untrusted.
    fn lifetime_override(record: &Record) -> Option<Duration> {
        record
            .meta_u64(record::LIFETIME)
            .map(|secs| Duration::from_secs(secs).min(SessionConfig::MAX_LIFETIME))
    }

    /// The store TTL for `record`: its lifetime (the record's override, else
    /// the configured one), never longer than the idle timeout, and never
    /// past the absolute deadline.
    fn ttl(&self, record: &Record, now: SystemTime) -> Duration {
        let lifetime = Self::lifetime_override(record).unwrap_or(self.config.lifetime);
        let ttl = self.idle_capped(lifetime);
        let ttl = self.absolute_left(record, now).map_or(ttl, |left| ttl.min(left));
        ttl.max(Duration::from_secs(1))
    }

    /// The cookie's `Expires` for `record`: none unless permanent.
    fn expires(&self, record: &Record, now: SystemTime) -> Option<SystemTime> {
        if !record.permanent() {
            return None;
        }
        let life = Self::lifetime_override(record).unwrap_or(self.config.lifetime);
        let life = self
            .absolute_left(record, now)
            .map_or(life, |left| life.min(left));
        now.checked_add(life)
    }

    /// Names the session `id` in `span`, by its keyed hash, if the span is
    /// listened to.
    pub(crate) fn name_in(&self, span: &tracing::Span, id: &SessionId) {
        if !span.is_disabled() {
            span.record("session", tracing::field::display(self.log.hash(id)));
        }
    }

    fn store_failed(&self, err: &StoreError, what: &str, id: &SessionId) {
        self.telemetry.store_error(err);
        tracing::error!(session = %self.log.hash(id), error = %err, "session store failed to {what}");
    }

    /// The usable stored record of `id`. A valid id costs one store call,
    /// which slides the expiry when reads do and the load is for a `read`
    /// (a load for a change leaves it to the save); what nobody can use (an
    /// undecodable record, one past its absolute deadline) is deleted.
    async fn fetch(&self, id: &SessionId, read: bool) -> Fetched {
        let key = self.key(id);
        let slide = (read && self.slides()).then(|| self.default_ttl());
        let bytes = match self.load_key(&key, slide).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Fetched::Missing,
            Err(err @ (StoreError::WrongType | StoreError::TooLarge { .. })) => {
                self.undecodable(&key, id, &err).await;
                return Fetched::Missing;
            }
            Err(err) => {
                self.store_failed(&err, "load", id);
                return Fetched::Failed(Arc::new(err));
            }
        };
        let now = self.now();
        let record = match Record::decode_owned(bytes, self.config.format, !read) {
            Ok(record) => record,
            Err(err) => {
                self.undecodable(&key, id, &err).await;
                return Fetched::Missing;
            }
        };
        if !record.has_data() {
            // A tombstone of a cycled id: the session lives on under another
            // id. The sliding load stretched its expiry; put it back.
            if slide.is_some() && record.source() == Some(TOMBSTONE) {
                self.touch(&key, id, TOMBSTONE_TTL).await;
            }
            return Fetched::Missing;
        }
        if self.absolute_left(&record, now) == Some(Duration::ZERO) {
            tracing::debug!(session = %self.log.hash(id), "session passed its absolute timeout");
            self.discard(&key, id).await;
            return Fetched::Missing;
        }
        let mut refreshed = false;
        if let Some(slid) = slide {
            let ttl = self.ttl(&record, now);
            if ttl != slid {
                self.touch(&key, id, ttl).await;
            }
            refreshed = self.config.refresh_each_request && record.permanent();
        }
        Fetched::Found { record, refreshed }
    }

    /// The store's `load` of `key`, at most the record size limit, timed,
    /// and counted when it answers. Plain futures rather than `async fn`s,
    /// here and below, so that a store call adds no layer of state to the
    /// request's future.
    fn load_key<'a>(
        &'a self,
        key: &'a str,
        slide: Option<Duration>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + 'a {
        let limit = self.config.max_record_size;
        let load = self.telemetry.timed(Op::Load, self.store.load(key, slide, limit));
        load.inspect(|loaded| {
            if loaded.is_ok() {
                self.telemetry.count(Event::Load);
            }
        })
    }

    /// The store's `save`, timed.
    fn save_key<'a>(
        &'a self,
        key: &'a str,
        bytes: &'a [u8],
        ttl: Duration,
        expect: Expect<'a>,
    ) -> impl Future<Output = Result<SaveOutcome, StoreError>> + 'a {
        self.telemetry
            .timed(Op::Save, self.store.save(key, bytes, ttl, expect))
    }

    /// The store's `delete` of `key`, timed, and counted when done.
    fn delete_key<'a>(&'a self, key: &'a str) -> impl Future<Output = Result<(), StoreError>> + 'a {
        let delete = self.telemetry.timed(Op::Delete, self.store.delete(key));
        delete.inspect(|deleted| {
            if deleted.is_ok() {
                self.telemetry.count(Event::Delete);
            }
        })
    }

    /// Sets the expiry of `key`; a failure only leaves the one it had.
    async fn touch(&self, key: &str, id: &SessionId, ttl: Duration) {
        let touched = self.telemetry.timed(Op::Touch, self.store.touch(key, ttl)).await;
        if let Err(err) = touched {
            self.store_failed(&err, "touch", id);
        }
    }

    /// Counts, logs and deletes what `key` holds: not a record this engine
    /// can read.
    async fn undecodable(&self, key: &str, id: &SessionId, err: &(dyn std::fmt::Display + Sync)) {
        self.telemetry.count(Event::Undecodable);
        tracing::warn!(session = %self.log.hash(id), error = %err, "discarding an undecodable session record");
        self.discard(key, id).await;
    }

    /// Deletes a record nobody can use; a failure only leaves it to expire.
    async fn discard(&self, key: &str, id: &SessionId) {
        if let Err(err) = self.delete_key(key).await {
            self.store_failed(&err, "delete", id);
        }
    }

    /// The bytes to store for `record`, in the configured format, refused
    /// when larger than the configured limit. A record another writer stored
    /// may hold values JSON cannot express (every value inserted here was
    /// checked); it is kept as MessagePack, which holds any value and which
    /// Flask-Session reads whatever its format.
    fn encode(&self, record: &Record) -> Result<Vec<u8>, SessionError> {
        let encoded = record.encode(self.config.format).or_else(|err| {
            if self.config.format != Format::Json {
                return Err(err);
            }
            tracing::warn!(error = %err, "session record kept as MessagePack: JSON cannot hold one of its values");
            record.encode(Format::MessagePack)
        });
        let bytes = encoded.map_err(|e| SessionError::Record(RecordError(e)))?;
        let limit = self.config.max_record_size;
        if bytes.len() > limit {
            tracing::warn!(size = bytes.len(), limit, "session record too large; not saved");
            return Err(SessionError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        Ok(bytes)
    }

    /// The record another request stored, with `changes` replayed on it;
    /// `None` when it holds no data: a tombstone, so the session ended.
    fn rebase(&self, current: &[u8], changes: &ChangeLog) -> Result<Option<Record>, SessionError> {
        let mut record = match Record::decode(current, self.config.format) {
            Ok(record) if !record.has_data() => return Ok(None),
            Ok(record) => record,
            Err(_) => {
                self.telemetry.count(Event::Undecodable);
                self.new_record()
            }
        };
        changes.replay(&mut record)?;
        Ok(Some(record))
    }

    /// Stores the record `bytes` under `id` if the store still holds what
    /// `expect` says; counted as a create or a save when it applies.
    async fn save(
        &self,
        id: &SessionId,
        bytes: &[u8],
        ttl: Duration,
        expect: Expect<'_>,
    ) -> Result<SaveOutcome, SessionError> {
        let outcome = self.save_raw(id, bytes, ttl, expect).await?;
        if outcome == SaveOutcome::Saved {
            let event = match expect {
                Expect::Absent => Event::Create,
                Expect::Unchanged(_) => Event::Save,
            };
            self.telemetry.stored(event, bytes.len());
        }
        Ok(outcome)
    }

    /// Stores `bytes` (a record or a tombstone) under `id` if the store still
    /// holds what `expect` says.
    async fn save_raw(
        &self,
        id: &SessionId,
        bytes: &[u8],
        ttl: Duration,
        expect: Expect<'_>,
    ) -> Result<SaveOutcome, SessionError> {
        let key = self.key(id);
        let saved = self.save_key(&key, bytes, ttl, expect).await;
        saved.map_err(|e| self.failed(e, "save", id))
    }

    /// Stores `bytes` under a fresh id; with `index`, a session of that
    /// user until that time, added to the user's index first.
    async fn create(
        &self,
        bytes: &[u8],
        ttl: Duration,
        index: Option<(&str, SystemTime)>,
    ) -> Result<SessionId, SessionError> {
        for _ in 0..MAX_ID_DRAWS {
            let id = self.new_id();
            if let Some((user, until)) = index {
                self.index_add(user, &id, until).await?;
            }
            let saved = self.save(&id, bytes, ttl, Expect::Absent).await;
            if matches!(saved, Ok(SaveOutcome::Saved)) {
                return Ok(id);
            }
            if let Some((user, _)) = index {
                self.index_remove(user, &id).await;
            }
            // Anything but Saved is an id collision: draw again.
            saved?;
        }
        tracing::error!(
            draws = MAX_ID_DRAWS,
            "the session store reports every new id as taken"
        );
        Err(SessionError::NoFreeId(MAX_ID_DRAWS))
    }

    /// Writes the record of a cycling session under its new id: a fresh one,
    /// or the one written by an earlier attempt of the same commit.
    async fn write_moved(
        &self,
        previous: Option<(SessionId, Vec<u8>)>,
        bytes: &[u8],
        ttl: Duration,
        index: Option<(&str, SystemTime)>,
    ) -> Result<(SessionId, Vec<u8>), SessionError> {
        if let Some((id, old)) = previous {
            if self.save(&id, bytes, ttl, Expect::Unchanged(&old)).await? == SaveOutcome::Saved {
                return Ok((id, bytes.to_vec()));
            }
            self.delete(&id).await?;
            if let Some((user, _)) = index {
                self.index_remove(user, &id).await;
            }
        }
        Ok((self.create(bytes, ttl, index).await?, bytes.to_vec()))
    }

    /// Ends `id` with a tombstone if it still holds what `expect` says: a
    /// request still holding the old id then fails to save instead of
    /// bringing the session back.
    async fn retire(&self, id: &SessionId, expect: Expect<'_>) -> Result<SaveOutcome, SessionError> {
        self.save_raw(id, TOMBSTONE, TOMBSTONE_TTL, expect).await
    }

    /// Removes a retired id's tombstone rather than let it linger until it
    /// expires, if the store lets us; the tombstone ends the id by itself.
    async fn forget(&self, id: &SessionId) {
        self.discard(&self.key(id), id).await;
    }

    async fn delete(&self, id: &SessionId) -> Result<(), SessionError> {
        self.delete_key(&self.key(id))
            .await
            .map_err(|e| self.failed(e, "delete", id))
    }

    fn failed(&self, err: StoreError, what: &str, id: &SessionId) -> SessionError {
        self.store_failed(&err, what, id);
        SessionError::Store(Arc::new(err))
    }

    /// Counts and logs a save that found the session changed; once the
    /// commit has gone on for longer than the limit since its first
    /// conflict (`since`), the error that gives up.
    fn conflicted(
        &self,
        id: &SessionId,
        attempts: usize,
        since: tokio::time::Instant,
    ) -> Result<(), SessionError> {
        self.telemetry.count(Event::Conflict);
        tracing::debug!(session = %self.log.hash(id), attempts, "session changed concurrently; merging");
        if since.elapsed() >= CONTENTION_LIMIT {
            tracing::warn!(session = %self.log.hash(id), attempts, "session changes not saved: too much contention");
            return Err(SessionError::Contention(attempts));
        }
        Ok(())
    }

    /// Counts and logs a save dropped because the session ended.
    fn ended(&self, id: &SessionId) {
        self.telemetry.count(Event::Gone);
        tracing::info!(session = %self.log.hash(id), "session ended by another request; changes dropped");
    }

    /// The turn that serializes this process's conflicting commits of `id`:
    /// taken after a first conflict, they then merge one after the other
    /// instead of colliding again and again.
    async fn retry_turn(&self, id: &SessionId) -> tokio::sync::MutexGuard<'_, ()> {
        self.turn_lock(id).lock().await
    }

    /// The turn, when another commit of this process holds it now (its
    /// session is under contention): this commit then waits its turn
    /// before even a first save, rather than race the commits queued before
    /// it and make them start again. When nobody holds it, none is taken,
    /// so a save without contention costs no lock.
    async fn queue_if_contended(&self, id: &SessionId) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        let lock = self.turn_lock(id);
        match lock.try_lock() {
            Ok(_) => None,
            Err(_) => Some(lock.lock().await),
        }
    }

    fn turn_lock(&self, id: &SessionId) -> &tokio::sync::Mutex<()> {
        let stripe = self.lock_hasher.hash_one(id.as_str()) as usize % RETRY_LOCKS;
        &self.retry_locks[stripe]
    }

    /// The `Set-Cookie` value that hands out `id` for `record`.
    fn set_cookie(&self, id: &SessionId, record: &Record) -> HeaderValue {
        let expires = self.expires(record, self.now());
        match &self.signer {
            Some(signer) => self.cookie.set(&signer.sign(id.as_str()), expires),
            None => self.cookie.set(id.as_str(), expires),
        }
    }

    /// The `Set-Cookie` value that removes the session cookie.
    fn remove_cookie(&self) -> HeaderValue {
        self.cookie.removal()
    }
}

/// What [`Engine::fetch`] found.
enum Fetched {
    /// A usable record (which keeps the bytes it was read from);
    /// `refreshed` when the cookie must be sent again with the slid expiry.
    Found { record: Record, refreshed: bool },
    /// No session: none stored, or none usable.
    Missing,
    /// The store failed.
    Failed(Arc<StoreError>),
}

/// A random pause of up to 0.5 ms doubled per attempt (at most 64 ms), so
/// writers that keep colliding spread out.
async fn backoff(attempts: usize) {
    let ceiling = 500u64 << attempts.min(7);
    let jitter = rand::random::<u64>() % ceiling;
    tokio::time::sleep(Duration::from_micros(jitter)).await;
}
