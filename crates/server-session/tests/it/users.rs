//! A user's sessions: login binds and cycles, listing, revoking one, all or
//! all but the current one, the limit per user, and revocation racing
//! requests in flight; through both adapters, on every store that keeps
//! indexes. Then, on a controllable clock, expiry and the "last seen" cost.

use std::sync::Arc;
use std::time::Duration;

use crate::common::frameworks::{Framework, Routes, Served, serve_sessions};
use crate::common::{AnyStore, Counting, Reply};
use server_session::store::{SessionIndex, SessionStore};
use server_session::{
    ConfigError, ManualClock, MemoryStore, Session, SessionConfig, SessionLayer, Sessions, UserSessions,
};
use tokio::sync::{Notify, Semaphore};

on_every_store!(
    login_binds_the_user_and_gives_a_new_id,
    five_sessions_are_listed_and_revoked_all_at_once,
    a_handler_revokes_one_session_or_all_others,
    revocation_wins_over_requests_in_flight,
    the_limit_revokes_the_least_recently_seen,
    logout_and_clear_end_the_binding,
);
// The same with hashed ids.
on_every_framework!(
    hashed_ids,
    ((), std::sync::Arc::new(server_session::MemoryStore::new())),
    login_binds_the_user_and_gives_a_new_id,
    five_sessions_are_listed_and_revoked_all_at_once,
    a_handler_revokes_one_session_or_all_others,
    revocation_wins_over_requests_in_flight,
    the_limit_revokes_the_least_recently_seen,
    logout_and_clear_end_the_binding
);

/// A store the scenarios run on, and whether they run with hashed ids.
trait Stored: SessionIndex + Clone {
    fn hashes_ids(&self) -> bool {
        false
    }
}

impl Stored for MemoryStore {}

#[cfg(feature = "redis")]
impl Stored for server_session::RedisStore {}

/// The memory store behind an `Arc` (which forwards the whole store
/// contract) is how a scenario asks for hashed ids.
impl Stored for Arc<MemoryStore> {
    fn hashes_ids(&self) -> bool {
        true
    }
}

fn routes() -> Routes {
    Routes::new()
        .route("/login/*", |s: Session, user| async move {
            s.login(&user).await.map(|_| "ok".into())
        })
        .route("/whoami", |s: Session, _| async move {
            s.user().await.map(|u| format!("{u:?}"))
        })
        .route("/sessions", |s: Session, _| async move {
            let sessions = s.user_sessions().await?;
            Ok(sessions
                .iter()
                .map(|info| format!("{} {}", info.handle, info.current))
                .collect::<Vec<_>>()
                .join("\n"))
        })
        .route("/revoke/*", |s: Session, handle| async move {
            s.revoke(&handle.parse().unwrap()).await.map(|r| r.to_string())
        })
        .route("/revoke_others", |s: Session, _| async move {
            s.revoke_other_sessions().await.map(|n| n.to_string())
        })
        .route("/incr", |s: Session, _| async move {
            s.update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
                .await
                .map(|n| n.to_string())
        })
        .route("/logout", |s: Session, _| async move {
            s.destroy().await.map(|_| "bye".into())
        })
        .route("/clear", |s: Session, _| async move {
            s.clear().await.map(|_| "cleared".into())
        })
        .route("/cycle", |s: Session, _| async move {
            s.cycle_id().await.map(|_| "cycled".into())
        })
        .route("/clear_then_set", |s: Session, _| async move {
            s.clear().await?;
            s.insert("theme", "dark").await.map(|_| "ok".into())
        })
        .route("/remember", |s: Session, _| async move {
            s.set_lifetime(Some(Duration::from_secs(90 * 24 * 3600)))
                .await
                .map(|_| "ok".into())
        })
}

struct App<S> {
    app: Arc<Served>,
    store: Counting<S>,
    /// Makes this app's user names its own: the servers are shared.
    tag: String,
}

fn app<S: Stored>(framework: Framework, store: S, users: UserSessions, extra: Routes) -> App<S> {
    let store = Counting::new(store);
    let mut routes = routes();
    routes.extend(extra);
    let config = SessionConfig::default().hash_ids(store.inner.hashes_ids());
    let sessions = Sessions::with_user_sessions(store.clone(), config, users).unwrap();
    App {
        app: Arc::new(serve_sessions(framework, sessions, routes)),
        store,
        tag: format!("{:08x}", rand::random::<u32>()),
    }
}

impl<S: Stored> App<S> {
    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.app.get(path, cookie).await
    }

    /// This app's name for `user`.
    fn u(&self, user: &str) -> String {
        format!("{user}.{}", self.tag)
    }

    /// Logs `user` in on a new browser; its cookie pair.
    async fn login(&self, user: &str) -> String {
        let reply = self.get(&format!("/login/{}", self.u(user)), None).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.cookie_pair().expect("a login sets the cookie")
    }

    /// The user of `cookie`'s session, without this app's tag.
    async fn whoami(&self, cookie: &str) -> String {
        let body = self.get("/whoami", Some(cookie)).await.body;
        body.replace(&format!(".{}", self.tag), "")
    }

    /// The listing from `cookie`: (handle, current) per session.
    async fn sessions(&self, cookie: &str) -> Vec<(String, bool)> {
        let body = self.get("/sessions", Some(cookie)).await.body;
        body.lines()
            .map(|line| {
                let (handle, current) = line.split_once(' ').unwrap();
                (handle.to_owned(), current == "true")
            })
            .collect()
    }

    /// What `user`'s index holds, read from the store itself.
    async fn index(&self, user: &str) -> Vec<String> {
        let members = self
            .store
            .inner
            .index_members(
                &format!("session_users:{}", self.u(user)),
                std::time::SystemTime::now(),
            )
            .await
            .unwrap();
        members.into_iter().map(|(m, _)| m).collect()
    }

    /// Whether `cookie`'s session is gone: no record, or a tombstone.
    async fn ended(&self, cookie: &str) -> bool {
        let id = cookie.split_once('=').unwrap().1;
        let name = if self.store.inner.hashes_ids() {
            crate::common::hashed(id)
        } else {
            id.to_owned()
        };
        let key = format!("session:{name}");
        let stored = self
            .store
            .inner
            .load(&key, None, crate::common::LIMIT)
            .await
            .unwrap();
        stored.is_none_or(|bytes| bytes == [0x80])
    }
}

async fn login_binds_the_user_and_gives_a_new_id<S: Stored>(framework: Framework, store: S) {
    let t = app(framework, store, UserSessions::default(), Routes::new());
    let anonymous = t.get("/incr", None).await.cookie_pair().unwrap();
    assert_eq!(t.whoami(&anonymous).await, "None");
    let reply = t.get(&format!("/login/{}", t.u("alice")), Some(&anonymous)).await;
    let cookie = reply.cookie_pair().unwrap();
    assert_ne!(cookie, anonymous, "login gives the session a new id");
    assert!(t.ended(&anonymous).await, "the old id is dead");
    assert_eq!(t.whoami(&cookie).await, "Some(\"alice\")");
    assert_eq!(
        t.get("/incr", Some(&cookie)).await.body,
        "2",
        "the data came along"
    );
    assert_eq!(t.whoami(&anonymous).await, "None");
    assert_eq!(t.index("alice").await.len(), 1);
    let listed = t.sessions(&cookie).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].1, "the listing marks the current session");
    assert!(!cookie.contains(&listed[0].0), "a handle is not the id");
}

async fn five_sessions_are_listed_and_revoked_all_at_once<S: Stored>(framework: Framework, store: S) {
    let t = app(framework, store, UserSessions::default(), Routes::new());
    let mut cookies = Vec::new();
    for _ in 0..5 {
        cookies.push(t.login("bob").await);
    }
    let other = t.login("carol").await;
    for cookie in &cookies {
        assert_eq!(t.get("/incr", Some(cookie)).await.body, "1");
    }
    let listed = t.sessions(&cookies[0]).await;
    assert_eq!(listed.len(), 5, "{listed:?}");
    assert_eq!(listed.iter().filter(|(_, current)| *current).count(), 1);
    let listed_admin = t.app.users.list(&t.u("bob")).await.unwrap();
    assert_eq!(listed_admin.len(), 5);
    assert!(
        listed_admin
            .iter()
            .all(|s| !s.current && s.created.is_some() && s.last_seen.is_some())
    );

    assert_eq!(t.app.users.revoke_all(&t.u("bob")).await.unwrap(), 5);
    for cookie in &cookies {
        assert!(t.ended(cookie).await);
        assert_eq!(
            t.whoami(cookie).await,
            "None",
            "a revoked cookie gets a fresh session"
        );
        let fresh = t.get("/incr", Some(cookie)).await;
        assert_eq!(fresh.body, "1", "and its data is gone");
        assert_ne!(
            fresh.cookie_pair().as_deref(),
            Some(cookie.as_str()),
            "under a new id"
        );
    }
    assert!(t.index("bob").await.is_empty(), "the index holds no member");
    assert!(t.app.users.list(&t.u("bob")).await.unwrap().is_empty());
    assert_eq!(
        t.whoami(&other).await,
        "Some(\"carol\")",
        "other users keep theirs"
    );
    assert_eq!(t.index("carol").await.len(), 1);
}

async fn a_handler_revokes_one_session_or_all_others<S: Stored>(framework: Framework, store: S) {
    let t = app(framework, store, UserSessions::default(), Routes::new());
    let a = t.login("dave").await;
    let b = t.login("dave").await;
    let listed = t.sessions(&a).await;
    assert_eq!(listed.len(), 2);
    let (b_handle, _) = listed.iter().find(|(_, current)| !current).unwrap().clone();
    // B's id changes; its handle does not.
    let b = t.get("/cycle", Some(&b)).await.cookie_pair().unwrap();
    assert!(t.sessions(&a).await.iter().any(|(h, _)| *h == b_handle));
    assert_eq!(t.get(&format!("/revoke/{b_handle}"), Some(&a)).await.body, "true");
    assert_eq!(t.whoami(&b).await, "None", "B is logged out");
    assert_eq!(t.whoami(&a).await, "Some(\"dave\")", "A is not");
    assert_eq!(
        t.get(&format!("/revoke/{b_handle}"), Some(&a)).await.body,
        "false"
    );

    let eve = t.login("eve").await;
    let eve_handle = t.sessions(&eve).await[0].0.clone();
    assert_eq!(
        t.get(&format!("/revoke/{eve_handle}"), Some(&a)).await.body,
        "false",
        "a handle of another user's session revokes nothing"
    );
    assert_eq!(t.whoami(&eve).await, "Some(\"eve\")");

    let b = t.login("dave").await;
    let c = t.login("dave").await;
    assert_eq!(t.get("/revoke_others", Some(&a)).await.body, "2");
    assert_eq!(
        t.whoami(&a).await,
        "Some(\"dave\")",
        "log out everywhere else keeps this one"
    );
    assert_eq!(t.whoami(&b).await, "None");
    assert_eq!(t.whoami(&c).await, "None");
    assert_eq!(t.sessions(&a).await.len(), 1);
}

/// Requests in flight on the sessions when they are revoked (loaded before,
/// committing after) bring none of them back, and leave nothing in the
/// index.
async fn revocation_wins_over_requests_in_flight<S: Stored>(framework: Framework, store: S) {
    const N: usize = 20;
    let loaded = Arc::new(Semaphore::new(0));
    let release = Arc::new(Notify::new());
    let slow = crate::common::frameworks::in_flight(loaded.clone(), release.clone());
    // Every request in flight is due a "last seen" update too.
    let users = UserSessions::default().seen_interval(Duration::from_secs(1));
    let t = app(framework, store, users, slow);
    let mut cookies = Vec::new();
    for _ in 0..5 {
        cookies.push(t.login("frank").await);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let (app, cookie) = (t.app.clone(), cookies[i % cookies.len()].clone());
        tasks.spawn(async move { app.get(&format!("/slow/{i}"), Some(&cookie)).await });
    }
    drop(loaded.acquire_many(N as u32).await.unwrap());
    assert_eq!(t.app.users.revoke_all(&t.u("frank")).await.unwrap(), 5);
    release.notify_waiters();
    for reply in tasks.join_all().await {
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    for cookie in &cookies {
        assert!(t.ended(cookie).await, "the session stays revoked");
        assert_eq!(t.whoami(cookie).await, "None");
    }
    for key in t.store.saved_keys() {
        let found = t
            .store
            .inner
            .load(&key, None, crate::common::LIMIT)
            .await
            .unwrap();
        assert!(
            found.is_none_or(|bytes| bytes.len() <= 1),
            "nothing was recreated under any id"
        );
    }
    assert!(
        t.index("frank").await.is_empty(),
        "the index holds no member afterwards"
    );
    assert!(t.app.users.list(&t.u("frank")).await.unwrap().is_empty());
}

async fn the_limit_revokes_the_least_recently_seen<S: Stored>(framework: Framework, store: S) {
    let t = app(framework, store, UserSessions::default().limit(2), Routes::new());
    // Apart enough for every store to tell their order.
    let first = t.login("grace").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = t.login("grace").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let third = t.login("grace").await;
    assert_eq!(t.whoami(&third).await, "Some(\"grace\")");
    assert_eq!(t.whoami(&second).await, "Some(\"grace\")");
    assert_eq!(t.whoami(&first).await, "None", "the oldest went");
    assert_eq!(t.sessions(&third).await.len(), 2);
}

async fn logout_and_clear_end_the_binding<S: Stored>(framework: Framework, store: S) {
    let t = app(framework, store, UserSessions::default(), Routes::new());
    let a = t.login("heidi").await;
    let b = t.login("heidi").await;
    assert_eq!(t.get("/logout", Some(&a)).await.body, "bye");
    assert_eq!(t.whoami(&a).await, "None");
    // A logout costs one call and does not load the session to learn its
    // user: its index entry goes with the next listing, or expires.
    assert_eq!(t.sessions(&b).await.len(), 1);
    assert_eq!(
        t.index("heidi").await.len(),
        1,
        "the listing dropped the ended session"
    );
    assert_eq!(t.get("/clear", Some(&b)).await.body, "cleared");
    assert_eq!(t.whoami(&b).await, "None", "clearing the session logs out");
    assert!(t.index("heidi").await.is_empty());

    let c = t.login("heidi").await;
    assert_eq!(t.get("/clear_then_set", Some(&c)).await.body, "ok");
    assert_eq!(
        t.whoami(&c).await,
        "None",
        "a cleared session that goes on is anonymous"
    );
    assert!(t.index("heidi").await.is_empty(), "and out of the index");
}

/// A memory store on a clock the test moves, with every store call counted.
fn on_clock(users: UserSessions) -> (Served, Counting<AnyStore>, ManualClock) {
    let clock = ManualClock::new();
    let store = Counting::new(AnyStore::open(None, &clock));
    let config = SessionConfig::default().clock(clock.clone());
    let sessions = Sessions::with_user_sessions(store.clone(), config, users).unwrap();
    (serve_sessions(Framework::Axum, sessions, routes()), store, clock)
}

#[tokio::test]
async fn last_seen_costs_two_more_calls_once_per_interval() {
    let (app, store, clock) = on_clock(UserSessions::default().seen_interval(Duration::from_secs(300)));
    let cookie = app.get("/login/ivan", None).await.cookie_pair().unwrap();
    let listed = app.users.list("ivan").await.unwrap();
    let first_seen = listed[0].last_seen.unwrap();
    store.take();
    assert_eq!(app.get("/whoami", Some(&cookie)).await.body, "Some(\"ivan\")");
    assert_eq!(store.take_names(), ["load"], "a read is one call");
    clock.advance(Duration::from_secs(301));
    app.get("/whoami", Some(&cookie)).await;
    assert_eq!(
        store.take_names(),
        ["load", "index_add", "save"],
        "once per interval, the read also updates the record and the index"
    );
    app.get("/whoami", Some(&cookie)).await;
    assert_eq!(store.take_names(), ["load"]);
    app.get("/incr", Some(&cookie)).await;
    assert_eq!(store.take_names(), ["load", "save"], "a change costs what it did");
    let listed = app.users.list("ivan").await.unwrap();
    assert!(listed[0].last_seen.unwrap() >= first_seen + Duration::from_secs(300));
}

#[tokio::test]
async fn expired_sessions_leave_the_listing_without_a_cleanup_job() {
    let lifetime = Duration::from_secs(3600);
    let (app, _store, clock) = on_clock(UserSessions::default());
    let old = app.get("/login/judy", None).await.cookie_pair().unwrap();
    clock.advance(lifetime * 24 * 20);
    let young = app.get("/login/judy", None).await.cookie_pair().unwrap();
    assert_eq!(app.users.list("judy").await.unwrap().len(), 2);
    // The default lifetime is 31 days: the first session expires first.
    clock.advance(lifetime * 24 * 12);
    let listed = app.users.list("judy").await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(app.get("/whoami", Some(&old)).await.body, "None");
    assert_eq!(app.get("/whoami", Some(&young)).await.body, "Some(\"judy\")");
}

#[tokio::test]
async fn client_details_are_kept_only_when_asked_for() {
    for keep in [false, true] {
        let clock = ManualClock::new();
        let config = SessionConfig::default().clock(clock.clone());
        let store = MemoryStore::builder().clock(clock).build();
        let settings = UserSessions::default().client_details(keep);
        let layer = SessionLayer::from(Sessions::with_user_sessions(store, config, settings).unwrap());
        let users = layer.users();
        let app = axum::Router::new()
            .route(
                "/login",
                axum::routing::get(|s: Session| async move { s.login("kim").await.map(|_| "ok") }),
            )
            .layer(layer);
        let request = http::Request::get("/login")
            .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0")
            .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [203, 0, 113, 77],
                50000,
            ))))
            .body(axum::body::Body::empty())
            .unwrap();
        let reply = crate::common::send(&app, request).await;
        assert_eq!(reply.status, 200);
        let listed = users.list("kim").await.unwrap();
        if keep {
            assert_eq!(
                listed[0].user_agent.as_deref(),
                Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0")
            );
            assert_eq!(listed[0].client_network.as_deref(), Some("203.0.113.0/24"));
        } else {
            assert_eq!(listed[0].user_agent, None);
            assert_eq!(listed[0].client_network, None);
        }
    }
}

#[tokio::test]
async fn settings_that_cannot_work_are_refused() {
    struct NoIndex;
    impl SessionStore for NoIndex {
        async fn load(
            &self,
            _: &str,
            _: Option<Duration>,
            _: usize,
        ) -> Result<Option<Vec<u8>>, server_session::store::StoreError> {
            Ok(None)
        }
        async fn save(
            &self,
            _: &str,
            _: &[u8],
            _: Duration,
            _: server_session::store::Expect<'_>,
        ) -> Result<server_session::store::SaveOutcome, server_session::store::StoreError> {
            Ok(server_session::store::SaveOutcome::Saved)
        }
        async fn delete(&self, _: &str) -> Result<(), server_session::store::StoreError> {
            Ok(())
        }
        async fn touch(&self, _: &str, _: Duration) -> Result<(), server_session::store::StoreError> {
            Ok(())
        }
    }
    // A store without indexes serves sessions; user sessions on it do not
    // compile (`Sessions::with_user_sessions` takes a `SessionIndex`), and
    // a configured one is refused when it is built.
    assert!(SessionLayer::new(NoIndex, SessionConfig::default()).is_ok());
    #[cfg(feature = "sqlite")]
    {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:///{}", dir.path().join("s.db").display());
        let config = SessionConfig::from_map([
            ("SESSION_TYPE", "sqlalchemy"),
            ("SQLALCHEMY_DATABASE_URI", uri.as_str()),
        ])
        .unwrap();
        let err = Sessions::from_config_with_user_sessions(config, UserSessions::default()).unwrap_err();
        assert!(
            matches!(err, ConfigError::Invalid(ref why) if why.contains("indexes")),
            "{err}"
        );
    }

    let err = SessionLayer::new(
        MemoryStore::new(),
        SessionConfig::default().hash_ids(true).shared_with_flask(true),
    )
    .unwrap_err();
    assert!(
        matches!(err, ConfigError::Invalid(ref why) if why.contains("Flask")),
        "{err}"
    );
    let from_env = SessionConfig::from_map([("SESSION_HASH_IDS", "1"), ("SESSION_SHARED_WITH_FLASK", "1")]);
    assert!(
        matches!(from_env, Err(ConfigError::Invalid(ref why)) if why.contains("Flask")),
        "{from_env:?}"
    );
    assert!(SessionConfig::from_map([("SESSION_HASH_IDS", "1")]).is_ok());
    let err = Sessions::with_user_sessions(
        MemoryStore::new(),
        SessionConfig::default(),
        UserSessions::default().limit(0),
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Invalid(_)));
}

/// The index entry of a session whose lifetime grows is moved with it, so
/// the session can still be listed and revoked until it ends.
#[tokio::test]
async fn a_longer_lifetime_moves_the_index_entry() {
    let (app, store, clock) = on_clock(UserSessions::default());
    let cookie = app.get("/login/lena", None).await.cookie_pair().unwrap();
    app.get("/remember", Some(&cookie)).await;
    clock.advance(Duration::from_secs(60 * 24 * 3600));
    let members = store
        .inner
        .index_members("session_users:lena", server_session::Clock::now(&clock))
        .await
        .unwrap();
    assert_eq!(members.len(), 1, "still indexed after 60 days");
    assert_eq!(app.users.list("lena").await.unwrap().len(), 1);
    assert_eq!(app.users.revoke_all("lena").await.unwrap(), 1);
    assert_eq!(app.get("/whoami", Some(&cookie)).await.body, "None");
}

/// Where reads leave the expiry alone, a read never extends a session, not
/// even to update "last seen": the next write does it.
#[tokio::test]
async fn without_sliding_reads_last_seen_waits_for_a_write() {
    let clock = ManualClock::new();
    let store = Counting::new(AnyStore::open(None, &clock));
    let config = SessionConfig::default()
        .refresh_each_request(false)
        .clock(clock.clone());
    let sessions = Sessions::with_user_sessions(store.clone(), config, UserSessions::default()).unwrap();
    let app = serve_sessions(Framework::Axum, sessions, routes());
    let cookie = app.get("/login/mia", None).await.cookie_pair().unwrap();
    clock.advance(Duration::from_secs(600));
    store.take();
    app.get("/whoami", Some(&cookie)).await;
    assert_eq!(store.take_names(), ["load"], "a read stays a read");
    app.get("/incr", Some(&cookie)).await;
    assert_eq!(store.take_names(), ["load", "index_add", "save"]);
}

/// Forged times in a stored record are shown as unknown, never a panic.
#[tokio::test]
async fn forged_times_are_unknown() {
    let (app, store, _clock) = on_clock(UserSessions::default());
    let cookie = app.get("/login/nina", None).await.cookie_pair().unwrap();
    let key = format!("session:{}", cookie.split_once('=').unwrap().1);
    let forged = rmpv::Value::Map(vec![
        ("_permanent".into(), true.into()),
        ("_ss_user".into(), "nina".into()),
        ("_ss_created".into(), u64::MAX.into()),
        ("_ss_seen".into(), u64::MAX.into()),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &forged).unwrap();
    let current = store
        .inner
        .load(&key, None, crate::common::LIMIT)
        .await
        .unwrap()
        .unwrap();
    let saved = store
        .inner
        .save(
            &key,
            &bytes,
            Duration::from_secs(60),
            server_session::store::Expect::Unchanged(&current),
        )
        .await
        .unwrap();
    assert_eq!(saved, server_session::store::SaveOutcome::Saved);
    let listed = app.users.list("nina").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].created, listed[0].last_seen), (None, None));
}

/// Members a store writer planted in a user's Redis index (one that is not
/// text, one whose key holds a hash, one whose record is over the size
/// limit) break neither the listing nor "log out everywhere else", and
/// every session of the user can still be revoked: the member that is not
/// text is dropped, the unreadable records are discarded.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_index_members_do_not_block_revocation_on_redis() {
    planted_index_members_do_not_block_revocation(&crate::common::redis::TestRedis::start().url).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_index_members_do_not_block_revocation_on_valkey() {
    planted_index_members_do_not_block_revocation(&crate::common::servers::TestValkey::shared().url).await;
}

#[cfg(feature = "redis")]
async fn planted_index_members_do_not_block_revocation(url: &str) {
    let store = server_session::RedisStore::connect(url).await.unwrap();
    let t = app(Framework::Axum, store, UserSessions::default(), Routes::new());
    let a = t.login("carol").await;
    let b = t.login("carol").await;
    let c = t.login("carol").await;
    let index = format!("session_users:{}", t.u("carol"));
    let mut raw = ::redis::Client::open(url).unwrap().get_connection().unwrap();
    let mut run = |name: &str, args: &[&[u8]]| {
        let mut command = ::redis::cmd(name);
        for arg in args {
            command.arg(*arg);
        }
        command.query::<::redis::Value>(&mut raw).unwrap()
    };
    let index = index.as_bytes();
    let forever = b"9999999999".as_slice();
    run("ZADD", &[index, forever, b"\xff\xfe"]);
    run("ZADD", &[index, forever, b"planted-hash"]);
    run("HSET", &[b"session:planted-hash", b"f", b"v"]);
    run("ZADD", &[index, forever, b"planted-huge"]);
    run(
        "SET",
        &[
            b"session:planted-huge",
            &crate::common::attack::huge_record(300_000),
        ],
    );

    let listed = t.get("/sessions", Some(&a)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(t.sessions(&a).await.len(), 3, "only the sessions are listed");
    assert_eq!(
        run("ZSCORE", &[index, b"\xff\xfe"]),
        ::redis::Value::Nil,
        "the member that is not text is dropped"
    );
    for key in [&b"session:planted-hash"[..], b"session:planted-huge"] {
        assert_eq!(
            run("EXISTS", &[key]),
            ::redis::Value::Int(0),
            "unreadable: discarded"
        );
    }
    run("ZADD", &[index, forever, b"\xc0\xc1"]);
    let revoked = t.get("/revoke_others", Some(&a)).await;
    assert_eq!((revoked.status.as_u16(), revoked.body.as_str()), (200, "2"));
    assert!(t.ended(&b).await && t.ended(&c).await);
    run("ZADD", &[index, forever, b"\xff"]);
    assert_eq!(t.app.users.revoke_all(&t.u("carol")).await.unwrap(), 1);
    assert!(t.ended(&a).await);
}

/// A record written back by an operator tool with an absurd time to live
/// (2⁶⁴ ms, from a forged export) lives no longer than the longest
/// lifetime, and its user's index gets an expiry like any other.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_record_put_back_with_an_absurd_ttl_leaves_no_index_without_expiry() {
    let server = crate::common::redis::TestRedis::start();
    let store = server_session::RedisStore::connect(server.url.as_str())
        .await
        .unwrap();
    let admin = server_session::admin::Admin::with_user_sessions(store, SessionConfig::default()).unwrap();
    let key = format!("session:{}", "k".repeat(43));
    // {"_ss_user": "zoe"}
    let record = b"\x81\xa8_ss_user\xa3zoe".to_vec();
    let entry = server_session::store::StoredEntry::new(
        key.clone(),
        Some(record),
        Some(Duration::from_millis(u64::MAX)),
    );
    assert!(admin.put(&entry, false).await.unwrap());
    let max = SessionConfig::MAX_LIFETIME.as_secs() as i64;
    assert!((1..=max).contains(&server.ttl(&key)), "{}", server.ttl(&key));
    let index_ttl = server.ttl("session_users:zoe");
    assert!(
        (1..=max + 3600).contains(&index_ttl),
        "the index expires: {index_ttl}"
    );
}
