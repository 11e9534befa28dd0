//! Framework adapters: each reads the request's `Cookie` headers, hands the
//! handler a [`Session`](crate::Session), and carries out the engine's plan
//! for the response. Nothing else.

#[cfg(feature = "actix")]
pub(crate) mod actix;
#[cfg(feature = "axum")]
mod axum;
pub(crate) mod tower;
