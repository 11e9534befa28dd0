//! The quickstart example, run as its own process and spoken to over TCP, as
//! a user would with curl.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

#[cfg(feature = "redis")]
mod common;

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

fn start(env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(example("quickstart"))
        .env("PORT", "0")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the quickstart example is built by cargo test");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .expect(&line)
        .to_owned();
    Server { child, addr }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn get(server: &Server, path: &str, cookie: Option<&str>) -> Reply {
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    let cookie = cookie.map(|c| format!("Cookie: {c}\r\n")).unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\n{cookie}Connection: close\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_owned(), v.trim().to_owned())
        })
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

#[test]
fn quickstart_serves_the_seed_routes() {
    seed_routes(&start(&[]));
}

#[cfg(feature = "redis")]
#[test]
fn quickstart_serves_the_seed_routes_from_redis() {
    let redis = common::redis::TestRedis::start();
    let server = start(&[("SESSION_TYPE", "redis"), ("SESSION_REDIS", &redis.url)]);
    let id = seed_routes(&server);
    // The sessions really were in Redis: the last one is there now.
    assert!(redis.get(&format!("session:{id}")).is_some());
}

/// Walks the seed's routes; returns the id of the session left at the end.
fn seed_routes(server: &Server) -> String {
    let reply = get(server, "/health", None);
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));
    assert_eq!(reply.header("set-cookie"), None);

    let reply = get(server, "/", None);
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

    assert_eq!(get(server, "/secret", Some(&cookie)).body, "123456");
    assert_eq!(get(server, "/secret", None).status, 404);
    for n in 1..=3 {
        assert_eq!(get(server, "/counter", Some(&cookie)).body, n.to_string());
    }

    let reply = get(server, "/logout", Some(&cookie));
    assert!(reply.header("set-cookie").unwrap().starts_with("session=; "));
    // The same cookie now has a fresh, empty session.
    assert_eq!(get(server, "/secret", Some(&cookie)).status, 404);
    let reply = get(server, "/counter", Some(&cookie));
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
