//! The application error, and the one place where it becomes a response.
//!
//! User errors say what to fix; internal failures answer an opaque message and log the cause.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("too many requests; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// The request named a host this server does not answer (421 Misdirected Request).
    #[error("{0}")]
    MisdirectedRequest(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    pub fn job_not_found() -> Self {
        Self::NotFound("job not found".into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::MisdirectedRequest(_) => StatusCode::MISDIRECTED_REQUEST,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message a person sees: never the internal cause.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Internal(_) => {
                "something went wrong on the server; the details are in its log".into()
            }
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => AppError::job_not_found(),
            StoreError::Conflict(message) => AppError::Conflict(message),
            // The database cannot answer now (PostgreSQL unreachable, SQLite busy or its disk
            // full): 503, so that load balancers and clients try again or elsewhere. The
            // message may name files and driver details: logged, not shown.
            StoreError::Unavailable(message) => {
                tracing::warn!(error = %message, "the store is unavailable");
                AppError::Unavailable(
                    "the database is unavailable right now; try again shortly".into(),
                )
            }
        }
    }
}

impl From<std::io::Error> for AppError {
    /// A bucket that does not answer is a 503 that names it (its message holds no secret);
    /// any other I/O failure is internal.
    fn from(error: std::io::Error) -> Self {
        if let Some(storage) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<crate::storage::StorageError>())
        {
            return AppError::Unavailable(storage.to_string());
        }
        AppError::Internal(error.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(cause) = &self {
            tracing::error!(error = ?cause, "request failed");
        }
        let status = self.status();
        let mut response = (
            status,
            Json(crate::web::view::ErrorBody {
                error: self.public_message(),
                details: None,
            }),
        )
            .into_response();
        if let AppError::RateLimited { retry_after_secs } = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        response
    }
}

pub type AppResult<T> = Result<T, AppError>;
