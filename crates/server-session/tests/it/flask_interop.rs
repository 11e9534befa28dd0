//! Live sessions shared with the real Flask-Session 0.8: a Flask app (run by
//! a real WSGI server, from a virtualenv made from PyPI) and a Rust app with
//! the same settings, on the same test `redis-server`, driven by one cookie
//! jar as a browser would.
//!
//! For each combination of format (MessagePack, JSON), signer (off, on, and
//! a rotated secret with the old one as the Rust side's fallback) and
//! permanence: values of every type go Flask -> Rust and Rust -> Flask and
//! read back equal; the Rust app cycles the id and Flask follows; Flask
//! clears the session and the Rust app sees none; and a write from each side
//! to different keys of one session both persist. The Rust app runs on axum
//! and, with the `actix` feature, on actix-web. With the `sqlite`,
//! `postgres` and `mysql` features, some combinations also run with both
//! apps on Flask-Session's `sqlalchemy` table, in one SQLite file, in
//! PostgreSQL and in MariaDB.
#![cfg(feature = "redis")]

use std::sync::Arc;

use crate::common::client::Jar;
use crate::common::frameworks::{Framework, Listening, listen};
use crate::common::python::FlaskApp;
use crate::common::redis::TestRedis;
use crate::common::values;
use server_session::{Format, Session, SessionConfig, SessionError};
use tokio::sync::Notify;

#[derive(Clone, Copy, PartialEq)]
enum Signing {
    Off,
    On,
    /// Flask signed with the old secret; the Rust app signs with a new one
    /// and keeps the old one as a fallback; after the rotation Flask uses
    /// the new one too (Flask-Session has no fallbacks).
    Rotated,
}

/// Pauses a Rust request between loading the session and changing it.
#[derive(Default)]
struct Gate {
    loaded: Notify,
    release: Notify,
}

/// The Rust app, served over TCP.
struct RustApp {
    addr: String,
    gate: Arc<Gate>,
    _server: Listening,
}

async fn rust_app(framework: Framework, config: SessionConfig, format: Format) -> RustApp {
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let routes = values::routes(format)
        .route("/cycle", |s: Session, _| async move {
            s.cycle_id().await.map(|_| "cycled".into())
        })
        .route("/slow_set/*", move |s: Session, key| {
            let gate = g.clone();
            async move {
                s.keys().await?;
                let release = gate.release.notified();
                gate.loaded.notify_one();
                release.await;
                s.insert(&key, "rust").await?;
                Ok::<_, SessionError>("ok".into())
            }
        });
    let server = listen(framework, config, routes).await;
    RustApp {
        addr: server.addr.clone(),
        gate,
        _server: server,
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn has_expires(set_cookie: &str) -> bool {
    set_cookie.contains("Expires=")
}

/// Where both apps keep the sessions.
#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Redis,
    /// Flask-Session's `sqlalchemy` table in one SQLite file.
    Sqlite,
    /// Flask-Session's `sqlalchemy` table in a database server (the URL,
    /// PostgreSQL's or MySQL's).
    Server(&'static str),
}

async fn scenario(framework: Framework, format: &str, signing: Signing, permanent: bool) {
    scenario_on(Backend::Redis, framework, format, signing, permanent).await;
}

async fn scenario_on(
    backend: Backend,
    framework: Framework,
    format: &str,
    signing: Signing,
    permanent: bool,
) {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite:///{}", dir.path().join("sessions.db").display());
    let permanent_text = if permanent { "true" } else { "false" };
    let signer = if signing == Signing::Off { "false" } else { "true" };
    // The settings both sides share, by Flask-Session's names.
    let table = crate::common::unique_table();
    let store: Vec<(&str, &str)> = match backend {
        Backend::Redis => vec![("SESSION_TYPE", "redis"), ("SESSION_REDIS", redis.url.as_str())],
        Backend::Sqlite => vec![
            ("SESSION_TYPE", "sqlalchemy"),
            ("SQLALCHEMY_DATABASE_URI", sqlite.as_str()),
        ],
        // A table of this test's own, on the shared server.
        Backend::Server(url) => vec![
            ("SESSION_TYPE", "sqlalchemy"),
            ("SQLALCHEMY_DATABASE_URI", url),
            ("SESSION_SQLALCHEMY_TABLE", table.as_str()),
        ],
    };
    let common_settings = [
        ("SESSION_SERIALIZATION_FORMAT", format),
        ("SESSION_PERMANENT", permanent_text),
        ("SESSION_USE_SIGNER", signer),
    ];
    let shared: Vec<(&str, &str)> = [&store[..], &common_settings[..]].concat();
    let old_secret = ("SECRET_KEY", "the old secret");
    let new_secret = ("SECRET_KEY", "the new secret");
    let flask = FlaskApp::start(&env(&[&shared[..], &[old_secret]].concat()));
    // After a rotation Flask runs with the new secret.
    let flask_now = match signing {
        Signing::Rotated => FlaskApp::start(&env(&[&shared[..], &[new_secret]].concat())),
        _ => FlaskApp::start(&env(&[&shared[..], &[old_secret]].concat())),
    };
    let rust_settings: Vec<(&str, &str)> = match signing {
        Signing::Rotated => [
            &shared[..],
            &[new_secret, ("SECRET_KEY_FALLBACKS", "the old secret")],
        ]
        .concat(),
        _ => [&shared[..], &[old_secret]].concat(),
    };
    let config = SessionConfig::from_map(rust_settings).unwrap();
    let format = if format == "json" {
        Format::Json
    } else {
        Format::MessagePack
    };
    let rust = rust_app(framework, config, format).await;
    let names: Vec<String> = crate::common::client::get(&flask.addr, "/names", None)
        .await
        .body
        .split(',')
        .map(String::from)
        .collect();
    assert!(names.len() >= 20, "{names:?}");

    // Flask stores every type; the Rust app reads them equal.
    let mut browser = Jar::new("session");
    for name in &names {
        let reply = browser.get(&flask.addr, &format!("/put/{name}")).await;
        assert_eq!(reply.body, "true", "Flask stores {name}:\n{}", flask.log());
    }
    if signing != Signing::Off {
        assert!(browser.value.as_ref().unwrap().contains('.'), "a signed cookie");
    }
    for name in &names {
        let reply = browser.get(&rust.addr, &format!("/holds/{name}")).await;
        assert_eq!(reply.body, "true", "the Rust app reads Flask's {name}");
    }
    let keys = browser.get(&rust.addr, "/keys").await.body;
    assert_eq!(keys, names.join(","), "same keys, same order");

    // The Rust app stores every type; Flask reads them equal.
    let mut browser = Jar::new("session");
    for name in &names {
        let reply = browser.get(&rust.addr, &format!("/put/{name}")).await;
        assert_eq!(reply.body, "true", "the Rust app stores {name}");
    }
    let rust_set_cookie =
        crate::common::client::get(&rust.addr, "/put/str", browser.header().as_deref()).await;
    let rust_set_cookie = rust_set_cookie
        .set_cookies()
        .first()
        .map(|s| s.to_string())
        .unwrap();
    for name in &names {
        let reply = browser.get(&flask_now.addr, &format!("/check/{name}")).await;
        assert_eq!(reply.body, "true", "Flask reads the Rust app's {name}");
    }
    let flask_reply = browser.get(&flask_now.addr, "/permanent").await;
    assert_eq!(flask_reply.body, if permanent { "True" } else { "False" });
    let flask_set_cookie = flask_reply.set_cookies().first().map(|s| s.to_string());
    if let Some(flask_set_cookie) = flask_set_cookie {
        assert_eq!(has_expires(&flask_set_cookie), has_expires(&rust_set_cookie));
    }
    assert_eq!(has_expires(&rust_set_cookie), permanent, "{rust_set_cookie}");

    // The Rust app cycles the id: Flask follows the new cookie, and the old
    // one gives Flask an empty session.
    let keys_before = browser.get(&flask_now.addr, "/keys").await.body;
    let old = browser.clone();
    browser.get(&rust.addr, "/cycle").await;
    assert_ne!(browser.value, old.value, "a new id");
    assert_eq!(browser.get(&flask_now.addr, "/keys").await.body, keys_before);
    let stale = crate::common::client::get(&flask_now.addr, "/keys", old.header().as_deref()).await;
    assert_eq!(stale.body, "", "the old cookie finds nothing");

    // Flask clears the session; the Rust app sees none.
    let before_clear = browser.clone();
    let cleared = browser.get(&flask_now.addr, "/clear").await;
    assert_eq!(cleared.body, "cleared");
    assert_eq!(browser.value, None, "Flask deleted the cookie");
    let after = crate::common::client::get(&rust.addr, "/keys", before_clear.header().as_deref()).await;
    assert_eq!(
        after.body, "",
        "the Rust app finds no session under the cleared id"
    );
    assert!(after.set_cookies().is_empty());

    // A write from each side to different keys of one session: the Rust
    // request loads, Flask writes meanwhile, the Rust request commits last
    // and merges instead of overwriting.
    let mut browser = Jar::new("session");
    browser.get(&flask_now.addr, "/set/first/flask").await;
    let cookie = browser.header();
    let loaded = rust.gate.loaded.notified();
    let slow = tokio::spawn({
        let (addr, cookie) = (rust.addr.clone(), cookie.clone());
        async move { crate::common::client::get(&addr, "/slow_set/from_rust", cookie.as_deref()).await }
    });
    loaded.await;
    browser.get(&flask_now.addr, "/set/from_flask/flask").await;
    rust.gate.release.notify_one();
    assert_eq!(slow.await.unwrap().body, "ok");
    let flask_keys = crate::common::client::get(&flask_now.addr, "/keys", cookie.as_deref())
        .await
        .body;
    let rust_keys = crate::common::client::get(&rust.addr, "/keys", cookie.as_deref())
        .await
        .body;
    assert_eq!(flask_keys, "first,from_flask,from_rust");
    assert_eq!(rust_keys, flask_keys);
}

/// Each combination with the Rust app on axum, and on actix-web.
macro_rules! combinations {
    ($($name:ident: $format:literal, $signing:ident, $permanent:literal;)*) => {
        mod axum {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    scenario(Framework::Axum, $format, Signing::$signing, $permanent).await;
                }
            )*
        }
        #[cfg(feature = "actix")]
        mod actix {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    scenario(Framework::Actix, $format, Signing::$signing, $permanent).await;
                }
            )*
        }
    };
}

combinations! {
    msgpack_unsigned_permanent: "msgpack", Off, true;
    msgpack_unsigned_browser_session: "msgpack", Off, false;
    msgpack_signed_permanent: "msgpack", On, true;
    msgpack_signed_browser_session: "msgpack", On, false;
    msgpack_rotated_secret_permanent: "msgpack", Rotated, true;
    msgpack_rotated_secret_browser_session: "msgpack", Rotated, false;
    json_unsigned_permanent: "json", Off, true;
    json_unsigned_browser_session: "json", Off, false;
    json_signed_permanent: "json", On, true;
    json_signed_browser_session: "json", On, false;
    json_rotated_secret_permanent: "json", Rotated, true;
    json_rotated_secret_browser_session: "json", Rotated, false;
}

/// The same on Flask-Session's `sqlalchemy` table in one SQLite file, which
/// Flask (through SQLAlchemy) and the Rust app's `SqliteStore` both use.
#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn msgpack_unsigned_permanent() {
        scenario_on(Backend::Sqlite, Framework::Axum, "msgpack", Signing::Off, true).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn json_signed_browser_session() {
        scenario_on(Backend::Sqlite, Framework::Axum, "json", Signing::On, false).await;
    }

    #[cfg(feature = "actix")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn msgpack_rotated_secret_permanent_on_actix() {
        scenario_on(
            Backend::Sqlite,
            Framework::Actix,
            "msgpack",
            Signing::Rotated,
            true,
        )
        .await;
    }
}

/// The same on Flask-Session's `sqlalchemy` table in a PostgreSQL database
/// the tests start, which Flask (SQLAlchemy with psycopg2) and the Rust
/// app's `PostgresStore` both use. Each test uses a table of its own.
#[cfg(feature = "postgres")]
mod postgres {
    use super::*;

    async fn on_postgres(framework: Framework, format: &str, signing: Signing, permanent: bool) {
        let server = crate::common::postgres::TestPostgres::shared();
        // SQLAlchemy's name for the driver Flask uses (psycopg2); the Rust
        // app reads the same URL.
        let url = server.url.replace("postgresql://", "postgresql+psycopg2://");
        let url: &'static str = Box::leak(url.into_boxed_str());
        scenario_on(Backend::Server(url), framework, format, signing, permanent).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn msgpack_signed_permanent() {
        on_postgres(Framework::Axum, "msgpack", Signing::On, true).await;
    }

    #[cfg(feature = "actix")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn json_unsigned_browser_session_on_actix() {
        on_postgres(Framework::Actix, "json", Signing::Off, false).await;
    }
}

/// The same on Flask-Session's `sqlalchemy` table in a MariaDB server the
/// tests start, which Flask (SQLAlchemy with PyMySQL) creates first, as
/// SQLAlchemy makes it, and the Rust app's `MySqlStore` then uses. Each test
/// uses a table of its own.
#[cfg(feature = "mysql")]
mod mysql {
    use super::*;

    async fn on_mysql(framework: Framework, format: &str, signing: Signing, permanent: bool) {
        let server = crate::common::mariadb::TestMariaDb::shared();
        let url = server.url.replace("mysql://", "mysql+pymysql://");
        let url: &'static str = Box::leak(url.into_boxed_str());
        scenario_on(Backend::Server(url), framework, format, signing, permanent).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn msgpack_unsigned_permanent() {
        on_mysql(Framework::Axum, "msgpack", Signing::Off, true).await;
    }

    #[cfg(feature = "actix")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn json_signed_browser_session_on_actix() {
        on_mysql(Framework::Actix, "json", Signing::On, false).await;
    }
}
