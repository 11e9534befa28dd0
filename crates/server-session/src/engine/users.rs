//! The engine's side of a user's sessions: what the store calls a session
//! (its id, or a hash of it), the per-user index, listing and revocation.
//!
//! Ordering keeps revocation final. A session's member is added to the index
//! before its record is written under a new id, and removed again if that
//! write does not happen; revocation puts a tombstone over the record first
//! (so no pending write to that id can succeed), then removes the member,
//! and lists again until it finds nothing left to revoke. A request in
//! flight on a revoked session then fails its conditional save and drops
//! its changes, as after a logout.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;
use rand::Rng as _;
use sha2::{Digest, Sha256};

use super::Engine;
use super::telemetry::{Event, Op};
use crate::clock::unix_secs;
use crate::config::UserSessions;
use crate::error::SessionError;
use crate::id::SessionId;
use crate::record::{self, Record};
use crate::store::{DynIndex, Expect, SaveOutcome, StoreError};
use crate::users::{SessionHandle, SessionInfo};

/// Characters of a hashed id: a SHA-256, base64url.
pub(crate) const HASHED_LEN: usize = 43;

/// Rounds of listing and revoking before "revoke all" stops looking for
/// sessions that appeared meanwhile (a login at that very moment is a new
/// session, not one that came back).
const REVOKE_ROUNDS: usize = 8;

/// Conditional saves tried to put a tombstone over a session that keeps
/// changing.
const END_ATTEMPTS: usize = 16;

/// What an adapter saw of the client, kept at login when client details
/// are on.
#[derive(Clone, Debug, Default)]
pub(crate) struct Client {
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) address: Option<IpAddr>,
}

/// The index of each user's sessions, and how it is kept.
pub(crate) struct UserIndex {
    pub(crate) settings: UserSessions,
    pub(crate) index: Arc<dyn DynIndex>,
}

impl Engine {
    /// The user-session settings, when the layer keeps an index.
    pub(crate) fn user_sessions(&self) -> Option<&UserSessions> {
        self.users.as_ref().map(|users| &users.settings)
    }

    /// Whether adapters should pass [`Client`] details.
    pub(crate) fn wants_client(&self) -> bool {
        self.user_sessions().is_some_and(|u| u.client_details)
    }

    /// The index of users' sessions, or the error of a layer without one.
    fn index(&self) -> Result<&dyn DynIndex, SessionError> {
        let users = self.users.as_ref().ok_or(SessionError::UserSessionsOff)?;
        Ok(users.index.as_ref())
    }

    /// What the store calls the session `id`: the id itself, or with hashed
    /// ids a one-way hash of it, so that the store holds nothing that works
    /// as a cookie.
    pub(crate) fn member(&self, id: &SessionId) -> String {
        if self.config.hash_ids {
            URL_SAFE_NO_PAD.encode(Sha256::digest(id.as_str().as_bytes()))
        } else {
            id.as_str().to_owned()
        }
    }

    /// The store key of the session `id`: the one the id carries when it
    /// was made by this engine (see [`Engine::new_id`]), else built.
    pub(crate) fn key<'i>(&self, id: &'i SessionId) -> Cow<'i, str> {
        if self.config.hash_ids {
            return Cow::Owned(self.member_key(&self.member(id)));
        }
        match id.key_under(&self.config.key_prefix) {
            Some(key) => Cow::Borrowed(key),
            None => Cow::Owned(self.member_key(id.as_str())),
        }
    }

    pub(super) fn member_key(&self, member: &str) -> String {
        format!("{}{member}", self.config.key_prefix)
    }

    /// The key of `user`'s index: beside the sessions, not among them (a
    /// Flask-Session app sharing the prefix never reads it as a session).
    pub(super) fn index_key(&self, user: &str) -> String {
        let prefix = self.config.key_prefix.trim_end_matches(':');
        format!("{prefix}_users:{user}")
    }

    /// The handle of the session stored as `member` with `record`: made
    /// from the login's own name, which survives id cycles, so a handle
    /// names the same session before and after one (from the member for a
    /// record that has none).
    pub(crate) fn handle_of(record: &Record, member: &str) -> SessionHandle {
        match record.meta_str(record::LOGIN) {
            Some(login) => Engine::handle(b"login\0", login),
            None => Engine::handle(b"member\0", member),
        }
    }

    fn handle(kind: &[u8], name: &str) -> SessionHandle {
        let digest = Sha256::new()
            .chain_update(b"server-session handle\0")
            .chain_update(kind)
            .chain_update(name.as_bytes())
            .finalize();
        SessionHandle(URL_SAFE_NO_PAD.encode(&digest[..16]))
    }

    /// The metadata that binds a session to `user` at `now`: keys and
    /// encoded values.
    pub(crate) fn login_changes(
        &self,
        user: &str,
        now: SystemTime,
        client: Option<&Client>,
    ) -> Vec<(&'static str, Vec<u8>)> {
        let stamp = record::encode_u64(unix_secs(now));
        let mut login = [0u8; 16];
        rand::rng().fill_bytes(&mut login);
        let login = URL_SAFE_NO_PAD.encode(login);
        let mut changes = vec![
            (record::USER, record::encode_str(user)),
            (record::LOGIN, record::encode_str(&login)),
            (record::CREATED, stamp.clone()),
            (record::SEEN, stamp),
        ];
        let client = client.filter(|_| self.wants_client());
        let agent = client
            .and_then(|c| c.user_agent.as_ref())
            .and_then(|agent| agent.to_str().ok());
        if let Some(agent) = agent {
            let agent: String = agent.chars().take(256).collect();
            changes.push((record::AGENT, record::encode_str(&agent)));
        }
        if let Some(address) = client.and_then(|c| c.address) {
            changes.push((record::ADDRESS, record::encode_str(&network(address))));
        }
        changes
    }

    /// Whether a session bound to a user is due a "last seen" update.
    pub(crate) fn seen_due(&self, record: &Record, now: SystemTime) -> bool {
        let Some(users) = self.user_sessions() else {
            return false;
        };
        if record.meta_str(record::USER).is_none() {
            return false;
        }
        let seen = record.meta_u64(record::SEEN).unwrap_or(0);
        unix_secs(now).saturating_sub(seen) >= users.seen_interval.as_secs()
    }

    /// Until when the index counts a session seen at `now` that lives `ttl`
    /// more: past its expiry even if it is used until just before its next
    /// "last seen" update.
    pub(crate) fn index_until(&self, now: SystemTime, ttl: Duration) -> SystemTime {
        let interval = self.user_sessions().map_or(Duration::ZERO, |u| u.seen_interval);
        // No session lives longer than the longest lifetime, whatever TTL a
        // caller passed: an index never outlives what the store can expire.
        let ttl = ttl.min(crate::SessionConfig::MAX_LIFETIME);
        now.checked_add(ttl.saturating_add(interval)).unwrap_or(now)
    }

    /// Adds the session `id` of `user` to the user's index.
    pub(crate) async fn index_add(
        &self,
        user: &str,
        id: &SessionId,
        until: SystemTime,
    ) -> Result<(), SessionError> {
        let Some(users) = &self.users else {
            return Ok(());
        };
        let (index, member) = (self.index_key(user), self.member(id));
        let added = users.index.index_add(&index, &member, until);
        self.telemetry
            .timed(Op::IndexAdd, added)
            .await
            .map_err(|e| self.failed(e, "index", id))
    }

    /// Removes the session `id` from `user`'s index. A failure only leaves
    /// a member that listings drop, since its record is gone.
    pub(crate) async fn index_remove(&self, user: &str, id: &SessionId) {
        let Some(users) = &self.users else {
            return;
        };
        let (index, member) = (self.index_key(user), self.member(id));
        let removed = users.index.index_remove(&index, &member);
        if let Err(err) = self.telemetry.timed(Op::IndexRemove, removed).await {
            self.store_failed(&err, "update the index", id);
        }
    }

    /// Deletes the stored session `id` and takes it out of `user`'s index.
    pub(crate) async fn end(&self, id: SessionId, user: Option<String>) -> Result<(), SessionError> {
        self.delete(&id).await?;
        if let Some(user) = user {
            self.index_remove(&user, &id).await;
        }
        Ok(())
    }

    /// Ends the session `id` a request destroyed, bound to `user` when the
    /// request knew it; otherwise, with user sessions on, the user is read
    /// first, to take the session out of the user's index.
    pub(crate) async fn end_destroyed(
        &self,
        id: SessionId,
        user: Option<String>,
    ) -> Result<(), SessionError> {
        let user = match user {
            None if self.user_sessions().is_some() => self.bound_user(&id).await,
            user => user,
        };
        self.end(id, user).await
    }

    /// The user the stored session `id` is bound to, if it can be read.
    pub(crate) async fn bound_user(&self, id: &SessionId) -> Option<String> {
        let bytes = match self.load_key(&self.key(id), None).await {
            Ok(bytes) => bytes?,
            Err(err) => {
                self.store_failed(&err, "load", id);
                return None;
            }
        };
        let record = Record::decode(&bytes, self.config.format).ok()?;
        record.meta_str(record::USER).map(str::to_owned)
    }

    async fn members(&self, user: &str) -> Result<(String, Vec<(String, SystemTime)>), SessionError> {
        let store = self.index()?;
        let index = self.index_key(user);
        let members = store.index_members(&index, self.now());
        match self.telemetry.timed(Op::IndexMembers, members).await {
            Ok(members) => Ok((index, members)),
            Err(err) => Err(self.unscoped_failure(err, "list a user's sessions")),
        }
    }

    /// What the store holds for a member; nothing for what no request can
    /// read (a key of another type, a record over the size limit), which
    /// is discarded as a request's load would discard it, so that it can
    /// neither break a listing nor keep a revocation from ending the rest.
    async fn member_bytes(&self, member: &str) -> Result<Option<Vec<u8>>, SessionError> {
        let key = self.member_key(member);
        match self.load_key(&key, None).await {
            Ok(bytes) => Ok(bytes),
            Err(err @ (StoreError::WrongType | StoreError::TooLarge { .. })) => {
                self.telemetry.count(Event::Undecodable);
                tracing::warn!(error = %err, "discarding an unreadable record listed in a user's index");
                if let Err(err) = self.delete_key(&key).await {
                    return Err(self.unscoped_failure(err, "delete an unreadable record"));
                }
                Ok(None)
            }
            Err(err) => Err(self.unscoped_failure(err, "load a listed session")),
        }
    }

    /// `bytes` as a record, if they are a live session of `user`.
    fn user_record(&self, user: &str, bytes: Option<&[u8]>) -> Option<Record> {
        let now = self.now();
        Record::decode(bytes?, self.config.format)
            .ok()
            .filter(|r| r.meta_str(record::USER) == Some(user))
            .filter(|r| self.absolute_left(r, now) != Some(Duration::ZERO))
    }

    /// The record a member names, if it is a live session of `user`.
    async fn member_record(&self, user: &str, member: &str) -> Result<Option<Record>, SessionError> {
        let bytes = self.member_bytes(member).await?;
        Ok(self.user_record(user, bytes.as_deref()))
    }

    /// `user`'s live sessions, most recently seen first; `current` is the
    /// requesting session. A member whose record is missing is skipped, not
    /// removed: it may be a login whose record is being written; members
    /// of ended sessions leave with revocation or when their time passes.
    pub(crate) async fn list_sessions(
        &self,
        user: &str,
        current: Option<&SessionId>,
    ) -> Result<Vec<SessionInfo>, SessionError> {
        let (_, members) = self.members(user).await?;
        let current = current.map(|id| self.member(id));
        let mut sessions = Vec::with_capacity(members.len());
        for (member, _) in members {
            let Some(record) = self.member_record(user, &member).await? else {
                continue;
            };
            let time = |key| {
                let secs = record.meta_u64(key)?;
                SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
            };
            sessions.push(SessionInfo {
                handle: Engine::handle_of(&record, &member),
                created: time(record::CREATED),
                last_seen: time(record::SEEN),
                user_agent: record.meta_str(record::AGENT).map(str::to_owned),
                client_network: record.meta_str(record::ADDRESS).map(str::to_owned),
                current: current.as_deref() == Some(member.as_str()),
            });
        }
        sessions.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(b.created.cmp(&a.created)));
        Ok(sessions)
    }

    /// Revokes `user`'s sessions whose handle passes `pick` (which gets
    /// `None` for a member whose record is missing or not this user's: a
    /// login being written, or a session that ended); returns how many were
    /// live. Each record is replaced by a tombstone, by a conditional save,
    /// so that nothing can be written under its id for a while (a login or
    /// cycle writing it meanwhile fails and ends), then its member is
    /// removed; the index is read again until it offers nothing more, which
    /// also catches a chosen session that moved to a new id meanwhile.
    pub(crate) async fn revoke_sessions(
        &self,
        user: &str,
        pick: impl Fn(Option<&SessionHandle>) -> bool,
    ) -> Result<usize, SessionError> {
        let mut revoked = 0;
        for _ in 0..REVOKE_ROUNDS {
            let (index, members) = self.members(user).await?;
            let mut ended = 0;
            for (member, _) in members {
                let bytes = self.member_bytes(&member).await?;
                let record = self.user_record(user, bytes.as_deref());
                let handle = record.as_ref().map(|r| Engine::handle_of(r, &member));
                if !pick(handle.as_ref()) {
                    continue;
                }
                revoked += usize::from(self.end_member(&member, bytes).await?);
                let removed = self.index()?.index_remove(&index, &member);
                if let Err(err) = self.telemetry.timed(Op::IndexRemove, removed).await {
                    return Err(self.unscoped_failure(err, "update the index"));
                }
                ended += 1;
            }
            if ended == 0 {
                break;
            }
        }
        if revoked > 0 {
            tracing::info!(sessions = revoked, "revoked sessions of a user");
        }
        Ok(revoked)
    }

    /// Replaces the record `member` names with a tombstone, whatever it
    /// holds (or creates one), starting from `current`, what it held when
    /// last read; tells whether it held a session.
    pub(super) async fn end_member(
        &self,
        member: &str,
        mut current: Option<Vec<u8>>,
    ) -> Result<bool, SessionError> {
        let key = self.member_key(member);
        let mut live = false;
        for _ in 0..END_ATTEMPTS {
            live |= current.as_deref().is_some_and(|bytes| bytes != super::TOMBSTONE);
            let expect = match &current {
                Some(bytes) => Expect::Unchanged(bytes),
                None => Expect::Absent,
            };
            let saved = self
                .save_key(&key, super::TOMBSTONE, super::TOMBSTONE_TTL, expect)
                .await;
            current = match saved {
                Ok(SaveOutcome::Saved) => return Ok(live),
                Ok(SaveOutcome::Conflict(now)) => Some(now),
                Ok(SaveOutcome::Gone) => None,
                Err(err) => return Err(self.unscoped_failure(err, "revoke a session")),
            };
        }
        Err(SessionError::Contention(END_ATTEMPTS))
    }

    /// With a limit of sessions per user, revokes the least recently seen
    /// live ones beyond it, never `keep` (the session just logged in).
    pub(crate) async fn enforce_limit(&self, user: &str, keep: &SessionId) -> Result<(), SessionError> {
        let Some(limit) = self.user_sessions().and_then(|u| u.limit) else {
            return Ok(());
        };
        let (_, members) = self.members(user).await?;
        if members.len() <= limit {
            return Ok(());
        }
        let keep = self.member(keep);
        let mut live = Vec::with_capacity(members.len());
        for (member, until) in members {
            if let Some(record) = self.member_record(user, &member).await? {
                let seen = record.meta_u64(record::SEEN).unwrap_or(0);
                live.push((Engine::handle_of(&record, &member), member == keep, seen, until));
            }
        }
        if live.len() <= limit {
            return Ok(());
        }
        live.sort_by_key(|(_, _, seen, until)| (*seen, *until));
        let excess = live.len() - limit;
        let oldest: Vec<SessionHandle> = live
            .into_iter()
            .filter(|(_, kept, _, _)| !kept)
            .take(excess)
            .map(|(handle, ..)| handle)
            .collect();
        self.revoke_sessions(user, |h| h.is_some_and(|h| oldest.contains(h)))
            .await?;
        Ok(())
    }

    /// Counts and logs a store failure that concerns no one session.
    pub(super) fn unscoped_failure(&self, err: StoreError, what: &str) -> SessionError {
        self.telemetry.store_error(&err);
        tracing::error!(error = %err, "session store failed to {what}");
        SessionError::Store(Arc::new(err))
    }
}

/// The network a client address belongs to, coarse enough not to single out
/// a device: an IPv4 /24 or an IPv6 /48.
fn network(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => network(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
                format!("{net}/48")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::HANDLE_LEN;

    #[test]
    fn networks_are_coarse() {
        assert_eq!(network("203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(network("2001:db8:1:2:3::9".parse().unwrap()), "2001:db8:1::/48");
        assert_eq!(network("::ffff:198.51.100.4".parse().unwrap()), "198.51.100.0/24");
    }

    #[test]
    fn handles_are_fixed_length_and_one_way() {
        let member = SessionId::generate(32);
        let handle = Engine::handle_of(&Record::default(), member.as_str());
        assert_eq!(handle.as_str().len(), HANDLE_LEN);
        assert!(!handle.as_str().contains(member.as_str()));
        assert_eq!(handle.as_str().parse::<SessionHandle>().unwrap(), handle);
        assert!("not a handle".parse::<SessionHandle>().is_err());
    }
}
