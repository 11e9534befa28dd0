//! axum integration: [`Session`] as an extractor, [`SessionError`] as a
//! response.

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::session::{Session, SessionError};

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
        if self.status().is_server_error() {
            tracing::debug!(error = %self, "session error answered");
        }
        (self.status(), self.public_message()).into_response()
    }
}
