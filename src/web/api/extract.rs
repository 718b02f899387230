//! Extractors whose refusals are JSON errors that say what to fix.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::AppError;
use crate::jobs::JobId;
use crate::web::api::requests::JobIdParam;

/// A JSON body; bad ones become 400, 413 or 415 with a clear message.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state)
            .await
            .map_err(json_rejection)?;
        Ok(Self(value))
    }
}

fn json_rejection(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType(
            "send the body as JSON with Content-Type: application/json".into(),
        ),
        JsonRejection::JsonSyntaxError(error) => {
            AppError::bad_request(format!("the body is not valid JSON: {}", error.body_text()))
        }
        JsonRejection::JsonDataError(error) => {
            let text = error.body_text();
            match crate::web::api::requests::Refusal::find(&text) {
                Some(refusal) => AppError::bad_request(refusal),
                None => AppError::bad_request(format!("the JSON does not fit: {text}")),
            }
        }
        JsonRejection::BytesRejection(error) => {
            if error.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge("the body is too large".into())
            } else {
                AppError::bad_request(format!("the body could not be read: {}", error.body_text()))
            }
        }
        other => AppError::bad_request(other.body_text()),
    }
}

/// Query parameters; a bad one is a 400 naming it.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(query_rejection)
    }
}

fn query_rejection(rejection: QueryRejection) -> AppError {
    AppError::bad_request(format!("bad query parameters: {}", rejection.body_text()))
}

/// The `{id}` of a job route. An id that cannot exist is simply an unknown job.
pub struct JobPath(pub JobId);

impl<S> FromRequestParts<S> for JobPath
where
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(param) = Path::<JobIdParam>::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::JobNotFound)?;
        JobId::parse(&param.id)
            .map(Self)
            .map_err(|_| AppError::job_not_found())
    }
}

/// A query flag, as the API documents it: a boolean. Absent is false; `true` and `false` (in
/// any case, as Python's `requests` sends `True`) are read as written. Anything else, an empty
/// value or a bare `?name` included, is a 400 naming the parameter, so a typo never silently
/// means the opposite of what the client meant.
pub fn flag(name: &str, value: Option<&str>) -> Result<bool, AppError> {
    let Some(value) = value else {
        return Ok(false);
    };
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(AppError::bad_request(format!(
            "\"{name}\" must be true or false, not {value:?}"
        )))
    }
}
