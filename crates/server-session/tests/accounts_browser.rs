//! The accounts demo (`examples/accounts.rs`) in two real, headless Chromium
//! browsers driven over WebDriver: both log in as the same user, one lists
//! and revokes the other, then logs out everywhere else. Needs `chromium` and
//! `chromedriver` (Debian's `chromium` and `chromium-driver`), which the
//! test starts itself on a free port. Saves a screenshot of the sessions
//! page as `target/accounts-sessions.png`.

#[path = "../examples/accounts.rs"]
#[allow(dead_code)]
mod accounts;
mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use server_session::{MemoryStore, SessionConfig, SessionLayer};

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
    let layer = SessionLayer::new(
        MemoryStore::new(),
        accounts::session_config(SessionConfig::default()),
    )
    .unwrap();
    let app = accounts::app(accounts, layer).into_make_service_with_connect_info::<SocketAddr>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let port = common::redis::free_port();
    let _driver =
        common::servers::Process::spawn(Path::new("chromedriver"), &[format!("--port={port}")], port);
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
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/accounts-sessions.png");
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
