//! A store writer's attack on the size limit: a record of 100 MiB, a valid
//! session but for its size, planted under a session key, requested by ten
//! attackers at once while another user goes on with their own session.
//! What the other user sees is measured with and without the attack.

use std::time::{Duration, Instant};

use axum::Router;

/// The planted record's size.
pub const HUGE: usize = 100 << 20;

/// A MessagePack session record of about `size` bytes: `{"blob": <bin>,
/// "n": 1}`, which decodes as a session that holds a counter.
pub fn huge_record(size: usize) -> Vec<u8> {
    let mut record = Vec::with_capacity(size + 16);
    record.extend_from_slice(&[0x82, 0xa4]);
    record.extend_from_slice(b"blob");
    record.push(0xc6);
    record.extend_from_slice(&(size as u32).to_be_bytes());
    record.resize(record.len() + size, 0x5a);
    record.extend_from_slice(&[0xa1, b'n', 0x01]);
    record
}

/// What the other user saw in one phase.
#[derive(Debug)]
pub struct Seen {
    pub requests: usize,
    /// Answers other than 2xx.
    pub failed: usize,
    pub slowest: Duration,
}

/// The other user's `/incr` every 50 ms for `phase`, first alone, then
/// while `attackers` tasks request `/read` with `evil` (the planted
/// session's cookie) as fast as they can; returns both phases and the
/// attackers' answers by status. (Reads: what the attackers' requests cost
/// once the record is gone is then a load each, not a new session each,
/// which would measure how fast the store takes writes instead.)
pub async fn measure(app: Router, evil: String, attackers: usize, phase: Duration) -> (Seen, Seen, Vec<u16>) {
    let user = super::get(&app, "/login", None).await.cookie_pair().unwrap();
    let quiet = pace(&app, &user, phase).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks: Vec<_> = (0..attackers)
        .map(|_| {
            let (app, evil, stop) = (app.clone(), evil.clone(), stop.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    statuses.push(super::get(&app, "/read", Some(&evil)).await.status.as_u16());
                }
                statuses
            })
        })
        .collect();
    let attacked = pace(&app, &user, phase).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.extend(task.await.unwrap());
    }
    (quiet, attacked, statuses)
}

async fn pace(app: &Router, cookie: &str, phase: Duration) -> Seen {
    let mut seen = Seen {
        requests: 0,
        failed: 0,
        slowest: Duration::ZERO,
    };
    let started = Instant::now();
    while started.elapsed() < phase {
        let sent = Instant::now();
        let reply = super::get(app, "/incr", Some(cookie)).await;
        seen.slowest = seen.slowest.max(sent.elapsed());
        seen.requests += 1;
        seen.failed += usize::from(!reply.status.is_success());
        tokio::time::sleep(Duration::from_millis(50).saturating_sub(sent.elapsed())).await;
    }
    seen
}

/// The whole attack on `app`, whose store `plant` writes a raw record
/// into under a key: the other user's requests all succeed (how much
/// slower they are is printed), the attackers get fresh sessions, and
/// `exists` finds the record gone.
pub async fn huge_record_stalls_no_one(
    store: &str,
    app: Router,
    plant: impl AsyncFnOnce(&str, Vec<u8>),
    exists: impl AsyncFnOnce(&str) -> bool,
) {
    use base64::Engine as _;
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let key = format!("session:{id}");
    plant(&key, huge_record(HUGE)).await;
    let (quiet, attacked, statuses) = measure(app, format!("session={id}"), 10, Duration::from_secs(2)).await;
    println!("{store}: quiet {quiet:?}, attacked {attacked:?}");
    assert_eq!((quiet.failed, attacked.failed), (0, 0), "{attacked:?}");
    assert!(
        statuses.iter().all(|s| *s == 200),
        "the attackers get fresh sessions"
    );
    assert!(!exists(&key).await, "the record is deleted");
}
