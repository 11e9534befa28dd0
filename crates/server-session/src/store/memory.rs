//! An in-process store for development, tests and single-instance apps.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{
    Expect, SaveOutcome, ScanCursor, ScanPage, SessionIndex, SessionStore, StoreAdmin, StoreError,
    StoredEntry, TTL_CEILING,
};
use crate::clock::{Clock, SystemClock};

const SHARDS: usize = 32;
const SWEEP_EVERY: Duration = Duration::from_secs(60);
const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// Sessions in memory: sharded maps behind short locks, so requests on
/// different sessions rarely wait on each other.
///
/// Expired records are never returned; they are dropped when read, and each
/// shard sweeps out the rest at most once a minute, on a write, so memory does
/// not grow with abandoned sessions and no background task is needed.
/// Everything is lost when the process exits.
///
/// The store holds at most [`max_entries`](MemoryStoreBuilder::max_entries)
/// sessions (100,000 by default), so a flood of new sessions cannot exhaust
/// the process's memory. When full, a new session makes room by removing a
/// few sessions at a time: expired ones first, then the sessions never used
/// since they were created, oldest first (a new session is on probation
/// until a request comes back with it), and only then, among the sessions
/// in use, those closest to expiring. A flood of requests without a cookie
/// creates sessions nobody uses again: they make room for each other, and
/// the users who came back keep theirs.
///
/// ```
/// use server_session::{MemoryStore, SessionConfig, SessionLayer};
///
/// let layer = SessionLayer::new(MemoryStore::new(), SessionConfig::default()).unwrap();
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    clock: Arc<dyn Clock>,
    indexes: Mutex<Indexes>,
    /// The most sessions the store holds, and so the most members an index
    /// needs.
    max_entries: usize,
}

/// The indexes ([`SessionIndex`]): off the hot path,
/// so one lock is enough. Expired members are dropped as an index is read,
/// and all of them at most once a minute on a write.
#[derive(Default)]
struct Indexes {
    map: HashMap<String, HashMap<String, SystemTime>>,
    next_sweep: Option<SystemTime>,
}

struct Shard {
    map: HashMap<String, Entry>,
    next_sweep: Option<SystemTime>,
    /// The most entries this shard holds.
    capacity: usize,
    /// Entries stored under a new key so far: each one's birth order.
    born: u64,
}

struct Entry {
    value: Vec<u8>,
    expires_at: SystemTime,
    /// The entry's place in the order keys were created.
    born: u64,
    /// Whether it was read or rewritten since it was created: until then,
    /// it is on probation, the first to go when the shard is full.
    used: bool,
}

/// Builds a [`MemoryStore`] with a non-default clock or capacity.
///
/// ```
/// use server_session::MemoryStore;
///
/// let store = MemoryStore::builder().max_entries(10_000).build();
/// ```
pub struct MemoryStoreBuilder {
    clock: Arc<dyn Clock>,
    max_entries: usize,
}

impl MemoryStoreBuilder {
    /// Reads time from `clock` (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Holds at most `entries` sessions (default 100,000; at least 1). See
    /// [`MemoryStore`] for what happens when it is full.
    pub fn max_entries(mut self, entries: usize) -> Self {
        self.max_entries = entries.max(1);
        self
    }

    /// The store.
    pub fn build(self) -> MemoryStore {
        // Fewer shards than entries would leave a shard that can hold nothing.
        let shards = SHARDS.min(self.max_entries);
        let base = self.max_entries / shards;
        let extra = self.max_entries % shards;
        let shards = (0..shards)
            .map(|i| {
                Mutex::new(Shard {
                    map: HashMap::new(),
                    next_sweep: None,
                    capacity: base + usize::from(i < extra),
                    born: 0,
                })
            })
            .collect();
        MemoryStore {
            inner: Arc::new(Inner {
                shards,
                hasher: RandomState::new(),
                clock: self.clock,
                indexes: Mutex::default(),
                max_entries: self.max_entries,
            }),
        }
    }
}

impl std::fmt::Debug for MemoryStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStoreBuilder")
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for a store with other settings.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            clock: Arc::new(SystemClock),
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }

    /// The number of live (unexpired) records.
    pub fn len(&self) -> usize {
        let now = self.inner.clock.now();
        (0..self.inner.shards.len())
            .map(|i| {
                let shard = self.lock_index(i);
                shard.map.values().filter(|e| e.expires_at > now).count()
            })
            .sum()
    }

    /// Whether there is no live record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock_index(&self, index: usize) -> MutexGuard<'_, Shard> {
        // A panic while a shard was locked cannot leave a half-written entry:
        // every mutation is a single map operation.
        self.inner.shards[index].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn indexes(&self) -> MutexGuard<'_, Indexes> {
        // Every mutation of the indexes is a single map operation too.
        self.inner.indexes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self, key: &str) -> MutexGuard<'_, Shard> {
        let shards = self.inner.shards.len() as u64;
        let index = (self.inner.hasher.hash_one(key) % shards) as usize;
        self.lock_index(index)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").field("len", &self.len()).finish()
    }
}

impl Shard {
    /// The live entry at `key`; an expired one is dropped.
    fn live(&mut self, key: &str, now: SystemTime) -> Option<&mut Entry> {
        if self.map.get(key).is_some_and(|e| e.expires_at <= now) {
            self.map.remove(key);
        }
        self.map.get_mut(key)
    }

    fn sweep(&mut self, now: SystemTime) {
        if self.next_sweep.is_none_or(|at| at <= now) {
            self.map.retain(|_, e| e.expires_at > now);
            self.next_sweep = Some(expiry(now, SWEEP_EVERY));
        }
    }

    /// Makes room for one more entry at `now`: removes the expired entries,
    /// and if that is not enough, a sixteenth of the shard at once (so a full
    /// shard pays for one scan per batch rather than one per new session):
    /// the entries on probation first, oldest first, then the used ones
    /// closest to expiring.
    fn make_room(&mut self, now: SystemTime) {
        if self.map.len() < self.capacity {
            return;
        }
        self.map.retain(|_, e| e.expires_at > now);
        if self.map.len() < self.capacity {
            return;
        }
        let batch = (self.capacity / 16).max(1);
        // Every entry's place in the order they go: unique, as births are.
        let order = |e: &Entry| match e.used {
            false => (false, UNIX_EPOCH, e.born),
            true => (true, e.expires_at, e.born),
        };
        let mut places: Vec<(bool, SystemTime, u64)> = self.map.values().map(order).collect();
        let (_, last, _) = places.select_nth_unstable(batch - 1);
        let last = *last;
        self.map.retain(|_, e| order(e) > last);
        tracing::debug!(
            removed = batch,
            "memory session store full; removed the sessions on probation, then those closest to expiring"
        );
    }
}

impl Entry {
    /// The entry at `key` as a walk shows it at `now`.
    fn stored(key: &str, entry: &Entry, now: SystemTime) -> StoredEntry {
        let ttl = entry.expires_at.duration_since(now).unwrap_or_default();
        StoredEntry::new(key, Some(entry.value.clone()), Some(ttl))
    }
}

/// `ttl` from `now`. No TTL makes it panic: the engine never asks for more
/// than 400 days, and a direct caller's longer TTL is cut to a century.
fn expiry(now: SystemTime, ttl: Duration) -> SystemTime {
    now.checked_add(ttl.min(TTL_CEILING)).unwrap_or(now)
}

impl SessionStore for MemoryStore {
    async fn load(
        &self,
        key: &str,
        slide: Option<Duration>,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.inner.clock.now();
        let mut shard = self.lock(key);
        let Some(entry) = shard.live(key, now) else {
            return Ok(None);
        };
        if entry.value.len() > limit {
            return Err(StoreError::TooLarge { limit });
        }
        if let Some(ttl) = slide {
            entry.expires_at = expiry(now, ttl);
        }
        entry.used = true;
        Ok(Some(entry.value.clone()))
    }

    async fn save(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        expect: Expect<'_>,
    ) -> Result<SaveOutcome, StoreError> {
        let now = self.inner.clock.now();
        let mut shard = self.lock(key);
        shard.sweep(now);
        match (shard.live(key, now), expect) {
            (Some(current), Expect::Absent) => return Ok(SaveOutcome::Conflict(current.value.clone())),
            (None, Expect::Unchanged(_)) => return Ok(SaveOutcome::Gone),
            (Some(current), Expect::Unchanged(expected)) if current.value != expected => {
                return Ok(SaveOutcome::Conflict(current.value.clone()));
            }
            (None, Expect::Absent) => shard.make_room(now),
            (Some(current), Expect::Unchanged(_)) => {
                current.value = value.to_vec();
                current.expires_at = expiry(now, ttl);
                current.used = true;
                return Ok(SaveOutcome::Saved);
            }
        }
        shard.born += 1;
        let entry = Entry {
            value: value.to_vec(),
            expires_at: expiry(now, ttl),
            born: shard.born,
            used: false,
        };
        shard.map.insert(key.to_owned(), entry);
        Ok(SaveOutcome::Saved)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.lock(key).map.remove(key);
        Ok(())
    }

    async fn touch(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = self.inner.clock.now();
        if let Some(entry) = self.lock(key).live(key, now) {
            entry.expires_at = expiry(now, ttl);
            entry.used = true;
        }
        Ok(())
    }
}

impl StoreAdmin for MemoryStore {
    /// A page is one shard's live records: `count` is only a hint.
    async fn scan(&self, prefix: &str, cursor: &ScanCursor, _count: usize) -> Result<ScanPage, StoreError> {
        let shard: usize = match cursor.is_start() {
            true => 0,
            false => cursor
                .as_str()
                .parse()
                .map_err(|_| StoreError::Backend("not a cursor of this store".into()))?,
        };
        let shards = self.inner.shards.len();
        let now = self.inner.clock.now();
        let entries = match shard < shards {
            true => self
                .lock_index(shard)
                .map
                .iter()
                .filter(|(key, entry)| key.starts_with(prefix) && entry.expires_at > now)
                .map(|(key, entry)| Entry::stored(key, entry, now))
                .collect(),
            false => Vec::new(),
        };
        let next = (shard + 1 < shards).then(|| ScanCursor::new((shard + 1).to_string()));
        Ok(ScanPage { entries, next })
    }

    async fn inspect(&self, key: &str) -> Result<Option<StoredEntry>, StoreError> {
        let now = self.inner.clock.now();
        Ok(self
            .lock(key)
            .live(key, now)
            .map(|entry| Entry::stored(key, entry, now)))
    }

    /// Expired records are dropped as they are met and by a sweep on
    /// writes; this sweeps every shard now.
    async fn purge_expired(&self) -> Result<Option<u64>, StoreError> {
        let now = self.inner.clock.now();
        let mut purged = 0;
        for index in 0..self.inner.shards.len() {
            let mut shard = self.lock_index(index);
            let before = shard.map.len();
            shard.map.retain(|_, e| e.expires_at > now);
            purged += (before - shard.map.len()) as u64;
        }
        Ok(Some(purged))
    }
}

impl SessionIndex for MemoryStore {
    async fn index_add(&self, index: &str, member: &str, until: SystemTime) -> Result<(), StoreError> {
        let now = self.inner.clock.now();
        let mut indexes = self.indexes();
        if indexes.next_sweep.is_none_or(|at| at <= now) {
            indexes.map.retain(|_, members| {
                members.retain(|_, until| *until > now);
                !members.is_empty()
            });
            indexes.next_sweep = Some(expiry(now, SWEEP_EVERY));
        }
        let members = indexes.map.entry(index.to_owned()).or_default();
        members.insert(member.to_owned(), until);
        // No index outgrows the store: beyond as many members as it holds
        // sessions, the one counting shortest goes (its session is the one
        // a full store removes first).
        if members.len() > self.inner.max_entries {
            let shortest = members
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(m, _)| m.clone());
            if let Some(shortest) = shortest {
                members.remove(&shortest);
            }
        }
        Ok(())
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<(), StoreError> {
        let mut indexes = self.indexes();
        if let Some(members) = indexes.map.get_mut(index) {
            members.remove(member);
            if members.is_empty() {
                indexes.map.remove(index);
            }
        }
        Ok(())
    }

    async fn index_members(
        &self,
        index: &str,
        now: SystemTime,
    ) -> Result<Vec<(String, SystemTime)>, StoreError> {
        let mut indexes = self.indexes();
        let Some(members) = indexes.map.get_mut(index) else {
            return Ok(Vec::new());
        };
        members.retain(|_, until| *until > now);
        let live = members.iter().map(|(m, until)| (m.clone(), *until)).collect();
        if members.is_empty() {
            indexes.map.remove(index);
        }
        Ok(live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    fn resident(store: &MemoryStore) -> usize {
        (0..store.inner.shards.len())
            .map(|i| store.lock_index(i).map.len())
            .sum()
    }

    #[tokio::test]
    async fn expired_records_are_purged_not_just_hidden() {
        let clock = ManualClock::new();
        let store = MemoryStore::builder().clock(clock.clone()).build();
        let ttl = Duration::from_secs(10);
        for i in 0..1000 {
            store
                .save(&format!("old{i}"), b"x", ttl, Expect::Absent)
                .await
                .unwrap();
        }
        clock.advance(Duration::from_secs(120));
        assert_eq!(store.len(), 0);
        assert_eq!(resident(&store), 1000);
        // Every shard sweeps on its first write after a minute.
        for i in 0..1000 {
            store
                .save(&format!("new{i}"), b"y", ttl, Expect::Absent)
                .await
                .unwrap();
        }
        assert_eq!(resident(&store), 1000, "the expired records left memory");
        assert_eq!(store.len(), 1000);
    }

    #[tokio::test]
    async fn an_index_holds_no_more_members_than_the_store_holds_sessions() {
        let clock = ManualClock::new();
        let store = MemoryStore::builder()
            .clock(clock.clone())
            .max_entries(10)
            .build();
        let now = clock.now();
        for i in 0..50u64 {
            let until = now + Duration::from_secs(60 + i);
            store.index_add("user:x", &format!("m{i}"), until).await.unwrap();
        }
        let members = store.index_members("user:x", now).await.unwrap();
        assert_eq!(members.len(), 10);
        assert!(
            members
                .iter()
                .all(|(m, _)| m["m".len()..].parse::<u64>().unwrap() >= 40),
            "the longest-lived stay"
        );
    }

    #[tokio::test]
    async fn reading_an_expired_record_drops_it() {
        let clock = ManualClock::new();
        let store = MemoryStore::builder().clock(clock.clone()).build();
        store
            .save("k", b"x", Duration::from_secs(1), Expect::Absent)
            .await
            .unwrap();
        clock.advance(Duration::from_secs(2));
        assert_eq!(store.load("k", None, 64).await.unwrap(), None);
        assert_eq!(resident(&store), 0);
    }
}
