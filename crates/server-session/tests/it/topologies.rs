//! The Redis store beyond one Redis 7.0, on real servers the tests start:
//! Valkey 8.1 (where a change is `SET ... IFEQ`, no script), a Redis Cluster
//! of three primaries with a replica each, and a primary with a replica
//! watched by three Sentinels. For each: the store contract, the commands a
//! request costs, configuration by environment names, and durable writes
//! (`WAIT`).
#![cfg(feature = "redis")]

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::get as request;
use crate::common::redis::{calls_during, routes};
use crate::common::servers::{Flavor, TestCluster, TestSentinel, TestValkey, cli};
use server_session::store::StoreError;
use server_session::{RedisStore, SessionConfig, SessionLayer};

/// The tests of this binary share one cluster and one Sentinel setup, and
/// count commands with `MONITOR`: they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The commands that act on sessions, out of what `MONITOR` saw (clients
/// also ask a cluster for its layout, name themselves, and so on).
fn session_calls(all: BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    all.into_iter()
        .filter(|(name, _)| {
            [
                "get", "getrange", "set", "evalsha", "eval", "del", "expire", "wait",
            ]
            .contains(&name.as_str())
        })
        .collect()
}

fn calls(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The cost contract of ARCHITECTURE.md, counted on the servers on `ports`: a new
/// session 1 call, untouched 0, a read 1, a change 2 (the second being
/// `update`), a logout 1.
async fn costs(store: RedisStore, ports: &[u16], update: &str) {
    let app = routes().layer(SessionLayer::new(store, SessionConfig::default()).unwrap());
    let (reply, used) = calls_during(ports, request(&app, "/login", None)).await;
    assert_eq!(session_calls(used), calls(&[("set", 1)]), "a new session");
    let cookie = reply.cookie_pair().unwrap();
    let (_, used) = calls_during(ports, request(&app, "/noop", Some(&cookie))).await;
    assert_eq!(session_calls(used), calls(&[]), "untouched");
    let (reply, used) = calls_during(ports, request(&app, "/read", Some(&cookie))).await;
    assert_eq!(reply.body, "alice");
    assert_eq!(
        session_calls(used),
        calls(&[("expire", 1), ("getrange", 1)]),
        "a read: one round trip"
    );
    let (reply, used) = calls_during(ports, request(&app, "/incr", Some(&cookie))).await;
    assert_eq!(reply.body, "2");
    assert_eq!(
        session_calls(used),
        calls(&[("getrange", 1), (update, 1)]),
        "a change: a load that leaves the expiry to the save, and the save"
    );
    let (_, used) = calls_during(ports, request(&app, "/logout", Some(&cookie))).await;
    assert_eq!(session_calls(used), calls(&[("del", 1)]), "a logout");
    assert_eq!(request(&app, "/read", Some(&cookie)).await.body, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn valkey_saves_with_set_ifeq_and_never_a_script() {
    let _serial = SERIAL.lock().await;
    let server = TestValkey::start();
    let store = RedisStore::connect(server.url.as_str()).await.unwrap();
    assert_eq!(store.native_compare_and_set(), Some(true));
    server_session::store::conformance::run(&store, tokio::time::sleep).await;
    server_session::store::conformance::run_scan(&store, tokio::time::sleep).await;
    server_session::store::conformance::run_index(&store, std::time::SystemTime::now, tokio::time::sleep)
        .await;
    let (_, used) = calls_during(
        &[server.process.port],
        costs(store, &[server.process.port], "set"),
    )
    .await;
    assert_eq!(used.get("evalsha"), None, "no script: {used:?}");
    assert_eq!(used.get("script|load"), None, "{used:?}");
}

#[tokio::test]
async fn redis_7_keeps_the_script() {
    let _serial = SERIAL.lock().await;
    let server = crate::common::redis::TestRedis::start();
    let store = RedisStore::connect(server.url.as_str()).await.unwrap();
    assert_eq!(store.native_compare_and_set(), Some(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_meets_the_store_contract_at_the_same_cost() {
    let _serial = SERIAL.lock().await;
    let cluster = TestCluster::shared();
    let store = RedisStore::cluster(cluster.urls()).connect().await.unwrap();
    server_session::store::conformance::run(&store, tokio::time::sleep).await;
    server_session::store::conformance::run_scan(&store, tokio::time::sleep).await;
    server_session::store::conformance::run_index(&store, std::time::SystemTime::now, tokio::time::sleep)
        .await;
    costs(store, &cluster.primaries(), "evalsha").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinel_meets_the_store_contract_at_the_same_cost() {
    let _serial = SERIAL.lock().await;
    let setup = TestSentinel::shared();
    let store = RedisStore::sentinel(setup.addrs(), setup.master.as_str())
        .connect()
        .await
        .unwrap();
    server_session::store::conformance::run(&store, tokio::time::sleep).await;
    server_session::store::conformance::run_scan(&store, tokio::time::sleep).await;
    server_session::store::conformance::run_index(&store, std::time::SystemTime::now, tokio::time::sleep)
        .await;
    costs(store, &[setup.primary_port().unwrap()], "evalsha").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_and_sentinel_from_flask_style_names() {
    let _serial = SERIAL.lock().await;
    let cluster = TestCluster::shared();
    let seeds = cluster.urls()[..2]
        .iter()
        .map(|u| u.trim_start_matches("redis://").to_owned())
        .collect::<Vec<_>>()
        .join(",");
    let setup = TestSentinel::shared();
    let environments = [
        vec![
            ("SESSION_TYPE", "redis".to_owned()),
            ("SESSION_REDIS_CLUSTER", seeds),
        ],
        vec![
            ("SESSION_TYPE", "redis".to_owned()),
            ("SESSION_REDIS_SENTINEL", setup.addrs().join(",")),
            ("SESSION_REDIS_SENTINEL_MASTER", setup.master.clone()),
        ],
    ];
    for env in environments {
        let layer = SessionLayer::from_config(SessionConfig::from_map(env.clone()).unwrap()).unwrap();
        let app = routes().layer(layer);
        let cookie = request(&app, "/login", None).await.cookie_pair().unwrap();
        assert_eq!(request(&app, "/incr", Some(&cookie)).await.body, "2", "{env:?}");
        assert_eq!(
            request(&app, "/read", Some(&cookie)).await.body,
            "alice",
            "{env:?}"
        );
    }
}

/// With `wait_for_replicas`, a write is acknowledged once replicas have it:
/// the replica holds the record when the response arrives. Asking for more
/// replicas than there are fails the write with a 503 after the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn durable_writes_wait_for_replicas() {
    let _serial = SERIAL.lock().await;
    let setup = TestSentinel::shared();
    let durable = |replicas: usize| {
        RedisStore::sentinel(setup.addrs(), setup.master.as_str())
            .wait_for_replicas(replicas, Duration::from_millis(300))
            .durable_connections(2)
    };
    let app = routes()
        .layer(SessionLayer::new(durable(1).connect().await.unwrap(), SessionConfig::default()).unwrap());
    let primary = setup.primary_port().unwrap();
    let replica = [&setup.primary, &setup.replica]
        .into_iter()
        .map(|p| p.port)
        .find(|port| *port != primary)
        .unwrap();
    for _ in 0..20 {
        let reply = request(&app, "/login", None).await;
        assert_eq!(reply.status, 200);
        let key = format!("session:{}", reply.cookie_value().unwrap());
        let on_replica = cli(Flavor::Redis, replica, &["EXISTS", &key]);
        assert_eq!(
            on_replica.trim(),
            "1",
            "the replica has the session when the response arrives"
        );
    }
    let (_, used) = calls_during(&[primary], async {
        let cookie = request(&app, "/login", None).await.cookie_pair().unwrap();
        request(&app, "/incr", Some(&cookie)).await;
        request(&app, "/logout", Some(&cookie)).await;
    })
    .await;
    assert_eq!(
        session_calls(used),
        calls(&[
            ("set", 1),
            ("getrange", 1),
            ("evalsha", 1),
            ("del", 1),
            ("wait", 3)
        ]),
        "one WAIT after each write"
    );

    let store = durable(2).connect().await.unwrap();
    let app = routes().layer(SessionLayer::new(store.clone(), SessionConfig::default()).unwrap());
    let reply = request(&app, "/login", None).await;
    assert_eq!(reply.status, 503, "one replica cannot confirm for two");
    let err = server_session::store::SessionStore::delete(&store, "session:none")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotReplicated {
                acknowledged: 1,
                required: 2
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn durable_writes_on_a_cluster_wait_on_the_keys_node() {
    let _serial = SERIAL.lock().await;
    let cluster = TestCluster::shared();
    let store = RedisStore::cluster(cluster.urls())
        .wait_for_replicas(1, Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let app = routes().layer(SessionLayer::new(store, SessionConfig::default()).unwrap());
    let (_, used) = calls_during(&cluster.primaries(), async {
        for _ in 0..10 {
            let reply = request(&app, "/login", None).await;
            assert_eq!(reply.status, 200);
            let cookie = reply.cookie_pair().unwrap();
            assert_eq!(request(&app, "/incr", Some(&cookie)).await.body, "2");
        }
    })
    .await;
    assert_eq!(
        session_calls(used),
        calls(&[("set", 10), ("getrange", 10), ("evalsha", 10), ("wait", 20)])
    );
}

/// Sentinels reached over TLS: the primary is reached over TLS too, with
/// the same CA, the primary's password and the Sentinels' own (from their
/// URL); a primary that speaks only TLS serves the sessions.
#[cfg(feature = "redis-tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_over_tls_reach_the_primary_over_tls() {
    let setup = crate::common::servers::TestTlsSentinel::start(true);
    let password = setup.password.clone().unwrap();
    let store = RedisStore::sentinel([setup.url()], setup.master.as_str())
        .password(password.as_str())
        .tls_ca_certificate(setup.certs.ca_pem())
        .connect()
        .await
        .unwrap();
    let app = routes().layer(SessionLayer::new(store, SessionConfig::default()).unwrap());
    let cookie = request(&app, "/login", None).await.cookie_pair().unwrap();
    assert_eq!(request(&app, "/incr", Some(&cookie)).await.body, "2");
    assert_eq!(request(&app, "/read", Some(&cookie)).await.body, "alice");

    // The same by the environment's names, the CA from a file.
    let layer = SessionLayer::from_config(
        SessionConfig::from_map([
            ("SESSION_TYPE", "redis".to_owned()),
            ("SESSION_REDIS_SENTINEL", setup.url()),
            ("SESSION_REDIS_SENTINEL_MASTER", setup.master.clone()),
            ("SESSION_REDIS_PASSWORD", password),
            ("SESSION_REDIS_TLS_CA", setup.certs.ca.clone()),
        ])
        .unwrap(),
    )
    .unwrap();
    let app = routes().layer(layer);
    assert_eq!(request(&app, "/read", Some(&cookie)).await.body, "alice");
}

/// Sentinels reached over TLS that name a primary speaking only plain TCP:
/// the store refuses it with an error that says so, and sends it nothing,
/// unless told explicitly to reach it in clear.
#[cfg(feature = "redis-tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_primary_behind_tls_sentinels_is_refused() {
    let setup = crate::common::servers::TestTlsSentinel::start(false);
    let builder = || {
        RedisStore::sentinel([setup.url()], setup.master.as_str()).tls_ca_certificate(setup.certs.ca_pem())
    };
    let (refused, used) = calls_during(&[setup.primary.port], builder().connect()).await;
    let err = refused.unwrap_err().to_string();
    assert!(err.contains("over TLS"), "{err}");
    assert!(err.contains(&setup.master), "{err}");
    assert_eq!(
        session_calls(used.clone()),
        calls(&[]),
        "nothing sent in clear: {used:?}"
    );
    assert_eq!(used.get("role"), None, "not even the role check: {used:?}");

    let store = builder().primary_tls(false).connect().await.unwrap();
    let app = routes().layer(SessionLayer::new(store, SessionConfig::default()).unwrap());
    let cookie = request(&app, "/login", None).await.cookie_pair().unwrap();
    assert_eq!(request(&app, "/read", Some(&cookie)).await.body, "alice");
}

/// A cluster connection that answers nothing for a whole deadline is
/// replaced: here every primary is paused (`CLIENT PAUSE`) for longer than
/// the deadline, requests answer 503 meanwhile, the store says it
/// reconnects, and the first request after the pause is served.
#[tokio::test(flavor = "current_thread")]
async fn a_cluster_connection_that_answers_nothing_is_replaced() {
    let _serial = SERIAL.lock().await;
    let cluster = TestCluster::shared();
    let store = RedisStore::cluster(cluster.urls())
        .connect_timeout(Duration::from_millis(200))
        .command_timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let app = routes().layer(SessionLayer::new(store, SessionConfig::default()).unwrap());
    let cookie = request(&app, "/login", None).await.cookie_pair().unwrap();
    let (logs, _guard) = crate::common::Logs::capture();
    for port in cluster.primaries() {
        cli(Flavor::Redis, port, &["CLIENT", "PAUSE", "1500", "ALL"]);
    }
    let paused = std::time::Instant::now();
    let mut failed = 0;
    while paused.elapsed() < Duration::from_millis(1200) {
        failed += usize::from(request(&app, "/read", Some(&cookie)).await.status == 503);
    }
    assert!(failed >= 2, "{failed}");
    assert!(logs.text().contains("reconnecting"), "{}", logs.text());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(request(&app, "/read", Some(&cookie)).await.body, "alice");
}
