//! Framework adapters: thin layers between a framework's request and response
//! and the engine.

#[cfg(feature = "axum")]
mod axum;
pub(crate) mod tower;
