//! The accounts demo (`examples/accounts.rs`) in two real, headless Chromium
//! browsers driven over WebDriver: both log in as the same user, one lists
//! and revokes the other, then logs out everywhere else. Needs `chromium` and
//! `chromedriver` (Debian's `chromium` and `chromium-driver`), which the
//! test starts itself on a free port. Saves a screenshot of the sessions
//! page as `accounts-sessions.png` in the target directory's `tmp`. Then,
//! without a browser, the demo's login: a new CSRF token, and throttled
//! failures.

#[path = "../../examples/accounts.rs"]
#[allow(dead_code)]
mod accounts;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use server_session::{MemoryStore, SessionConfig, SessionLayer, Sessions};

/// A headless browser with a profile of its own.
async fn browser(driver: &str) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1100,700"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(driver)
        .await
        .expect("chromedriver starts a browser session")
}

async fn log_in(browser: &Client, site: &str, user: &str, password: &str) {
    browser.goto(site).await.unwrap();
    let form = browser.form(Locator::Id("login")).await.unwrap();
    form.set_by_name("user", user).await.unwrap();
    form.set_by_name("password", password).await.unwrap();
    form.submit().await.unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("p.who"))
        .await
        .expect("the home page after logging in");
    assert!(page_text(browser).await.contains(&format!("Signed in as {user}")));
}

/// Clicks `button` and waits for the sessions page it leads back to to list
/// `rows` sessions.
async fn click_until_rows(browser: &Client, button: Locator<'_>, rows: usize) {
    browser.find(button).await.unwrap().click().await.unwrap();
    for _ in 0..200 {
        let now = browser
            .find_all(Locator::Css("tr.session"))
            .await
            .map(|r| r.len());
        if now.is_ok_and(|n| n == rows) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the sessions page never listed {rows} sessions");
}

async fn page_text(browser: &Client) -> String {
    browser
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn session_rows(browser: &Client, site: &str) -> Vec<fantoccini::elements::Element> {
    browser.goto(&format!("{site}/sessions")).await.unwrap();
    browser.find_all(Locator::Css("tr.session")).await.unwrap()
}

async fn shows_login_form(browser: &Client, site: &str) -> bool {
    browser.goto(site).await.unwrap();
    browser.find(Locator::Id("login")).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_list_and_revoke_each_other() {
    let (accounts, passwords) = accounts::Accounts::generate(&["alice", "bob"]);
    let password = passwords[0].1.clone();
    let layer = SessionLayer::from(
        Sessions::with_user_sessions(
            MemoryStore::new(),
            SessionConfig::default(),
            accounts::user_sessions(),
        )
        .unwrap(),
    );
    let app = accounts::app(accounts, layer).into_make_service_with_connect_info::<SocketAddr>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let port = crate::common::redis::free_port();
    let _driver =
        crate::common::servers::Process::spawn(Path::new("chromedriver"), &[format!("--port={port}")], port);
    let driver = format!("http://127.0.0.1:{port}");
    let a = browser(&driver).await;
    let b = browser(&driver).await;

    assert!(shows_login_form(&a, &site).await);
    log_in(&a, &site, "alice", &password).await;
    log_in(&b, &site, "alice", &password).await;

    assert_eq!(session_rows(&a, &site).await.len(), 2, "A lists both sessions");
    let text = page_text(&a).await;
    assert!(text.contains("This device"), "{text}");
    assert!(text.contains("Headless Chrome on Linux"), "{text}");
    assert!(text.contains("127.0.0.0/24"), "{text}");
    let png = a.screenshot().await.unwrap();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("accounts-sessions.png");
    std::fs::write(&target, png).unwrap();

    // A ends B's session: B's next page is the login form.
    click_until_rows(&a, Locator::Css("tr.session:not(.current) button.revoke"), 1).await;
    assert!(shows_login_form(&b, &site).await, "B is logged out");
    assert!(!shows_login_form(&a, &site).await, "A is not");

    // B logs in again; A logs out everywhere else.
    log_in(&b, &site, "alice", &password).await;
    assert_eq!(session_rows(&a, &site).await.len(), 2);
    click_until_rows(&a, Locator::Id("revoke-others"), 1).await;
    assert!(!shows_login_form(&a, &site).await, "A stays logged in");
    assert!(shows_login_form(&b, &site).await, "B is logged out");
    assert_eq!(session_rows(&a, &site).await.len(), 1);

    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// The demo on the memory store, and the password of alice and of bob.
fn demo() -> (axum::Router, String, String) {
    let (accounts, passwords) = accounts::Accounts::generate(&["alice", "bob"]);
    let layer = SessionLayer::from(
        Sessions::with_user_sessions(
            MemoryStore::new(),
            SessionConfig::default(),
            accounts::user_sessions(),
        )
        .unwrap(),
    );
    let app = accounts::app(accounts, layer);
    (app, passwords[0].1.clone(), passwords[1].1.clone())
}

/// The CSRF token a page's forms carry.
fn token(page: &str) -> String {
    let (_, rest) = page
        .split_once("name=\"csrf\" value=\"")
        .expect("a form with a token");
    rest.split('"').next().unwrap().to_owned()
}

/// `form` posted to `path` with `cookie`, from `from` when given (the
/// address a server with connect info would see).
async fn post(
    app: &axum::Router,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
    from: Option<SocketAddr>,
) -> crate::common::Reply {
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut request = http::Request::post(path)
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(body))
        .unwrap();
    if let Some(from) = from {
        request.extensions_mut().insert(axum::extract::ConnectInfo(from));
    }
    crate::common::send(app, request).await
}

/// A fresh visit: the cookie and the login form's token.
async fn visit(app: &axum::Router) -> (String, String) {
    let reply = crate::common::get(app, "/", None).await;
    (reply.cookie_pair().unwrap(), token(&reply.body))
}

/// Logging in keeps nothing of the anonymous session: a token a page showed
/// before login does not pass a form after it.
#[tokio::test]
async fn login_gives_a_new_csrf_token() {
    let (app, alice, _) = demo();
    let (cookie, before) = visit(&app).await;
    let form = [
        ("csrf", before.as_str()),
        ("user", "alice"),
        ("password", alice.as_str()),
    ];
    let reply = post(&app, "/login", &cookie, &form, None).await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    let cookie = reply.cookie_pair().unwrap();
    let after = token(&crate::common::get(&app, "/", Some(&cookie)).await.body);
    assert_ne!(after, before, "a new token from login on");
    let stale = post(&app, "/logout", &cookie, &[("csrf", before.as_str())], None).await;
    assert_eq!(stale.status, 403, "the token from before login is refused");
    let logout = post(&app, "/logout", &cookie, &[("csrf", after.as_str())], None).await;
    assert_eq!(logout.status, 303);
}

/// After a few wrong passwords for a user, the user's logins are refused
/// for a while, the right password too, from any address; after more from
/// one address, whatever the name, that address's are. Others go on.
#[tokio::test]
async fn failed_logins_are_throttled_per_user_and_per_address() {
    let (app, alice, bob) = demo();
    let attempt = async |user: &str, password: &str, from: Option<SocketAddr>| {
        let (cookie, csrf) = visit(&app).await;
        let form = [("csrf", csrf.as_str()), ("user", user), ("password", password)];
        post(&app, "/login", &cookie, &form, from).await.status.as_u16()
    };
    let (one, two, three): (SocketAddr, SocketAddr, SocketAddr) = (
        "203.0.113.1:5000".parse().unwrap(),
        "203.0.113.2:5000".parse().unwrap(),
        "198.51.100.7:5000".parse().unwrap(),
    );
    for n in 0..5 {
        assert_eq!(
            attempt("alice", "wrong", Some(if n % 2 == 0 { one } else { two })).await,
            401
        );
    }
    assert_eq!(
        attempt("alice", &alice, Some(three)).await,
        429,
        "alice is throttled"
    );
    assert_eq!(attempt("bob", &bob, Some(one)).await, 303, "bob is not");

    for n in 0..20 {
        assert_eq!(attempt(&format!("guess{n}"), "wrong", Some(three)).await, 401);
    }
    assert_eq!(
        attempt("bob", &bob, Some(three)).await,
        429,
        "that address is throttled"
    );
    assert_eq!(attempt("bob", &bob, Some(two)).await, 303, "others are not");
}
