//! The statements each kind of request costs on the SQL stores, counted from
//! sqlx's own log of every statement it runs: none for a request that does
//! not touch the session, one for a read (which slides the expiry only once
//! it lags by more than the store's slack), two for a change, one for a
//! creation and one for a logout, on SQLite, PostgreSQL and MySQL (MariaDB).

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use server_session::store::SessionStore;
use server_session::{MySqlStore, PostgresStore, SessionConfig, SessionLayer, SqliteStore};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Every statement sqlx logged, as its summary and its text.
fn log() -> &'static Mutex<Vec<String>> {
    static LOG: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LOG.get_or_init(Default::default)
}

struct Statements;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Statements {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct Text(String);
        impl Visit for Text {
            fn record_str(&mut self, field: &Field, value: &str) {
                if matches!(field.name(), "summary" | "db.statement") {
                    self.0.push_str(value);
                    self.0.push(' ');
                }
            }
            fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
        }
        if event.metadata().target() == "sqlx::query" {
            let mut text = Text(String::new());
            event.record(&mut text);
            log().lock().unwrap().push(text.0);
        }
    }
}

fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Statements)).unwrap();
    });
}

/// The statements on `table` that `request` runs.
async fn statements(
    app: &Router,
    table: &str,
    path: &str,
    cookie: Option<&str>,
) -> (Vec<String>, Option<String>) {
    // The log is shared by the tests running at once (each on its own
    // table): never cleared, read from where it stood.
    let start = log().lock().unwrap().len();
    let response = crate::common::get(app, path, cookie).await;
    let ran = log().lock().unwrap()[start..]
        .iter()
        .filter(|text| text.contains(table))
        .map(|text| text.split_whitespace().next().unwrap_or_default().to_owned())
        .collect();
    (ran, response.cookie_pair())
}

/// Runs the requests on `store` (whose table is `table`) and checks each
/// one's statements; `exact` is a store on the same table that writes a
/// slid expiry on every read.
async fn check<S: SessionStore + Clone>(store: S, exact: S, table: &str) {
    let app = crate::common::redis::routes()
        .layer(SessionLayer::new(store.clone(), SessionConfig::default()).unwrap());
    // Opens the pool's connection first.
    crate::common::get(&app, "/login", None).await;

    let (ran, _) = statements(&app, table, "/noop", None).await;
    assert_eq!(
        ran,
        Vec::<String>::new(),
        "a request that leaves the session alone"
    );
    let (ran, cookie) = statements(&app, table, "/login", None).await;
    assert_eq!(ran, ["INSERT"], "a new session: one insert");
    let cookie = cookie.unwrap();
    let (ran, _) = statements(&app, table, "/read", Some(&cookie)).await;
    assert_eq!(ran, ["SELECT"], "a read, its expiry fresh enough");
    let (ran, _) = statements(&app, table, "/incr", Some(&cookie)).await;
    assert_eq!(ran, ["SELECT", "UPDATE"], "a change: a load, a conditional save");
    let (ran, _) = statements(&app, table, "/logout", Some(&cookie)).await;
    assert_eq!(ran, ["DELETE"], "a logout: one delete, no load");

    // Without the refresh, a read leaves the row alone.
    let config = SessionConfig::default().refresh_each_request(false);
    let app = crate::common::redis::routes().layer(SessionLayer::new(store, config).unwrap());
    let (_, cookie) = statements(&app, table, "/login", None).await;
    let (ran, _) = statements(&app, table, "/read", Some(&cookie.unwrap())).await;
    assert_eq!(ran, ["SELECT"], "a read without the refresh");

    // A store that slides the expiry on every read writes it every time.
    let app =
        crate::common::redis::routes().layer(SessionLayer::new(exact, SessionConfig::default()).unwrap());
    let (_, cookie) = statements(&app, table, "/login", None).await;
    let (ran, _) = statements(&app, table, "/read", Some(&cookie.unwrap())).await;
    assert_eq!(ran, ["SELECT", "UPDATE"], "a read that slides the expiry");
}

#[tokio::test]
async fn sqlite() {
    install();
    let dir = tempfile::tempdir().unwrap();
    let table = crate::common::unique_table();
    let file = dir.path().join("s.db").display().to_string();
    let store = SqliteStore::builder(&file)
        .table(table.clone())
        .open()
        .await
        .unwrap();
    let exact = SqliteStore::builder(&file)
        .table(table.clone())
        .slide_slack(Duration::ZERO);
    check(store, exact.open().await.unwrap(), &table).await;
}

#[tokio::test]
async fn postgres() {
    install();
    let server = crate::common::postgres::TestPostgres::shared();
    let table = crate::common::unique_table();
    let store = PostgresStore::builder(&server.url)
        .table(table.clone())
        .open()
        .await
        .unwrap();
    let exact = PostgresStore::builder(&server.url)
        .table(table.clone())
        .slide_slack(Duration::ZERO);
    check(store, exact.open().await.unwrap(), &table).await;
}

#[tokio::test]
async fn mysql() {
    install();
    let server = crate::common::mariadb::TestMariaDb::shared();
    let table = crate::common::unique_table();
    let store = MySqlStore::builder(&server.url)
        .table(table.clone())
        .open()
        .await
        .unwrap();
    let exact = MySqlStore::builder(&server.url)
        .table(table.clone())
        .slide_slack(Duration::ZERO);
    check(store, exact.open().await.unwrap(), &table).await;
}
