//! The operator tool against real servers: sessions made through the
//! library, a few unusable records written raw, and every command run as an
//! operator would run it, on one Redis, on a loopback Redis Cluster, through
//! Sentinels (before and after a failover), and from Redis into SQLite.
//!
//! `CLI_TEST_SESSIONS` sets the number of sessions of the single-server test
//! (default 20,000); each test prints the time `stats` took.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use http::{Request, header};
use serde_json::Value;
use server_session::store::{Expect, SaveOutcome, SessionIndex};
use server_session::{
    RedisStore, Session, SessionConfig, SessionError, SessionLayer, Sessions, SqliteStore, UserSessions,
};
use tokio::task::JoinSet;
use tower::ServiceExt;

mod common;

use common::redis::TestRedis;
use common::servers::{Flavor, TestCluster, TestSentinel, cli as server_cli, wait_until};

const CORRUPT: usize = 10;
const OVERSIZED: usize = 5;
const ALICE: usize = 20;
const BOB: usize = 30;

/// `/make` stores a number, `/login/{user}` also binds the session to a
/// user, `/read` tells the number or `none`.
fn app(layer: SessionLayer) -> Router {
    Router::new()
        .route(
            "/make",
            get(|s: Session| async move { s.insert("n", &1).await.map(|_| "made") }),
        )
        .route(
            "/login/{user}",
            get(|s: Session, Path(user): Path<String>| async move {
                s.login(&user).await?;
                s.insert("n", &1).await?;
                Ok::<_, SessionError>("in")
            }),
        )
        .route(
            "/read",
            get(|s: Session| async move {
                let n: Option<u64> = s.get("n").await?;
                Ok::<_, SessionError>(n.map_or("none".to_owned(), |n| n.to_string()))
            }),
        )
        .layer(layer)
}

fn config() -> SessionConfig {
    SessionConfig::default()
}

/// A layer on `store` that keeps users' indexes, as the applications the
/// tool serves do.
fn indexed(store: impl SessionIndex, config: SessionConfig) -> SessionLayer {
    SessionLayer::from(Sessions::with_user_sessions(store, config, UserSessions::default()).unwrap())
}

/// The `name=value` of the session cookie a response set.
async fn request(app: &Router, path: &str, cookie: Option<&str>) -> (String, Option<String>) {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    let set = response
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (String::from_utf8(body.to_vec()).unwrap(), set)
}

/// Makes `count` sessions (the first `ALICE` of user alice, the next `BOB`
/// of bob); returns the cookies of alice's and bob's.
async fn make_sessions(app: &Router, count: usize) -> (Vec<String>, Vec<String>) {
    let mut made = JoinSet::new();
    let (mut alice, mut bob) = (Vec::new(), Vec::new());
    let mut settle = |done: Result<(usize, String), tokio::task::JoinError>| {
        let (n, cookie) = done.unwrap();
        if n < ALICE {
            alice.push(cookie);
        } else if n < ALICE + BOB {
            bob.push(cookie);
        }
    };
    for n in 0..count {
        if made.len() >= 128 {
            settle(made.join_next().await.unwrap());
        }
        let app = app.clone();
        made.spawn(async move {
            let path = match n {
                n if n < ALICE => "/login/alice",
                n if n < ALICE + BOB => "/login/bob",
                _ => "/make",
            };
            let (_, cookie) = request(&app, path, None).await;
            (n, cookie.expect("a new session sets its cookie"))
        });
    }
    while let Some(done) = made.join_next().await {
        settle(done);
    }
    (alice, bob)
}

/// Writes the unusable records: undecodable bytes, records over the 256 KiB
/// limit, and (as a sorted set through the index call) a key of another
/// type; returns how many of each.
async fn write_raw(store: &impl SessionIndex, wrong_type: bool) {
    let ttl = Duration::from_secs(3600);
    for n in 0..CORRUPT {
        let saved = store
            .save(
                &format!("session:corrupt{n}"),
                b"\xc1not a record",
                ttl,
                Expect::Absent,
            )
            .await;
        assert_eq!(saved.unwrap(), SaveOutcome::Saved);
    }
    for n in 0..OVERSIZED {
        // {"blob": <300,000 bytes>}, a valid record.
        let mut record = vec![0x81, 0xa4, b'b', b'l', b'o', b'b', 0xc6];
        record.extend_from_slice(&300_000u32.to_be_bytes());
        record.resize(record.len() + 300_000, b'x');
        let saved = store
            .save(&format!("session:big{n}"), &record, ttl, Expect::Absent)
            .await;
        assert_eq!(saved.unwrap(), SaveOutcome::Saved);
    }
    if wrong_type {
        let until = SystemTime::now() + ttl;
        store
            .index_add("session:a-sorted-set", "member", until)
            .await
            .unwrap();
    }
}

/// Runs the tool with `env` as its whole configuration.
fn cli(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server-session"));
    for (name, _) in std::env::vars() {
        if name.starts_with("SESSION_") || name == "SECRET_KEY" || name == "SQLALCHEMY_DATABASE_URI" {
            command.env_remove(name);
        }
    }
    command
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("the tool runs")
}

/// Runs the tool, expects `code`, returns its standard output.
fn run(env: &[(&str, &str)], args: &[&str], code: i32) -> String {
    let out = cli(env, args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn json(env: &[(&str, &str)], args: &[&str], code: i32) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run(env, &all, code);
    serde_json::from_str(out.lines().last().unwrap_or_default()).unwrap()
}

/// The records of an export file: key to bytes and expiry.
fn records(path: &std::path::Path) -> BTreeMap<String, (String, Option<u64>)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let key = v["key"].as_str().unwrap().to_owned();
            (
                key,
                (
                    v["record"].as_str().unwrap().to_owned(),
                    v["expires_at_ms"].as_u64(),
                ),
            )
        })
        .collect()
}

/// Every key of `a` is in `b` with the same bytes and an expiry within two
/// seconds.
fn same_records(a: &std::path::Path, b: &std::path::Path) -> usize {
    let (a, b) = (records(a), records(b));
    assert_eq!(a.len(), b.len(), "as many records after the move");
    for (key, (bytes, ttl)) in &a {
        let (moved, moved_ttl) = b.get(key).unwrap_or_else(|| panic!("a moved key is missing"));
        assert_eq!(bytes, moved, "a moved record keeps its bytes");
        let (ttl, moved_ttl) = (ttl.unwrap(), moved_ttl.unwrap());
        assert!(
            ttl.abs_diff(moved_ttl) <= 2000,
            "a moved record keeps its expiry ({ttl} ms, {moved_ttl} ms)"
        );
    }
    a.len()
}

fn timed_stats(env: &[(&str, &str)], label: &str) -> Value {
    let stats = json(env, &["stats"], 0);
    println!(
        "stats over {} records ({label}): {:.2} s",
        stats["records"],
        stats["seconds"].as_f64().unwrap()
    );
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operates_on_the_sessions_of_one_redis_and_moves_them_to_sqlite() {
    let sessions: usize = std::env::var("CLI_TEST_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let redis = TestRedis::start();
    let env = [("SESSION_TYPE", "redis"), ("SESSION_REDIS", redis.url.as_str())];
    let store = RedisStore::builder(redis.url.as_str()).connect().await.unwrap();
    let app = app(indexed(store.clone(), config()));
    let (alice, bob) = make_sessions(&app, sessions).await;
    write_raw(&store, true).await;

    let stats = timed_stats(&env, "one Redis");
    assert_eq!(stats["records"], sessions + CORRUPT + OVERSIZED + 1);
    assert_eq!(stats["sessions"], sessions + OVERSIZED);
    assert_eq!(stats["undecodable"], CORRUPT);
    assert_eq!(stats["oversized"], OVERSIZED);
    assert_eq!(stats["wrong_type"], 1);
    assert_eq!(stats["users"], 2);
    assert_eq!(stats["sessions_with_user"], ALICE + BOB);
    assert_eq!(stats["format"]["msgpack"], sessions + OVERSIZED);
    assert_eq!(
        stats["ttl"]["under_31d"], sessions,
        "31 days by default, minus a little"
    );
    assert_eq!(stats["ttl"]["under_1h"], OVERSIZED, "an hour, minus a little");

    let found = json(&env, &["check"], 1);
    assert_eq!(found["problems"], CORRUPT + OVERSIZED + 1);
    let larger_limit = json(&env, &["--max-record-size", "400000", "check"], 1);
    assert_eq!(
        larger_limit["problems"],
        CORRUPT + 1,
        "under the application's own limit"
    );
    assert_eq!(found["removed"], 0);
    let fixed = json(&env, &["check", "--fix"], 0);
    assert_eq!(
        fixed["removed"],
        CORRUPT + OVERSIZED + 1,
        "check --fix removes exactly the unusable records"
    );
    assert_eq!(json(&env, &["check"], 0)["problems"], 0);
    assert_eq!(timed_stats(&env, "after the fix")["records"], sessions);

    // `show` by cookie and by handle; no id printed unless asked.
    let id = alice[0].split_once('=').unwrap().1;
    let shown = json(&env, &["show", id], 0);
    assert_eq!(shown["user"], "alice");
    assert_eq!(shown["data"]["n"], 1);
    assert!(shown["metadata"]["_ss_user"].is_string());
    assert!(
        !shown.to_string().contains(id),
        "show prints no session id unless asked"
    );
    let handle = shown["handle"].as_str().unwrap().to_owned();
    assert_eq!(json(&env, &["show", &handle], 0)["user"], "alice");
    assert_eq!(
        json(&env, &["show", id, "--show-id"], 0)["key"],
        format!("session:{id}")
    );
    assert!(cli(&env, &["show", "not-a-session"]).status.code() == Some(2));
    // Ids and handles are base64url: one may start with `-`.
    assert_eq!(
        cli(&env, &["show", "-AAAAAAAAAAAAAAAAAAAAA"]).status.code(),
        Some(1),
        "a handle, unknown"
    );

    let listed = run(&env, &["--json", "list", "--user", "bob"], 0);
    assert_eq!(listed.lines().count(), BOB);
    assert!(!listed.contains(bob[0].split_once('=').unwrap().1));

    // Every session of alice ends; her cookies get fresh sessions; bob's
    // sessions stay.
    let revoked = json(&env, &["revoke-user", "alice"], 0);
    assert_eq!(revoked["revoked"], ALICE);
    for cookie in &alice {
        let (body, set) = request(&app, "/read", Some(cookie)).await;
        assert_eq!(body, "none", "a revoked session is gone");
        assert!(set.is_none_or(|set| &set != cookie));
    }
    assert_eq!(request(&app, "/read", Some(&bob[0])).await.0, "1");
    let kept = run(&env, &["--json", "list", "--user", "bob"], 0);
    let keep = serde_json::from_str::<Value>(kept.lines().next().unwrap()).unwrap()["handle"].clone();
    let revoked = json(
        &env,
        &["revoke-user", "bob", "--except", keep.as_str().unwrap()],
        0,
    );
    assert_eq!(revoked["revoked"], BOB - 1);
    assert_eq!(
        run(&env, &["--json", "list", "--user", "bob"], 0).lines().count(),
        1
    );

    // `revoke` one session by its cookie.
    let (_, other) = request(&app, "/make", None).await;
    let other = other.unwrap();
    assert_eq!(
        json(&env, &["revoke", other.split_once('=').unwrap().1], 0)["revoked"],
        true
    );
    assert_eq!(request(&app, "/read", Some(&other)).await.0, "none");

    // Export, then import into an empty Redis: every key, its bytes, and
    // its time left within two seconds. (First the few seconds that the
    // records of ended sessions last.)
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (_, plain) = request(&app, "/make", None).await;
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("sessions.jsonl");
    let dump_arg = dump.to_str().unwrap();
    run(&env, &["export", "--output", dump_arg], 0);
    let empty = TestRedis::start();
    let moved_env = [("SESSION_TYPE", "redis"), ("SESSION_REDIS", empty.url.as_str())];
    let imported = json(&moved_env, &["import", "--input", dump_arg], 0);
    let exported = records(&dump).len();
    assert_eq!(imported["imported"], exported);
    let again = dir.path().join("again.jsonl");
    run(&moved_env, &["export", "--output", again.to_str().unwrap()], 0);
    assert_eq!(same_records(&dump, &again), exported);
    let twice = json(&moved_env, &["import", "--input", dump_arg], 1);
    assert_eq!(twice["kept_existing"], exported, "import refuses to overwrite");
    let forced = json(&moved_env, &["import", "--input", dump_arg, "--overwrite"], 0);
    assert_eq!(forced["imported"], exported);

    // The same round trip from Redis into SQLite; an app on that database
    // then serves the sessions.
    let db = dir.path().join("sessions.db");
    let uri = format!("sqlite:///{}", db.display());
    let sql_env = [
        ("SESSION_TYPE", "sqlalchemy"),
        ("SQLALCHEMY_DATABASE_URI", uri.as_str()),
    ];
    assert_eq!(
        json(&sql_env, &["import", "--input", dump_arg], 0)["imported"],
        exported
    );
    let from_sql = dir.path().join("from-sqlite.jsonl");
    run(&sql_env, &["export", "--output", from_sql.to_str().unwrap()], 0);
    assert_eq!(same_records(&dump, &from_sql), exported);
    let sql_stats = timed_stats(&sql_env, "SQLite");
    assert_eq!(
        sql_stats["sessions"],
        exported as u64 - sql_stats["ended"].as_u64().unwrap()
    );
    assert_eq!(json(&sql_env, &["gc"], 0)["purged"], 0);
    assert_eq!(json(&env, &["gc"], 0)["purged"], 0);
    let sqlite = SqliteStore::builder(&uri).open().await.unwrap();
    let sql_app = app_on(Arc::new(sqlite));
    assert_eq!(
        request(&sql_app, "/read", plain.as_deref()).await.0,
        "1",
        "a moved session is served"
    );
}

/// An app on `store`, which keeps no user index.
fn app_on(store: Arc<SqliteStore>) -> Router {
    app(SessionLayer::new(store, SessionConfig::default()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_commands_work_on_a_cluster() {
    let cluster = TestCluster::start(Flavor::Redis, 3);
    let seeds = cluster.urls().join(",");
    let env = [
        ("SESSION_TYPE", "redis"),
        ("SESSION_REDIS_CLUSTER", seeds.as_str()),
    ];
    let store = RedisStore::cluster(cluster.urls()).connect().await.unwrap();
    let app = app(indexed(store.clone(), config()));
    let sessions = 3000;
    let (alice, _) = make_sessions(&app, sessions).await;
    write_raw(&store, true).await;

    let stats = timed_stats(&env, "cluster");
    assert_eq!(stats["records"], sessions + CORRUPT + OVERSIZED + 1);
    assert_eq!(stats["undecodable"], CORRUPT);
    assert_eq!(stats["oversized"], OVERSIZED);
    assert_eq!(stats["sessions_with_user"], ALICE + BOB);
    assert_eq!(
        json(&env, &["check", "--fix"], 0)["removed"],
        CORRUPT + OVERSIZED + 1
    );
    assert_eq!(json(&env, &["stats"], 0)["records"], sessions);

    assert_eq!(json(&env, &["revoke-user", "alice"], 0)["revoked"], ALICE);
    for cookie in &alice {
        assert_eq!(request(&app, "/read", Some(cookie)).await.0, "none");
    }

    tokio::time::sleep(Duration::from_secs(6)).await;
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("cluster.jsonl");
    run(&env, &["export", "--output", dump.to_str().unwrap()], 0);
    let single = TestRedis::start();
    let single_env = [("SESSION_TYPE", "redis"), ("SESSION_REDIS", single.url.as_str())];
    run(&single_env, &["import", "--input", dump.to_str().unwrap()], 0);
    let back = dir.path().join("single.jsonl");
    run(&single_env, &["export", "--output", back.to_str().unwrap()], 0);
    assert_eq!(same_records(&dump, &back), records(&dump).len());
}

/// Through the Sentinels, each run of the tool asks them for the primary:
/// after they promote the replica, the same commands reach the new primary
/// and find every session there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_commands_work_through_sentinels_and_follow_a_failover() {
    let setup = TestSentinel::start();
    let sentinels = setup.addrs().join(",");
    let env = [
        ("SESSION_TYPE", "redis"),
        ("SESSION_REDIS_SENTINEL", sentinels.as_str()),
        ("SESSION_REDIS_SENTINEL_MASTER", setup.master.as_str()),
    ];
    let store = RedisStore::sentinel(setup.addrs(), setup.master.as_str())
        .connect()
        .await
        .unwrap();
    let app = app(indexed(store.clone(), config()));
    let sessions = 500;
    let (alice, bob) = make_sessions(&app, sessions).await;
    write_raw(&store, false).await;

    let stats = json(&env, &["stats"], 0);
    assert_eq!(stats["records"], sessions + CORRUPT + OVERSIZED);
    assert_eq!(stats["sessions_with_user"], ALICE + BOB);
    let shown = json(&env, &["show", alice[0].split_once('=').unwrap().1], 0);
    assert_eq!(shown["user"], "alice");
    let handle = shown["handle"].as_str().unwrap().to_owned();

    // Every write on the replica, then the primary dies.
    let old = setup.primary_port().unwrap();
    let synced = server_cli(Flavor::Redis, old, &["WAIT", "1", "5000"]);
    assert_eq!(synced.trim(), "1", "the replica has every write");
    setup.primary.kill();
    tokio::task::block_in_place(|| {
        wait_until(
            Duration::from_secs(30),
            "every Sentinel names the promoted replica, which acts as the primary",
            || {
                let named: Vec<Option<u16>> = setup
                    .sentinels
                    .iter()
                    .map(|s| {
                        let answer = server_cli(
                            Flavor::Redis,
                            s.port,
                            &["SENTINEL", "get-master-addr-by-name", &setup.master],
                        );
                        answer.lines().nth(1).and_then(|p| p.trim().parse().ok())
                    })
                    .collect();
                match named[0] {
                    Some(new) if new != old && named.iter().all(|p| *p == Some(new)) => {
                        server_cli(Flavor::Redis, new, &["ROLE"]).starts_with("master")
                    }
                    _ => false,
                }
            },
        );
    });

    let stats = json(&env, &["stats"], 0);
    assert_eq!(
        stats["records"],
        sessions + CORRUPT + OVERSIZED,
        "on the new primary"
    );
    assert_eq!(json(&env, &["show", &handle], 0)["user"], "alice");
    assert_eq!(
        run(&env, &["--json", "list", "--user", "bob"], 0).lines().count(),
        BOB
    );
    assert_eq!(json(&env, &["check", "--fix"], 0)["removed"], CORRUPT + OVERSIZED);
    assert_eq!(json(&env, &["revoke-user", "alice"], 0)["revoked"], ALICE);
    // The app's store finds the new primary on its own (its first calls
    // after the failover may fail); then bob's sessions are served and
    // alice's are gone.
    let mut served = None;
    for _ in 0..40 {
        let read = Request::get("/read").header(header::COOKIE, &bob[0]);
        let response = app
            .clone()
            .oneshot(read.body(Body::empty()).unwrap())
            .await
            .unwrap();
        served = Some(response.status());
        if response.status().is_success() {
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            assert_eq!(body, "1", "bob's session survived the failover");
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(served.is_some_and(|s| s.is_success()), "{served:?}");
    for cookie in &alice {
        assert_eq!(request(&app, "/read", Some(cookie)).await.0, "none");
    }
}

/// A prefix without a trailing `:` also matches the users' indexes
/// (`app_users:alice`): they are not records, and the tool leaves them
/// alone. An import puts the sessions back in their users' indexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_are_not_records_and_an_import_rebuilds_them() {
    let prefixed = || config().key_prefix("app_");
    let redis = TestRedis::start();
    let env = [
        ("SESSION_TYPE", "redis"),
        ("SESSION_REDIS", redis.url.as_str()),
        ("SESSION_KEY_PREFIX", "app_"),
    ];
    let store = RedisStore::builder(redis.url.as_str()).connect().await.unwrap();
    let app = app(indexed(store, prefixed()));
    make_sessions(&app, ALICE + BOB + 5).await;
    let found = json(&env, &["check"], 0);
    assert_eq!(found["problems"], 0, "the indexes are not unusable records");
    assert_eq!(found["records"], ALICE + BOB + 5);
    assert_eq!(json(&env, &["stats"], 0)["users"], 2);

    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("sessions.jsonl");
    run(&env, &["export", "--output", dump.to_str().unwrap()], 0);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&dump).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "an export is readable by its owner only");
    let moved = TestRedis::start();
    let moved_env = [
        ("SESSION_TYPE", "redis"),
        ("SESSION_REDIS", moved.url.as_str()),
        ("SESSION_KEY_PREFIX", "app_"),
    ];
    run(&moved_env, &["import", "--input", dump.to_str().unwrap()], 0);
    let store = RedisStore::builder(moved.url.as_str()).connect().await.unwrap();
    let layer = indexed(store, prefixed());
    assert_eq!(
        layer.users().list("alice").await.unwrap().len(),
        ALICE,
        "the index came along"
    );
    assert_eq!(layer.users().revoke_all("bob").await.unwrap(), BOB);
}

/// Text a store writer controls (a user name with terminal escapes and a
/// line break) reaches the terminal escaped, in every command's text
/// output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_from_the_store_are_escaped() {
    let redis = TestRedis::start();
    let env = [("SESSION_TYPE", "redis"), ("SESSION_REDIS", redis.url.as_str())];
    let store = RedisStore::builder(redis.url.as_str()).connect().await.unwrap();
    let app = app(indexed(store, config()));
    // ESC ] 0 ; owned BEL (a new window title), a line break, ESC [ 2 J.
    let (_, cookie) = request(&app, "/login/eve%1B%5D0%3Bowned%07%0Aforged%1B%5B2J", None).await;
    assert!(cookie.is_some());
    let user = "eve\u{1b}]0;owned\u{7}\nforged\u{1b}[2J";
    for args in [
        vec!["list"],
        vec!["list", "--user", user],
        vec!["list", "--show-ids"],
        vec!["stats"],
        vec!["check"],
        vec!["revoke-user", user],
    ] {
        let out = run(&env, &args, 0);
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{7}'),
            "{args:?}: {out:?}"
        );
        assert!(
            !out.lines().any(|line| line.starts_with("forged")),
            "{args:?}: {out:?}"
        );
    }
    assert!(
        run(&env, &["list"], 0).lines().count() == 1,
        "the session is revoked"
    );
}

/// A PostgreSQL row whose expiry is `infinity` (no writer of the table
/// stores one) breaks none of the commands, the one that cleans up
/// included: it counts as a session that never expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_expiry_breaks_no_command() {
    let server = common::postgres::TestPostgres::start();
    let store = server_session::PostgresStore::builder(&server.url)
        .open()
        .await
        .unwrap();
    // (SQL stores keep no index of users' sessions: the sessions are
    // bound, and found by a walk.)
    let app = app(SessionLayer::new(store, SessionConfig::default()).unwrap());
    request(&app, "/login/alice", None).await;
    request(&app, "/make", None).await;
    psql(&server.url, "UPDATE sessions SET expiry = 'infinity'");
    let env = [
        ("SESSION_TYPE", "sqlalchemy"),
        ("SQLALCHEMY_DATABASE_URI", server.url.as_str()),
    ];
    let stats = json(&env, &["stats"], 0);
    assert_eq!(
        (stats["sessions"].as_u64(), stats["ttl"]["never"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(run(&env, &["list"], 0).lines().count(), 3);
    assert_eq!(run(&env, &["list", "--user", "alice"], 0).lines().count(), 2);
    assert_eq!(json(&env, &["check", "--fix"], 0)["problems"], 0);
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("sessions.jsonl");
    run(&env, &["export", "--output", dump.to_str().unwrap()], 0);
    assert_eq!(records(&dump).len(), 2);
    assert_eq!(json(&env, &["revoke-user", "alice"], 0)["revoked"], 1);
}

/// An import checks every line before it writes any: a file with bad
/// lines writes nothing and names them by number; with --skip-invalid the
/// good lines are written and the exit code says something was left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_checks_every_line_before_writing_any() {
    use base64::Engine as _;
    let redis = TestRedis::start();
    let env = [("SESSION_TYPE", "redis"), ("SESSION_REDIS", redis.url.as_str())];
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let id = |n: u8| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([n; 32]);
    // {"n": "1"}, {"n": <300,000 characters>}, {"_ss_user": "root ESC [2J"}.
    let good = b"\x81\xa1n\xa11".to_vec();
    let mut large = b"\x81\xa1n\xdb".to_vec();
    large.extend_from_slice(&300_000u32.to_be_bytes());
    large.resize(large.len() + 300_000, b'x');
    let bound = b"\x81\xa8_ss_user\xa8root\x1b[2J".to_vec();
    let line = |key: &str, bytes: &[u8], ttl_ms: u64| {
        serde_json::json!({"key": key, "record": b64(bytes), "ttl_ms": ttl_ms, "expires_at_ms": null})
            .to_string()
    };
    let lines = [
        line(&format!("session:{}", id(1)), &good, 60_000),
        line("session:short", &good, 60_000),
        line(&format!("session:{}", id(2)), b"\xc1not a record", 60_000),
        line(&format!("session:{}", id(3)), &large, 60_000),
        line(&format!("session:{}", id(4)), &good, u64::MAX),
        line(&format!("session:{}", id(5)), &bound, 60_000),
        "not json".to_owned(),
        line(&format!("session:{}", id(6)), &good, 60_000),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("import.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = cli(&env, &["import", "--input", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for number in 2..=7 {
        assert!(
            stderr.contains(&format!("line {number}:")),
            "line {number}: {stderr}"
        );
    }
    assert!(
        !stderr.contains("line 1:") && !stderr.contains("line 8:"),
        "{stderr}"
    );
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut redis.connection())
        .unwrap();
    assert!(keys.is_empty(), "nothing written: {keys:?}");

    let done = json(
        &env,
        &["import", "--skip-invalid", "--input", file.to_str().unwrap()],
        1,
    );
    assert_eq!(
        (done["imported"].as_u64(), done["invalid"].as_u64()),
        (Some(2), Some(6))
    );
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut redis.connection())
        .unwrap();
    keys.sort();
    assert_eq!(keys, [format!("session:{}", id(1)), format!("session:{}", id(6))]);
    for key in &keys {
        let ttl: i64 = redis::cmd("TTL").arg(key).query(&mut redis.connection()).unwrap();
        assert!((1..=60).contains(&ttl), "{key}: {ttl}");
    }
}

/// Runs `statement` on the PostgreSQL database at `url`, with `psql`.
fn psql(url: &str, statement: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-c", statement])
        .output()
        .expect("psql runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn bad_configuration_and_usage_have_their_exit_codes() {
    let out = cli(&[("SESSION_TYPE", "nonsense")], &["stats"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SESSION_TYPE"));
    let out = cli(
        &[
            ("SESSION_TYPE", "redis"),
            ("SESSION_REDIS", "redis://127.0.0.1:1"),
        ],
        &["stats"],
    );
    assert_eq!(out.status.code(), Some(3), "an unreachable store is exit code 3");
    assert_eq!(cli(&[], &["no-such-command"]).status.code(), Some(2));
    let out = cli(&[], &["stats"]);
    assert_eq!(out.status.code(), Some(2), "no store configured");
    assert!(String::from_utf8_lossy(&out.stderr).contains("SESSION_TYPE"));
}
