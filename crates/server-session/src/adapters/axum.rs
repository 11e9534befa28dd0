//! axum integration: [`Session`] as an extractor, [`SessionError`] as a
//! response.

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use super::tower::error_response;
use crate::error::SessionError;
use crate::session::Session;

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(SessionError::MissingLayer)
    }
}

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        error_response(self.response())
    }
}
