//! The application error: what went wrong, as a kind a handler can match on and a message a
//! person can act on.
//!
//! It knows nothing of HTTP: how it becomes a response (a status, JSON, a page or an htmx
//! fragment) is decided in one place, `web::error`. User errors say what to fix; internal
//! failures show an opaque message and keep their cause for the log.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// The job named by the request does not exist (or its id cannot exist).
    #[error("job not found")]
    JobNotFound,
    /// Anything else that is not there: a route, a recording, a kept question.
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
    /// The request named a host this server does not answer.
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
        Self::JobNotFound
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
            StoreError::NotFound => AppError::JobNotFound,
            StoreError::Conflict(message) => AppError::Conflict(message),
            // The database cannot answer now (PostgreSQL unreachable, SQLite busy or its disk
            // full): a kind that clients may retry. The message may name files and driver
            // details: logged, not shown.
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
    /// A bucket that does not answer is "unavailable", naming it (its message holds no secret);
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

pub type AppResult<T> = Result<T, AppError>;
