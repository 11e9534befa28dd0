//! What the fuzz targets in `fuzz/` run, one function per kind of untrusted
//! input: stored records, `Cookie` headers and Flask-style configuration.
//! Built for them with `--cfg fuzzing` (which `cargo fuzz` sets); the test
//! suite replays their corpora through the same functions.
//!
//! Each function panics only when a property of the library fails, never on
//! bad input; the fuzzer reports any panic, stack overflow or oversized
//! allocation as a finding.

use std::sync::OnceLock;
use std::time::Duration;

use http::HeaderValue;

use crate::config::{SessionConfig, UserSessions};
use crate::engine::{Pending, Plan, Presented};
use crate::record::{Format, Record};
use crate::session::{Session, from_raw};
use crate::sessions::Sessions;
use crate::store::memory::MemoryStore;
use crate::store::{Expect, SessionStore};

/// The id every stored-record case is planted under.
const ID: &str = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuz";
/// The secret of the signing engine; seeds sign with it.
pub const SECRET: &[u8] = b"fuzzing-secret-0123456789abcdef!";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
    })
}

/// Engines over small memory stores, with every expiry rule on so forged
/// metadata reaches all of them, and users' sessions indexed so a stored
/// user binding reaches the index; and, per format, one whose record limit
/// (1 KiB) the inputs (up to 4 KiB) pass, for the refusal of a record over
/// it. (One store per format: the corpora of the two formats replay at
/// once, each planting under the same key.)
struct Engines {
    msgpack: (Sessions, MemoryStore),
    json: (Sessions, MemoryStore),
    signed: Sessions,
    small_msgpack: (Sessions, MemoryStore),
    small_json: (Sessions, MemoryStore),
}

/// The record limit of [`Engines::small`].
const SMALL_LIMIT: usize = 1024;

fn engines() -> &'static Engines {
    static ENGINES: OnceLock<Engines> = OnceLock::new();
    ENGINES.get_or_init(|| {
        let config = SessionConfig::default()
            .idle_timeout(Duration::from_secs(1800))
            .absolute_timeout(Duration::from_secs(12 * 3600));
        let make = |config: SessionConfig| {
            let store = MemoryStore::builder().max_entries(64).build();
            let sessions = Sessions::with_user_sessions(store.clone(), config, UserSessions::default())
                .expect("a valid configuration");
            (sessions, store)
        };
        Engines {
            msgpack: make(config.clone()),
            json: make(config.clone().serialization_format(Format::Json)),
            signed: make(config.clone().secret(SECRET)).0,
            small_msgpack: make(config.clone().max_record_size(SMALL_LIMIT)),
            small_json: make(
                config
                    .max_record_size(SMALL_LIMIT)
                    .serialization_format(Format::Json),
            ),
        }
    })
}

/// Bytes found in the store under a session's key, read as `format`
/// prefers: by the codec alone, then by a request that presents the
/// session's cookie, reads every key and changes one.
pub fn stored_record(data: &[u8], format: Format) {
    if let Ok(record) = Record::decode(data, format) {
        for (key, raw) in record.iter() {
            let key = std::str::from_utf8(key).expect("decoded keys are UTF-8");
            let _ = from_raw::<rmpv::Value>(key, raw);
            let _ = from_raw::<serde_json::Value>(key, raw);
        }
        let packed = record
            .encode(Format::MessagePack)
            .expect("a decoded record encodes as MessagePack");
        let again = Record::decode(&packed, Format::MessagePack).expect("its MessagePack decodes");
        assert!(again == record, "MessagePack round trip");
        if let Ok(json) = record.encode(Format::Json) {
            let again = Record::decode(&json, Format::Json).expect("JSON written here decodes");
            assert_eq!(again.iter().count(), record.iter().count(), "JSON round trip");
        }
    }
    let engines = engines();
    let ((engine, store), (small, small_store)) = match format {
        Format::MessagePack => (&engines.msgpack, &engines.small_msgpack),
        Format::Json => (&engines.json, &engines.small_json),
    };
    runtime().block_on(async {
        let (session, pending) = planted(engine, store, data).await;
        let keys = session
            .keys()
            .await
            .expect("any stored bytes give a usable session");
        for key in keys {
            let _ = session.get::<serde_json::Value>(&key).await;
        }
        // Fails only when the stored "fuzz" value is not a number.
        let _ = session
            .update("fuzz", |n: Option<u64>| n.unwrap_or(0).wrapping_add(1))
            .await;
        if let Plan::Fail(failure) = pending.finish().plan().await {
            panic!("a request on stored bytes failed: {failure:?}");
        }
        // A record over the limit is not read but discarded, and the request
        // goes on with a fresh session.
        if data.len() <= SMALL_LIMIT {
            return;
        }
        let (session, pending) = planted(small, small_store, data).await;
        let keys = session
            .keys()
            .await
            .expect("any stored bytes give a usable session");
        assert!(keys.is_empty(), "a record over the limit is not read");
        let left = small_store
            .load(&format!("session:{ID}"), None, usize::MAX)
            .await
            .expect("the memory store never fails");
        assert_eq!(left, None, "a record over the limit is discarded");
        if let Plan::Fail(failure) = pending.finish().plan().await {
            panic!("a request on a record over the limit failed: {failure:?}");
        }
    });
}

/// `data` stored under the session [`ID`] in `store`, and a request's
/// session that presents its cookie to `sessions`, with its commit.
async fn planted(sessions: &Sessions, store: &MemoryStore, data: &[u8]) -> (Session, Pending) {
    let key = format!("session:{ID}");
    store.delete(&key).await.expect("the memory store never fails");
    store
        .save(&key, data, Duration::from_secs(3600), Expect::Absent)
        .await
        .expect("the memory store never fails");
    let cookie = HeaderValue::from_str(&format!("session={ID}")).expect("a valid header");
    sessions.open(vec![cookie], None)
}

/// `Cookie` header values, one per line, as the unsigned and the signing
/// engine read them.
pub fn cookie_headers(data: &[u8]) {
    let headers: Vec<HeaderValue> = data
        .split(|b| *b == b'\n')
        .filter_map(|line| HeaderValue::from_bytes(line).ok())
        .collect();
    for sessions in [&engines().msgpack.0, &engines().signed] {
        if let Presented::Valid(id) = sessions.engine().read_cookie(headers.iter()) {
            let id = id.as_str().as_bytes();
            assert!(
                data.windows(id.len()).any(|w| w == id),
                "an id that was not presented"
            );
        }
    }
}

/// A configuration file of `NAME=value` lines, read by Flask's names; a
/// configuration that reads must build a layer that serves a new session.
pub fn flask_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let pairs: Vec<(&str, &str)> = text.lines().filter_map(|line| line.split_once('=')).collect();
    let Ok(config) = SessionConfig::from_map(pairs) else {
        return;
    };
    let store = MemoryStore::builder().max_entries(4).build();
    let sessions = Sessions::new(store, config).expect("from_map gives only valid configurations");
    runtime().block_on(async {
        let (session, pending) = sessions.open(Vec::new(), None);
        session
            .insert("k", &1)
            .await
            .expect("a new session takes a value");
        session
            .set_lifetime(Some(Duration::from_secs(90 * 24 * 3600)))
            .await
            .expect("a lifetime within the maximum");
        let plan = pending.finish().plan().await;
        assert!(
            matches!(plan, Plan::Respond { set_cookie: Some(_) }),
            "the first save of a new session sets its cookie: {plan:?}"
        );
    });
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Runs `target` on every file of a committed corpus.
    fn replay(name: &str, target: impl Fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(name);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut count = 0;
        for entry in entries {
            let path = entry.expect("a readable corpus").path();
            let data = std::fs::read(&path).expect("a readable corpus file");
            target(&data);
            count += 1;
        }
        assert!(count > 0, "{} is empty", dir.display());
    }

    #[test]
    fn stored_msgpack_corpus() {
        replay("stored_msgpack", |data| stored_record(data, Format::MessagePack));
    }

    #[test]
    fn stored_json_corpus() {
        replay("stored_json", |data| stored_record(data, Format::Json));
    }

    #[test]
    fn cookie_header_corpus() {
        replay("cookie_header", cookie_headers);
    }

    #[test]
    fn flask_config_corpus() {
        replay("flask_config", flask_config);
    }
}
