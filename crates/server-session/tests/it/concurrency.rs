//! The concurrency guarantees 1 to 5 of ARCHITECTURE.md, through the real
//! axum and actix-web adapters, on the memory store and on real servers. Gates inside the handlers force
//! the interleavings (both requests loaded before either commits) instead of
//! hoping for them.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::common::Counting;
use crate::common::frameworks::{Framework, Routes, Served, serve};
use server_session::store::SessionStore;
use server_session::{Session, SessionConfig, SessionError};
use tokio::sync::{Barrier, Notify, Semaphore};

on_every_store!(
    different_keys_both_persist,
    fifty_requests_fifty_keys,
    a_slow_read_never_writes_back,
    in_flight_requests_do_not_resurrect_a_destroyed_session,
    same_key_the_later_commit_wins,
    fifty_concurrent_increments_count_fifty,
);
#[cfg(feature = "sqlite")]
on_every_framework!(
    sqlite,
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.db").display().to_string();
        let store = server_session::SqliteStore::builder(path).open().await.unwrap();
        (dir, store)
    },
    different_keys_both_persist,
    fifty_requests_fifty_keys,
    a_slow_read_never_writes_back,
    in_flight_requests_do_not_resurrect_a_destroyed_session,
    same_key_the_later_commit_wins,
    fifty_concurrent_increments_count_fifty
);
#[cfg(all(feature = "postgres", feature = "redis"))]
on_every_framework!(
    postgres,
    {
        let server = crate::common::postgres::TestPostgres::shared();
        let store = server_session::PostgresStore::builder(&server.url)
            .table(crate::common::unique_table())
            .open()
            .await
            .unwrap();
        ((), store)
    },
    different_keys_both_persist,
    fifty_requests_fifty_keys,
    a_slow_read_never_writes_back,
    in_flight_requests_do_not_resurrect_a_destroyed_session,
    same_key_the_later_commit_wins,
    fifty_concurrent_increments_count_fifty
);

#[cfg(all(feature = "mysql", feature = "redis"))]
on_every_framework!(
    mysql,
    {
        let server = crate::common::mariadb::TestMariaDb::shared();
        let store = server_session::MySqlStore::builder(&server.url)
            .table(crate::common::unique_table())
            .open()
            .await
            .unwrap();
        ((), store)
    },
    different_keys_both_persist,
    fifty_requests_fifty_keys,
    a_slow_read_never_writes_back,
    in_flight_requests_do_not_resurrect_a_destroyed_session,
    same_key_the_later_commit_wins,
    fifty_concurrent_increments_count_fifty
);

struct App<S> {
    app: Arc<Served>,
    store: Counting<S>,
}

fn app<S: SessionStore + Clone>(framework: Framework, store: S, routes: Routes) -> App<S> {
    let store = Counting::new(store);
    let routes = routes
        .route("/login", |s: Session, _| async move {
            s.insert("user", "alice").await.map(|_| "ok".into())
        })
        .route("/user", |s: Session, _| async move {
            s.get::<String>("user").await.map(|u| format!("{u:?}"))
        });
    App {
        app: Arc::new(serve(framework, store.clone(), SessionConfig::default(), routes)),
        store,
    }
}

/// `GET path` on `app`.
async fn request(app: &Served, path: &str, cookie: Option<&str>) -> crate::common::Reply {
    app.get(path, cookie).await
}

impl<S: SessionStore + Clone> App<S> {
    async fn login(&self) -> String {
        request(&self.app, "/login", None).await.cookie_pair().unwrap()
    }

    async fn stored(&self, cookie: &str) -> Option<rmpv::Value> {
        let key = format!("session:{}", cookie.split_once('=').unwrap().1);
        let bytes = self
            .store
            .inner
            .load(&key, None, crate::common::LIMIT)
            .await
            .unwrap()?;
        Some(rmpv::decode::read_value(&mut &bytes[..]).unwrap())
    }

    async fn stored_keys(&self, cookie: &str) -> BTreeSet<String> {
        match self.stored(cookie).await {
            Some(rmpv::Value::Map(pairs)) => pairs
                .into_iter()
                .map(|(k, _)| k.as_str().unwrap().to_owned())
                .collect(),
            _ => BTreeSet::new(),
        }
    }
}

/// Guarantee 1: two requests that change different keys both persist.
async fn different_keys_both_persist<S: SessionStore + Clone>(framework: Framework, store: S) {
    const N: usize = 2;
    let barrier = Arc::new(Barrier::new(N));
    let routes = Routes::new().route("/set/*", move |s: Session, key| {
        let barrier = barrier.clone();
        async move {
            s.get::<String>("user").await?; // load
            barrier.wait().await; // both have loaded the same record
            s.insert(&key, &true).await?;
            Ok::<_, SessionError>("ok".into())
        }
    });
    let t = app(framework, store, routes);
    let cookie = t.login().await;
    let (a, b) = tokio::join!(
        request(&t.app, "/set/a", Some(&cookie)),
        request(&t.app, "/set/b", Some(&cookie))
    );
    assert_eq!((a.status.as_u16(), b.status.as_u16()), (200, 200));
    assert_eq!(
        t.stored_keys(&cookie).await,
        ["_permanent", "a", "b", "user"].map(String::from).into()
    );
    assert_eq!(
        t.app.metrics().conflicts,
        1,
        "one save found the other's write and merged"
    );
}

/// The same with 50 requests, each setting its own key.
async fn fifty_requests_fifty_keys<S: SessionStore + Clone>(framework: Framework, store: S) {
    const N: usize = 50;
    let barrier = Arc::new(Barrier::new(N));
    let routes = Routes::new().route("/set/*", move |s: Session, key| {
        let barrier = barrier.clone();
        async move {
            s.get::<String>("user").await?;
            barrier.wait().await;
            s.insert(&key, &key).await?;
            Ok::<_, SessionError>("ok".into())
        }
    });
    let t = app(framework, store, routes);
    let cookie = t.login().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let (app, cookie) = (t.app.clone(), cookie.clone());
        tasks.spawn(async move { request(&app, &format!("/set/k{i}"), Some(&cookie)).await.status });
    }
    for status in tasks.join_all().await {
        assert_eq!(status, 200, "{:?}", t.app.metrics());
    }
    let keys = t.stored_keys(&cookie).await;
    for i in 0..N {
        assert!(keys.contains(&format!("k{i}")), "k{i} lost: {keys:?}");
    }
}

/// Guarantee 2: a request that only read never writes, so it cannot put back
/// what it read over a concurrent write.
async fn a_slow_read_never_writes_back<S: SessionStore + Clone>(framework: Framework, store: S) {
    let loaded = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (l, r) = (loaded.clone(), release.clone());
    let routes = Routes::new()
        .route("/slow_read", move |s: Session, _| {
            let (loaded, release) = (l.clone(), r.clone());
            async move {
                let user: Option<String> = s.get("user").await?;
                loaded.notify_one();
                release.notified().await;
                Ok::<_, SessionError>(format!("{user:?}"))
            }
        })
        .route("/write", |s: Session, _| async move {
            s.insert("written", &true).await.map(|_| "ok".into())
        });
    let t = app(framework, store, routes);
    let cookie = t.login().await;
    t.store.take();
    let slow = tokio::spawn({
        let (app, cookie) = (t.app.clone(), cookie.clone());
        async move { request(&app, "/slow_read", Some(&cookie)).await }
    });
    loaded.notified().await;
    assert_eq!(request(&t.app, "/write", Some(&cookie)).await.status, 200);
    release.notify_one();
    let slow = slow.await.unwrap();
    assert_eq!(slow.body, "Some(\"alice\")");
    assert!(
        t.stored_keys(&cookie).await.contains("written"),
        "the write survived"
    );
    let saves = t.store.take().iter().filter(|c| c.name() == "save").count();
    assert_eq!(saves, 1, "only the writer saved");
}

/// Guarantee 3: requests in flight when the session is destroyed do not
/// recreate it, however they end.
async fn in_flight_requests_do_not_resurrect_a_destroyed_session<S: SessionStore + Clone>(
    framework: Framework,
    store: S,
) {
    const N: usize = 20;
    let loaded = Arc::new(Semaphore::new(0));
    let release = Arc::new(Notify::new());
    let routes = crate::common::frameworks::in_flight(loaded.clone(), release.clone())
        .route("/logout", |s: Session, _| async move {
            s.destroy().await.map(|_| "bye".into())
        });
    let t = app(framework, store, routes);
    let cookie = t.login().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let (app, cookie) = (t.app.clone(), cookie.clone());
        tasks.spawn(async move { request(&app, &format!("/slow/{i}"), Some(&cookie)).await });
    }
    drop(loaded.acquire_many(N as u32).await.unwrap());
    let logout = request(&t.app, "/logout", Some(&cookie)).await;
    assert!(logout.set_cookie().unwrap().contains("Max-Age=0"));
    release.notify_waiters();
    for reply in tasks.join_all().await {
        assert_eq!(reply.status, 200);
        if let Some(pair) = reply.cookie_pair() {
            assert_eq!(pair, cookie, "only a read's refresh may repeat the old cookie");
        }
    }
    assert_eq!(t.stored(&cookie).await, None, "the session stays destroyed");
    for key in t.store.saved_keys() {
        let found = t
            .store
            .inner
            .load(&key, None, crate::common::LIMIT)
            .await
            .unwrap();
        assert_eq!(found, None, "nothing was recreated under any id");
    }
    assert!(t.app.metrics().gone >= 10, "{:?}", t.app.metrics());
    let later = request(&t.app, "/user", Some(&cookie)).await;
    assert_eq!(
        later.body, "None",
        "a later request with the old cookie finds no session"
    );
    assert_eq!(later.set_cookie(), None);
}

/// Guarantee 4: two requests inserting the same key: the later commit wins
/// and the conflict is counted.
async fn same_key_the_later_commit_wins<S: SessionStore + Clone>(framework: Framework, store: S) {
    let loaded = Arc::new(Semaphore::new(0));
    let first_go = Arc::new(Notify::new());
    let second_go = Arc::new(Notify::new());
    let (l, f, s2) = (loaded.clone(), first_go.clone(), second_go.clone());
    let routes = Routes::new().route("/color/*", move |s: Session, value| {
        let (loaded, first, second) = (l.clone(), f.clone(), s2.clone());
        async move {
            s.get::<String>("user").await?;
            let go = if value == "red" {
                first.notified()
            } else {
                second.notified()
            };
            loaded.add_permits(1);
            go.await;
            s.insert("color", &value).await?;
            Ok::<_, SessionError>("ok".into())
        }
    });
    let t = app(framework, store, routes);
    let cookie = t.login().await;
    let red = tokio::spawn({
        let (app, cookie) = (t.app.clone(), cookie.clone());
        async move { request(&app, "/color/red", Some(&cookie)).await }
    });
    let blue = tokio::spawn({
        let (app, cookie) = (t.app.clone(), cookie.clone());
        async move { request(&app, "/color/blue", Some(&cookie)).await }
    });
    drop(loaded.acquire_many(2).await.unwrap());
    first_go.notify_one();
    assert_eq!(red.await.unwrap().status, 200);
    second_go.notify_one();
    assert_eq!(blue.await.unwrap().status, 200);
    let stored = t.stored(&cookie).await.unwrap();
    let color = stored
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_str() == Some("color"))
        .unwrap();
    assert_eq!(color.1.as_str(), Some("blue"), "the later commit wins");
    assert_eq!(t.app.metrics().conflicts, 1, "and the conflict is counted");
}

/// Guarantee 5: fifty concurrent `update` increments end at fifty, and with
/// `save()` each request sees its own committed value.
async fn fifty_concurrent_increments_count_fifty<S: SessionStore + Clone>(framework: Framework, store: S) {
    const N: usize = 50;
    let barrier = Arc::new(Barrier::new(N));
    let routes = Routes::new().route("/incr", move |s: Session, _| {
        let barrier = barrier.clone();
        async move {
            s.get::<u64>("counter").await?;
            barrier.wait().await; // all fifty loaded the same value
            s.update("counter", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
            s.save().await?;
            let committed: u64 = s.get("counter").await?.unwrap();
            Ok::<_, SessionError>(committed.to_string())
        }
    });
    let t = app(framework, store, routes);
    let cookie = t.login().await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..N {
        let (app, cookie) = (t.app.clone(), cookie.clone());
        tasks.spawn(async move { request(&app, "/incr", Some(&cookie)).await });
    }
    let mut seen = BTreeSet::new();
    for reply in tasks.join_all().await {
        assert_eq!(reply.status, 200, "{}", reply.body);
        seen.insert(reply.body.parse::<u64>().unwrap());
    }
    assert_eq!(
        seen,
        (1..=N as u64).collect(),
        "every request committed a distinct step"
    );
    let stored = t.stored(&cookie).await.unwrap();
    let counter = stored
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_str() == Some("counter"))
        .unwrap();
    assert_eq!(counter.1.as_u64(), Some(N as u64));
    assert!(t.app.metrics().conflicts > 0, "the requests really collided");
}

/// 64 writers incrementing one session at once, spread over two app
/// instances that share the store (each its own layer and connections):
/// every request succeeds and every increment counts. Prints how long the
/// slowest took and how many saves conflicted.
async fn sixty_four_writers_on_two_instances<S: SessionStore + Clone>(one: S, two: S) {
    const WRITERS: usize = 64;
    const EACH: usize = 20;
    let instance = |store: S| {
        let layer = server_session::SessionLayer::new(store, SessionConfig::default()).unwrap();
        let app = crate::common::redis::routes().layer(layer.clone());
        (app, layer)
    };
    let (apps, layers): (Vec<_>, Vec<_>) = [instance(one), instance(two)].into_iter().unzip();
    let cookie = crate::common::get(&apps[0], "/login", None)
        .await
        .cookie_pair()
        .unwrap();
    let started = std::time::Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (app, cookie) = (apps[w % 2].clone(), cookie.clone());
            tokio::spawn(async move {
                let mut failed = Vec::new();
                let mut slowest = std::time::Duration::ZERO;
                for _ in 0..EACH {
                    let sent = std::time::Instant::now();
                    let reply = crate::common::get(&app, "/incr", Some(&cookie)).await;
                    slowest = slowest.max(sent.elapsed());
                    if reply.status != 200 {
                        failed.push(format!("{} {}", reply.status, reply.body));
                    }
                }
                (failed, slowest)
            })
        })
        .collect();
    let mut failed = Vec::new();
    let mut slowest = std::time::Duration::ZERO;
    for writer in writers {
        let (f, s) = writer.await.unwrap();
        failed.extend(f);
        slowest = slowest.max(s);
    }
    let conflicts: u64 = layers.iter().map(|l| l.metrics().conflicts).sum();
    println!(
        "{} increments in {:?}, slowest {slowest:?}, {conflicts} conflicts, {} failed",
        WRITERS * EACH,
        started.elapsed(),
        failed.len()
    );
    assert_eq!(failed, Vec::<String>::new(), "no request fails");
    let n = crate::common::get(&apps[1], "/read", Some(&cookie)).await;
    assert_eq!(n.status, 200);
    let count = crate::common::get(&apps[0], "/incr", Some(&cookie)).await.body;
    // /login stored n = 1; one more increment to read the count.
    assert_eq!(count, (1 + WRITERS * EACH + 1).to_string(), "no increment lost");
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_writers_on_two_instances_on_redis() {
    let server = crate::common::redis::TestRedis::start();
    let connect = || server_session::RedisStore::connect(server.url.as_str());
    sixty_four_writers_on_two_instances(connect().await.unwrap(), connect().await.unwrap()).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_writers_on_two_instances_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db").display().to_string();
    let open = || server_session::SqliteStore::builder(&path).open();
    sixty_four_writers_on_two_instances(open().await.unwrap(), open().await.unwrap()).await;
}

#[cfg(all(feature = "postgres", feature = "redis"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_writers_on_two_instances_on_postgres() {
    let server = crate::common::postgres::TestPostgres::shared();
    let table = crate::common::unique_table();
    let open = || {
        server_session::PostgresStore::builder(&server.url)
            .table(table.clone())
            .open()
    };
    sixty_four_writers_on_two_instances(open().await.unwrap(), open().await.unwrap()).await;
}

/// Another writer changes the session before each of a commit's first 35
/// saves: the commit goes on merging, since what bounds it is a time, not a
/// number of tries, and succeeds on top of the last change.
#[tokio::test]
async fn a_commit_outlasts_thirty_five_conflicts_in_a_row() {
    use server_session::store::{Expect, SaveOutcome, StoreError};
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::time::Duration;

    #[derive(Clone)]
    struct Busy {
        inner: server_session::MemoryStore,
        left: Arc<AtomicU8>,
    }
    impl SessionStore for Busy {
        async fn load(
            &self,
            key: &str,
            slide: Option<Duration>,
            limit: usize,
        ) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.load(key, slide, limit).await
        }
        async fn save(
            &self,
            key: &str,
            value: &[u8],
            ttl: Duration,
            expect: Expect<'_>,
        ) -> Result<SaveOutcome, StoreError> {
            if let Expect::Unchanged(loaded) = expect {
                let left = self.left.load(Ordering::Relaxed);
                if left > 0 {
                    self.left.store(left - 1, Ordering::Relaxed);
                    // {"n": left}: the other writer's change.
                    let other = [0x81, 0xa1, b'n', left];
                    self.inner
                        .save(key, &other, ttl, Expect::Unchanged(loaded))
                        .await?;
                }
            }
            self.inner.save(key, value, ttl, expect).await
        }
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.inner.delete(key).await
        }
        async fn touch(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
            self.inner.touch(key, ttl).await
        }
    }
    let store = Busy {
        inner: server_session::MemoryStore::new(),
        left: Arc::new(AtomicU8::new(0)),
    };
    let layer = server_session::SessionLayer::new(store.clone(), SessionConfig::default()).unwrap();
    let app = crate::common::redis::routes().layer(layer.clone());
    let cookie = crate::common::get(&app, "/login", None)
        .await
        .cookie_pair()
        .unwrap();
    store.left.store(35, Ordering::Relaxed);
    let reply = crate::common::get(&app, "/incr", Some(&cookie)).await;
    assert_eq!(
        (reply.status.as_u16(), reply.body.as_str()),
        (200, "2"),
        "merged with the last change, {{\"n\": 1}}"
    );
    assert_eq!(layer.metrics().conflicts, 35);
}
