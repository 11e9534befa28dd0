//! A MariaDB server of the tests' own: `mariadb-install-db` into a
//! temporary directory and `mariadbd` on a free loopback port with its own
//! socket (as root, `--user=root`, when the tests run as root). A startup
//! file creates the `test` database and a password-less `test` user. One per
//! test binary; tests keep apart by using tables of their own.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use tempfile::TempDir;

use super::redis::free_port;
use super::servers::Process;

pub struct TestMariaDb {
    /// `mysql://test@127.0.0.1:port/test`.
    pub url: String,
    pub process: Process,
    _dir: TempDir,
}

/// A program of the server package: on `PATH`, else under `/usr/sbin`.
fn program(name: &str) -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/bin"])
    {
        let path = PathBuf::from(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("{name} is installed (.ci/run installs mariadb-server)");
}

impl TestMariaDb {
    pub fn start() -> TestMariaDb {
        let dir = tempfile::Builder::new().prefix("mariadb").tempdir().unwrap();
        let data = dir.path().join("data");
        // A server removes every `#sql*` file in its temporary directory when
        // it starts, so a shared one (`/tmp`) would delete the tables of a
        // bootstrap running next to it: each instance gets its own.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let tmpdir = format!("--tmpdir={}", tmp.display());
        let out = Command::new(program("mariadb-install-db"))
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(&tmpdir)
            .args([
                "--user=root",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ])
            .output()
            .expect("mariadb-install-db runs");
        assert!(
            out.status.success(),
            "mariadb-install-db: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let init = dir.path().join("init.sql");
        std::fs::write(
            &init,
            "CREATE DATABASE IF NOT EXISTS test;\n\
             CREATE USER IF NOT EXISTS 'test'@'%';\n\
             GRANT ALL ON *.* TO 'test'@'%';\n",
        )
        .unwrap();
        let port = free_port();
        let args = [
            "--no-defaults".to_owned(),
            format!("--datadir={}", data.display()),
            tmpdir,
            format!("--socket={}", dir.path().join("mysqld.sock").display()),
            format!("--pid-file={}", dir.path().join("mysqld.pid").display()),
            format!("--init-file={}", init.display()),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".to_owned(),
            "--user=root".to_owned(),
            "--skip-name-resolve".to_owned(),
            "--skip-log-bin".to_owned(),
            "--innodb-flush-log-at-trx-commit=2".to_owned(),
            "--innodb-buffer-pool-size=64M".to_owned(),
            "--max-connections=300".to_owned(),
        ];
        let process = Process::spawn(&program("mariadbd"), &args, port);
        TestMariaDb {
            url: format!("mysql://test@127.0.0.1:{port}/test"),
            process,
            _dir: dir,
        }
    }

    /// Kills the server at once, as in a crash.
    pub fn kill(&self) {
        self.process.kill();
    }

    /// A server shared by the tests of this binary.
    pub fn shared() -> &'static TestMariaDb {
        static SHARED: OnceLock<TestMariaDb> = OnceLock::new();
        SHARED.get_or_init(TestMariaDb::start)
    }
}
