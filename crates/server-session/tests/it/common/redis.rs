//! Real `redis-server` processes for the tests: each test that needs one
//! starts its own on a free port (in a temporary directory, nothing saved to
//! disk) and stops it when done, so tests never share counters or data and
//! the suite needs nothing but the `redis-server` binary.
//!
//! With `REDIS_URL` set, [`TestRedis::shared`] uses that server instead, for
//! tests that only need some Redis; they use their own key prefixes and never
//! flush anything.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use server_session::{Session, SessionError};
use tempfile::TempDir;

/// The routes the Redis tests drive: `/noop`, `/read` (the user), `/login`
/// (user alice, n = 1), `/incr` (n), `/cycle` and `/logout`.
pub fn routes() -> Router {
    Router::new()
        .route("/noop", get(|| async { "noop" }))
        .route(
            "/read",
            get(|s: Session| async move {
                let user: Option<String> = s.get("user").await?;
                Ok::<_, SessionError>(user.unwrap_or_default())
            }),
        )
        .route(
            "/login",
            get(|s: Session| async move {
                s.insert("user", "alice").await?;
                s.insert("n", &1).await?;
                Ok::<_, SessionError>("ok")
            }),
        )
        .route(
            "/incr",
            get(|s: Session| async move {
                let n = s.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
                Ok::<_, SessionError>(n.to_string())
            }),
        )
        .route(
            "/cycle",
            get(|s: Session| async move { s.cycle_id().await.map(|_| "cycled") }),
        )
        .route(
            "/logout",
            get(|s: Session| async move { s.destroy().await.map(|_| "bye") }),
        )
}

pub struct TestRedis {
    child: Option<Child>,
    dir: Option<TempDir>,
    pub port: u16,
    pub url: String,
    extra: Vec<String>,
}

impl TestRedis {
    /// A private server.
    pub fn start() -> TestRedis {
        Self::start_with(&[])
    }

    /// A private server with extra `redis-server` arguments.
    pub fn start_with(extra: &[&str]) -> TestRedis {
        let port = free_port();
        let mut server = TestRedis {
            child: None,
            dir: Some(TempDir::new().unwrap()),
            port,
            url: format!("redis://127.0.0.1:{port}"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.launch();
        server
    }

    /// A private server speaking only TLS, with a certificate for
    /// `localhost` from a throwaway CA ([`TestCerts`]); returns it and the
    /// CA's PEM.
    pub fn start_tls() -> (TestRedis, Vec<u8>) {
        let certs = TestCerts::make();
        let port = free_port();
        let mut extra = vec!["--tls-port".to_owned(), port.to_string()];
        extra.extend(certs.server_args());
        let mut server = TestRedis {
            child: None,
            port,
            url: format!("rediss://localhost:{port}"),
            extra,
            dir: None,
        };
        let ca_pem = certs.ca_pem();
        server.dir = Some(certs.dir);
        server.launch_on_port_flag(false);
        (server, ca_pem)
    }

    /// The server named by `REDIS_URL`, or a private one.
    pub fn shared() -> TestRedis {
        match std::env::var("REDIS_URL") {
            Ok(url) if !url.is_empty() => TestRedis {
                child: None,
                dir: None,
                port: 0,
                url,
                extra: vec![],
            },
            _ => Self::start(),
        }
    }

    fn launch(&mut self) {
        self.launch_on_port_flag(true);
    }

    fn launch_on_port_flag(&mut self, plain_port: bool) {
        let dir = self
            .dir
            .as_ref()
            .expect("only private servers are launched")
            .path();
        let port = if plain_port {
            self.port.to_string()
        } else {
            "0".into()
        };
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--daemonize", "no", "--loglevel", "warning", "--dir"])
            .arg(dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it)");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the server (an outage).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// A plain connection for inspecting the server.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// The commands clients sent while `f` ran, by name (`script|load` for
    /// subcommands), seen by `MONITOR`. Commands that scripts run inside
    /// Redis are not round trips and are left out.
    pub async fn calls_during<F: Future>(&self, f: F) -> (F::Output, BTreeMap<String, u64>) {
        calls_during(&[self.port], f).await
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        redis::cmd("GET").arg(key).query(&mut self.connection()).unwrap()
    }

    pub fn ttl(&self, key: &str) -> i64 {
        redis::cmd("TTL").arg(key).query(&mut self.connection()).unwrap()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The commands clients sent to the servers on `ports` while `f` ran, by
/// name, added up over the servers (see [`TestRedis::calls_during`]).
pub async fn calls_during<F: Future>(ports: &[u16], f: F) -> (F::Output, BTreeMap<String, u64>) {
    let monitors: Vec<Monitor> = ports.iter().map(|port| Monitor::start(*port)).collect();
    let out = f.await;
    let mut calls = BTreeMap::new();
    for (monitor, port) in monitors.into_iter().zip(ports) {
        for (name, n) in monitor.finish(*port) {
            *calls.entry(name).or_insert(0) += n;
        }
    }
    (out, calls)
}

/// A `MONITOR` connection read by a thread.
struct Monitor {
    lines: Arc<Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Monitor {
    fn start(port: u16) -> Monitor {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(b"MONITOR\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        let mut ok = String::new();
        reader.read_line(&mut ok).unwrap();
        assert_eq!(ok, "+OK\r\n");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { break };
                let done = line.contains(SENTINEL);
                sink.lock().unwrap().push(line);
                if done {
                    break;
                }
            }
        });
        Monitor { lines, reader }
    }

    fn finish(self, port: u16) -> BTreeMap<String, u64> {
        let mut connection = redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .unwrap()
            .get_connection()
            .unwrap();
        let _: String = redis::cmd("ECHO").arg(SENTINEL).query(&mut connection).unwrap();
        self.reader.join().unwrap();
        let lines = self.lines.lock().unwrap();
        let mut calls = BTreeMap::new();
        for line in lines.iter().filter(|l| !l.contains(SENTINEL)) {
            // +1700000000.000000 [0 127.0.0.1:5000] "GETEX" "key" ...
            let Some((source, command)) = line.split_once("] ") else {
                continue;
            };
            if source.ends_with(" lua") {
                continue;
            }
            let words: Vec<String> = command
                .split('"')
                .skip(1)
                .step_by(2)
                .take(2)
                .map(|w| w.to_ascii_lowercase())
                .collect();
            let name = match words.as_slice() {
                [cmd, sub] if ["script", "client", "config", "acl"].contains(&cmd.as_str()) => {
                    format!("{cmd}|{sub}")
                }
                [cmd, ..] => cmd.clone(),
                [] => continue,
            };
            *calls.entry(name).or_insert(0) += 1;
        }
        calls
    }
}

const SENTINEL: &str = "end-of-measurement";

/// A throwaway CA and a certificate it signed for `localhost` and
/// `127.0.0.1`, made with the `openssl` CLI in a temporary directory.
pub struct TestCerts {
    pub dir: TempDir,
    pub ca: String,
    pub cert: String,
    pub key: String,
}

impl TestCerts {
    pub fn make() -> TestCerts {
        let dir = TempDir::new().unwrap();
        let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
        let openssl = |args: &[&str]| {
            let status = Command::new("openssl")
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            assert!(
                status
                    .expect("openssl must be installed (.ci/run installs it)")
                    .success(),
                "{args:?}"
            );
        };
        let (ca_key, ca, key, csr, cert, ext) = (
            path("ca.key"),
            path("ca.crt"),
            path("s.key"),
            path("s.csr"),
            path("s.crt"),
            path("ext.cnf"),
        );
        std::fs::write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
        // (-subj keeps openssl from asking questions on stdin.)
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
            "-days",
            "1",
            "-subj",
            "/CN=test-ca",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=localhost",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "1",
            "-extfile",
            &ext,
        ]);
        TestCerts { dir, ca, cert, key }
    }

    /// The CA's certificate, PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca).unwrap()
    }

    /// `redis-server` arguments serving this certificate, clients
    /// unauthenticated (the TLS port is the caller's).
    pub fn server_args(&self) -> Vec<String> {
        [
            "--tls-cert-file",
            &self.cert,
            "--tls-key-file",
            &self.key,
            "--tls-ca-cert-file",
            &self.ca,
            "--tls-auth-clients",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
