//! server-session on axum with the library's default features (no
//! `metrics`); see `server_session_bench::server_session_app` for the
//! settings it reads.

fn main() -> std::io::Result<()> {
    server_session_bench::server_session_app::run(None)
}
