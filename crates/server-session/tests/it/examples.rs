//! The examples, each run as its own process and spoken to over TCP, as a
//! user would with curl.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::common::client::get;

struct Server {
    child: Child,
    addr: String,
    /// What the example printed before it listened.
    banner: Vec<String>,
    /// What it printed after, as it comes.
    after: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The first line printed that holds `needle`, waiting for it a few
    /// seconds.
    fn line_with(&self, needle: &str) -> String {
        for _ in 0..100 {
            let after = self.after.lock().unwrap();
            if let Some(line) = self
                .banner
                .iter()
                .chain(after.iter())
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            drop(after);
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "no line with {needle:?} in {:?} {:?}",
            self.banner,
            self.after.lock().unwrap()
        );
    }
}

/// `cargo test` builds the examples next to the test binaries.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

fn start(name: &str, env: &[(&str, &str)]) -> Server {
    start_in(name, env, None)
}

/// The example `name`, with `env`, in the directory `dir` if given.
fn start_in(name: &str, env: &[(&str, &str)], dir: Option<&std::path::Path>) -> Server {
    let mut command = Command::new(example(name));
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let mut child = command
        .env("PORT", "0")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cargo test builds the examples");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = Vec::new();
    let addr = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "{name} exited: {banner:?}"
        );
        match line.trim().split_once("listening on http://") {
            Some((_, addr)) => break addr.to_owned(),
            None => banner.push(line.trim().to_owned()),
        }
    };
    let after = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let lines = after.clone();
    std::thread::spawn(move || {
        for line in stdout.lines() {
            let Ok(line) = line else { break };
            lines.lock().unwrap().push(line);
        }
    });
    Server {
        child,
        addr,
        banner,
        after,
    }
}

#[tokio::test]
async fn accounts_prints_its_users_and_serves_the_login_form() {
    let server = start("accounts", &[]);
    assert_eq!(server.banner.len(), 2, "{:?}", server.banner);
    for (line, user) in server.banner.iter().zip(["alice", "bob"]) {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[..3], ["user", user, "password"], "{line}");
        assert_eq!(words[3].len(), 12);
    }
    let reply = get(&server.addr, "/", None).await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.contains("<form id=\"login\""), "{}", reply.body);
    assert!(reply.body.contains("name=\"csrf\""));
    let reply = get(&server.addr, "/sessions", None).await;
    assert_eq!(reply.status, 303, "the sessions page wants a login");
}

#[tokio::test]
async fn quickstart_serves_its_routes() {
    quickstart_routes(&start("quickstart", &[])).await;
}

/// Built with the `metrics` feature, the quickstart counts at `/metrics`.
#[cfg(feature = "metrics")]
#[tokio::test]
async fn quickstart_serves_its_metrics() {
    let server = start("quickstart", &[]);
    let first = get(&server.addr, "/counter", None).await;
    let cookie = first.set_cookies()[0].split(';').next().unwrap().to_owned();
    assert_eq!(get(&server.addr, "/counter", Some(&cookie)).await.body, "2");
    let reply = get(&server.addr, "/metrics", None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/plain; version=0.0.4"));
    for line in [
        "server_session_creates_total 1",
        "server_session_loads_total 1",
        "server_session_saves_total 1",
        "server_session_store_errors_total{kind=\"unavailable\"} 0",
        "server_session_store_call_duration_seconds_count{op=\"save\"} 2",
    ] {
        assert!(reply.body.lines().any(|l| l == line), "{line} in {}", reply.body);
    }
    let (_, id) = cookie.split_once('=').unwrap();
    assert!(!reply.body.contains(id), "{}", reply.body);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn quickstart_serves_its_routes_from_redis() {
    quickstart_routes_from_redis("quickstart").await;
}

#[cfg(feature = "actix")]
#[tokio::test]
async fn actix_quickstart_serves_the_same_routes() {
    quickstart_routes(&start("actix_quickstart", &[])).await;
}

#[cfg(all(feature = "actix", feature = "redis"))]
#[tokio::test]
async fn actix_quickstart_serves_the_same_routes_from_redis() {
    quickstart_routes_from_redis("actix_quickstart").await;
}

/// SQLAlchemy's `sqlite:///tmp/x.db` is `./tmp/x.db`: where that cannot
/// be opened, the app still starts, warns at once that it did not reach its
/// store, naming the file in full and the four-slash form, and answers 503
/// to session requests (the same words go with each).
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_sqlite_file_that_cannot_be_opened_is_named_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SESSION_TYPE", "sqlalchemy"),
        ("SQLALCHEMY_DATABASE_URI", "sqlite:///no-such-dir/x.db"),
    ];
    let server = start_in("quickstart", &env, Some(dir.path()));
    let full = dir.path().canonicalize().unwrap().join("no-such-dir/x.db");
    let warning = server.line_with("session store not reached");
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains(&full.display().to_string()), "{warning}");
    assert!(warning.contains("sqlite:////no-such-dir/x.db"), "{warning}");
    let reply = get(&server.addr, "/counter", None).await;
    assert_eq!(reply.status, 503);
    assert_eq!(get(&server.addr, "/health", None).await.status, 200);
}

/// A store that can be reached is named at startup, at info level.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn the_store_reached_is_named_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}", dir.path().join("s.db").display());
    let server = start(
        "quickstart",
        &[("SESSION_TYPE", "sqlalchemy"), ("SQLALCHEMY_DATABASE_URI", &url)],
    );
    let line = server.line_with("session store reached");
    assert!(line.contains("INFO") && line.contains(&url), "{line}");
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn quickstart_serves_its_routes_from_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let url = format!("sqlite:///{}", path.display());
    let server = start(
        "quickstart",
        &[("SESSION_TYPE", "sqlalchemy"), ("SQLALCHEMY_DATABASE_URI", &url)],
    );
    let id = quickstart_routes(&server).await;
    // The sessions really were in the file: the last one is there now.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let found: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE session_id = ?1")
        .bind(format!("session:{id}"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(found, 1);
}

/// Walks the quickstart's routes with its sessions in a table of its own in
/// the database at `url`; returns the table and the `session_id` left.
#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn quickstart_routes_in_sql(url: &str) -> (String, String) {
    let table = crate::common::unique_table();
    let server = start(
        "quickstart",
        &[
            ("SESSION_TYPE", "sqlalchemy"),
            ("SQLALCHEMY_DATABASE_URI", url),
            ("SESSION_SQLALCHEMY_TABLE", &table),
        ],
    );
    let id = quickstart_routes(&server).await;
    (table, format!("session:{id}"))
}

#[cfg(all(feature = "postgres", feature = "redis"))]
#[tokio::test]
async fn quickstart_serves_its_routes_from_postgres() {
    let db = crate::common::postgres::TestPostgres::shared();
    let (table, key) = quickstart_routes_in_sql(&db.url).await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let query = format!("SELECT count(*) FROM \"{table}\" WHERE session_id = $1");
    let found: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(&*query))
        .bind(key)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(found, 1, "the session is in the table");
}

#[cfg(all(feature = "mysql", feature = "redis"))]
#[tokio::test]
async fn quickstart_serves_its_routes_from_mariadb() {
    let db = crate::common::mariadb::TestMariaDb::shared();
    let (table, key) = quickstart_routes_in_sql(&db.url).await;
    let pool = sqlx::MySqlPool::connect(&db.url).await.unwrap();
    let query = format!("SELECT count(*) FROM `{table}` WHERE session_id = ?");
    let found: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(&*query))
        .bind(key)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(found, 1, "the session is in the table");
}

#[cfg(feature = "redis")]
async fn quickstart_routes_from_redis(example: &str) {
    let redis = crate::common::redis::TestRedis::start();
    let server = start(
        example,
        &[("SESSION_TYPE", "redis"), ("SESSION_REDIS", &redis.url)],
    );
    let id = quickstart_routes(&server).await;
    // The sessions really were in Redis: the last one is there now.
    assert!(redis.get(&format!("session:{id}")).is_some());
}

/// Walks the quickstart's routes (`/health`, `/`, `/secret`, `/counter`,
/// `/logout`) as the example's doc comment does with curl; returns the id
/// of the session left at the end.
async fn quickstart_routes(server: &Server) -> String {
    let reply = get(&server.addr, "/health", None).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));
    assert_eq!(reply.header("set-cookie"), None);

    let reply = get(&server.addr, "/", None).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "index"));
    let set = reply.header("set-cookie").unwrap().to_owned();
    let (pair, attributes) = set.split_once("; ").unwrap();
    let id = pair.strip_prefix("session=").unwrap();
    assert_eq!(id.len(), 43);
    assert!(
        attributes.starts_with("HttpOnly; SameSite=Lax; Path=/; Expires="),
        "{set}"
    );
    let cookie = pair.to_owned();

    assert_eq!(get(&server.addr, "/secret", Some(&cookie)).await.body, "123456");
    assert_eq!(get(&server.addr, "/secret", None).await.status, 404);
    for n in 1..=3 {
        assert_eq!(
            get(&server.addr, "/counter", Some(&cookie)).await.body,
            n.to_string()
        );
    }

    let reply = get(&server.addr, "/logout", Some(&cookie)).await;
    assert!(reply.header("set-cookie").unwrap().starts_with("session=; "));
    // The same cookie now has a fresh, empty session.
    assert_eq!(get(&server.addr, "/secret", Some(&cookie)).await.status, 404);
    let reply = get(&server.addr, "/counter", Some(&cookie)).await;
    assert_eq!(reply.body, "1");
    let set = reply.header("set-cookie").unwrap();
    assert!(!set.contains(id), "a new id, never the old one");
    set.split(';')
        .next()
        .unwrap()
        .strip_prefix("session=")
        .unwrap()
        .to_owned()
}

#[test]
fn quickstart_refuses_a_bad_setting_in_a_sentence() {
    refuses_a_bad_setting_in_a_sentence("quickstart");
}

#[cfg(feature = "actix")]
#[test]
fn actix_quickstart_refuses_a_bad_setting_in_a_sentence() {
    refuses_a_bad_setting_in_a_sentence("actix_quickstart");
}

#[test]
fn accounts_refuses_a_bad_setting_in_a_sentence() {
    refuses_a_bad_setting_in_a_sentence("accounts");
}

fn refuses_a_bad_setting_in_a_sentence(example_name: &str) {
    let output = Command::new(example(example_name))
        .env("SESSION_COOKIE_SAMESITE", "Bogus")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        "error: SESSION_COOKIE_SAMESITE: \"Bogus\" is not valid; expected Lax, Strict, None, or empty for no attribute",
    );
}

/// Redis set up in code: key prefix `bruce`, cookie `hello_session`.
#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_explicit_example() {
    let redis = crate::common::redis::TestRedis::start();
    let server = start("redis_explicit", &[("REDIS_URL", &redis.url)]);
    let reply = get(&server.addr, "/", None).await;
    assert_eq!(reply.body, "index");
    let set = reply.header("set-cookie").unwrap();
    let id = set
        .strip_prefix("hello_session=")
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let stored = redis
        .get(&format!("bruce{id}"))
        .expect("stored under the bruce prefix");
    assert_eq!(
        stored,
        crate::common::unhex("82aa5f7065726d616e656e74c3a6736563726574a6313233343536")
    );
}

/// Redis set up by configuration names, with a key prefix.
#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_config_example() {
    let redis = crate::common::redis::TestRedis::start();
    let env = [
        ("SESSION_TYPE", "redis"),
        ("SESSION_REDIS", redis.url.as_str()),
        ("SESSION_KEY_PREFIX", "app:"),
    ];
    let server = start("redis_config", &env);
    let reply = get(&server.addr, "/", None).await;
    assert_eq!(reply.body, "index");
    let set = reply.header("set-cookie").unwrap();
    let id = set.strip_prefix("session=").unwrap().split(';').next().unwrap();
    assert!(redis.get(&format!("app:{id}")).is_some());
}
