//! server-session on axum built with its `metrics` feature and a Prometheus
//! recorder installed: the library's counters and store-call latencies,
//! scraped at `/metrics`. Otherwise the same app as `server_session_app`
//! (`server_session_bench::server_session_app`), so that the two compare
//! what turning metrics on costs, feature and recorder together.

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;

fn main() -> std::io::Result<()> {
    // The upkeep a deployment would run (every 5 s, as the exporter's own
    // listener does), so that the latency samples do not pile up between
    // scrapes.
    let handle = PrometheusBuilder::new().install_recorder().expect("recorder");
    let upkeep = handle.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(5));
            upkeep.run_upkeep();
        }
    });
    let page = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || std::future::ready(handle.render())),
    );
    server_session_bench::server_session_app::run(Some(page))
}
