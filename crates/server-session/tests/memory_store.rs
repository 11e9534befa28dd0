//! The memory store against the store contract, on a controllable clock, and
//! its own limits.

use std::time::Duration;

use server_session::{Expect, ManualClock, MemoryStore, SaveOutcome, SessionStore, StoreError};

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
async fn oversized_records_are_refused_with_a_clear_error() {
    let store = MemoryStore::builder().max_record_size(1024).build();
    let err = store
        .save("k", &[0; 1025], Duration::from_secs(60), Expect::Absent)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::TooLarge {
            size: 1025,
            limit: 1024
        }
    ));
    assert_eq!(
        err.to_string(),
        "session record of 1025 bytes exceeds the limit of 1024 bytes"
    );
    let ok = store
        .save("k", &[0; 1024], Duration::from_secs(60), Expect::Absent)
        .await
        .unwrap();
    assert_eq!(ok, SaveOutcome::Saved);
}
