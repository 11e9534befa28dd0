//! The tracing spans of a request's load and commit: what they tell (the
//! outcome, the saves tried) and what they never hold (the session id).

use crate::common::Logs;
use axum::Router;
use axum::routing::get;
use server_session::{MemoryStore, Session, SessionConfig, SessionError, SessionLayer};

async fn incr(session: Session) -> Result<String, SessionError> {
    let n = session
        .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(n.to_string())
}

async fn read(session: Session) -> Result<String, SessionError> {
    Ok(format!("{:?}", session.get::<u64>("counter").await?))
}

async fn logout(session: Session) -> Result<&'static str, SessionError> {
    session.destroy().await?;
    Ok("logged out")
}

/// Sends `GET path` with the session `cookie`; the session cookie it sets,
/// if any.
async fn send(app: &Router, path: &str, cookie: Option<&str>) -> Option<String> {
    let cookie = cookie.map(|id| format!("session={id}"));
    let reply = crate::common::get(app, path, cookie.as_deref()).await;
    assert!(reply.status.is_success(), "{path}: {}", reply.status);
    reply.cookie_value()
}

/// The closing lines of the spans named `name` in `log`.
fn closed<'a>(log: &'a str, name: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|line| line.contains(&format!("{name}{{")) && line.contains("close"))
        .collect()
}

#[tokio::test]
async fn loads_and_commits_tell_their_outcome_by_the_sessions_hash() {
    let (captured, _guard) = Logs::capture_spans();
    let layer = SessionLayer::new(MemoryStore::new(), SessionConfig::default()).unwrap();
    let app = Router::new()
        .route("/incr", get(incr))
        .route("/read", get(read))
        .route("/logout", get(logout))
        .layer(layer);

    let id = send(&app, "/incr", None).await.unwrap();
    let log = captured.take();
    assert!(
        closed(&log, "session_load").is_empty(),
        "no cookie, no load: {log}"
    );
    let commit = closed(&log, "session_commit");
    assert_eq!(commit.len(), 1, "{log}");
    assert!(commit[0].contains("outcome=\"created\""), "{log}");
    assert!(commit[0].contains("attempts=1"), "{log}");
    let hash = commit[0]
        .split("session=")
        .nth(1)
        .and_then(|rest| rest.split([' ', '}']).next())
        .unwrap()
        .to_owned();
    assert_eq!(hash.len(), 12, "{log}");

    send(&app, "/incr", Some(&id)).await;
    send(&app, "/read", Some(&id)).await;
    send(&app, "/logout", Some(&id)).await;
    send(&app, "/read", Some(&id)).await;
    let log = captured.take();
    let loads = closed(&log, "session_load");
    // The logout needs no load: it deletes what the cookie names.
    let outcomes = ["found", "found", "missing"];
    assert_eq!(loads.len(), outcomes.len(), "{log}");
    for (line, outcome) in loads.iter().zip(outcomes) {
        assert!(line.contains(&format!("session={hash}")), "{line}");
        assert!(line.contains(&format!("outcome=\"{outcome}\"")), "{line}");
    }
    let commits = closed(&log, "session_commit");
    let outcomes = ["saved", "unchanged", "deleted", "unchanged"];
    assert_eq!(commits.len(), outcomes.len(), "{log}");
    for (line, outcome) in commits.iter().zip(outcomes) {
        assert!(line.contains(&format!("outcome=\"{outcome}\"")), "{line}");
    }
    assert!(commits[0].contains("attempts=1"), "{}", commits[0]);
    assert!(!log.contains(&id), "the id itself is never written: {log}");
}
