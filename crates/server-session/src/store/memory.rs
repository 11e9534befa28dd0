//! An in-process store for development, tests and single-instance apps.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::{Expect, Fingerprint, SaveOutcome, SessionStore, StoreError, TTL_CEILING};
use crate::clock::{Clock, SystemClock};

const SHARDS: usize = 32;
const SWEEP_EVERY: Duration = Duration::from_secs(60);
const DEFAULT_MAX_RECORD: usize = 256 * 1024;

/// Sessions in memory: sharded maps behind short locks, so requests on
/// different sessions rarely wait on each other.
///
/// Expired records are never returned; they are dropped when read, and each
/// shard sweeps out the rest at most once a minute, on a write, so memory does
/// not grow with abandoned sessions and no background task is needed.
/// Everything is lost when the process exits.
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
    max_record_size: usize,
}

#[derive(Default)]
struct Shard {
    map: HashMap<String, Entry>,
    next_sweep: Option<SystemTime>,
}

struct Entry {
    value: Vec<u8>,
    fingerprint: Fingerprint,
    expires_at: SystemTime,
}

/// Builds a [`MemoryStore`] with a non-default clock or record size limit.
pub struct MemoryStoreBuilder {
    clock: Arc<dyn Clock>,
    max_record_size: usize,
}

impl MemoryStoreBuilder {
    /// Reads time from `clock` (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Refuses records larger than `bytes` (default 256 KiB) with
    /// [`StoreError::TooLarge`].
    pub fn max_record_size(mut self, bytes: usize) -> Self {
        self.max_record_size = bytes;
        self
    }

    /// The store.
    pub fn build(self) -> MemoryStore {
        MemoryStore {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
                hasher: RandomState::new(),
                clock: self.clock,
                max_record_size: self.max_record_size,
            }),
        }
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
            max_record_size: DEFAULT_MAX_RECORD,
        }
    }

    /// The number of live (unexpired) records.
    pub fn len(&self) -> usize {
        let now = self.inner.clock.now();
        (0..SHARDS)
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

    fn lock(&self, key: &str) -> MutexGuard<'_, Shard> {
        let index = (self.inner.hasher.hash_one(key) % SHARDS as u64) as usize;
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
}

/// `ttl` from `now`. No TTL makes it panic: the engine never asks for more
/// than 400 days, and a direct caller's longer TTL is cut to a century.
fn expiry(now: SystemTime, ttl: Duration) -> SystemTime {
    now.checked_add(ttl.min(TTL_CEILING)).unwrap_or(now)
}

impl SessionStore for MemoryStore {
    async fn load(&self, key: &str, slide: Option<Duration>) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.inner.clock.now();
        let mut shard = self.lock(key);
        Ok(shard.live(key, now).map(|entry| {
            if let Some(ttl) = slide {
                entry.expires_at = expiry(now, ttl);
            }
            entry.value.clone()
        }))
    }

    async fn save(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        expect: Expect,
    ) -> Result<SaveOutcome, StoreError> {
        let limit = self.inner.max_record_size;
        if value.len() > limit {
            return Err(StoreError::TooLarge {
                size: value.len(),
                limit,
            });
        }
        let fingerprint = Fingerprint::of(value);
        let now = self.inner.clock.now();
        let mut shard = self.lock(key);
        shard.sweep(now);
        match (shard.live(key, now), expect) {
            (Some(current), Expect::Absent) => return Ok(SaveOutcome::Conflict(current.value.clone())),
            (None, Expect::Unchanged(_)) => return Ok(SaveOutcome::Gone),
            (Some(current), Expect::Unchanged(expected)) if current.fingerprint != expected => {
                return Ok(SaveOutcome::Conflict(current.value.clone()));
            }
            _ => {}
        }
        let entry = Entry {
            value: value.to_vec(),
            fingerprint,
            expires_at: expiry(now, ttl),
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
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    fn resident(store: &MemoryStore) -> usize {
        (0..SHARDS).map(|i| store.lock_index(i).map.len()).sum()
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
    async fn reading_an_expired_record_drops_it() {
        let clock = ManualClock::new();
        let store = MemoryStore::builder().clock(clock.clone()).build();
        store
            .save("k", b"x", Duration::from_secs(1), Expect::Absent)
            .await
            .unwrap();
        clock.advance(Duration::from_secs(2));
        assert_eq!(store.load("k", None).await.unwrap(), None);
        assert_eq!(resident(&store), 0);
    }
}
