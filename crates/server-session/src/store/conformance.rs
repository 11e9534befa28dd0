//! The contract every [`SessionStore`] must meet, as a test suite that any
//! store (including yours) can run: [`run`] for the four calls every store
//! makes, [`run_index`] for a [`SessionIndex`], [`run_scan`] for a
//! [`StoreAdmin`].
//!
//! ```
//! use std::time::Duration;
//! use server_session::{ManualClock, MemoryStore};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let clock = ManualClock::new();
//! let store = MemoryStore::builder().clock(clock.clone()).build();
//! server_session::store::conformance::run(&store, |by: Duration| {
//!     clock.advance(by);
//!     async {}
//! })
//! .await;
//! # });
//! ```
//!
//! Keys are made unique per run, so the suite can share a server with other
//! data; nothing else is touched.

use std::future::Future;
use std::time::{Duration, SystemTime};

use super::{Expect, SaveOutcome, SessionIndex, SessionStore, StoreAdmin};
use crate::id::SessionId;

const MINUTE: Duration = Duration::from_secs(60);

/// The record size limit of the suite's loads.
const LIMIT: usize = 1 << 20;

/// Runs every check against `store`, panicking with a description at the first
/// failure. `advance` must let at least the given time pass for the store: move
/// its clock, or sleep for a store that keeps real time (about two seconds in
/// total).
pub async fn run<S, F, Fut>(store: &S, advance: F)
where
    S: SessionStore + Clone,
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = ()>,
{
    let prefix = format!("conformance:{}:", SessionId::generate(12).as_str());
    let key = |name: &str| format!("{prefix}{name}");
    basic(store, &key("basic")).await;
    conditions(store, &key("cond")).await;
    binary_values(store, &key("binary")).await;
    limits(store, &key("limit")).await;
    concurrent_writers(store, &key("race")).await;
    expiry(store, &key("ttl"), advance).await;
}

async fn basic<S: SessionStore>(store: &S, key: &str) {
    assert_eq!(load(store, key).await, None, "a missing key loads as None");
    assert_eq!(
        save(store, key, b"one", Expect::Absent).await,
        SaveOutcome::Saved,
        "creating a missing key saves"
    );
    assert_eq!(
        load(store, key).await.as_deref(),
        Some(&b"one"[..]),
        "load returns what was saved"
    );
    store.delete(key).await.expect("delete");
    assert_eq!(load(store, key).await, None, "a deleted key loads as None");
    store
        .delete(key)
        .await
        .expect("deleting a missing key is not an error");
    store
        .touch(key, MINUTE)
        .await
        .expect("touching a missing key is not an error");
    assert_eq!(load(store, key).await, None, "touch does not create a key");
    let slid = store
        .load(key, Some(MINUTE), LIMIT)
        .await
        .expect("load with slide");
    assert_eq!(slid, None, "a sliding load of a missing key does not create it");
}

/// A load reads a record up to its limit, and refuses a longer one,
/// sliding or not.
async fn limits<S: SessionStore>(store: &S, key: &str) {
    let record = vec![0x5a; 1000];
    assert_eq!(
        save(store, key, &record, Expect::Absent).await,
        SaveOutcome::Saved
    );
    for slide in [None, Some(MINUTE)] {
        assert_eq!(
            store.load(key, slide, 1000).await.expect("load"),
            Some(record.clone()),
            "a record as long as the limit loads"
        );
        let err = store.load(key, slide, 999).await.unwrap_err();
        assert!(
            matches!(err, super::StoreError::TooLarge { limit: 999 }),
            "a longer one is TooLarge: {err:?}"
        );
        assert_eq!(
            store
                .load(&format!("{key}:missing"), slide, 10)
                .await
                .expect("load"),
            None,
            "a missing key is None whatever the limit"
        );
    }
    assert_eq!(
        load(store, key).await,
        Some(record),
        "refusing to read changes nothing"
    );
    store.delete(key).await.expect("delete");
}

async fn conditions<S: SessionStore>(store: &S, key: &str) {
    assert_eq!(
        save(store, key, b"v1", Expect::Unchanged(b"v1")).await,
        SaveOutcome::Gone,
        "an update of a missing key is Gone"
    );
    assert_eq!(load(store, key).await, None, "a Gone save writes nothing");
    assert_eq!(save(store, key, b"v1", Expect::Absent).await, SaveOutcome::Saved);
    assert_eq!(
        save(store, key, b"other", Expect::Absent).await,
        SaveOutcome::Conflict(b"v1".to_vec()),
        "creating an existing key is a Conflict carrying the current bytes"
    );
    assert_eq!(
        save(store, key, b"v2", Expect::Unchanged(b"v1")).await,
        SaveOutcome::Saved,
        "an update with the current fingerprint saves"
    );
    assert_eq!(
        save(store, key, b"v3", Expect::Unchanged(b"v1")).await,
        SaveOutcome::Conflict(b"v2".to_vec()),
        "an update with a stale fingerprint is a Conflict carrying the current bytes"
    );
    assert_eq!(
        load(store, key).await.as_deref(),
        Some(&b"v2"[..]),
        "a Conflict writes nothing"
    );
    store.delete(key).await.expect("delete");
    assert_eq!(
        save(store, key, b"v4", Expect::Unchanged(b"v2")).await,
        SaveOutcome::Gone,
        "an update after a delete is Gone, so a destroyed session is not recreated"
    );
    assert_eq!(load(store, key).await, None);
}

async fn binary_values<S: SessionStore>(store: &S, key: &str) {
    let every_byte: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    assert_eq!(
        save(store, key, &every_byte, Expect::Absent).await,
        SaveOutcome::Saved
    );
    assert_eq!(
        load(store, key).await,
        Some(every_byte.clone()),
        "values are binary-safe"
    );
    let big = vec![0xa5; 100_000];
    let expect = Expect::Unchanged(&every_byte);
    assert_eq!(save(store, key, &big, expect).await, SaveOutcome::Saved);
    assert_eq!(load(store, key).await, Some(big), "100 kB values are kept whole");
    store.delete(key).await.expect("delete");
}

async fn concurrent_writers<S: SessionStore + Clone>(store: &S, key: &str) {
    const WRITERS: usize = 16;
    // Each writer creates the key (no loaded record) or updates `loaded`.
    let race = |loaded: Option<Vec<u8>>| {
        let mut tasks = tokio::task::JoinSet::new();
        let phase = if loaded.is_none() { "create" } else { "update" };
        for i in 0..WRITERS {
            let (store, key, loaded) = (store.clone(), key.to_owned(), loaded.clone());
            tasks.spawn(async move {
                let value = format!("{phase} {i}").into_bytes();
                let expect = loaded.as_deref().map_or(Expect::Absent, Expect::Unchanged);
                store.save(&key, &value, MINUTE, expect).await.expect("save")
            });
        }
        tasks
    };
    let saved = |outcomes: Vec<SaveOutcome>| outcomes.iter().filter(|o| **o == SaveOutcome::Saved).count();

    let created = race(None).join_all().await;
    assert_eq!(
        saved(created),
        1,
        "exactly one of {WRITERS} concurrent creations saves"
    );
    let current = load(store, key).await.expect("the winner's record");
    let updated = race(Some(current)).join_all().await;
    assert_eq!(
        saved(updated.clone()),
        1,
        "exactly one of {WRITERS} concurrent updates saves"
    );
    let winner = load(store, key).await.expect("the winner's record");
    for outcome in updated {
        assert!(
            outcome == SaveOutcome::Saved || outcome == SaveOutcome::Conflict(winner.clone()),
            "the losers see the winner's bytes"
        );
    }
    store.delete(key).await.expect("delete");
}

async fn expiry<S, F, Fut>(store: &S, key: &str, advance: F)
where
    S: SessionStore,
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = ()>,
{
    let second = Duration::from_secs(1);
    let short = format!("{key}:short");
    let long = format!("{key}:long");
    let touched = format!("{key}:touched");
    let slid = format!("{key}:slid");
    let read = format!("{key}:read");
    for k in [&short, &touched, &slid, &read] {
        store.save(k, b"x", second, Expect::Absent).await.expect("save");
    }
    store
        .save(&long, b"x", MINUTE, Expect::Absent)
        .await
        .expect("save");
    store.touch(&touched, MINUTE).await.expect("touch");
    assert!(
        store
            .load(&slid, Some(MINUTE), LIMIT)
            .await
            .expect("load")
            .is_some()
    );
    assert!(load(store, &read).await.is_some(), "a live key loads");

    advance(Duration::from_millis(2100)).await;

    assert_eq!(load(store, &short).await, None, "a record expires after its TTL");
    assert_eq!(
        load(store, &read).await,
        None,
        "a plain load does not extend the TTL"
    );
    assert!(load(store, &long).await.is_some(), "a record lives until its TTL");
    assert!(load(store, &touched).await.is_some(), "touch extends the TTL");
    assert!(
        load(store, &slid).await.is_some(),
        "a sliding load extends the TTL"
    );
    assert_eq!(
        save(store, &short, b"y", Expect::Unchanged(b"x")).await,
        SaveOutcome::Gone,
        "an expired record is Gone"
    );
    assert_eq!(
        save(store, &read, b"y", Expect::Absent).await,
        SaveOutcome::Saved,
        "an expired key counts as absent"
    );
    for k in [&short, &long, &touched, &slid, &read] {
        store.delete(k).await.expect("delete");
    }
}

/// Checks the indexes ([`SessionIndex`]) of
/// `store`. `now` is the time as the store sees it (its clock, or the system
/// time); `advance` as for [`run`] (about two seconds in total).
///
/// ```
/// use std::time::Duration;
/// use server_session::{Clock, ManualClock, MemoryStore};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let clock = ManualClock::new();
/// let store = MemoryStore::builder().clock(clock.clone()).build();
/// server_session::store::conformance::run_index(
///     &store,
///     || clock.now(),
///     |by: Duration| {
///         clock.advance(by);
///         async {}
///     },
/// )
/// .await;
/// # });
/// ```
pub async fn run_index<S, N, F, Fut>(store: &S, now: N, advance: F)
where
    S: SessionIndex,
    N: Fn() -> SystemTime,
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = ()>,
{
    let name = format!("conformance-index:{}", SessionId::generate(12).as_str());
    let index = name.as_str();
    let members = |now: SystemTime| async move {
        let mut members = store.index_members(index, now).await.expect("index_members");
        members.sort();
        members
            .into_iter()
            .map(|(m, until)| (m, until.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()))
            .collect::<Vec<_>>()
    };
    let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let start = now();
    assert_eq!(members(start).await, [], "a missing index has no member");

    let (a, b) = (start + MINUTE, start + 2 * MINUTE);
    store.index_add(index, "a", a).await.expect("index_add");
    store.index_add(index, "b", b).await.expect("index_add");
    assert_eq!(
        members(now()).await,
        [("a".to_owned(), secs(a)), ("b".to_owned(), secs(b))],
        "members come back with the second until which they count"
    );
    let later = start + 3 * MINUTE;
    store.index_add(index, "a", later).await.expect("index_add");
    assert_eq!(
        members(now()).await,
        [("a".to_owned(), secs(later)), ("b".to_owned(), secs(b))],
        "adding a member again moves its time"
    );
    store.index_remove(index, "a").await.expect("index_remove");
    store
        .index_remove(index, "absent")
        .await
        .expect("removing a missing member is not an error");
    assert_eq!(
        members(now()).await,
        [("b".to_owned(), secs(b))],
        "a removed member is gone"
    );

    store
        .index_add(index, "short", now() + Duration::from_secs(1))
        .await
        .expect("index_add");
    assert_eq!(members(now()).await.len(), 2);
    advance(Duration::from_millis(2100)).await;
    assert_eq!(
        members(now()).await,
        [("b".to_owned(), secs(b))],
        "a member past its time is not returned"
    );
    assert_eq!(
        members(now() + 3 * MINUTE).await,
        [],
        "members are read against the time given"
    );
    store
        .index_add(index, "c", now() + MINUTE)
        .await
        .expect("index_add");
    store.index_remove(index, "c").await.expect("index_remove");
    store.index_remove(index, "b").await.expect("index_remove");
    assert_eq!(members(now()).await, [], "an index can be emptied");
}

/// Checks the walk over a store's records ([`StoreAdmin::scan`]), the
/// inspection of one ([`StoreAdmin::inspect`]), and that a purge of
/// expired records, where the store has one, leaves live ones; `advance` as
/// for [`run`] (about two seconds in total).
///
/// ```
/// use std::time::Duration;
/// use server_session::{ManualClock, MemoryStore};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let clock = ManualClock::new();
/// let store = MemoryStore::builder().clock(clock.clone()).build();
/// server_session::store::conformance::run_scan(&store, |by: Duration| {
///     clock.advance(by);
///     async {}
/// })
/// .await;
/// # });
/// ```
pub async fn run_scan<S, F, Fut>(store: &S, advance: F)
where
    S: StoreAdmin,
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = ()>,
{
    let prefix = format!("conformance-scan:{}:", SessionId::generate(12).as_str());
    let other = format!("conformance-other:{}:", SessionId::generate(12).as_str());
    let walk = |prefix: String, count: usize| async move {
        let mut cursor = super::ScanCursor::start();
        let mut found = std::collections::BTreeMap::new();
        for _ in 0..100_000 {
            let page = store.scan(&prefix, &cursor, count).await.expect("scan");
            for entry in page.entries {
                assert!(
                    entry.key.starts_with(&prefix),
                    "a walk returns only keys with the prefix"
                );
                found.insert(entry.key.clone(), entry);
            }
            match page.next {
                Some(next) => cursor = next,
                None => return found,
            }
        }
        panic!("a walk over a few records ends");
    };
    assert!(
        walk(prefix.clone(), 10).await.is_empty(),
        "no record, an empty walk"
    );

    let mut written = Vec::new();
    for n in 0..25 {
        let key = format!("{prefix}{n}");
        let ttl = MINUTE * (n + 1);
        let value = format!("record {n}").into_bytes();
        let saved = store.save(&key, &value, ttl, Expect::Absent).await.expect("save");
        assert_eq!(saved, SaveOutcome::Saved);
        written.push((key, value, ttl));
    }
    let short = format!("{prefix}short");
    let saved = store
        .save(&short, b"short", Duration::from_secs(1), Expect::Absent)
        .await;
    assert_eq!(saved.expect("save"), SaveOutcome::Saved);
    let elsewhere = format!("{other}0");
    store
        .save(&elsewhere, b"x", MINUTE, Expect::Absent)
        .await
        .expect("save");

    for count in [1, 7, 1000] {
        let found = walk(prefix.clone(), count).await;
        assert_eq!(
            found.len(),
            26,
            "a walk in pages of {count} returns every record once"
        );
        for (key, value, ttl) in &written {
            let entry = &found[key];
            assert_eq!(
                entry.bytes.as_deref(),
                Some(&value[..]),
                "a walk returns the bytes"
            );
            let left = entry.ttl.expect("a record with a TTL shows it");
            assert!(
                left <= *ttl + Duration::from_secs(1) && left + Duration::from_secs(5) >= *ttl,
                "a walk returns the time left ({left:?} of {ttl:?})"
            );
        }
    }
    let entry = store
        .inspect(&written[3].0)
        .await
        .expect("inspect")
        .expect("a live record");
    assert_eq!(entry.key, written[3].0);
    assert_eq!(
        entry.bytes.as_deref(),
        Some(&written[3].1[..]),
        "inspect returns the bytes"
    );
    let (_, _, ttl) = written[3];
    assert!(
        entry
            .ttl
            .is_some_and(|t| t <= ttl + Duration::from_secs(1) && t + Duration::from_secs(5) >= ttl)
    );
    assert_eq!(
        store.inspect(&format!("{prefix}missing")).await.expect("inspect"),
        None,
        "inspecting a missing key finds nothing"
    );
    assert_eq!(
        load(store, &written[3].0).await.as_deref(),
        Some(&written[3].1[..]),
        "a walk and an inspection change nothing"
    );

    advance(Duration::from_millis(2100)).await;
    let found = walk(prefix.clone(), 10).await;
    assert_eq!(found.len(), 25, "a walk leaves out expired records");
    assert!(!found.contains_key(&short));
    assert_eq!(
        store.inspect(&short).await.expect("inspect"),
        None,
        "an expired record is not inspected"
    );
    if let Err(err) = store.purge_expired().await {
        panic!("purge_expired: {err}");
    }
    assert_eq!(
        walk(prefix.clone(), 10).await.len(),
        25,
        "a purge leaves live records"
    );
    for (key, ..) in &written {
        store.delete(key).await.expect("delete");
    }
    store.delete(&elsewhere).await.expect("delete");
    assert!(
        walk(prefix, 10).await.is_empty(),
        "deleted records are not walked"
    );
}

async fn load<S: SessionStore>(store: &S, key: &str) -> Option<Vec<u8>> {
    store.load(key, None, LIMIT).await.expect("load")
}

async fn save<S: SessionStore>(store: &S, key: &str, value: &[u8], expect: Expect<'_>) -> SaveOutcome {
    store.save(key, value, MINUTE, expect).await.expect("save")
}
