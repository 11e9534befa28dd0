//! The request lifecycle, row by row (Flask-Session's open_session /
//! save_session table, with this project's fixes), the cost contract, id
//! cycling, destroy, and expiry on a controllable clock; each scenario
//! through the axum adapter (with the layer on the routes, and around the
//! whole router) and through the actix-web one.

use std::time::{Duration, SystemTime};

use crate::common::frameworks::{Framework, Routes, Served, serve};
use crate::common::{AnyStore, Call, Counting, Reply, get as request, hex};
use axum::Router;
use axum::routing::get;
use server_session::store::{Expect, SessionStore};
use server_session::{
    ManualClock, MemoryStore, SameSite, Session, SessionConfig, SessionError, SessionLayer,
};

const DAY: u64 = 24 * 3600;
const MINUTE: Duration = Duration::from_secs(60);

type Store = Counting<AnyStore>;

struct Harness {
    app: Served,
    store: Store,
    clock: ManualClock,
    hashed: bool,
}

/// Where a scenario runs: which framework's adapter, and the memory store
/// (on the harness's clock) or a real Redis.
#[derive(Clone)]
struct On {
    framework: Framework,
    redis: Option<String>,
    /// Sessions stored under a hash of their id
    /// ([`SessionConfig::hash_ids`]).
    hashed: bool,
}

/// Runs each scenario through both frameworks' adapters, with the same
/// routes, so both are held to the same lifecycle; `everywhere` scenarios
/// also run on a real Redis (those that move the clock run in memory only,
/// since Redis keeps its own time).
macro_rules! on_both_frameworks {
    (everywhere: $($name:ident),* ; memory: $($memory_only:ident),* $(,)?) => {
        mod on_axum {
            use super::{Framework, On};
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(On { framework: Framework::Axum, redis: None, hashed: false }).await
                }
            )*
            $(
                #[tokio::test]
                async fn $memory_only() {
                    super::$memory_only(On { framework: Framework::Axum, redis: None, hashed: false }).await
                }
            )*
            #[cfg(feature = "redis")]
            mod redis {
                use super::super::{Framework, On};
                $(
                    #[tokio::test]
                    async fn $name() {
                        let server = crate::common::redis::TestRedis::shared();
                        let on = On { framework: Framework::Axum, redis: Some(server.url.clone()), hashed: false };
                        super::super::$name(on).await
                    }
                )*
            }
            /// The same with hashed ids, on one Redis.
            #[cfg(feature = "redis")]
            mod hashed_ids {
                use super::super::{Framework, On};
                $(
                    #[tokio::test]
                    async fn $name() {
                        let server = crate::common::redis::TestRedis::shared();
                        let on = On { framework: Framework::Axum, redis: Some(server.url.clone()), hashed: true };
                        super::super::$name(on).await
                    }
                )*
            }
        }
        /// On axum with the layer around the whole router, in memory.
        mod on_axum_around_router {
            use super::{Framework, On};
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(On { framework: Framework::AxumAroundRouter, redis: None, hashed: false }).await
                }
            )*
            $(
                #[tokio::test]
                async fn $memory_only() {
                    super::$memory_only(On { framework: Framework::AxumAroundRouter, redis: None, hashed: false }).await
                }
            )*
        }
        #[cfg(feature = "actix")]
        mod on_actix {
            use super::{Framework, On};
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(On { framework: Framework::Actix, redis: None, hashed: false }).await
                }
            )*
            $(
                #[tokio::test]
                async fn $memory_only() {
                    super::$memory_only(On { framework: Framework::Actix, redis: None, hashed: false }).await
                }
            )*
            #[cfg(feature = "redis")]
            mod redis {
                use super::super::{Framework, On};
                $(
                    #[tokio::test]
                    async fn $name() {
                        let server = crate::common::redis::TestRedis::shared();
                        let on = On { framework: Framework::Actix, redis: Some(server.url.clone()), hashed: false };
                        super::super::$name(on).await
                    }
                )*
            }
        }
    };
}

on_both_frameworks!(
    everywhere:
    no_cookie_untouched_does_nothing,
    no_cookie_read_only_varies_on_cookie,
    first_write_creates_with_one_call,
    untouched_with_a_cookie_costs_nothing,
    read_without_refresh_is_a_plain_load,
    change_costs_load_plus_one_conditional_save,
    clearing_deletes_and_sends_a_deletion_cookie_with_the_same_attributes,
    deletion_cookie_keeps_domain_and_path,
    unknown_id_gets_a_fresh_id_on_write,
    malformed_ids_cost_no_store_call,
    tampered_or_unsigned_cookie_with_signer_costs_no_store_call,
    the_first_valid_of_several_session_cookies_wins,
    non_permanent_sessions_have_no_expires_and_flask_bytes,
    set_permanent_false_drops_expires,
    cycle_id_keeps_data_under_a_new_id_and_kills_the_old,
    destroy_deletes_without_loading,
    keys_set_after_destroy_start_a_new_session,
    destroy_without_a_session_only_clears_a_presented_cookie;
    memory:
    read_with_refresh_slides_in_one_call_and_resends_the_cookie,
    a_session_holding_only_permanent_is_never_stored,
    idle_timeout_slides_on_reads,
    without_refresh_the_lifetime_counts_from_the_last_write,
    absolute_timeout_ends_even_an_active_session,
    absolute_timeout_holds_for_sessions_without_a_stamp,
    remember_me_keeps_the_idle_timeout,
    per_session_lifetime_override_holds_on_later_requests,
    reserved_keys_are_refused
);

fn harness(on: On, config: SessionConfig) -> Harness {
    let clock = ManualClock::new();
    let store = Counting::new(AnyStore::open(on.redis.as_deref(), &clock));
    let routes = Routes::new()
        .route("/noop", |_: Session, _| async { Ok("noop".into()) })
        .route("/read", |s: Session, _| async move {
            let user: Option<String> = s.get("user").await?;
            Ok(format!("{user:?}"))
        })
        .route(
            "/keys",
            |s: Session, _| async move { Ok(s.keys().await?.join(",")) },
        )
        .route("/set_basic", |s: Session, _| async move {
            s.insert("user", "alice").await?;
            s.insert("n", &1).await?;
            Ok("ok".into())
        })
        .route("/set/*", |s: Session, rest| async move {
            let (k, v) = rest.split_once('/').unwrap();
            s.insert(k, v).await?;
            Ok("ok".into())
        })
        .route("/remove/*", |s: Session, k| async move {
            Ok(s.remove(&k).await?.to_string())
        })
        .route("/clear", |s: Session, _| async move {
            s.clear().await.map(|_| "cleared".into())
        })
        .route("/destroy", |s: Session, _| async move {
            s.destroy().await.map(|_| "destroyed".into())
        })
        .route("/destroy_then_set", |s: Session, _| async move {
            s.destroy().await?;
            s.insert("flash", "bye").await?;
            Ok("ok".into())
        })
        .route("/cycle", |s: Session, _| async move {
            let before = s.id().await?.map(|id| id.as_str().to_owned());
            s.cycle_id().await?;
            s.save().await?;
            let after = s.id().await?.map(|id| id.as_str().to_owned());
            Ok(format!("{before:?} -> {after:?}"))
        })
        .route("/permanent/*", |s: Session, on| async move {
            s.set_permanent(on.parse().unwrap()).await.map(|_| "ok".into())
        })
        .route("/remember", |s: Session, _| async move {
            s.set_lifetime(Some(Duration::from_secs(90 * DAY)))
                .await
                .map(|_| "ok".into())
        })
        .route("/incr", |s: Session, _| async move {
            let n = s.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
            Ok(n.to_string())
        });
    let config = config.clock(clock.clone()).hash_ids(on.hashed);
    let app = serve(on.framework, store.clone(), config, routes);
    Harness {
        app,
        store,
        clock,
        hashed: on.hashed,
    }
}

impl Harness {
    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.app.get(path, cookie).await
    }

    /// Creates a session with user=alice, n=1; returns its `name=value`.
    async fn login(&self) -> String {
        let reply = self.get("/set_basic", None).await;
        self.store.take();
        reply.cookie_pair().expect("a new session sets a cookie")
    }

    async fn stored(&self, cookie_pair: &str) -> Option<Vec<u8>> {
        let id = cookie_pair.split_once('=').unwrap().1;
        let id = id.split('.').next().unwrap();
        let name = if self.hashed {
            crate::common::hashed(id)
        } else {
            id.to_owned()
        };
        self.store
            .inner
            .load(&format!("session:{name}"), None, crate::common::LIMIT)
            .await
            .unwrap()
    }
}

fn expires_in(set_cookie: &str, clock: &ManualClock) -> Option<Duration> {
    let expires = set_cookie.split("; ").find_map(|a| a.strip_prefix("Expires="))?;
    let at =
        SystemTime::UNIX_EPOCH + Duration::from_secs(parse_http_date(expires).expect("an HTTP date") as u64);
    at.duration_since(server_session::Clock::now(clock)).ok()
}

/// Seconds since the epoch of an IMF-fixdate like `Sat, 26 Dec 2026 20:15:16 GMT`.
fn parse_http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split([' ', ':']).collect();
    let [_, day, month, year, h, m, s, "GMT"] = parts[..] else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|&name| name == month)? as u8
        + 1;
    let date =
        time::Date::from_calendar_date(year.parse().ok()?, month.try_into().ok()?, day.parse().ok()?).ok()?;
    let t = date
        .with_hms(h.parse().ok()?, m.parse().ok()?, s.parse().ok()?)
        .ok()?;
    Some(t.assume_utc().unix_timestamp())
}

async fn no_cookie_untouched_does_nothing(on: On) {
    let h = harness(on, SessionConfig::default());
    let reply = h.get("/noop", None).await;
    assert_eq!(reply.body, "noop");
    assert_eq!(reply.set_cookie(), None);
    assert_eq!(reply.vary(), None);
    assert_eq!(h.store.take(), vec![]);
}

async fn no_cookie_read_only_varies_on_cookie(on: On) {
    let h = harness(on, SessionConfig::default());
    let reply = h.get("/read", None).await;
    assert_eq!(reply.body, "None");
    assert_eq!(reply.set_cookie(), None);
    assert_eq!(reply.vary().as_deref(), Some("Cookie"));
    assert_eq!(h.store.take(), vec![], "no cookie, no store call");
}

async fn first_write_creates_with_one_call(on: On) {
    let h = harness(on, SessionConfig::default());
    let reply = h.get("/set_basic", None).await;
    assert_eq!(h.store.take_names(), ["save"]);
    let set = reply.set_cookie().unwrap();
    let id = reply.cookie_value().unwrap();
    assert_eq!(id.len(), 43);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert!(
        set.starts_with(&format!("session={id}; HttpOnly; SameSite=Lax; Path=/; Expires=")),
        "{set}"
    );
    assert_eq!(expires_in(&set, &h.clock), Some(Duration::from_secs(31 * DAY)));
    assert_eq!(reply.vary().as_deref(), Some("Cookie"));
    assert_eq!(reply.headers["cache-control"], "private");
    // Byte for byte what Flask-Session writes for the same data.
    let stored = h.stored(&reply.cookie_pair().unwrap()).await.unwrap();
    assert_eq!(
        hex(&stored),
        "83aa5f7065726d616e656e74c3a475736572a5616c696365a16e01"
    );
}

async fn read_with_refresh_slides_in_one_call_and_resends_the_cookie(on: On) {
    let h = harness(on, SessionConfig::default());
    let cookie = h.login().await;
    h.clock.advance(Duration::from_secs(DAY));
    let reply = h.get("/read", Some(&cookie)).await;
    assert_eq!(reply.body, "Some(\"alice\")");
    let calls = h.store.take();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(matches!(&calls[0], Call::Load { slide: Some(d), .. } if *d == Duration::from_secs(31 * DAY)));
    let set = reply.set_cookie().expect("refreshed cookie");
    assert_eq!(reply.cookie_pair().unwrap(), cookie, "same id");
    assert_eq!(expires_in(&set, &h.clock), Some(Duration::from_secs(31 * DAY)));
}

async fn untouched_with_a_cookie_costs_nothing(on: On) {
    let h = harness(on, SessionConfig::default());
    let cookie = h.login().await;
    let reply = h.get("/noop", Some(&cookie)).await;
    assert_eq!(h.store.take(), vec![]);
    assert_eq!(reply.set_cookie(), None);
    assert_eq!(reply.vary(), None);
}

async fn read_without_refresh_is_a_plain_load(on: On) {
    let h = harness(on, SessionConfig::default().refresh_each_request(false));
    let cookie = h.login().await;
    let reply = h.get("/read", Some(&cookie)).await;
    assert_eq!(reply.body, "Some(\"alice\")");
    let calls = h.store.take();
    assert!(
        matches!(&calls[..], [Call::Load { slide: None, .. }]),
        "{calls:?}"
    );
    assert_eq!(reply.set_cookie(), None);
    assert_eq!(reply.vary().as_deref(), Some("Cookie"));
}

async fn change_costs_load_plus_one_conditional_save(on: On) {
    let h = harness(on, SessionConfig::default());
    let cookie = h.login().await;
    let before = h.stored(&cookie).await.unwrap();
    let reply = h.get("/set/color/blue", Some(&cookie)).await;
    let calls = h.store.take();
    assert_eq!(calls.iter().map(Call::name).collect::<Vec<_>>(), ["load", "save"]);
    assert!(
        matches!(&calls[0], Call::Load { slide: None, .. }),
        "a load for a change leaves the expiry to the save: {calls:?}"
    );
    let Call::Save { expect, outcome, .. } = &calls[1] else {
        unreachable!()
    };
    assert_eq!(*expect, Some(server_session::store::Fingerprint::of(&before)));
    assert_eq!(*outcome, "saved");
    assert_eq!(reply.cookie_pair().unwrap(), cookie);
    assert_eq!(h.get("/keys", Some(&cookie)).await.body, "user,n,color");
}

async fn clearing_deletes_and_sends_a_deletion_cookie_with_the_same_attributes(on: On) {
    let config = SessionConfig::default()
        .cookie_name("__Host-sid")
        .cookie_secure(true)
        .cookie_same_site(Some(SameSite::None))
        .cookie_partitioned(true);
    let h = harness(on, config);
    let cookie = h.login().await;
    let set = h.get("/read", Some(&cookie)).await.set_cookie().unwrap();
    assert!(
        set.contains("; HttpOnly; SameSite=None; Partitioned; Secure; Path=/"),
        "{set}"
    );
    h.store.take();
    let reply = h.get("/clear", Some(&cookie)).await;
    assert_eq!(h.store.take_names(), ["load", "delete"]);
    assert_eq!(
        reply.set_cookie().unwrap(),
        "__Host-sid=; HttpOnly; SameSite=None; Partitioned; Secure; Path=/; Max-Age=0; \
         Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    );
    assert_eq!(h.stored(&cookie).await, None);
    // Removing the last key empties the session too.
    let cookie = h.login().await;
    h.get("/remove/user", Some(&cookie)).await;
    let reply = h.get("/remove/n", Some(&cookie)).await;
    assert!(reply.set_cookie().unwrap().contains("Max-Age=0"));
    assert_eq!(h.stored(&cookie).await, None);
}

async fn deletion_cookie_keeps_domain_and_path(on: On) {
    let config = SessionConfig::default()
        .cookie_domain(Some("example.com"))
        .cookie_path("/app");
    let h = harness(on, config);
    let cookie = h.login().await;
    let reply = h.get("/destroy", Some(&cookie)).await;
    assert_eq!(
        reply.set_cookie().unwrap(),
        "session=; HttpOnly; SameSite=Lax; Path=/app; Domain=example.com; Max-Age=0; \
         Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    );
}

async fn unknown_id_gets_a_fresh_id_on_write(on: On) {
    let h = harness(on, SessionConfig::default());
    let unknown = "session=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    let reply = h.get("/read", Some(unknown)).await;
    assert_eq!(reply.body, "None");
    assert_eq!(
        h.store.take_names(),
        ["load"],
        "a well-formed id costs one lookup"
    );
    assert_eq!(reply.set_cookie(), None);
    let reply = h.get("/set_basic", Some(unknown)).await;
    assert_eq!(h.store.take_names(), ["load", "save"]);
    let pair = reply.cookie_pair().unwrap();
    assert_ne!(pair, unknown, "the presented id is never reused");
    assert!(h.stored(unknown).await.is_none());
}

async fn malformed_ids_cost_no_store_call(on: On) {
    let h = harness(on, SessionConfig::default());
    for bad in [
        "session=attacker-chosen-sid-0123456789",
        "session=",
        "session=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8x",
        "session=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+",
        "session=../../etc/passwd",
    ] {
        let reply = h.get("/read", Some(bad)).await;
        assert_eq!(reply.status, 200);
        assert_eq!(h.store.take(), vec![], "{bad}");
        let reply = h.get("/set_basic", Some(bad)).await;
        assert_eq!(h.store.take_names(), ["save"], "{bad}");
        assert_ne!(reply.cookie_pair().unwrap(), bad);
    }
}

async fn tampered_or_unsigned_cookie_with_signer_costs_no_store_call(on: On) {
    let h = harness(
        on,
        SessionConfig::default().secret("test-secret-key-for-fixtures"),
    );
    let reply = h.get("/set_basic", None).await;
    let pair = reply.cookie_pair().unwrap();
    let (sid, _sig) = pair.rsplit_once('.').unwrap();
    h.store.take();
    assert_eq!(h.get("/read", Some(&pair)).await.body, "Some(\"alice\")");
    assert_eq!(h.store.take_names(), ["load"]);
    let tampered = format!("{sid}.Fkd3amqSgzmt6mAGAANW8hDUxBA");
    for bad in [sid, tampered.as_str()] {
        assert_eq!(h.get("/read", Some(bad)).await.body, "None");
        assert_eq!(h.store.take(), vec![], "{bad}");
        let reply = h.get("/set_basic", Some(bad)).await;
        assert_eq!(h.store.take_names(), ["save"]);
        assert!(
            !reply.cookie_pair().unwrap().starts_with(sid),
            "never reuses the presented id"
        );
    }
}

async fn the_first_valid_of_several_session_cookies_wins(on: On) {
    let h = harness(on, SessionConfig::default());
    let cookie = h.login().await;
    let header = format!("session=junk; other=1; {cookie}");
    assert_eq!(h.get("/read", Some(&header)).await.body, "Some(\"alice\")");
}

async fn a_session_holding_only_permanent_is_never_stored(on: On) {
    let h = harness(on.clone(), SessionConfig::default());
    let reply = h.get("/permanent/true", None).await;
    assert_eq!(reply.set_cookie(), None);
    assert_eq!(h.store.take(), vec![]);
    assert!(h.store.inner.is_empty());
    let h = harness(on, SessionConfig::default().permanent(false));
    let reply = h.get("/permanent/true", None).await;
    assert_eq!(reply.set_cookie(), None);
    assert!(h.store.inner.is_empty());
}

async fn non_permanent_sessions_have_no_expires_and_flask_bytes(on: On) {
    let h = harness(
        on,
        SessionConfig::default()
            .permanent(false)
            .lifetime(Duration::from_secs(3600)),
    );
    let reply = h.get("/set_basic", None).await;
    let set = reply.set_cookie().unwrap();
    assert!(!set.contains("Expires"), "{set}");
    let calls = h.store.take();
    assert!(matches!(&calls[..], [Call::Save { ttl, .. }] if *ttl == Duration::from_secs(3600)));
    let stored = h.stored(&reply.cookie_pair().unwrap()).await.unwrap();
    assert_eq!(hex(&stored), "82a475736572a5616c696365a16e01");
    // A read slides the store's expiry but sends no cookie.
    let reply = h.get("/read", Some(&reply.cookie_pair().unwrap())).await;
    assert_eq!(reply.set_cookie(), None);
}

async fn set_permanent_false_drops_expires(on: On) {
    let h = harness(on, SessionConfig::default());
    let reply = h.get("/set/x/1", None).await;
    let cookie = reply.cookie_pair().unwrap();
    let reply = h.get("/permanent/false", Some(&cookie)).await;
    assert!(!reply.set_cookie().unwrap().contains("Expires"));
    let stored = h.stored(&cookie).await.unwrap();
    assert_eq!(hex(&stored), "82aa5f7065726d616e656e74c2a178a131");
}

async fn cycle_id_keeps_data_under_a_new_id_and_kills_the_old(on: On) {
    let h = harness(on, SessionConfig::default());
    let cookie = h.login().await;
    let old = h.stored(&cookie).await.unwrap();
    let reply = h.get("/cycle", Some(&cookie)).await;
    let calls = h.store.take();
    // Load, create the new key, retire the old one with a conditional write
    // (so a concurrent logout cannot be undone), then delete it.
    assert_eq!(
        calls.iter().map(Call::name).collect::<Vec<_>>(),
        ["load", "save", "save", "delete"]
    );
    assert!(matches!(
        &calls[1],
        Call::Save {
            expect: None,
            outcome: "saved",
            ..
        }
    ));
    let fingerprint = server_session::store::Fingerprint::of(&old);
    assert!(matches!(&calls[2], Call::Save { expect: Some(f), outcome: "saved", .. } if *f == fingerprint));
    let new_cookie = reply.cookie_pair().unwrap();
    assert_ne!(new_cookie, cookie);
    let (before, after) = reply.body.split_once(" -> ").unwrap();
    assert_eq!(before, format!("Some({:?})", cookie.split_once('=').unwrap().1));
    assert_eq!(
        after,
        format!("Some({:?})", new_cookie.split_once('=').unwrap().1)
    );
    assert_eq!(h.stored(&new_cookie).await.unwrap(), old, "same data");
    assert_eq!(h.stored(&cookie).await, None, "old id is dead");
    assert_eq!(h.get("/read", Some(&cookie)).await.body, "None");
    assert_eq!(h.get("/read", Some(&new_cookie)).await.body, "Some(\"alice\")");
}

async fn destroy_deletes_without_loading(on: On) {
    let h = harness(on, SessionConfig::default());
    let cookie = h.login().await;
    let reply = h.get("/destroy", Some(&cookie)).await;
    assert_eq!(h.store.take_names(), ["delete"]);
    assert!(reply.set_cookie().unwrap().starts_with("session=; "));
    assert!(reply.set_cookie().unwrap().contains("Max-Age=0"));
    assert_eq!(h.stored(&cookie).await, None);
    // The same cookie now gets a fresh, empty session.
    assert_eq!(h.get("/read", Some(&cookie)).await.body, "None");
}

async fn keys_set_after_destroy_start_a_new_session(on: On) {
    let h = harness(on, SessionConfig::default());
    let cookie = h.login().await;
    let reply = h.get("/destroy_then_set", Some(&cookie)).await;
    assert_eq!(h.store.take_names(), ["delete", "save"]);
    let new_cookie = reply.cookie_pair().unwrap();
    assert_ne!(new_cookie, cookie);
    assert_eq!(h.stored(&cookie).await, None);
    assert_eq!(h.get("/keys", Some(&new_cookie)).await.body, "flash");
}

async fn destroy_without_a_session_only_clears_a_presented_cookie(on: On) {
    let h = harness(on, SessionConfig::default());
    let reply = h.get("/destroy", None).await;
    assert_eq!(reply.set_cookie(), None);
    assert_eq!(h.store.take(), vec![]);
    let reply = h.get("/destroy", Some("session=junk")).await;
    assert!(reply.set_cookie().unwrap().contains("Max-Age=0"));
    assert_eq!(h.store.take(), vec![]);
}

async fn idle_timeout_slides_on_reads(on: On) {
    let config = SessionConfig::default()
        .idle_timeout(30 * MINUTE)
        .refresh_each_request(false);
    let h = harness(on, config);
    let cookie = h.login().await;
    for _ in 0..5 {
        h.clock.advance(20 * MINUTE);
        assert_eq!(
            h.get("/read", Some(&cookie)).await.body,
            "Some(\"alice\")",
            "still active"
        );
    }
    let calls = h.store.take();
    assert!(
        calls
            .iter()
            .all(|c| matches!(c, Call::Load { slide: Some(d), .. } if *d == 30 * MINUTE))
    );
    h.clock.advance(31 * MINUTE);
    assert_eq!(h.get("/read", Some(&cookie)).await.body, "None", "idle too long");
}

async fn without_refresh_the_lifetime_counts_from_the_last_write(on: On) {
    let h = harness(
        on,
        SessionConfig::default()
            .refresh_each_request(false)
            .lifetime(60 * MINUTE),
    );
    let cookie = h.login().await;
    h.clock.advance(50 * MINUTE);
    assert_eq!(h.get("/read", Some(&cookie)).await.body, "Some(\"alice\")");
    h.clock.advance(11 * MINUTE);
    assert_eq!(h.get("/read", Some(&cookie)).await.body, "None");
}

async fn absolute_timeout_ends_even_an_active_session(on: On) {
    let config = SessionConfig::default()
        .idle_timeout(30 * MINUTE)
        .absolute_timeout(60 * MINUTE);
    let h = harness(on, config);
    let reply = h.get("/set_basic", None).await;
    let cookie = reply.cookie_pair().unwrap();
    let set = reply.set_cookie().unwrap();
    assert_eq!(
        expires_in(&set, &h.clock),
        Some(60 * MINUTE),
        "Expires capped at the deadline"
    );
    h.store.take();
    h.clock.advance(20 * MINUTE);
    assert_eq!(h.get("/read", Some(&cookie)).await.body, "Some(\"alice\")");
    h.clock.advance(20 * MINUTE);
    let reply = h.get("/read", Some(&cookie)).await;
    assert_eq!(reply.body, "Some(\"alice\")");
    assert_eq!(
        expires_in(&reply.set_cookie().unwrap(), &h.clock),
        Some(20 * MINUTE)
    );
    // 20 minutes left: the slide to 30 minutes is cut back to the deadline.
    let calls = h.store.take();
    assert!(
        matches!(calls.last(), Some(Call::Touch { ttl, .. }) if *ttl == 20 * MINUTE),
        "{calls:?}"
    );
    h.clock.advance(20 * MINUTE);
    assert_eq!(
        h.get("/read", Some(&cookie)).await.body,
        "None",
        "past the absolute deadline"
    );
    assert_eq!(h.stored(&cookie).await, None);
}

async fn absolute_timeout_holds_for_sessions_without_a_stamp(on: On) {
    let h = harness(on, SessionConfig::default().absolute_timeout(60 * MINUTE));
    // What Flask writes: no creation stamp.
    let id = "WiA7yZJwdoKnsr0kDAavhk0fRS5yc2U7DkAgTUlBvsU";
    let flask = b"\x82\xaa_permanent\xc3\xa4user\xa5alice";
    let key = format!("session:{id}");
    let saved = h
        .store
        .inner
        .save(&key, flask, 31 * 24 * 60 * MINUTE, Expect::Absent);
    assert_eq!(saved.await.unwrap(), server_session::store::SaveOutcome::Saved);
    let cookie = format!("session={id}");

    assert_eq!(h.get("/read", Some(&cookie)).await.body, "Some(\"alice\")");
    assert_eq!(
        h.store.take_names(),
        ["load", "touch", "save"],
        "the deadline starts at the first read, and is stored then"
    );
    let stored = h.stored(&cookie).await.unwrap();
    assert!(stored.windows(11).any(|w| w == b"_ss_created"), "{stored:?}");
    for _ in 0..5 {
        h.clock.advance(10 * MINUTE);
        assert_eq!(h.get("/read", Some(&cookie)).await.body, "Some(\"alice\")");
        assert!(!h.store.take_names().contains(&"save"), "stamped once");
    }
    h.clock.advance(10 * MINUTE);
    assert_eq!(
        h.get("/read", Some(&cookie)).await.body,
        "None",
        "reads alone do not move the deadline"
    );
}

async fn remember_me_keeps_the_idle_timeout(on: On) {
    let h = harness(on, SessionConfig::default().idle_timeout(30 * MINUTE));
    let cookie = h.login().await;
    assert_eq!(h.get("/remember", Some(&cookie)).await.status, 200);
    let calls = h.store.take();
    assert!(
        matches!(calls.last(), Some(Call::Save { ttl, .. }) if *ttl == 30 * MINUTE),
        "the store TTL is the shorter idle timeout: {calls:?}"
    );
    h.clock.advance(20 * MINUTE);
    assert_eq!(h.get("/read", Some(&cookie)).await.body, "Some(\"alice\")");
    h.clock.advance(31 * MINUTE);
    assert_eq!(
        h.get("/read", Some(&cookie)).await.body,
        "None",
        "idle for 31 minutes"
    );
}

async fn per_session_lifetime_override_holds_on_later_requests(on: On) {
    let h = harness(on, SessionConfig::default());
    let cookie = h.login().await;
    let reply = h.get("/remember", Some(&cookie)).await;
    assert_eq!(
        expires_in(&reply.set_cookie().unwrap(), &h.clock),
        Some(Duration::from_secs(90 * DAY))
    );
    let calls = h.store.take();
    assert!(matches!(&calls[1], Call::Save { ttl, .. } if *ttl == Duration::from_secs(90 * DAY)));
    h.clock.advance(Duration::from_secs(40 * DAY));
    let reply = h.get("/read", Some(&cookie)).await;
    assert_eq!(reply.body, "Some(\"alice\")", "outlives the default 31 days");
    let calls = h.store.take();
    assert!(matches!(calls.last(), Some(Call::Touch { ttl, .. }) if *ttl == Duration::from_secs(90 * DAY)));
    h.clock.advance(Duration::from_secs(89 * DAY));
    assert_eq!(h.get("/read", Some(&cookie)).await.body, "Some(\"alice\")");
    h.clock.advance(Duration::from_secs(91 * DAY));
    assert_eq!(h.get("/read", Some(&cookie)).await.body, "None");
}

async fn reserved_keys_are_refused(on: On) {
    let h = harness(on, SessionConfig::default());
    let reply = h.get("/set/_permanent/x", None).await;
    assert_eq!(reply.status, 500);
    let reply = h.get("/set/_ss_created/x", None).await;
    assert_eq!(reply.status, 500);
    assert!(h.store.inner.is_empty());
}

#[tokio::test]
async fn handler_vary_and_cache_headers_are_kept() {
    let clock = ManualClock::new();
    let layer = SessionLayer::new(MemoryStore::new(), SessionConfig::default().clock(clock)).unwrap();
    let app = Router::new()
        .route(
            "/",
            get(|s: Session| async move {
                s.insert("a", &1).await?;
                Ok::<_, SessionError>((
                    [("vary", "Accept-Encoding, cookie"), ("cache-control", "no-store")],
                    "ok",
                ))
            }),
        )
        .layer(layer);
    let reply = request(&app, "/", None).await;
    let vary: Vec<_> = reply.headers.get_all("vary").iter().collect();
    assert_eq!(vary, ["Accept-Encoding, cookie"]);
    assert_eq!(reply.headers["cache-control"], "no-store");
}

#[cfg(feature = "actix")]
#[actix_web::test]
async fn handler_vary_and_cache_headers_are_kept_on_actix() {
    use actix_web::{App, HttpResponse, test, web};
    let sessions =
        server_session::SessionMiddleware::new(MemoryStore::new(), SessionConfig::default()).unwrap();
    let app = test::init_service(App::new().wrap(sessions).route(
        "/",
        web::get().to(|s: Session| async move {
            s.insert("a", &1).await?;
            Ok::<_, SessionError>(
                HttpResponse::Ok()
                    .insert_header(("vary", "Accept-Encoding, cookie"))
                    .insert_header(("cache-control", "no-store"))
                    .body("ok"),
            )
        }),
    ))
    .await;
    let response = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    let vary: Vec<_> = response.headers().get_all("vary").collect();
    assert_eq!(vary, ["Accept-Encoding, cookie"]);
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    assert!(response.headers().contains_key("set-cookie"));
}

#[test]
fn invalid_configurations_are_refused_when_the_layer_is_built() {
    let err = SessionLayer::new(
        MemoryStore::new(),
        SessionConfig::default().cookie_name("__Host-x"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("must be Secure"), "{err}");
    let err = SessionLayer::new(
        MemoryStore::new(),
        SessionConfig::default()
            .cookie_name("__Host-x")
            .cookie_secure(true)
            .cookie_domain(Some("a.com")),
    )
    .unwrap_err();
    assert!(err.to_string().contains("Domain"), "{err}");
}
