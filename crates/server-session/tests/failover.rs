//! Failovers under load, on real servers: a Redis Cluster of three primaries
//! with a replica each, and a primary with a replica under three Sentinels.
//!
//! A steady mix of reads and increments runs over 1,000 sessions (spread
//! over every slot) while a primary is killed with `kill -9` (and started
//! again once its replica has taken over, as a supervisor would), or handed
//! over with `CLUSTER FAILOVER`. Each scenario runs without and with
//! durable writes (`wait_for_replicas(1, ...)`) and reports the longest
//! request, the time until every session was served again, the 503s, and
//! the acknowledged increments that were lost. Then, on a Redis 7.0 cluster
//! (saves by script) and a Valkey 8.1 one (`SET ... IFEQ`), 3,000 slots move
//! from one primary to another with `--cluster reshard` under the same load
//! while a hundred sessions log out: none of them may come back.
//!
//! It prints its measurements, so it runs without the test harness:
//! `cargo test --all-features --test failover` (`FAILOVER_ONLY=crash`,
//! `handover`, `sentinel` or `reshard` runs those scenarios alone).

// The shared helpers, of which this suite uses a few.
#[allow(dead_code)]
#[path = "it/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use common::redis::routes;
use common::servers::{Flavor, TestCluster, TestSentinel, cli, wait_until};
use server_session::store::{RedisStoreBuilder, SessionStore};
use server_session::{RedisStore, SessionConfig, SessionLayer};

const SESSIONS: usize = 1_000;
const WORKERS: usize = 32;
/// Connect and command timeouts: a request to a dead node fails within
/// twice this.
const TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Async,
    Durable,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Async => "async replication",
            Mode::Durable => "WAIT 1 replica",
        }
    }

    fn apply(self, builder: RedisStoreBuilder) -> RedisStoreBuilder {
        let builder = builder.connect_timeout(TIMEOUT).command_timeout(TIMEOUT);
        match self {
            Mode::Async => builder,
            Mode::Durable => builder.wait_for_replicas(1, Duration::from_millis(500)),
        }
    }
}

/// What one scenario measured.
struct Report {
    scenario: String,
    requests: u64,
    unavailable: u64,
    longest: Duration,
    recovery: Option<Duration>,
    acknowledged: u64,
    lost: u64,
    /// Sessions logged out during the scenario, if any were, and how many
    /// of them were in the store again at the end.
    logged_out: Option<(u64, u64)>,
}

/// The sessions, and what the load saw.
struct Load {
    app: Router,
    cookies: Vec<String>,
    acknowledged: Vec<AtomicU64>,
    /// Sessions logged out: requests go on with their cookies, and must
    /// never bring them back.
    ended: Vec<AtomicBool>,
    requests: AtomicU64,
    unavailable: AtomicU64,
    longest_micros: AtomicU64,
    /// Microseconds after the start of the last 503.
    last_failure_micros: AtomicU64,
    started: Instant,
    stop: AtomicBool,
}

impl Load {
    async fn new(store: RedisStore) -> Arc<Load> {
        let app = routes().layer(SessionLayer::new(store, SessionConfig::default()).unwrap());
        let mut cookies = Vec::with_capacity(SESSIONS);
        for _ in 0..SESSIONS {
            // A cluster just formed may still answer a write with
            // CLUSTERDOWN or TRYAGAIN for a moment (a 503): the setup tries
            // again; what is measured starts later.
            let mut tries = 0;
            let reply = loop {
                let reply = common::get(&app, "/login", None).await;
                tries += 1;
                if reply.status != 503 || tries == 50 {
                    break reply;
                }
                eprintln!("a login before the failover answered 503; trying again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert_eq!(reply.status, 200, "logging in before the failover");
            cookies.push(reply.cookie_pair().unwrap());
        }
        Arc::new(Load {
            app,
            cookies,
            acknowledged: (0..SESSIONS).map(|_| AtomicU64::new(0)).collect(),
            ended: (0..SESSIONS).map(|_| AtomicBool::new(false)).collect(),
            requests: AtomicU64::new(0),
            unavailable: AtomicU64::new(0),
            longest_micros: AtomicU64::new(0),
            last_failure_micros: AtomicU64::new(0),
            started: Instant::now(),
            stop: AtomicBool::new(false),
        })
    }

    fn run(self: &Arc<Load>) -> tokio::task::JoinSet<()> {
        let mut workers = tokio::task::JoinSet::new();
        for worker in 0..WORKERS {
            let load = self.clone();
            workers.spawn(async move {
                let mut n = worker as u64;
                while !load.stop.load(Ordering::Relaxed) {
                    // A cheap spread over sessions and over reads and writes.
                    n = n
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let session = (n >> 33) as usize % SESSIONS;
                    let write = (n >> 13) & 1 == 1;
                    let path = if write { "/incr" } else { "/read" };
                    let began = Instant::now();
                    let reply = common::get(&load.app, path, Some(&load.cookies[session])).await;
                    let took = began.elapsed().as_micros() as u64;
                    load.requests.fetch_add(1, Ordering::Relaxed);
                    load.longest_micros.fetch_max(took, Ordering::Relaxed);
                    match reply.status.as_u16() {
                        200 if write => {
                            load.acknowledged[session].fetch_add(1, Ordering::Relaxed);
                        }
                        200 => {}
                        503 => {
                            load.unavailable.fetch_add(1, Ordering::Relaxed);
                            let at = load.started.elapsed().as_micros() as u64;
                            load.last_failure_micros.fetch_max(at, Ordering::Relaxed);
                        }
                        other => panic!("{path} answered {other}: {}", reply.body),
                    }
                }
            });
        }
        workers
    }

    fn since_last_failure(&self) -> Duration {
        let last = Duration::from_micros(self.last_failure_micros.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// Runs the load, calls `disrupt` after two seconds, and stops once
    /// three seconds passed without a 503 (or after a minute).
    async fn around(self: &Arc<Load>, disrupt: impl AsyncFnOnce()) -> (Duration, Option<Duration>) {
        let workers = self.run();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let disrupted = self.started.elapsed();
        disrupt().await;
        let settled = Instant::now();
        while self.since_last_failure() < Duration::from_secs(3)
            && settled.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.stop.store(true, Ordering::Relaxed);
        workers.join_all().await;
        let last = Duration::from_micros(self.last_failure_micros.load(Ordering::Relaxed));
        let recovery = (last > disrupted).then(|| last - disrupted);
        (disrupted, recovery)
    }

    /// Logs out the first `count` sessions, one after the other, while
    /// the load goes on with their cookies.
    async fn log_out(&self, count: usize) {
        for (cookie, ended) in self.cookies.iter().zip(&self.ended).take(count) {
            loop {
                let reply = common::get(&self.app, "/logout", Some(cookie)).await;
                if reply.status == 200 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ended.store(true, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Increments acknowledged but missing from the store afterwards, and
    /// logged-out sessions found in it again.
    ///
    /// Read once the topology has settled: a read right after a failover
    /// can still time out while the client refreshes its view of the slots,
    /// which is not a lost write, so each read is retried for a while.
    async fn lost(&self, store: &RedisStore) -> (u64, u64, u64, u64) {
        let (mut acknowledged, mut lost, mut ended, mut resurrected) = (0, 0, 0, 0);
        for ((cookie, acked), gone) in self.cookies.iter().zip(&self.acknowledged).zip(&self.ended) {
            let acked = acked.load(Ordering::Relaxed);
            let key = format!("session:{}", cookie.split_once('=').unwrap().1);
            let stored = load_settled(store, &key).await;
            if gone.load(Ordering::Relaxed) {
                ended += 1;
                resurrected += u64::from(stored.is_some_and(|bytes| bytes != [0x80]));
                continue;
            }
            let n = stored.map_or(0, |bytes| counter(&bytes));
            // Login stored n = 1; every acknowledged increment adds one.
            acknowledged += acked;
            lost += (1 + acked).saturating_sub(n);
        }
        (acknowledged, lost, ended, resurrected)
    }

    /// What the scenario measured, with the final counts read from `store`.
    async fn report(&self, store: &RedisStore, scenario: String, recovery: Option<Duration>) -> Report {
        let (acknowledged, lost, ended, resurrected) = self.lost(store).await;
        Report {
            scenario,
            requests: self.requests.load(Ordering::Relaxed),
            unavailable: self.unavailable.load(Ordering::Relaxed),
            longest: Duration::from_micros(self.longest_micros.load(Ordering::Relaxed)),
            recovery,
            acknowledged,
            lost,
            logged_out: (ended > 0).then_some((ended, resurrected)),
        }
    }
}

/// The `n` a record holds.
fn counter(bytes: &[u8]) -> u64 {
    let Ok(rmpv::Value::Map(pairs)) = rmpv::decode::read_value(&mut &bytes[..]) else {
        return 0;
    };
    pairs
        .iter()
        .find(|(k, _)| k.as_str() == Some("n"))
        .and_then(|(_, v)| v.as_u64())
        .unwrap_or(0)
}

/// A client of its own for reading what the cluster holds once it has
/// settled: the load's client was measured; what is counted here is what
/// the servers kept.
async fn checker(cluster: &TestCluster) -> RedisStore {
    RedisStore::cluster(cluster.urls()).connect().await.unwrap()
}

/// The primary the scenario fails over.
fn first_primary(cluster: &TestCluster) -> u16 {
    cluster.primaries()[0]
}

async fn cluster_crash(mode: Mode) -> Report {
    let mut cluster = TestCluster::start(Flavor::Redis, 3);
    let store = mode
        .apply(RedisStore::cluster(cluster.urls()))
        .connect()
        .await
        .unwrap();
    let load = Load::new(store.clone()).await;
    let victim = first_primary(&cluster);
    let (_, recovery) = load
        .around(async || {
            cluster.nodes.iter().find(|n| n.port == victim).unwrap().kill();
            // Its replica takes over; then a supervisor starts it again and
            // it comes back as the new primary's replica.
            let cluster_ref = &cluster;
            tokio::task::block_in_place(|| {
                wait_until(Duration::from_secs(30), "a replica promoted", || {
                    cluster_ref
                        .layout()
                        .iter()
                        .any(|(port, _, failed)| *port == victim && *failed)
                        && cluster_ref.primaries().len() == 3
                });
            });
            let node = cluster.nodes.iter_mut().find(|n| n.port == victim).unwrap();
            tokio::task::block_in_place(|| node.restart());
        })
        .await;
    tokio::task::block_in_place(|| cluster.wait_healthy(Duration::from_secs(30)));
    load.report(
        &checker(&cluster).await,
        format!("cluster, kill -9 a primary, {}", mode.name()),
        recovery,
    )
    .await
}

async fn cluster_handover(mode: Mode) -> Report {
    let cluster = TestCluster::start(Flavor::Redis, 3);
    let store = mode
        .apply(RedisStore::cluster(cluster.urls()))
        .connect()
        .await
        .unwrap();
    let load = Load::new(store.clone()).await;
    let (_, recovery) = load
        .around(async || {
            // A replica of the first primary takes over, with the primary's
            // consent: nothing is in flight when the roles switch.
            let layout = cluster.layout();
            let primary = first_primary(&cluster);
            let primary_id = cli(Flavor::Redis, primary, &["CLUSTER", "MYID"]);
            let replica = layout
                .iter()
                .map(|(port, ..)| *port)
                .find(|port| {
                    cli(Flavor::Redis, *port, &["INFO", "replication"])
                        .contains(&format!("master_port:{primary}"))
                })
                .expect("the primary has a replica");
            let answer = cli(Flavor::Redis, replica, &["CLUSTER", "FAILOVER"]);
            assert_eq!(answer.trim(), "OK", "CLUSTER FAILOVER: {answer} ({primary_id})");
            tokio::task::block_in_place(|| {
                wait_until(Duration::from_secs(30), "the replica took over", || {
                    cluster.primaries().contains(&replica)
                });
            });
        })
        .await;
    load.report(
        &checker(&cluster).await,
        format!("cluster, CLUSTER FAILOVER, {}", mode.name()),
        recovery,
    )
    .await
}

async fn sentinel_crash(mode: Mode) -> Report {
    let mut setup = TestSentinel::start();
    let store = mode
        .apply(RedisStore::sentinel(setup.addrs(), setup.master.as_str()))
        .connect()
        .await
        .unwrap();
    let load = Load::new(store.clone()).await;
    let old = setup.primary_port().unwrap();
    let (_, recovery) = load
        .around(async || {
            setup.primary.kill();
            let setup_ref = &setup;
            tokio::task::block_in_place(|| {
                wait_until(
                    Duration::from_secs(30),
                    "the Sentinels promoted the replica",
                    || setup_ref.primary_port().is_some_and(|port| port != old),
                );
            });
            tokio::task::block_in_place(|| setup.primary.restart());
        })
        .await;
    load.report(
        &store,
        format!("Sentinel, kill -9 the primary, {}", mode.name()),
        recovery,
    )
    .await
}

/// 3,000 slots move from one primary to another (`--cluster reshard`, key
/// by key with MIGRATE) under the load, while a hundred sessions log out.
async fn cluster_reshard(flavor: Flavor) -> Report {
    let cluster = TestCluster::start(flavor, 3);
    let store = Mode::Async
        .apply(RedisStore::cluster(cluster.urls()))
        .connect()
        .await
        .unwrap();
    assert_eq!(store.native_compare_and_set(), Some(flavor == Flavor::Valkey));
    let load = Load::new(store.clone()).await;
    let primaries = cluster.primaries();
    let id = |port: u16| cli(flavor, port, &["CLUSTER", "MYID"]).trim().to_owned();
    let (from, to) = (id(primaries[0]), id(primaries[1]));
    let (_, recovery) = load
        .around(async || {
            let reshard = tokio::task::spawn_blocking({
                let (cli, node) = (flavor.cli(), format!("127.0.0.1:{}", primaries[0]));
                move || {
                    std::process::Command::new(cli)
                        .args([
                            "--cluster",
                            "reshard",
                            &node,
                            "--cluster-from",
                            &from,
                            "--cluster-to",
                            &to,
                        ])
                        .args(["--cluster-slots", "3000", "--cluster-yes"])
                        .output()
                        .expect("the CLI runs")
                }
            });
            load.log_out(100).await;
            let out = reshard.await.unwrap();
            assert!(
                out.status.success(),
                "reshard: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        })
        .await;
    tokio::task::block_in_place(|| cluster.wait_healthy(Duration::from_secs(30)));
    let store = checker(&cluster).await;
    let name = match flavor {
        Flavor::Redis => "Redis 7.0",
        Flavor::Valkey => "Valkey 8.1",
    };
    load.report(
        &store,
        format!("{name} cluster, 3,000 slots resharded, logouts racing"),
        recovery,
    )
    .await
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // FAILOVER_ONLY=crash, handover, sentinel or reshard runs those alone.
    let only = std::env::var("FAILOVER_ONLY").ok();
    let wanted = |kind: &str| only.as_deref().is_none_or(|only| only == kind);
    let mut reports = Vec::new();
    for mode in [Mode::Async, Mode::Durable] {
        if wanted("crash") {
            reports.push(runtime.block_on(cluster_crash(mode)));
        }
        if wanted("handover") {
            reports.push(runtime.block_on(cluster_handover(mode)));
        }
        if wanted("sentinel") {
            reports.push(runtime.block_on(sentinel_crash(mode)));
        }
    }
    for flavor in [Flavor::Redis, Flavor::Valkey] {
        if wanted("reshard") {
            reports.push(runtime.block_on(cluster_reshard(flavor)));
        }
    }
    println!();
    println!(
        "| scenario | requests | 503s | longest request | served again after | increments acknowledged | lost | logged out: back |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &reports {
        println!(
            "| {} | {} | {} | {:.2} s | {} | {} | {} | {} |",
            r.scenario,
            r.requests,
            r.unavailable,
            r.longest.as_secs_f64(),
            r.recovery
                .map_or("no 503".to_owned(), |d| format!("{:.1} s", d.as_secs_f64())),
            r.acknowledged,
            r.lost,
            r.logged_out
                .map_or("-".to_owned(), |(ended, back)| format!("{ended}: {back}")),
        );
    }
    println!();
    let mut failed = Vec::new();
    for r in &reports {
        // A request to a dead node gives up within the store's deadline (a
        // load and a save, each at most twice TIMEOUT, plus a WAIT).
        if r.longest > Duration::from_secs(5) {
            failed.push(format!("{}: a request took {:?}", r.scenario, r.longest));
        }
        let durable = r.scenario.contains("WAIT");
        let planned = r.scenario.contains("CLUSTER FAILOVER") || r.scenario.contains("resharded");
        if (durable || planned) && r.lost > 0 {
            failed.push(format!("{}: {} acknowledged increments lost", r.scenario, r.lost));
        }
        if r.acknowledged == 0 {
            failed.push(format!("{}: nothing was acknowledged", r.scenario));
        }
        // The slowest recovery, Sentinel's with WAIT, takes about 12 s.
        if r.recovery.is_some_and(|d| d > Duration::from_secs(30)) {
            failed.push(format!(
                "{}: served again only after {:?}",
                r.scenario, r.recovery
            ));
        }
        if let Some((_, back)) = r.logged_out.filter(|(_, back)| *back > 0) {
            failed.push(format!("{}: {back} logged-out sessions came back", r.scenario));
        }
    }
    if !failed.is_empty() {
        eprintln!("failover: {}", failed.join("; "));
        std::process::exit(1);
    }
    println!("failover: {} scenarios, all within bounds", reports.len());
}

/// `key`'s bytes, retrying reads that fail for up to 30 s.
async fn load_settled(store: &RedisStore, key: &str) -> Option<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match store.load(key, None, common::LIMIT).await {
            Ok(stored) => return stored,
            Err(err) if Instant::now() < deadline => {
                eprintln!("reading a session after the failover: {err}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => panic!("the store serves again within 30 s: {err}"),
        }
    }
}
