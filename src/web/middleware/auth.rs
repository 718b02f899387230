//! HTTP Basic auth, when `BASIC_AUTH_USER` and `BASIC_AUTH_PASSWORD` are both set.
//!
//! Every group of routes but the health probe and static assets has this check (see
//! `web::Group`). Both the user and the password
//! are compared in constant time (and both always compared), credentials are never logged, and
//! every failure costs the client an action from its rate-limit bucket, so guessing is slow.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::config::BasicAuth;
use crate::error::AppError;
use crate::web::AppState;
use crate::web::middleware::client::ClientAddress;
use crate::web::middleware::rate_limit::{Bucket, Drawn};

pub const CHALLENGE: &str = r#"Basic realm="FocusFlow", charset="UTF-8""#;

/// Equal contents, in time that depends only on the lengths.
fn same(given: &[u8], expected: &[u8]) -> bool {
    let length_ok = given.len().ct_eq(&expected.len());
    // Compare against the expected value padded or cut to the given length, so the work done
    // does not reveal where the first difference is.
    let padded: Vec<u8> = (0..given.len())
        .map(|index| expected.get(index).copied().unwrap_or(0))
        .collect();
    bool::from(length_ok & given.ct_eq(&padded))
}

/// Whether an `Authorization` header carries these credentials.
pub fn verify(header_value: Option<&HeaderValue>, expected: &BasicAuth) -> bool {
    let Some(encoded) = header_value
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, rest) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        })
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|byte| *byte == b':') else {
        return false;
    };
    let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
    let user_ok = same(user, expected.user.as_bytes());
    let password_ok = same(password, expected.password.expose().as_bytes());
    user_ok & password_ok
}

/// A check (see `web::Guard`): 401 with a Basic challenge unless the request is authenticated.
pub fn require(state: &AppState, request: &Request) -> Result<(), Box<Response>> {
    let Some(expected) = &state.config.basic_auth else {
        return Ok(());
    };
    let given = request.headers().get(header::AUTHORIZATION);
    if verify(given, expected) {
        return Ok(());
    }
    let client = request
        .extensions()
        .get::<ClientAddress>()
        .map(|address| address.0)
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    if given.is_some() {
        tracing::warn!(%client, path = request.uri().path(), "failed sign-in");
    }
    // A failure costs one action in all: an API request or a form post already paid it in the
    // rate limiter, a page view paid only from the views bucket.
    if request.extensions().get::<Drawn>() != Some(&Drawn(Bucket::Actions)) {
        state.limits.charge_failure(client);
    }
    let mut response =
        AppError::Unauthorized("sign in with the user name and password of this FocusFlow".into())
            .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(CHALLENGE),
    );
    Err(Box::new(response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn expected() -> BasicAuth {
        BasicAuth {
            user: "ana".into(),
            password: Secret::new("correct horse"),
        }
    }

    fn header(user_and_password: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_and_password);
        format!("Basic {encoded}").parse().unwrap()
    }

    #[test]
    fn only_the_exact_credentials_pass() {
        assert!(verify(Some(&header("ana:correct horse")), &expected()));
        for wrong in [
            "ana:correct hors",
            "ana:correct horse!",
            "Ana:correct horse",
            "ana:",
            ":correct horse",
            "anacorrect horse",
            "",
        ] {
            assert!(!verify(Some(&header(wrong)), &expected()), "{wrong}");
        }
        assert!(!verify(None, &expected()));
        assert!(!verify(Some(&"Bearer abc".parse().unwrap()), &expected()));
        assert!(!verify(Some(&"Basic %%%".parse().unwrap()), &expected()));
        // A password may contain colons; the user may not (config refuses it).
        let colon = BasicAuth {
            user: "ana".into(),
            password: Secret::new("a:b"),
        };
        assert!(verify(Some(&header("ana:a:b")), &colon));
    }
}
