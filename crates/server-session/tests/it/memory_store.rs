//! The memory store against the store contract, on a controllable clock, and
//! its own limits.

use std::time::Duration;

use server_session::store::SessionStore;
use server_session::store::{Expect, SaveOutcome};
use server_session::{ManualClock, MemoryStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conforms_to_the_store_contract() {
    let clock = ManualClock::new();
    let store = MemoryStore::builder().clock(clock.clone()).build();
    server_session::store::conformance::run(&store, |by: Duration| {
        clock.advance(by);
        async {}
    })
    .await;
    assert!(store.is_empty(), "the suite cleans up after itself");
}

#[tokio::test]
async fn walks_its_records() {
    let clock = ManualClock::new();
    let store = MemoryStore::builder().clock(clock.clone()).build();
    server_session::store::conformance::run_scan(&store, |by: Duration| {
        clock.advance(by);
        async {}
    })
    .await;
}

#[tokio::test]
async fn keeps_indexes() {
    use server_session::Clock as _;
    let clock = ManualClock::new();
    let store = MemoryStore::builder().clock(clock.clone()).build();
    server_session::store::conformance::run_index(
        &store,
        || clock.now(),
        |by: Duration| {
            clock.advance(by);
            async {}
        },
    )
    .await;
}

#[tokio::test]
async fn a_full_store_makes_room_with_the_oldest_sessions_nobody_used_again() {
    let clock = ManualClock::new();
    let store = MemoryStore::builder()
        .clock(clock.clone())
        .max_entries(1000)
        .build();
    let minute = Duration::from_secs(60);
    // Users who came a while ago and keep their sessions alive by reading.
    for i in 0..100 {
        let key = format!("user{i}");
        assert_eq!(
            store.save(&key, b"u", minute * 30, Expect::Absent).await.unwrap(),
            SaveOutcome::Saved
        );
    }
    clock.advance(minute);
    // A flood of new sessions, ten times the capacity.
    for i in 0..10_000 {
        let key = format!("flood{i}");
        assert_eq!(
            store.save(&key, b"f", minute * 30, Expect::Absent).await.unwrap(),
            SaveOutcome::Saved
        );
        if i % 100 == 0 {
            clock.advance(Duration::from_secs(1));
            for u in 0..100 {
                assert!(
                    store
                        .load(&format!("user{u}"), Some(minute * 30), 1 << 20)
                        .await
                        .unwrap()
                        .is_some(),
                    "user{u} at {i}"
                );
            }
        }
    }
    assert!(store.len() <= 1000, "{} entries", store.len());
    assert!(
        store.len() >= 900,
        "room is made a little at a time: {}",
        store.len()
    );
    assert!(
        store.load("flood9999", None, 1 << 20).await.unwrap().is_some(),
        "the newest is kept"
    );
    assert!(
        store.load("flood0", None, 1 << 20).await.unwrap().is_none(),
        "the oldest made room"
    );
}

/// A flood of new sessions nobody uses again (requests without a cookie
/// that write) evicts no session a user came back with, however much later
/// than it the flood's sessions expire: they are on probation and make room
/// for each other.
#[tokio::test]
async fn a_flood_of_new_sessions_does_not_evict_one_in_use() {
    let clock = ManualClock::new();
    let store = MemoryStore::builder().clock(clock.clone()).build();
    let month = Duration::from_secs(31 * 24 * 3600);
    store.save("user", b"u", month, Expect::Absent).await.unwrap();
    clock.advance(Duration::from_secs(1));
    assert!(store.load("user", Some(month), 1 << 20).await.unwrap().is_some());
    store.save("idle", b"i", month, Expect::Absent).await.unwrap();
    for i in 0..250_000 {
        if i % 10_000 == 0 {
            clock.advance(Duration::from_secs(1));
        }
        let saved = store
            .save(&format!("flood{i}"), b"f", month, Expect::Absent)
            .await;
        assert_eq!(saved.unwrap(), SaveOutcome::Saved);
    }
    assert!(store.len() <= 100_000, "{}", store.len());
    assert!(
        store.load("user", None, 1 << 20).await.unwrap().is_some(),
        "the session in use stays"
    );
    assert!(
        store.load("idle", None, 1 << 20).await.unwrap().is_none(),
        "one never used again goes in its turn"
    );
    assert!(store.load("flood249999", None, 1 << 20).await.unwrap().is_some());
}

#[tokio::test]
async fn the_default_store_is_bounded() {
    let store = MemoryStore::new();
    let ttl = Duration::from_secs(31 * 24 * 3600);
    for i in 0..120_000 {
        store
            .save(&format!("k{i}"), b"x", ttl, Expect::Absent)
            .await
            .unwrap();
    }
    let len = store.len();
    assert!((90_000..=100_000).contains(&len), "{len} entries");
}

#[tokio::test]
async fn a_tiny_store_still_takes_what_it_can_hold() {
    let ttl = Duration::from_secs(60);
    let tiny = MemoryStore::builder().max_entries(3).build();
    for i in 0..100 {
        tiny.save(&format!("k{i}"), b"x", ttl, Expect::Absent)
            .await
            .unwrap();
    }
    assert_eq!(tiny.len(), 3);
}
