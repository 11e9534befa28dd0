//! Checks every SQL store passes the same way, given the few things that
//! differ between databases (how to age rows, count them, stop the server).

use std::time::{Duration, Instant};

use server_session::store::{Expect, SaveOutcome, SessionStore, StoreError};

/// 2500 rows saved, all but one aged past their expiry by `expire_old`
/// (which sets the expiry of every `session:old%` row in the past): they are
/// never returned, never slid back to life, count as absent for a creation
/// while a live row never does, and `delete_expired` (the store's own, with
/// its cleanup off) removes exactly them, however many windows that takes;
/// `rows` counts what is left.
pub async fn expired_rows_are_never_returned_and_are_deleted<S: SessionStore>(
    store: &S,
    expire_old: impl AsyncFnOnce(),
    delete_expired: impl AsyncFnOnce() -> u64,
    rows: impl AsyncFnOnce() -> i64,
) {
    let ttl = Duration::from_secs(60);
    for i in 0..2500 {
        let saved = store
            .save(&format!("session:old{i}"), b"x", ttl, Expect::Absent)
            .await;
        assert_eq!(saved.unwrap(), SaveOutcome::Saved);
    }
    store
        .save("session:live", b"y", ttl, Expect::Absent)
        .await
        .unwrap();
    expire_old().await;
    let load = async |key: &str, slide| store.load(key, slide, super::LIMIT).await.unwrap();
    assert_eq!(load("session:old7", None).await, None, "expired: not returned");
    assert_eq!(
        load("session:old8", Some(ttl)).await,
        None,
        "nor slid back to life"
    );
    let save = async |value: &[u8]| {
        store
            .save("session:old9", value, ttl, Expect::Absent)
            .await
            .unwrap()
    };
    assert_eq!(
        save(b"z").await,
        SaveOutcome::Saved,
        "an expired row counts as absent"
    );
    assert_eq!(load("session:old9", None).await, Some(b"z".to_vec()));
    assert_eq!(
        save(b"w").await,
        SaveOutcome::Conflict(b"z".to_vec()),
        "a live row is never replaced by a creation"
    );
    assert_eq!(delete_expired().await, 2499);
    assert_eq!(rows().await, 2, "the live rows stay");
}

/// With the database stopped, calls on `store` (whose timeout is half a
/// second) fail as unavailable within two seconds.
pub async fn unavailable_while_stopped<S: SessionStore>(store: &S) {
    for _ in 0..3 {
        unavailable_within(
            Duration::from_secs(2),
            store.load("session:a", None, super::LIMIT),
        )
        .await;
    }
}

/// `call` fails as unavailable, and within `bound`.
pub async fn unavailable_within<T: std::fmt::Debug>(
    bound: Duration,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) {
    let started = Instant::now();
    let err = call.await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < bound, "{:?}", started.elapsed());
}

/// Once the database is back, `store` serves `session:a` (saved before it
/// stopped, as `x`) again by itself.
pub async fn back_after_restart<S: SessionStore>(store: &S) {
    let mut back = None;
    for _ in 0..100 {
        if let Ok(found) = store.load("session:a", None, super::LIMIT).await {
            back = Some(found);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(back, Some(Some(b"x".to_vec())), "the store reconnects");
}
