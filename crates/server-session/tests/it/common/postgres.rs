//! A PostgreSQL server of the tests' own: `initdb` into a temporary
//! directory and `postgres` on a free loopback port, as the `postgres` user
//! when the tests run as root (PostgreSQL refuses root). One per test
//! binary; tests keep apart by using tables of their own.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use tempfile::TempDir;

use super::redis::free_port;
use super::servers::Process;

pub struct TestPostgres {
    pub port: u16,
    /// `postgresql://postgres@127.0.0.1:port/postgres`.
    pub url: String,
    pub process: Process,
    data: PathBuf,
    _dir: TempDir,
}

/// The directory of PostgreSQL's programs: `pg_config --bindir`, else
/// Debian's `/usr/lib/postgresql/<version>/bin`.
fn bin() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (.ci/run installs it)")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("initdb under /usr/lib/postgresql/*/bin")
}

/// Runs as the `postgres` user when this process is root.
fn as_postgres(program: PathBuf) -> (PathBuf, Vec<String>) {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if root {
        let args = ["--reuid=postgres", "--regid=postgres", "--init-groups"]
            .iter()
            .map(|a| a.to_string())
            .chain([program.display().to_string()])
            .collect();
        ("setpriv".into(), args)
    } else {
        (program, Vec::new())
    }
}

impl TestPostgres {
    pub fn start() -> TestPostgres {
        let dir = tempfile::Builder::new().prefix("pg").tempdir().unwrap();
        let data = dir.path().join("data");
        let _ = Command::new("chown").arg("postgres").arg(dir.path()).status();
        let bin = bin();
        let (program, mut args) = as_postgres(bin.join("initdb"));
        args.extend(
            [
                "-D",
                &data.display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ]
            .map(String::from),
        );
        let out = Command::new(program).args(&args).output().expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let (program, mut args) = as_postgres(bin.join("postgres"));
        args.extend(
            [
                "-D",
                &data.display().to_string(),
                "-p",
                &port.to_string(),
                "-k",
                &dir.path().display().to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ]
            .map(String::from),
        );
        let process = Process::spawn(&program, &args, port);
        TestPostgres {
            port,
            url: format!("postgresql://postgres@127.0.0.1:{port}/postgres"),
            process,
            data,
            _dir: dir,
        }
    }

    /// Kills the server and its backends at once, as in a crash (a backend
    /// would otherwise go on serving its connection for a while).
    pub fn kill(&self) {
        let pid = self.process.pid.to_string();
        let _ = Command::new("pkill").args(["-9", "-P", &pid]).status();
        self.process.kill();
        // The killed server stays a zombie of its supervising shell, which
        // makes its lock files look held: a restart would refuse to start.
        let _ = std::fs::remove_file(self.data.join("postmaster.pid"));
        for file in [
            format!(".s.PGSQL.{}.lock", self.port),
            format!(".s.PGSQL.{}", self.port),
        ] {
            let _ = std::fs::remove_file(self.data.with_file_name(file));
        }
    }

    /// A server shared by the tests of this binary.
    pub fn shared() -> &'static TestPostgres {
        static SHARED: OnceLock<TestPostgres> = OnceLock::new();
        SHARED.get_or_init(TestPostgres::start)
    }
}
