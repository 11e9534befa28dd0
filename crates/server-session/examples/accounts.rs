//! A small accounts site: log in, see your active sessions (this device
//! marked, the browser, its network, when it logged in and was last seen),
//! end any of them, "log out everywhere else", log out.
//!
//! ```text
//! cargo run --example accounts
//! ```
//!
//! It prints two demo users and their passwords (generated at startup and
//! kept only as Argon2 hashes), then serves <http://127.0.0.1:3000>. Log in as
//! the same user from two browsers (or a private window) and revoke one from
//! the other. Sessions live in memory by default, in Redis with the
//! quickstart's variables (`SESSION_TYPE=redis`, `SESSION_REDIS=...`, built
//! with `--features redis`). Every form carries a token bound to the session
//! (CSRF), a new one from login on; failed logins are throttled per user
//! and per client address; the pages are plain HTML rendered on the server.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, PasswordHash};
use axum::Router;
use axum::extract::{ConnectInfo, Form, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use rand::Rng as _;
use serde::Deserialize;
use server_session::{
    Session, SessionConfig, SessionError, SessionHandle, SessionInfo, SessionLayer, Sessions, UserSessions,
};

/// The demo's users: a name and an Argon2 hash of the password, and the
/// failed logins lately.
pub struct Accounts {
    users: Vec<(String, String)>,
    throttle: Throttle,
}

impl Accounts {
    /// Users named `names`, each with a fresh random password; returns the
    /// accounts (hashes only) and the passwords, to print.
    pub fn generate(names: &[&str]) -> (Accounts, Vec<(String, String)>) {
        let mut users = Vec::new();
        let mut passwords = Vec::new();
        for name in names {
            let mut raw = [0u8; 9];
            rand::rng().fill_bytes(&mut raw);
            let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
            let hash = Argon2::default()
                .hash_password(password.as_bytes(), &salt())
                .expect("hashing a password")
                .to_string();
            users.push((name.to_string(), hash));
            passwords.push((name.to_string(), password));
        }
        let accounts = Accounts {
            users,
            throttle: Throttle::default(),
        };
        (accounts, passwords)
    }

    fn check(&self, user: &str, password: &str) -> bool {
        let Some((_, hash)) = self.users.iter().find(|(name, _)| name == user) else {
            // Same work whether or not the user exists.
            let _ = Argon2::default().hash_password(password.as_bytes(), &salt());
            return false;
        };
        let hash = PasswordHash::new(hash).expect("a stored hash");
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    }
}

/// Failed logins within the last [`Throttle::WINDOW`], by user name and by
/// client address: past a few, logins for that name, or from that address,
/// are refused whatever the password (and without hashing it), until the
/// oldest failure leaves the window. A guesser gets a handful of tries per
/// user and per address each quarter of an hour.
#[derive(Default)]
struct Throttle {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Throttle {
    const WINDOW: Duration = Duration::from_secs(15 * 60);
    /// Failures a user name may have in the window.
    const PER_USER: usize = 5;
    /// Failures an address may have in the window, all names together.
    const PER_ADDRESS: usize = 20;
    /// Names and addresses remembered at most: the oldest are forgotten
    /// first, so guessing with many names cannot grow the map for ever.
    const KEYS: usize = 100_000;

    fn keys(user: &str, address: Option<IpAddr>) -> [(Option<String>, usize); 2] {
        [
            (Some(format!("user {user}")), Self::PER_USER),
            (
                address.map(|a| format!("address {}", Self::network(a))),
                Self::PER_ADDRESS,
            ),
        ]
    }

    /// An IPv4 address, or an IPv6 address's /64 (one host's, usually).
    fn network(address: IpAddr) -> String {
        match address {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }

    /// Whether a login for `user` from `address` may be tried now.
    fn allows(&self, user: &str, address: Option<IpAddr>) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        Self::keys(user, address).into_iter().all(|(key, max)| {
            let Some(times) = key.and_then(|key| failures.get_mut(&key)) else {
                return true;
            };
            times.retain(|at| now.duration_since(*at) < Self::WINDOW);
            times.len() < max
        })
    }

    fn failed(&self, user: &str, address: Option<IpAddr>) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if failures.len() >= Self::KEYS {
            failures.retain(|_, times| {
                times
                    .last()
                    .is_some_and(|at| now.duration_since(*at) < Self::WINDOW)
            });
        }
        if failures.len() >= Self::KEYS {
            // Still full of recent failures: the sixteenth seen least
            // recently goes, in one pass.
            let mut last: Vec<Instant> = failures.values().filter_map(|t| t.last().copied()).collect();
            let (_, cut, _) = last.select_nth_unstable(Self::KEYS / 16);
            let cut = *cut;
            failures.retain(|_, times| times.last().is_some_and(|at| *at > cut));
        }
        for (key, _) in Self::keys(user, address) {
            if let Some(key) = key {
                failures.entry(key).or_default().push(now);
            }
        }
    }

    fn succeeded(&self, user: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&format!("user {user}"));
    }
}

/// The client's address, when the server knows it (served with
/// `into_make_service_with_connect_info`).
struct Peer(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let info = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(Peer(info.map(|ConnectInfo(addr)| addr.ip())))
    }
}

/// A random salt for a password hash.
fn salt() -> SaltString {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    SaltString::encode_b64(&raw).expect("16 bytes make a valid salt")
}

/// How the demo indexes each user's sessions: with the browser and network
/// of each.
pub fn user_sessions() -> UserSessions {
    UserSessions::default()
        .seen_interval(Duration::from_secs(60))
        .client_details(true)
}

/// The site, under `sessions`.
pub fn app(accounts: Accounts, sessions: SessionLayer) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/sessions", get(sessions_page))
        .route("/sessions/revoke", post(revoke))
        .route("/sessions/revoke-others", post(revoke_others))
        .with_state(Arc::new(accounts))
        .layer(sessions)
}

/// What went wrong in a handler, as a page.
enum Failure {
    Session(SessionError),
    Forbidden,
}

impl From<SessionError> for Failure {
    fn from(err: SessionError) -> Self {
        Failure::Session(err)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::Session(err) => err.into_response(),
            Failure::Forbidden => (
                StatusCode::FORBIDDEN,
                page(
                    "Expired form",
                    "<p>This form has expired. <a href=\"/\">Start again</a>.</p>",
                ),
            )
                .into_response(),
        }
    }
}

/// The session's CSRF token, made on first use.
async fn csrf_token(session: &Session) -> Result<String, SessionError> {
    if let Some(token) = session.get::<String>("csrf").await? {
        return Ok(token);
    }
    new_csrf_token(session).await
}

/// A new CSRF token for the session, replacing any it had.
async fn new_csrf_token(session: &Session) -> Result<String, SessionError> {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    session.insert("csrf", &token).await?;
    Ok(token)
}

/// Refuses a form whose token is not this session's.
async fn check_csrf(session: &Session, sent: &str) -> Result<(), Failure> {
    let expected = session.get::<String>("csrf").await?;
    match expected {
        Some(token)
            if !sent.is_empty()
                && bool::from(subtle::ConstantTimeEq::ct_eq(token.as_bytes(), sent.as_bytes())) =>
        {
            Ok(())
        }
        _ => Err(Failure::Forbidden),
    }
}

async fn home(session: Session) -> Result<Html<String>, Failure> {
    let token = csrf_token(&session).await?;
    let Some(user) = session.user().await? else {
        return Ok(login_page(&token, None));
    };
    let visits = session
        .update("visits", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    let body = format!(
        "<p class=\"who\">Signed in as <strong>{user}</strong>.</p>\
         <p>Pages seen in this session: <span id=\"visits\">{visits}</span>.</p>\
         <p><a id=\"sessions\" href=\"/sessions\">Your active sessions</a></p>\
         <form method=\"post\" action=\"/logout\">{csrf}<button type=\"submit\" id=\"logout\">Log out</button></form>",
        user = escape(&user),
        csrf = hidden("csrf", &token),
    );
    Ok(page("Home", &body))
}

fn login_page(token: &str, error: Option<&str>) -> Html<String> {
    let error = error.map_or(String::new(), |e| format!("<p class=\"error\">{}</p>", escape(e)));
    let body = format!(
        "{error}<form id=\"login\" method=\"post\" action=\"/login\">{csrf}\
         <label>User <input name=\"user\" autocomplete=\"username\"></label>\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label>\
         <button type=\"submit\" id=\"sign-in\">Log in</button></form>",
        csrf = hidden("csrf", token),
    );
    page("Log in", &body)
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

async fn login(
    State(accounts): State<Arc<Accounts>>,
    Peer(address): Peer,
    session: Session,
    Form(form): Form<LoginForm>,
) -> Result<Response, Failure> {
    check_csrf(&session, &form.csrf).await?;
    if !accounts.throttle.allows(&form.user, address) {
        let token = csrf_token(&session).await?;
        let page = login_page(
            &token,
            Some("Too many failed logins. Try again in a quarter of an hour."),
        );
        return Ok((StatusCode::TOO_MANY_REQUESTS, page).into_response());
    }
    if !accounts.check(&form.user, &form.password) {
        accounts.throttle.failed(&form.user, address);
        let token = csrf_token(&session).await?;
        let page = login_page(&token, Some("Wrong user or password."));
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    }
    accounts.throttle.succeeded(&form.user);
    // Nothing of the anonymous session rides along: not its id (login
    // gives a new one), not its data, not its CSRF token, which a page
    // seen before logging in may have leaked.
    session.clear().await?;
    session.login(&form.user).await?;
    new_csrf_token(&session).await?;
    Ok(Redirect::to("/").into_response())
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(session: Session, Form(form): Form<CsrfForm>) -> Result<Redirect, Failure> {
    check_csrf(&session, &form.csrf).await?;
    session.destroy().await?;
    Ok(Redirect::to("/"))
}

async fn sessions_page(session: Session) -> Result<Response, Failure> {
    if session.user().await?.is_none() {
        return Ok(Redirect::to("/").into_response());
    }
    let token = csrf_token(&session).await?;
    let sessions = session.user_sessions().await?;
    let mut rows = String::new();
    for info in &sessions {
        row(&mut rows, info, &token);
    }
    let others = sessions.iter().filter(|s| !s.current).count();
    let body = format!(
        "<p>{count} active session{s}.</p>\
         <table id=\"sessions\"><thead><tr><th></th><th>Browser</th><th>Network</th>\
         <th>Logged in</th><th>Last seen</th><th></th></tr></thead><tbody>{rows}</tbody></table>\
         <form method=\"post\" action=\"/sessions/revoke-others\">{csrf}\
         <button type=\"submit\" id=\"revoke-others\"{disabled}>Log out everywhere else</button></form>\
         <p><a href=\"/\">Home</a></p>",
        count = sessions.len(),
        s = if sessions.len() == 1 { "" } else { "s" },
        csrf = hidden("csrf", &token),
        disabled = if others == 0 { " disabled" } else { "" },
    );
    Ok(page("Your active sessions", &body).into_response())
}

fn row(out: &mut String, info: &SessionInfo, token: &str) {
    let device = if info.current {
        "<strong class=\"current\">This device</strong>".to_owned()
    } else {
        String::new()
    };
    let action = if info.current {
        String::new()
    } else {
        format!(
            "<form method=\"post\" action=\"/sessions/revoke\">{}{}<button type=\"submit\" class=\"revoke\">End</button></form>",
            hidden("csrf", token),
            hidden("handle", info.handle.as_str()),
        )
    };
    let _ = write!(
        out,
        "<tr class=\"{class}\"><td>{device}</td><td>{browser}</td><td>{network}</td>\
         <td>{created}</td><td>{seen}</td><td>{action}</td></tr>",
        class = if info.current {
            "session current"
        } else {
            "session"
        },
        browser = escape(&browser(info.user_agent.as_deref())),
        network = escape(info.client_network.as_deref().unwrap_or("unknown")),
        created = when(info.created),
        seen = when(info.last_seen),
    );
}

#[derive(Deserialize)]
struct RevokeForm {
    #[serde(default)]
    csrf: String,
    handle: String,
}

async fn revoke(session: Session, Form(form): Form<RevokeForm>) -> Result<Redirect, Failure> {
    check_csrf(&session, &form.csrf).await?;
    if let Ok(handle) = form.handle.parse::<SessionHandle>() {
        session.revoke(&handle).await?;
    }
    Ok(Redirect::to("/sessions"))
}

async fn revoke_others(session: Session, Form(form): Form<CsrfForm>) -> Result<Redirect, Failure> {
    check_csrf(&session, &form.csrf).await?;
    session.revoke_other_sessions().await?;
    Ok(Redirect::to("/sessions"))
}

/// "Chrome on Linux", from a `User-Agent`.
fn browser(agent: Option<&str>) -> String {
    let Some(agent) = agent else {
        return "unknown".into();
    };
    let name = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(token, _)| agent.contains(token))
    .map_or("a browser", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(token, _)| agent.contains(token))
    .map(|(_, name)| *name);
    match system {
        Some(system) => format!("{name} on {system}"),
        None => name.to_owned(),
    }
}

fn when(time: Option<SystemTime>) -> String {
    time.map_or("unknown".into(), httpdate::fmt_http_date)
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
        escape(value)
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}}\
         table{{border-collapse:collapse;width:100%;margin:1rem 0}}th,td{{text-align:left;padding:.4rem .6rem;\
         border-bottom:1px solid #ddd}}tr.current{{background:#eef6ff}}label{{display:block;margin:.5rem 0}}\
         button{{padding:.3rem .8rem}}.error{{color:#b00}}</style></head>\
         <body><h1>{title}</h1>{body}</body></html>"
    ))
}

#[allow(dead_code)] // The browser test uses the rest of this file, not `main`.
#[tokio::main]
async fn main() -> ExitCode {
    // A misconfiguration is told as a sentence, not as a debug dump.
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

#[allow(dead_code)]
async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let sessions = Sessions::from_config_with_user_sessions(SessionConfig::from_env()?, user_sessions())?;
    let sessions = SessionLayer::from(sessions);
    let (accounts, passwords) = Accounts::generate(&["alice", "bob"]);
    for (user, password) in &passwords {
        println!("user {user:<6} password {password}");
    }
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = app(accounts, sessions).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}
