//! One request's session, from the cookie it presented to the plan for its
//! response: the only code that changes a request's session state, one
//! method per transition.

use std::sync::Arc;

use http::HeaderValue;
use tracing::Instrument as _;
use tracing::field::Empty;

use super::{Client, Engine, Fetched, Plan, Presented};
use crate::change::{Change, ChangeLog, Keep};
use crate::clock::unix_secs;
use crate::error::SessionError;
use crate::id::SessionId;
use crate::record::{self, Record};
use crate::store::{Expect, SaveOutcome, StoreError};
use crate::users::{SessionHandle, SessionInfo};

/// Where the request is in its life.
enum Phase {
    /// Nothing loaded yet.
    Unloaded,
    /// Loaded (or known to be new).
    Ready,
    /// The load failed and the request fails.
    Failed(Arc<StoreError>),
    /// The load failed and the request goes on with an empty session that is
    /// never saved.
    Detached,
}

/// What a commit did, as its span's `outcome` tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Committed {
    /// Nothing to write.
    Unchanged,
    /// The session was destroyed or emptied: deleted.
    Deleted,
    /// A new session was stored.
    Created,
    /// The changes were saved at the first try.
    Saved,
    /// The changes were saved after merging with another request's.
    Merged,
    /// The session was saved under a new id.
    Cycled,
    /// The session ended meanwhile: the changes were dropped.
    Gone,
}

impl Committed {
    fn as_str(self) -> &'static str {
        match self {
            Committed::Unchanged => "unchanged",
            Committed::Deleted => "deleted",
            Committed::Created => "created",
            Committed::Saved => "saved",
            Committed::Merged => "merged",
            Committed::Cycled => "cycled",
            Committed::Gone => "gone",
        }
    }
}

/// The span `make` builds, if anything listens at debug level: otherwise
/// none is built at all, so that a request pays nothing for its spans (a
/// disabled span still formats its fields for the `log` crate's fallback).
fn listened(make: impl FnOnce() -> tracing::Span) -> Option<tracing::Span> {
    if !debug_on() {
        return None;
    }
    Some(make()).filter(|span| !span.is_disabled())
}

/// Whether anything may listen at debug level (one atomic load).
fn debug_on() -> bool {
    use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
    let debug = tracing::Level::DEBUG;
    debug <= STATIC_MAX_LEVEL && debug <= LevelFilter::current()
}

/// What a load found, as its span's `outcome` tells it.
fn load_outcome(fetched: &Fetched) -> &'static str {
    match fetched {
        Fetched::Found { .. } => "found",
        Fetched::Missing => "missing",
        Fetched::Failed(_) => "failed",
    }
}

/// What the response's `Set-Cookie` must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CookieOut {
    Keep,
    Set,
    Remove,
}

/// The values of a request's `Cookie` headers: one, or none, but HTTP/2
/// clients may send several. Kept without copying their bytes, and without
/// an allocation for the usual one.
struct CookieHeaders {
    first: Option<HeaderValue>,
    rest: Vec<HeaderValue>,
}

impl CookieHeaders {
    fn iter(&self) -> impl Iterator<Item = &HeaderValue> {
        self.first.iter().chain(&self.rest)
    }
}

/// The session of one request.
pub(crate) struct RequestState {
    engine: Arc<Engine>,
    /// The request's `Cookie` headers, read on first use so that a request
    /// that never touches the session never scans or verifies its cookie.
    cookies: CookieHeaders,
    presented: Option<Presented>,
    phase: Phase,
    /// The stored session this view is based on; `None` for a new one.
    id: Option<SessionId>,
    /// Its bytes as last saved or merged with, for the conditional save;
    /// `None` when they are those the record was loaded from (or the session
    /// was never stored): see [`base`](Self::base).
    base: Option<Vec<u8>>,
    /// The current view: base plus changes.
    record: Record,
    changes: ChangeLog,
    cycle: bool,
    /// A stored session to delete at commit, and the user it was bound to
    /// when known.
    destroy: Option<(SessionId, Option<String>)>,
    cookie: CookieOut,
    /// The user the stored session is bound to, as loaded or last saved.
    user: Option<String>,
    /// The session logged in during this request: its commit then applies
    /// the limit of sessions per user.
    logged_in: bool,
    /// The commit refreshes the session's entry in its user's index too:
    /// its "last seen" time is being updated, or its expiry may have moved.
    reindex: bool,
    /// The client's details, when the configuration keeps them.
    client: Option<Client>,
}

impl RequestState {
    /// The state of a request that sent these `Cookie` header values. No I/O.
    pub(crate) fn new(
        engine: Arc<Engine>,
        cookies: impl IntoIterator<Item = HeaderValue>,
        client: Option<Client>,
    ) -> RequestState {
        let mut cookies = cookies.into_iter();
        RequestState {
            engine,
            cookies: CookieHeaders {
                first: cookies.next(),
                rest: cookies.collect(),
            },
            presented: None,
            phase: Phase::Unloaded,
            id: None,
            base: None,
            record: Record::default(),
            changes: ChangeLog::default(),
            cycle: false,
            destroy: None,
            cookie: CookieOut::Keep,
            user: None,
            logged_in: false,
            reindex: false,
            client,
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The session cookie the request presented.
    fn presented(&mut self) -> &Presented {
        let (engine, cookies) = (&self.engine, &self.cookies);
        self.presented
            .get_or_insert_with(|| engine.read_cookie(cookies.iter()))
    }

    /// Loads the presented session on first use, to read it: a valid id
    /// costs one store call (which slides the expiry when reads do),
    /// anything else none; a missing, undecodable or expired record gives a
    /// new session. Fails when the store failed and the policy says requests
    /// fail.
    pub(crate) async fn load(&mut self) -> Result<&Record, SessionError> {
        self.load_for(true).await
    }

    /// Loads the presented session on first use, to change it: as
    /// [`load`](Self::load), but the load leaves the expiry alone, since the
    /// save that follows sets it anyway (no `EXPIRE` beside the read on
    /// Redis, which spares the server an expiry update per change).
    pub(crate) async fn load_to_change(&mut self) -> Result<&Record, SessionError> {
        self.load_for(false).await
    }

    async fn load_for(&mut self, read: bool) -> Result<&Record, SessionError> {
        if matches!(self.phase, Phase::Unloaded) {
            self.phase = Phase::Ready;
            let id = match self.presented() {
                Presented::Valid(id) => Some(id.clone()),
                _ => None,
            };
            let fetched = match &id {
                Some(id) => {
                    match listened(|| tracing::debug_span!("session_load", session = Empty, outcome = Empty))
                    {
                        Some(span) => {
                            self.engine.name_in(&span, id);
                            let fetched = self.engine.fetch(id, read).instrument(span.clone()).await;
                            span.record("outcome", load_outcome(&fetched));
                            fetched
                        }
                        None => self.engine.fetch(id, read).await,
                    }
                }
                None => Fetched::Missing,
            };
            match fetched {
                Fetched::Found { record, refreshed } => {
                    self.id = id;
                    self.base = None;
                    self.record = record;
                    if refreshed {
                        self.cookie = CookieOut::Set;
                    }
                    self.stamp_created();
                    if self.engine.user_sessions().is_some() {
                        self.user = self.bound_user();
                        self.stamp_seen();
                    }
                }
                Fetched::Missing => self.new_session(),
                Fetched::Failed(err) => {
                    self.new_session();
                    let policy = self.engine.config.store_error_policy;
                    self.phase = if policy.fails_on(&SessionError::Store(err.clone())) {
                        Phase::Failed(err)
                    } else {
                        Phase::Detached
                    };
                }
            }
        }
        match &self.phase {
            Phase::Failed(err) => Err(SessionError::Store(err.clone())),
            _ => Ok(&self.record),
        }
    }

    /// Gives a loaded session its creation time when an absolute timeout is
    /// configured and it has none (it comes from before the timeout was
    /// configured, or from Flask): its deadline starts now. The stamp is a
    /// change, saved with this request even if it only reads, so that later
    /// reads cannot start the deadline again.
    fn stamp_created(&mut self) {
        if self.engine.config.absolute_timeout.is_none() {
            return;
        }
        let now = self.engine.now();
        if Engine::created(&self.record, now).is_none() {
            let stamp = record::encode_u64(unix_secs(now));
            let keep = self.keep();
            self.changes.set(record::CREATED, &stamp, &mut self.record, keep);
        }
    }

    /// The user the current view is bound to, when the layer indexes
    /// users' sessions (without an index, nothing needs to know: the
    /// request path then skips the lookup).
    fn bound_user(&self) -> Option<String> {
        self.engine.user_sessions()?;
        self.record.meta_str(record::USER).map(str::to_owned)
    }

    /// Brings a user's session's "last seen" time up to date, at most once
    /// per interval: a change, saved with this request, that also refreshes
    /// the session in its user's index. Only where reads slide the expiry:
    /// otherwise a read must not extend the session, and the time is
    /// stamped by the next write instead ([`prepare_reindex`](Self::prepare_reindex)).
    fn stamp_seen(&mut self) {
        let now = self.engine.now();
        if self.engine.slides() && self.engine.seen_due(&self.record, now) {
            self.set_seen(now);
        }
    }

    fn set_seen(&mut self, now: std::time::SystemTime) {
        let stamp = record::encode_u64(unix_secs(now));
        let keep = self.keep();
        self.changes.set(record::SEEN, &stamp, &mut self.record, keep);
        self.reindex = true;
    }

    /// Before a write of a user's session: the write also refreshes its
    /// index entry when "last seen" is due or when the session's lifetime or
    /// permanence changed, so that the entry never expires before the
    /// session.
    fn prepare_reindex(&mut self) {
        if self.reindex
            || self.engine.user_sessions().is_none()
            || self.record.meta_str(record::USER).is_none()
        {
            return;
        }
        let now = self.engine.now();
        if self.engine.seen_due(&self.record, now) {
            self.set_seen(now);
        }
        if self
            .changes
            .names(|k| k == record::LIFETIME || k == record::PERMANENT)
        {
            self.reindex = true;
        }
    }

    /// Binds the session to `user` and gives it a new id at commit.
    pub(crate) async fn login(&mut self, user: &str) -> Result<(), SessionError> {
        self.load_to_change().await?;
        let now = self.engine.now();
        for (key, value) in self.engine.login_changes(user, now, self.client.as_ref()) {
            self.apply(Change::Set(key, &value))?;
        }
        self.cycle = self.id.is_some();
        self.logged_in = true;
        Ok(())
    }

    /// The user the session is bound to.
    pub(crate) async fn user(&mut self) -> Result<Option<String>, SessionError> {
        Ok(self.load().await?.meta_str(record::USER).map(str::to_owned))
    }

    /// The sessions of the session's user (none when it has no user).
    pub(crate) async fn user_sessions(&mut self) -> Result<Vec<SessionInfo>, SessionError> {
        let Some(user) = self.user().await? else {
            return Ok(Vec::new());
        };
        self.engine.list_sessions(&user, self.id.as_ref()).await
    }

    /// Revokes the sessions of the session's user whose handle passes
    /// `pick`; never the current one unless `pick` says so.
    pub(crate) async fn revoke(
        &mut self,
        pick: impl Fn(&SessionHandle, bool) -> bool,
    ) -> Result<usize, SessionError> {
        let Some(user) = self.user().await? else {
            return Ok(0);
        };
        let current = self
            .id
            .as_ref()
            .map(|id| Engine::handle_of(&self.record, &self.engine.member(id)));
        self.engine
            .revoke_sessions(&user, |h| h.is_some_and(|h| pick(h, Some(h) == current.as_ref())))
            .await
    }

    /// Applies a handler's change to the session, once
    /// [`load_to_change`](Self::load_to_change) has loaded it.
    pub(crate) fn apply(&mut self, change: Change<'_>) -> Result<&Record, SessionError> {
        let keep = self.keep();
        self.changes.apply(change, &mut self.record, keep)?;
        Ok(&self.record)
    }

    /// Sets `key` to the value `encode` writes, once
    /// [`load_to_change`](Self::load_to_change) has loaded the session: the
    /// value is encoded straight into the change log.
    pub(crate) fn set_encoded(
        &mut self,
        key: &str,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), SessionError>,
    ) -> Result<(), SessionError> {
        let keep = self.keep();
        self.changes.set_encoded(key, encode, &mut self.record, keep)
    }

    /// What is kept of a change: nothing in a session detached by a failed
    /// load, which is never saved; a note in a session never stored, whose
    /// save cannot meet another version to replay the changes on; else the
    /// change itself, in the log.
    fn keep(&self) -> Keep {
        debug_assert!(
            matches!(self.phase, Phase::Ready | Phase::Detached),
            "changes are made to a loaded session"
        );
        match (&self.phase, &self.id) {
            (Phase::Detached, _) => Keep::Drop,
            (_, None) => Keep::Note,
            (_, Some(_)) => Keep::Log,
        }
    }

    /// Marks the loaded session for a new id at commit.
    pub(crate) async fn cycle(&mut self) -> Result<(), SessionError> {
        self.load_to_change().await?;
        self.cycle = true;
        Ok(())
    }

    /// The id of the stored session, or `None` while it has not been saved.
    pub(crate) async fn id(&mut self) -> Result<Option<SessionId>, SessionError> {
        self.load().await?;
        Ok(self.id.clone())
    }

    /// Ends the session: the stored one is deleted at commit (whether or not
    /// it was loaded), the cookie removed, and what follows starts a new
    /// session. Needs no store call of its own, so it cannot fail.
    pub(crate) fn destroy(&mut self) {
        let unloaded = matches!(self.phase, Phase::Unloaded);
        let target = match self.presented() {
            Presented::Valid(id) if unloaded => Some((id.clone(), None)),
            _ => self.id.clone().map(|id| (id, self.user.take())),
        };
        let presented_any = !matches!(self.presented(), Presented::Absent);
        if target.is_some() {
            self.destroy = target;
        }
        if presented_any || self.destroy.is_some() {
            self.cookie = CookieOut::Remove;
        }
        if matches!(self.phase, Phase::Unloaded | Phase::Failed(_)) {
            self.phase = Phase::Ready;
        }
        self.new_session();
    }

    /// What the store holds for the session as far as this request knows:
    /// the bytes last saved or merged with, else those it was loaded from.
    fn base(&self) -> Option<&[u8]> {
        self.base.as_deref().or_else(|| self.record.source())
    }

    /// Forgets the stored session: the view becomes a new, unsaved one.
    fn new_session(&mut self) {
        self.id = None;
        self.base = None;
        self.record = self.engine.new_record();
        self.changes.clear();
        self.cycle = false;
    }

    /// Marks `bytes` as what the store now holds for this session.
    fn saved(&mut self, bytes: Vec<u8>) {
        self.base = Some(bytes);
        self.changes.clear();
        self.cookie = CookieOut::Set;
    }

    /// Commits now (loading first if needed): afterwards the view shows what
    /// was stored.
    pub(crate) async fn save(&mut self) -> Result<(), SessionError> {
        self.load().await?;
        self.commit().await
    }

    /// Writes what the handler changed: nothing for a read, a delete for an
    /// emptied or destroyed session, else one conditional save, merged and
    /// retried while other requests change the session. A session bound to
    /// a user is kept in the user's index: added before its record is written
    /// under a new id, removed when it ends.
    ///
    /// In a `session_commit` span (at debug level) that tells the outcome
    /// and the saves tried, and names the session by its keyed hash.
    async fn commit(&mut self) -> Result<(), SessionError> {
        let span = listened(|| {
            tracing::debug_span!(
                "session_commit",
                session = Empty,
                outcome = Empty,
                attempts = Empty
            )
        });
        match span {
            // Boxed, so that the span's bookkeeping adds nothing to the
            // state of a commit nobody listens to.
            Some(span) => Box::pin(self.commit_in(span)).await,
            None => self.commit_changes(&mut 0).await.map(drop),
        }
    }

    /// [`commit`](Self::commit) in `span`.
    async fn commit_in(&mut self, span: tracing::Span) -> Result<(), SessionError> {
        let mut tries = 0;
        let named = self.record_session(&span);
        let committed = self.commit_changes(&mut tries).instrument(span.clone()).await;
        if !named {
            // A new session: named once it has an id.
            self.record_session(&span);
        }
        span.record("attempts", tries);
        span.record("outcome", committed.as_ref().map_or("failed", |c| c.as_str()));
        committed.map(drop)
    }

    /// Names the session (the stored one, or the one being destroyed) in
    /// `span` by its keyed hash, if it has an id; tells whether it has one.
    fn record_session(&self, span: &tracing::Span) -> bool {
        let id = self.id.as_ref().or(self.destroy.as_ref().map(|(id, _)| id));
        if let Some(id) = id {
            self.engine.name_in(span, id);
        }
        id.is_some()
    }

    /// [`commit`](Self::commit), counting the saves it tries in `tries`.
    async fn commit_changes(&mut self, tries: &mut usize) -> Result<Committed, SessionError> {
        let destroyed = self.destroy.is_some();
        if let Some((old, user)) = self.destroy.take() {
            // Boxed: a logout's path, kept out of every other commit's state.
            Box::pin(self.engine.end_destroyed(old, user)).await?;
        }
        if self.changes.is_empty() && !self.cycle {
            return Ok(if destroyed {
                Committed::Deleted
            } else {
                Committed::Unchanged
            });
        }
        self.prepare_reindex();
        // While cycling: the new id, already written, and its bytes.
        let mut moved: Option<(SessionId, Vec<u8>)> = None;
        let outcome = self.write(&mut moved, tries).await;
        if let (Err(_), Some((new_id, _))) = (&outcome, moved) {
            // Written by an attempt of this commit that did not complete:
            // nothing may keep it.
            let user = self.record.meta_str(record::USER).map(str::to_owned);
            Box::pin(self.engine.end(new_id, user)).await.ok();
        }
        outcome
    }

    /// The attempts of a [`commit`](Self::commit) that has something to
    /// write, counted in `tries`. An id written for a cycle stays in `moved`
    /// until it becomes the session's.
    async fn write(
        &mut self,
        moved: &mut Option<(SessionId, Vec<u8>)>,
        tries: &mut usize,
    ) -> Result<Committed, SessionError> {
        let engine = self.engine.clone();
        let mut attempts = 0;
        let mut turn = None;
        let mut queued = false;
        let mut since = None;
        loop {
            let now = engine.now();
            let bound = self.bound_user();
            if !self.record.has_data() {
                if let Some(id) = self.id.take() {
                    engine.end(id, self.user.take()).await?;
                    self.cookie = CookieOut::Remove;
                }
                if let Some((id, _)) = moved.take() {
                    engine.delete(&id).await?;
                    self.cookie = CookieOut::Remove;
                }
                self.new_session();
                return Ok(Committed::Deleted);
            }
            let bytes = engine.encode(&self.record)?;
            *tries += 1;
            let ttl = engine.ttl(&self.record, now);
            let index = bound.as_deref().map(|user| (user, engine.index_until(now, ttl)));
            let Some(id) = self.id.clone() else {
                // Boxed: a new session's path, kept out of the state of
                // every save of an existing one.
                let id = Box::pin(engine.create(&bytes, ttl, index)).await?;
                self.id = Some(id.clone());
                self.saved(bytes);
                self.user = bound;
                return self.logged(id).await.map(|()| Committed::Created);
            };
            if !queued {
                queued = true;
                turn = engine.queue_if_contended(&id).await;
            }
            let expect = Expect::Unchanged(self.base().unwrap_or_default());
            let outcome = if self.cycle {
                // Write the new key first, then retire the old one with a
                // conditional save: if the session was destroyed meanwhile, the
                // new key is deleted again and nothing comes back.
                let previous = moved.take();
                *moved = Some(Box::pin(engine.write_moved(previous, &bytes, ttl, index)).await?);
                engine.retire(&id, expect).await?
            } else {
                if let (Some((user, until)), true) = (index, self.reindex) {
                    engine.index_add(user, &id, until).await?;
                }
                engine.save(&id, &bytes, ttl, expect).await?
            };
            match outcome {
                SaveOutcome::Saved => {
                    self.reindex = false;
                    // The old id, or the old binding of this id, leaves the
                    // index of the user it was bound to.
                    let new_id = moved.take().map(|(new_id, _)| new_id);
                    let unbound = self
                        .user
                        .as_ref()
                        .filter(|old| new_id.is_some() || bound.as_ref() != Some(*old));
                    if let Some(old_user) = unbound {
                        engine.index_remove(old_user, &id).await;
                    }
                    self.saved(bytes);
                    self.user = bound;
                    let Some(new_id) = new_id else {
                        return Ok(if attempts == 0 {
                            Committed::Saved
                        } else {
                            Committed::Merged
                        });
                    };
                    engine.forget(&id).await;
                    self.id = Some(new_id.clone());
                    self.cycle = false;
                    return self.logged(new_id).await.map(|()| Committed::Cycled);
                }
                SaveOutcome::Conflict(current) => match engine.rebase(&current, &self.changes)? {
                    Some(record) => {
                        attempts += 1;
                        let since = *since.get_or_insert_with(tokio::time::Instant::now);
                        engine.conflicted(&id, attempts, since)?;
                        self.record = record;
                        self.base = Some(current);
                        if turn.is_none() {
                            turn = Some(engine.retry_turn(&id).await);
                        } else if attempts > 2 {
                            // Still colliding while holding the turn: with
                            // another process. Spread out.
                            super::backoff(attempts).await;
                        }
                    }
                    None => return Box::pin(self.drop_ended(&id, moved.take(), bound)).await,
                },
                SaveOutcome::Gone => return Box::pin(self.drop_ended(&id, moved.take(), bound)).await,
            }
        }
    }

    /// After a commit that gave the session the id `id`: a login applies the
    /// limit of sessions per user.
    async fn logged(&mut self, id: SessionId) -> Result<(), SessionError> {
        if let (true, Some(user)) = (std::mem::take(&mut self.logged_in), &self.user) {
            // The login itself is done; a limit that could not be applied
            // now is applied at the next login.
            if let Err(err) = Box::pin(self.engine.enforce_limit(user, &id)).await {
                tracing::warn!(error = %err, "the limit of sessions per user was not applied");
            }
        }
        Ok(())
    }

    /// The session ended under this request (destroyed, cycled, revoked or
    /// expired by another): its changes are dropped, a new id written for a
    /// cycle is deleted again, so nothing comes back, and neither stays in
    /// the index of `bound`, the user it was bound to.
    async fn drop_ended(
        &mut self,
        id: &SessionId,
        moved: Option<(SessionId, Vec<u8>)>,
        bound: Option<String>,
    ) -> Result<Committed, SessionError> {
        if let Some((new_id, _)) = &moved {
            self.engine.delete(new_id).await?;
        }
        let other = self.user.as_ref().filter(|user| Some(*user) != bound.as_ref());
        for user in bound.iter().chain(other) {
            self.engine.index_remove(user, id).await;
            if let Some((new_id, _)) = &moved {
                self.engine.index_remove(user, new_id).await;
            }
        }
        self.engine.ended(id);
        self.new_session();
        self.user = None;
        self.cookie = CookieOut::Keep;
        Ok(Committed::Gone)
    }

    /// Commits after the handler and decides what the response gets.
    pub(crate) async fn finish(&mut self) -> Plan {
        if let Some(plan) = self.settled() {
            return plan;
        }
        let failure = self.commit().await.err();
        self.plan(failure)
    }

    /// What the response gets, when that needs no store call: the handler
    /// never used the session, the load failed, or nothing is left to
    /// write. `None` when the commit has work to do (or a `session_commit`
    /// span to tell, when debug level is on).
    pub(crate) fn settled(&mut self) -> Option<Plan> {
        let failure = match &self.phase {
            Phase::Unloaded => return Some(Plan::Untouched),
            Phase::Ready
                if self.destroy.is_some() || !self.changes.is_empty() || self.cycle || debug_on() =>
            {
                return None;
            }
            Phase::Ready => None,
            Phase::Failed(err) => Some(SessionError::Store(err.clone())),
            Phase::Detached => {
                self.cookie = CookieOut::Keep;
                None
            }
        };
        Some(self.plan(failure))
    }

    /// The response's part once the commit is done, or `failure` stopped it.
    fn plan(&self, failure: Option<SessionError>) -> Plan {
        if let Some(err) = failure {
            if self.engine.config.store_error_policy.fails_on(&err) {
                return Plan::Fail(err.response());
            }
            // Waved through: the response goes out as the handler made it,
            // varying with the cookie, and hands out nothing.
            return Plan::Respond { set_cookie: None };
        }
        let set_cookie = match (self.cookie, &self.id) {
            (CookieOut::Set, Some(id)) => Some(self.engine.set_cookie(id, &self.record)),
            (CookieOut::Remove, _) => Some(self.engine.remove_cookie()),
            _ => None,
        };
        Plan::Respond { set_cookie }
    }
}
