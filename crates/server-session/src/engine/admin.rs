//! The engine's side of operator tools: the records under the key prefix,
//! the key a cookie names, ending a session by its key, and writing a
//! record back as it was exported.

use std::time::Duration;

use super::Engine;
use crate::error::SessionError;
use crate::record::{self, Record};
use crate::store::{DynAdmin, Expect, SaveOutcome, ScanCursor, ScanPage, StoredEntry};

/// Conditional saves tried to write an imported record over one that keeps
/// changing.
const PUT_ATTEMPTS: usize = 16;

impl Engine {
    /// The key prefix of this configuration's sessions.
    pub(crate) fn prefix(&self) -> &str {
        &self.config.key_prefix
    }

    /// Whether the store keeps the per-user indexes.
    pub(crate) fn keeps_indexes(&self) -> bool {
        self.users.is_some()
    }

    /// A page of the records under the key prefix. The users' indexes,
    /// which a prefix without a trailing `:` also matches, are left out (no
    /// session key holds a `:` after the prefix).
    pub(crate) async fn scan_records(
        &self,
        walk: &dyn DynAdmin,
        cursor: &ScanCursor,
        count: usize,
    ) -> Result<ScanPage, SessionError> {
        let mut page = walk
            .scan(&self.config.key_prefix, cursor, count)
            .await
            .map_err(|err| self.unscoped_failure(err, "walk the records"))?;
        let indexes = self.index_key("");
        page.entries.retain(|entry| !entry.key.starts_with(&indexes));
        Ok(page)
    }

    /// What `key` holds, untouched.
    pub(crate) async fn inspect_key(
        &self,
        walk: &dyn DynAdmin,
        key: &str,
    ) -> Result<Option<StoredEntry>, SessionError> {
        walk.inspect(key)
            .await
            .map_err(|err| self.unscoped_failure(err, "inspect a record"))
    }

    /// The key of the session a cookie value names, if it holds a valid id
    /// (signed by one of the secrets, when cookies are signed).
    pub(crate) fn cookie_key(&self, value: &str) -> Option<String> {
        let value = value.trim();
        let sid = match &self.signer {
            Some(signer) => signer.unsign(value)?,
            None => value,
        };
        self.parse_id(sid).map(|id| self.key(&id).into_owned())
    }

    /// Whether `key` can be a session's key under this configuration: the
    /// key prefix, then a well-formed id (or, with hashed ids, an id's
    /// hash).
    pub(crate) fn is_session_key(&self, key: &str) -> bool {
        let Some(member) = self.member_of(key) else {
            return false;
        };
        match self.config.hash_ids {
            true => {
                member.len() == super::users::HASHED_LEN
                    && member
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }
            false => self.parse_id(member).is_some(),
        }
    }

    /// The member (the key without its prefix) that a key names.
    pub(crate) fn member_of<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.config.key_prefix.as_str())
    }

    /// Ends the session at `key`, which held `current` when read: a
    /// tombstone over it, so that a request in flight cannot save it back,
    /// and out of its user's index. Tells whether it held a session.
    pub(crate) async fn end_key(&self, key: &str, current: Option<Vec<u8>>) -> Result<bool, SessionError> {
        let Some(member) = self.member_of(key) else {
            return Ok(false);
        };
        let user = current
            .as_deref()
            .and_then(|bytes| Record::decode_any(bytes).ok())
            .and_then(|(record, _)| record.meta_str(record::USER).map(str::to_owned));
        let live = self.end_member(member, current).await?;
        if let (Some(user), Some(users)) = (user, &self.users) {
            users
                .index
                .index_remove(&self.index_key(&user), member)
                .await
                .map_err(|err| self.unscoped_failure(err, "update the index"))?;
        }
        Ok(live)
    }

    /// Deletes whatever `key` holds.
    pub(crate) async fn remove_key(&self, key: &str) -> Result<(), SessionError> {
        self.store
            .delete(key)
            .await
            .map_err(|err| self.unscoped_failure(err, "delete a record"))
    }

    /// Writes `bytes` at `key` for `ttl`, as they are: only where nothing
    /// is stored, or with `overwrite` over what is;
    /// a session bound to a user joins the user's index. Tells whether it
    /// wrote.
    pub(crate) async fn put_record(
        &self,
        key: &str,
        bytes: &[u8],
        ttl: Duration,
        overwrite: bool,
    ) -> Result<bool, SessionError> {
        let mut current: Option<Vec<u8>> = None;
        for _ in 0..PUT_ATTEMPTS {
            let expect = match &current {
                Some(bytes) => Expect::Unchanged(bytes),
                None => Expect::Absent,
            };
            let saved = self.store.save(key, bytes, ttl, expect).await;
            current = match saved.map_err(|err| self.unscoped_failure(err, "write a record"))? {
                SaveOutcome::Saved => {
                    self.index_record(key, bytes, ttl).await?;
                    return Ok(true);
                }
                SaveOutcome::Conflict(_) if !overwrite => return Ok(false),
                SaveOutcome::Conflict(now) => Some(now),
                SaveOutcome::Gone => None,
            };
        }
        Err(SessionError::Contention(PUT_ATTEMPTS))
    }

    /// Adds the session at `key`, just written as `bytes` for `ttl`, to its
    /// user's index, where the store keeps indexes.
    async fn index_record(&self, key: &str, bytes: &[u8], ttl: Duration) -> Result<(), SessionError> {
        let user = Record::decode_any(bytes)
            .ok()
            .and_then(|(record, _)| record.meta_str(record::USER).map(str::to_owned));
        let (Some(user), Some(member)) = (user, self.member_of(key)) else {
            return Ok(());
        };
        let Some(users) = &self.users else {
            return Ok(());
        };
        let until = self.index_until(self.now(), ttl);
        users
            .index
            .index_add(&self.index_key(&user), member, until)
            .await
            .map_err(|err| self.unscoped_failure(err, "update the index"))
    }

    /// Removes expired records now, where the store keeps them.
    pub(crate) async fn purge_expired(&self, walk: &dyn DynAdmin) -> Result<Option<u64>, SessionError> {
        walk.purge_expired()
            .await
            .map_err(|err| self.unscoped_failure(err, "purge expired records"))
    }
}
