//! Stored bytes and cookies against what the real Flask-Session 0.8.0 wrote
//! (tests/fixtures/flask-session-0.8.0.json), in both directions: what Rust
//! writes for the same data equals Flask's bytes, and Flask's bytes read back
//! as the same Rust values.

use std::time::Duration;

use crate::common::frameworks::{Framework, Served, serve};
use crate::common::values;
use crate::common::{fixtures, hex, unhex};
use server_session::store::{Expect, SaveOutcome, SessionStore};
use server_session::{Format, MemoryStore, SessionConfig, SessionLayer};

/// An app on `store` whose records are in `format`.
fn app<S: SessionStore>(store: S, format: Format, config: SessionConfig) -> Served {
    let config = config.serialization_format(format);
    serve(Framework::Axum, store, config, values::routes(format))
}

async fn request(app: &Served, path: &str, cookie: Option<&str>) -> crate::common::Reply {
    app.get(path, cookie).await
}

async fn stored<S: SessionStore>(store: &S, cookie: &str) -> Vec<u8> {
    let id = cookie.split_once('=').unwrap().1;
    store
        .load(&format!("session:{id}"), None, crate::common::LIMIT)
        .await
        .unwrap()
        .expect("stored")
}

/// Runs both directions for every entry of one per-type fixture table.
async fn both_directions<S: SessionStore + Clone>(store: S, table: &str, config: SessionConfig) {
    let fixtures = fixtures();
    let app = app(store.clone(), Format::MessagePack, config);
    let mut checked = 0;
    for (name, case) in fixtures[table].as_object().unwrap() {
        let Some(expected_hex) = case["stored_hex"].as_str() else {
            continue; // Flask could not store it either.
        };
        if name == "int_2pow64_overflow" {
            continue; // Beyond 64 bits; Rust has no serde type for it here.
        }
        // Rust writes what Flask wrote.
        let reply = request(&app, &format!("/put/{name}"), None).await;
        assert_eq!(reply.body, "true", "{table}/{name}: no Rust counterpart");
        let bytes = stored(&store, &reply.cookie_pair().unwrap()).await;
        assert_eq!(
            hex(&bytes),
            expected_hex,
            "{table}/{name}: Rust's bytes differ from Flask's"
        );

        // Flask's bytes read back as the Rust value.
        let id = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
        let key = format!("session:{id}");
        store.delete(&key).await.unwrap();
        let outcome = store
            .save(
                &key,
                &unhex(expected_hex),
                Duration::from_secs(60),
                Expect::Absent,
            )
            .await;
        assert_eq!(outcome.unwrap(), SaveOutcome::Saved);
        let cookie = format!("session={id}");
        let reply = request(&app, &format!("/holds/{name}"), Some(&cookie)).await;
        assert_eq!(
            reply.body, "true",
            "{table}/{name}: Flask's bytes read back differently"
        );
        checked += 1;
    }
    assert!(checked >= 3, "{table}: only {checked} cases");
}

#[tokio::test]
async fn msgpack_values_match_flask_both_ways() {
    both_directions(
        MemoryStore::new(),
        "per_type_encoding_msgpack",
        SessionConfig::default(),
    )
    .await;
}

#[tokio::test]
async fn msgpack_non_permanent_values_match_flask_both_ways() {
    let config = SessionConfig::default().permanent(false);
    both_directions(
        MemoryStore::new(),
        "per_type_encoding_msgpack_nonpermanent",
        config,
    )
    .await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_stores_flasks_bytes_both_ways() {
    let server = crate::common::redis::TestRedis::start();
    let store = server_session::RedisStore::connect(server.url.as_str())
        .await
        .unwrap();
    both_directions(
        store.clone(),
        "per_type_encoding_msgpack",
        SessionConfig::default(),
    )
    .await;
    let config = SessionConfig::default().permanent(false);
    both_directions(store, "per_type_encoding_msgpack_nonpermanent", config).await;
}

#[tokio::test]
async fn json_records_match_flask() {
    let fixtures = fixtures();
    let store = MemoryStore::new();
    let app = app(store.clone(), Format::Json, SessionConfig::default());
    for (name, case) in fixtures["per_type_encoding_json"].as_object().unwrap() {
        let Some(expected) = case["stored_text"].as_str() else {
            continue;
        };
        if name == "int_2pow64_overflow" {
            continue;
        }
        let reply = request(&app, &format!("/put/{name}"), None).await;
        assert_eq!(reply.body, "true", "{name}");
        let bytes = stored(&store, &reply.cookie_pair().unwrap()).await;
        assert_eq!(String::from_utf8(bytes).unwrap(), expected, "json/{name}");
    }
}

#[tokio::test]
async fn whole_records_from_the_scenarios_read_back_in_order() {
    let fixtures = fixtures();
    let step = &fixtures["scenario_redis_msgpack_signer_off"]["steps"][5];
    assert_eq!(step["request"], "POST /set_all_supported");
    let (_, state) = step["redis_state_after"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let bytes = unhex(state["value_hex"].as_str().unwrap());
    let store = MemoryStore::new();
    let id = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    store
        .save(
            &format!("session:{id}"),
            &bytes,
            Duration::from_secs(60),
            Expect::Absent,
        )
        .await
        .unwrap();
    let app = app(store.clone(), Format::MessagePack, SessionConfig::default());
    let reply = request(&app, "/keys", Some(&format!("session={id}"))).await;
    assert_eq!(
        reply.body, "user,n,str,int,float,bool_true,none,list,nested_dict,bytes,datetime_utc",
        "insertion order kept, _permanent hidden"
    );
    // A JSON record is read by a MessagePack app, as Flask-Session does.
    let json = fixtures["per_type_encoding_json"]["nested_dict"]["stored_text"]
        .as_str()
        .unwrap();
    store.delete(&format!("session:{id}")).await.unwrap();
    store
        .save(
            &format!("session:{id}"),
            json.as_bytes(),
            Duration::from_secs(60),
            Expect::Absent,
        )
        .await
        .unwrap();
    let reply = request(&app, "/holds/nested_dict", Some(&format!("session={id}"))).await;
    assert_eq!(reply.body, "true");
}

#[tokio::test]
async fn signed_cookie_matches_flask_vector() {
    let fixtures = fixtures();
    let vector = &fixtures["signing"]["vectors"][0];
    let (sid, cookie) = (
        vector["sid"].as_str().unwrap(),
        vector["cookie_value"].as_str().unwrap(),
    );
    let store = MemoryStore::new();
    let record = unhex("83aa5f7065726d616e656e74c3a475736572a5616c696365a16e01");
    store
        .save(
            &format!("session:{sid}"),
            &record,
            Duration::from_secs(60),
            Expect::Absent,
        )
        .await
        .unwrap();
    let config = SessionConfig::default().secret(vector["secret_key"].as_str().unwrap());
    let app = app(store, Format::MessagePack, config);
    let reply = request(&app, "/keys", Some(&format!("session={cookie}"))).await;
    assert_eq!(reply.body, "user,n", "Flask's signed cookie is accepted");
    assert_eq!(
        reply.cookie_value().unwrap(),
        cookie,
        "and the refreshed cookie is signed the same way"
    );
    let unsigned = request(&app, "/keys", Some(&format!("session={sid}"))).await;
    assert_eq!(
        unsigned.body, "",
        "an unsigned id is refused while the signer is on"
    );
}

#[tokio::test]
async fn id_lengths_match_flask() {
    let fixtures = fixtures();
    for (bytes, case) in fixtures["sid_lengths"].as_object().unwrap() {
        let bytes: usize = bytes.parse().unwrap();
        if bytes < 16 {
            // Flask accepts ids of fewer than 128 random bits; this does not.
            let short = SessionConfig::default().id_length(bytes);
            let err = SessionLayer::new(MemoryStore::new(), short).unwrap_err();
            assert!(err.to_string().contains("SESSION_ID_LENGTH"), "{err}");
            continue;
        }
        let store = MemoryStore::new();
        let app = app(
            store.clone(),
            Format::MessagePack,
            SessionConfig::default().id_length(bytes),
        );
        let reply = request(&app, "/put/str", None).await;
        assert_eq!(
            reply.cookie_value().unwrap().len() as u64,
            case["len"].as_u64().unwrap()
        );
        // Flask's id of that length is accepted.
        let sid = case["sid"].as_str().unwrap();
        store
            .save(
                &format!("session:{sid}"),
                &unhex("81a3737472a568656c6c6f"),
                Duration::from_secs(60),
                Expect::Absent,
            )
            .await
            .unwrap();
        let reply = request(&app, "/holds/str", Some(&format!("session={sid}"))).await;
        assert_eq!(reply.body, "true", "id length {bytes}");
    }
}
