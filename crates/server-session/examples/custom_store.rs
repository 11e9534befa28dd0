//! A store of your own: the four calls of `SessionStore` are all a store
//! needs to serve sessions, with every guarantee. This one keeps records in
//! a map; the test suite runs `store::conformance::run` on it.
//!
//! ```text
//! cargo run --example custom_store
//! curl -c jar -b jar 127.0.0.1:3000/counter       # 1, 2, 3, ...
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::{Router, routing::get};
use server_session::store::{Expect, SaveOutcome, SessionStore, StoreError};
use server_session::{Session, SessionConfig, SessionError, SessionLayer};

/// Records and the instant each expires, behind one lock: each call is
/// atomic, which is what the engine's guarantees rest on.
#[derive(Clone, Default)]
pub struct MapStore(Arc<Mutex<Map>>);

type Map = HashMap<String, (Vec<u8>, Instant)>;

/// The live record at `key`, dropping an expired one.
fn live(map: &mut Map, key: &str) -> Option<Vec<u8>> {
    if map.get(key).is_some_and(|(_, until)| *until <= Instant::now()) {
        map.remove(key);
    }
    map.get(key).map(|(bytes, _)| bytes.clone())
}

impl SessionStore for MapStore {
    async fn load(
        &self,
        key: &str,
        slide: Option<Duration>,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut map = self.0.lock().unwrap();
        let Some(bytes) = live(&mut map, key) else {
            return Ok(None);
        };
        if bytes.len() > limit {
            return Err(StoreError::TooLarge { limit });
        }
        if let (Some(ttl), Some(entry)) = (slide, map.get_mut(key)) {
            entry.1 = Instant::now() + ttl;
        }
        Ok(Some(bytes))
    }

    async fn save(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        expect: Expect<'_>,
    ) -> Result<SaveOutcome, StoreError> {
        let mut map = self.0.lock().unwrap();
        match (live(&mut map, key), expect) {
            (Some(current), Expect::Absent) => return Ok(SaveOutcome::Conflict(current)),
            (None, Expect::Unchanged(_)) => return Ok(SaveOutcome::Gone),
            (Some(current), Expect::Unchanged(loaded)) if current != loaded => {
                return Ok(SaveOutcome::Conflict(current));
            }
            _ => {}
        }
        map.insert(key.to_owned(), (value.to_vec(), Instant::now() + ttl));
        Ok(SaveOutcome::Saved)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }

    async fn touch(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        let mut map = self.0.lock().unwrap();
        if live(&mut map, key).is_some() {
            map.entry(key.to_owned())
                .and_modify(|entry| entry.1 = Instant::now() + ttl);
        }
        Ok(())
    }
}

async fn counter(session: Session) -> Result<String, SessionError> {
    let n = session
        .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(n.to_string())
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sessions = SessionLayer::new(MapStore::default(), SessionConfig::default())?;
    let app = Router::new().route("/counter", get(counter)).layer(sessions);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
