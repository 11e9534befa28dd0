//! The request lifecycle, free of any framework or store: reading the cookie,
//! loading once, and committing with at most one conditional write, merging
//! and retrying when another request changed the session meanwhile.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use http::HeaderValue;

use crate::clock::unix_secs;
use crate::config::{ConfigError, SessionConfig, StoreErrorPolicy};
use crate::cookie::{CookieSettings, CookieWriter, Signer};
use crate::id::{LogHasher, SessionId};
use crate::record::{self, Format, Record};
use crate::session::{Change, CookieOut, Phase, SessionError, State};
use crate::store::{DynStore, Expect, SaveOutcome, StoreError};

/// Saves attempted for one commit before giving up under contention.
const MAX_ATTEMPTS: usize = 32;

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
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

#[derive(Default)]
struct Counters {
    conflicts: AtomicU64,
    gone: AtomicU64,
    undecodable: AtomicU64,
    store_errors: AtomicU64,
}

/// The shared half of a session layer.
pub(crate) struct Engine {
    config: SessionConfig,
    store: Arc<dyn DynStore>,
    cookie: CookieWriter,
    signer: Option<Signer>,
    log: LogHasher,
    counters: Counters,
    retry_locks: Box<[tokio::sync::Mutex<()>]>,
    lock_hasher: RandomState,
}

impl Engine {
    pub(crate) fn new(store: Arc<dyn DynStore>, config: SessionConfig) -> Result<Engine, ConfigError> {
        config.validate()?;
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
        let cookie = CookieWriter::new(CookieSettings {
            name: config.cookie_name.clone(),
            domain: config.cookie_domain.clone(),
            path: config.cookie_path.clone(),
            secure: config.cookie_secure,
            http_only: config.cookie_http_only,
            same_site: config.cookie_same_site,
            partitioned: config.cookie_partitioned,
        });
        let log = LogHasher::new(config.secret.as_ref().map(|s| s.0.as_slice()));
        Ok(Engine {
            config,
            store,
            cookie,
            signer,
            log,
            counters: Counters::default(),
            retry_locks: (0..RETRY_LOCKS).map(|_| tokio::sync::Mutex::new(())).collect(),
            lock_hasher: RandomState::new(),
        })
    }

    pub(crate) fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub(crate) fn metrics(&self) -> Metrics {
        let c = &self.counters;
        Metrics {
            conflicts: c.conflicts.load(Ordering::Relaxed),
            gone: c.gone.load(Ordering::Relaxed),
            undecodable: c.undecodable.load(Ordering::Relaxed),
            store_errors: c.store_errors.load(Ordering::Relaxed),
        }
    }

    /// The first session cookie that holds a valid id, among the first
    /// [`MAX_CANDIDATES`]. No I/O.
    pub(crate) fn read_cookie<'h>(&self, headers: impl Iterator<Item = &'h HeaderValue>) -> Presented {
        let mut presented = Presented::Absent;
        for value in self.cookie.settings().find(headers).take(MAX_CANDIDATES) {
            let sid = match &self.signer {
                Some(signer) => signer.unsign(value),
                None => Some(value),
            };
            match sid.and_then(|sid| SessionId::parse(sid, self.config.id_length)) {
                Some(id) => return Presented::Valid(id),
                None => presented = Presented::Invalid,
            }
        }
        presented
    }

    fn key(&self, id: &SessionId) -> String {
        let mut key = String::with_capacity(self.config.key_prefix.len() + id.as_str().len());
        key.push_str(&self.config.key_prefix);
        key.push_str(id.as_str());
        key
    }

    fn now(&self) -> SystemTime {
        self.config.clock.0.now()
    }

    /// The record of a session that has never been stored.
    pub(crate) fn new_record(&self) -> Record {
        let mut record = Record::default();
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

    fn store_failed(&self, err: &StoreError, what: &str, id: Option<&SessionId>) {
        self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
        let session = id.map(|id| self.log.hash(id)).unwrap_or_default();
        tracing::error!(%session, error = %err, "session store failed to {what}");
    }

    /// Loads the presented session into `state`: a valid id costs one store
    /// call; anything else none. A missing, undecodable or expired record
    /// gives a new session.
    pub(crate) async fn load(&self, presented: &Presented, state: &mut State) {
        state.phase = Phase::Ready;
        if let Presented::Valid(id) = presented
            && let Some((bytes, record)) = self.fetch(id, state).await
        {
            state.id = Some(id.clone());
            state.base = Some(bytes);
            state.record = record;
            let now = self.now();
            if self.config.absolute_timeout.is_some() && Self::created(&state.record, now).is_none() {
                // A session from before the timeout was configured, or from
                // Flask: its absolute deadline starts now. The stamp is a
                // change, saved with this request even if it only reads, so
                // that later reads cannot start the deadline again.
                let stamp = record::encode_u64(unix_secs(now));
                state.record.set(record::CREATED, &stamp);
                state.changes.push(Change::Meta(record::CREATED, Some(stamp)));
            }
        } else {
            state.new_session(self.new_record());
        }
    }

    /// The usable stored record of `id`, with the bytes it was read from;
    /// `None` when there is none (a failed load also sets `state.phase`).
    async fn fetch(&self, id: &SessionId, state: &mut State) -> Option<(Vec<u8>, Record)> {
        let key = self.key(id);
        let slide = self.slides().then(|| self.default_ttl());
        let bytes = match self.store.load(&key, slide).await {
            Ok(bytes) => bytes?,
            Err(err @ StoreError::WrongType) => {
                self.undecodable(&key, id, &err).await;
                return None;
            }
            Err(err) => {
                self.store_failed(&err, "load", Some(id));
                state.phase = match self.config.store_error_policy {
                    StoreErrorPolicy::ServiceUnavailable => Phase::Failed(Arc::new(err)),
                    StoreErrorPolicy::ContinueEmpty => Phase::Detached,
                };
                return None;
            }
        };
        let now = self.now();
        let record = match Record::decode(&bytes, self.config.format) {
            Ok(record) => record,
            Err(err) => {
                self.undecodable(&key, id, &err).await;
                return None;
            }
        };
        if !record.has_data() {
            // A tombstone of a cycled id: the session lives on under another
            // id. The sliding load stretched its expiry; put it back.
            if slide.is_some()
                && bytes == TOMBSTONE
                && let Err(err) = self.store.touch(&key, TOMBSTONE_TTL).await
            {
                self.store_failed(&err, "touch", Some(id));
            }
            return None;
        }
        if self.absolute_left(&record, now) == Some(Duration::ZERO) {
            tracing::debug!(session = %self.log.hash(id), "session passed its absolute timeout");
            self.discard(&key, id).await;
            return None;
        }
        if let Some(slid) = slide {
            let ttl = self.ttl(&record, now);
            if ttl != slid
                && let Err(err) = self.store.touch(&key, ttl).await
            {
                self.store_failed(&err, "touch", Some(id));
            }
            if self.config.refresh_each_request && record.permanent() {
                state.cookie = CookieOut::Set;
            }
        }
        Some((bytes, record))
    }

    /// Counts, logs and deletes what `key` holds: not a record this engine
    /// can read.
    async fn undecodable(&self, key: &str, id: &SessionId, err: &(dyn std::fmt::Display + Sync)) {
        self.counters.undecodable.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(session = %self.log.hash(id), error = %err, "discarding an undecodable session record");
        self.discard(key, id).await;
    }

    /// Deletes a record nobody can use; a failure only leaves it to expire.
    async fn discard(&self, key: &str, id: &SessionId) {
        if let Err(err) = self.store.delete(key).await {
            self.store_failed(&err, "delete", Some(id));
        }
    }

    /// Writes what the handler changed: nothing for a read, a delete for an
    /// emptied or destroyed session, else one conditional save, merged and
    /// retried while other requests change the session.
    pub(crate) async fn commit(&self, state: &mut State) -> Result<(), SessionError> {
        if let Some(old) = state.destroy.take() {
            self.delete(&old).await?;
        }
        if state.changes.is_empty() && !state.cycle {
            return Ok(());
        }
        // While cycling: the new id, already written, and its bytes.
        let mut moved: Option<(SessionId, Vec<u8>)> = None;
        let mut attempts = 0;
        // Taken after a first conflict: other requests of this process that
        // conflict on the same session then merge one after the other instead
        // of colliding again and again.
        let mut turn = None;
        loop {
            let now = self.now();
            if !state.record.has_data() {
                for id in state.id.take().into_iter().chain(moved.take().map(|(id, _)| id)) {
                    self.delete(&id).await?;
                    state.cookie = CookieOut::Remove;
                }
                state.new_session(self.new_record());
                return Ok(());
            }
            let bytes = self.encode(&state.record)?;
            let limit = self.config.max_record_size;
            if bytes.len() > limit {
                tracing::warn!(size = bytes.len(), limit, "session record too large; not saved");
                if let Some((new_id, _)) = moved.take() {
                    // Written by an earlier attempt of this commit.
                    self.delete(&new_id).await?;
                }
                return Err(SessionError::TooLarge {
                    size: bytes.len(),
                    limit,
                });
            }
            let ttl = self.ttl(&state.record, now);
            let Some(id) = state.id.clone() else {
                let id = self.create(&bytes, ttl).await?;
                state.id = Some(id);
                state.saved(bytes);
                return Ok(());
            };
            let expect = Expect::Unchanged(state.base.as_deref().unwrap_or_default());
            let outcome = if state.cycle {
                // Write the new key first, then retire the old one with a
                // conditional save: if the session was destroyed meanwhile, the
                // new key is deleted again and nothing comes back.
                moved = Some(self.write_moved(moved.take(), &bytes, ttl).await?);
                self.store
                    .save(&self.key(&id), TOMBSTONE, TOMBSTONE_TTL, expect)
                    .await
            } else {
                self.store.save(&self.key(&id), &bytes, ttl, expect).await
            };
            match outcome.map_err(|e| self.failed(e, "save", &id))? {
                SaveOutcome::Saved => {
                    if let Some((new_id, _)) = moved {
                        // The old key now holds our tombstone, which ends
                        // the old id by itself; remove it rather than let
                        // it linger until it expires, if the store lets us.
                        self.discard(&self.key(&id), &id).await;
                        state.id = Some(new_id);
                        state.cycle = false;
                    }
                    state.saved(bytes);
                    return Ok(());
                }
                SaveOutcome::Conflict(current) if self.rebase(state, &current)? => {
                    attempts += 1;
                    self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(session = %self.log.hash(&id), attempts, "session changed concurrently; merging");
                    if attempts >= MAX_ATTEMPTS {
                        tracing::warn!(session = %self.log.hash(&id), attempts, "session changes not saved: too much contention");
                        return Err(SessionError::Contention(attempts));
                    }
                    state.base = Some(current);
                    if turn.is_none() {
                        let stripe = self.lock_hasher.hash_one(id.as_str()) as usize % RETRY_LOCKS;
                        turn = Some(self.retry_locks[stripe].lock().await);
                    } else if attempts > 2 {
                        // Still colliding while holding the turn: with another
                        // process. Spread out.
                        backoff(attempts).await;
                    }
                }
                SaveOutcome::Conflict(_) | SaveOutcome::Gone => {
                    if let Some((new_id, _)) = moved {
                        self.delete(&new_id).await?;
                    }
                    self.counters.gone.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(session = %self.log.hash(&id), "session ended by another request; changes dropped");
                    state.new_session(self.new_record());
                    state.cookie = CookieOut::Keep;
                    return Ok(());
                }
            }
        }
    }

    /// The bytes to store for `record`, in the configured format. A record
    /// another writer stored may hold values JSON cannot express (every value
    /// inserted here was checked); it is kept as MessagePack, which holds any
    /// value and which Flask-Session reads whatever its format.
    fn encode(&self, record: &Record) -> Result<Vec<u8>, SessionError> {
        let encoded = record.encode(self.config.format).or_else(|err| {
            if self.config.format != Format::Json {
                return Err(err);
            }
            tracing::warn!(error = %err, "session record kept as MessagePack: JSON cannot hold one of its values");
            record.encode(Format::MessagePack)
        });
        encoded.map_err(|e| SessionError::Record(e.to_string()))
    }

    /// Replays the request's changes on the record another request stored.
    /// Returns false when that record holds no data: a tombstone, so the
    /// session ended.
    fn rebase(&self, state: &mut State, current: &[u8]) -> Result<bool, SessionError> {
        let mut record = match Record::decode(current, self.config.format) {
            Ok(record) if !record.has_data() => return Ok(false),
            Ok(record) => record,
            Err(_) => {
                self.counters.undecodable.fetch_add(1, Ordering::Relaxed);
                self.new_record()
            }
        };
        for change in &state.changes {
            change.apply(&mut record)?;
        }
        state.record = record;
        Ok(true)
    }

    /// Stores `bytes` under a fresh id.
    async fn create(&self, bytes: &[u8], ttl: Duration) -> Result<SessionId, SessionError> {
        for _ in 0..MAX_ID_DRAWS {
            let id = SessionId::generate(self.config.id_length);
            let outcome = self
                .store
                .save(&self.key(&id), bytes, ttl, Expect::Absent)
                .await
                .map_err(|e| self.failed(e, "save", &id))?;
            // Anything but Saved is an id collision: draw again.
            if outcome == SaveOutcome::Saved {
                return Ok(id);
            }
        }
        tracing::error!(
            draws = MAX_ID_DRAWS,
            "the session store reports every new id as taken"
        );
        Err(SessionError::NoFreeId(MAX_ID_DRAWS))
    }

    /// Writes the record of a cycling session under its new id: a fresh one,
    /// or the one written by an earlier attempt of this commit.
    async fn write_moved(
        &self,
        previous: Option<(SessionId, Vec<u8>)>,
        bytes: &[u8],
        ttl: Duration,
    ) -> Result<(SessionId, Vec<u8>), SessionError> {
        if let Some((id, old)) = previous {
            let expect = Expect::Unchanged(&old);
            let outcome = self.store.save(&self.key(&id), bytes, ttl, expect).await;
            if outcome.map_err(|e| self.failed(e, "save", &id))? == SaveOutcome::Saved {
                return Ok((id, bytes.to_vec()));
            }
            self.delete(&id).await?;
        }
        Ok((self.create(bytes, ttl).await?, bytes.to_vec()))
    }

    async fn delete(&self, id: &SessionId) -> Result<(), SessionError> {
        self.store
            .delete(&self.key(id))
            .await
            .map_err(|e| self.failed(e, "delete", id))
    }

    fn failed(&self, err: StoreError, what: &str, id: &SessionId) -> SessionError {
        self.store_failed(&err, what, Some(id));
        SessionError::Store(Arc::new(err))
    }

    /// The `Set-Cookie` value the response needs, if any.
    pub(crate) fn cookie_header(&self, state: &State) -> Option<HeaderValue> {
        match (state.cookie, &state.id) {
            (CookieOut::Set, Some(id)) => {
                let expires = self.expires(&state.record, self.now());
                Some(match &self.signer {
                    Some(signer) => self.cookie.set(&signer.sign(id.as_str()), expires),
                    None => self.cookie.set(id.as_str(), expires),
                })
            }
            (CookieOut::Remove, _) => Some(self.cookie.removal()),
            _ => None,
        }
    }
}

/// A random pause of up to 0.5 ms doubled per attempt (at most 64 ms), so
/// writers that keep colliding spread out.
async fn backoff(attempts: usize) {
    let ceiling = 500u64 << attempts.min(7);
    let jitter = rand::random::<u64>() % ceiling;
    tokio::time::sleep(Duration::from_micros(jitter)).await;
}
