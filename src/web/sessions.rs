//! Form tokens and flash messages without server-side sessions, so that consecutive requests
//! may land on different replicas (no sticky sessions) and nothing grows on the server when
//! clients never send their cookie back.
//!
//! - A browser gets a random id in the `focusflow.sid` cookie. Its form token is the
//!   HMAC-SHA256 of that id under the session key: any replica holding the key recomputes and
//!   checks it, and no site can make one without the key (a planted cookie is useless without
//!   its token, and the token cannot be derived from the cookie).
//! - A flash message travels in the same cookie, after the id (`<id>.<message>.<signature>`),
//!   from the POST to the page the browser is redirected to, signed with the same key and bound
//!   to the id, so it cannot be forged or moved to another browser; the page that shows it
//!   clears it. One cookie, so a response sets at most one.
//!
//! The key is random, made once and kept in the database ([`SessionKey::shared`]): every
//! replica on one `DATABASE_URL` uses the same one without configuration, and forms stay valid
//! across restarts.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::AppState;
use crate::store::{Store, StoreResult};

/// The cookie with the browser's random id (and the flash messages waiting for it).
pub const ID_COOKIE: &str = "focusflow.sid";
/// How long a browser keeps its id after the last page with a form (then its forms expire).
const ID_MAX_AGE_SECS: u64 = 7 * 24 * 3600;
/// The flash cookie's largest payload: browsers drop cookies past about 4 KB.
pub const MAX_FLASH_PAYLOAD: usize = 2048;
/// Where the key is kept in the database.
const KEY_META: &str = "session_key";

/// The key that signs form tokens and flash cookies.
#[derive(Clone)]
pub struct SessionKey(Arc<Vec<u8>>);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SessionKey(…)")
    }
}

fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl SessionKey {
    /// A key of this process alone (forms made by another process do not pass).
    pub fn random() -> Self {
        Self(Arc::new(
            format!("{}{}", random_hex(), random_hex()).into_bytes(),
        ))
    }

    /// The key every process on this database shares: made by the first that asks, read by
    /// the others.
    pub async fn shared(store: &Store) -> StoreResult<Self> {
        let fresh = format!("{}{}", random_hex(), random_hex());
        let key = store.meta_or_insert(KEY_META, fresh).await?;
        Ok(Self(Arc::new(key.into_bytes())))
    }

    fn sign(&self, purpose: &str, parts: &[&str]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(purpose.as_bytes());
        for part in parts {
            mac.update(b"\0");
            mac.update(part.as_bytes());
        }
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    fn verify(&self, purpose: &str, parts: &[&str], signature: &str) -> bool {
        !signature.is_empty()
            && bool::from(
                self.sign(purpose, parts)
                    .as_bytes()
                    .ct_eq(signature.as_bytes()),
            )
    }
}

/// What a request's cookies said, and what its response must set.
#[derive(Debug, Default)]
struct Cookies {
    id: Option<String>,
    flash: Option<String>,
    /// Send the cookie (a new id, its expiry renewed, or the flash messages changed).
    send: bool,
}

/// This request's session: its id, form token and flash messages. Taken from the request's
/// extensions (see [`layer`]); clones share it.
#[derive(Debug, Clone)]
pub struct Session {
    key: SessionKey,
    cookies: Arc<Mutex<Cookies>>,
}

impl Session {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cookies> {
        self.cookies
            .lock()
            .unwrap_or_else(|error| error.into_inner())
    }

    fn id_or_new(cookies: &mut Cookies) -> String {
        let id = cookies.id.get_or_insert_with(random_hex).clone();
        cookies.send = true;
        id
    }

    /// The form token for the pages this response renders; gives the browser an id first
    /// when it has none.
    pub fn form_token(&self) -> String {
        let id = Self::id_or_new(&mut self.lock());
        self.key.sign("csrf", &[&id])
    }

    /// True when `submitted` is the token of this browser's id (a browser without an id has
    /// no valid token).
    pub fn token_matches(&self, submitted: &str) -> bool {
        let id = self.lock().id.clone();
        id.is_some_and(|id| self.key.verify("csrf", &[&id], submitted))
    }

    /// The token a form from this browser must carry, if it has an id yet.
    pub fn expected_token(&self) -> Option<String> {
        let id = self.lock().id.clone();
        id.map(|id| self.key.sign("csrf", &[&id]))
    }

    /// The flash messages waiting, as their payload (see `pages::flash`).
    pub fn flash_payload(&self) -> Option<String> {
        self.lock().flash.clone()
    }

    /// Replaces the waiting flash messages (None clears them).
    pub fn set_flash_payload(&self, payload: Option<String>) {
        let mut cookies = self.lock();
        if payload.is_some() {
            Self::id_or_new(&mut cookies);
        }
        if cookies.flash != payload {
            cookies.flash = payload;
            cookies.send = cookies.id.is_some();
        }
    }
}

/// The value of each cookie named `name` in the request.
fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(move |pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value.trim_matches('"'))
        })
}

fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

/// Reads the request's cookie: an id of the right shape, and flash messages signed for it.
fn read(key: &SessionKey, headers: &HeaderMap) -> Cookies {
    let Some((id, rest)) = cookie_values(headers, ID_COOKIE).find_map(|value| {
        let (id, rest) = value.split_once('.').unwrap_or((value, ""));
        valid_id(id).then_some((id.to_string(), rest))
    }) else {
        return Cookies::default();
    };
    let flash = rest.split_once('.').and_then(|(encoded, signature)| {
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
        key.verify("flash", &[&id, &payload], signature)
            .then_some(payload)
    });
    Cookies {
        // Flash messages that do not verify are dropped: the cookie is sent again without.
        send: !rest.is_empty() && flash.is_none(),
        id: Some(id),
        flash,
    }
}

/// Middleware: gives each request its [`Session`] and sends its cookie when it changed.
pub async fn layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let key = state.sessions.clone();
    let session = Session {
        cookies: Arc::new(Mutex::new(read(&key, request.headers()))),
        key,
    };
    request.extensions_mut().insert(session.clone());
    let mut response = next.run(request).await;
    let cookies = std::mem::take(&mut *session.lock());
    if let Some(id) = &cookies.id
        && cookies.send
    {
        let value = match &cookies.flash {
            Some(payload) if payload.len() <= MAX_FLASH_PAYLOAD => {
                let signature = session.key.sign("flash", &[id, payload]);
                format!("{id}.{}.{signature}", URL_SAFE_NO_PAD.encode(payload))
            }
            _ => id.clone(),
        };
        let line = format!(
            "{ID_COOKIE}={value}; Path=/; Max-Age={ID_MAX_AGE_SECS}; HttpOnly; SameSite=Lax"
        );
        if let Ok(value) = HeaderValue::from_str(&line) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, cookie.parse().unwrap());
        headers
    }

    #[test]
    fn a_token_holds_under_the_same_key_and_id_only() {
        let key = SessionKey::random();
        let id = "0123456789abcdef0123456789abcdef";
        let session = |key: &SessionKey, cookie: &str| Session {
            key: key.clone(),
            cookies: Arc::new(Mutex::new(read(key, &headers(cookie)))),
        };
        let first = session(&key, &format!("{ID_COOKIE}={id}"));
        let token = first.form_token();
        // Another replica with the same key, the same cookie: the token holds.
        assert!(session(&key, &format!("other=1; {ID_COOKIE}={id}")).token_matches(&token));
        // Another key, another id, no id, a malformed id: it does not.
        assert!(
            !session(&SessionKey::random(), &format!("{ID_COOKIE}={id}")).token_matches(&token)
        );
        assert!(
            !session(
                &key,
                &format!("{ID_COOKIE}=fedcba9876543210fedcba9876543210")
            )
            .token_matches(&token)
        );
        assert!(!session(&key, "").token_matches(&token));
        assert!(!session(&key, &format!("{ID_COOKIE}={id}x")).token_matches(&token));
        assert!(!first.token_matches(""));
    }

    #[test]
    fn a_flash_cookie_counts_only_signed_for_its_id() {
        let key = SessionKey::random();
        let id = "0123456789abcdef0123456789abcdef";
        let payload = r#"[{"kind":"success","text":"Saved."}]"#;
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            key.sign("flash", &[id, payload])
        );
        let read_with = |cookie: String| read(&key, &headers(&cookie));
        let good = read_with(format!("{ID_COOKIE}={id}.{signed}"));
        assert_eq!(good.id.as_deref(), Some(id));
        assert_eq!(good.flash.as_deref(), Some(payload));
        assert!(!good.send);
        // Moved to another browser, or forged: dropped, and the cookie sent again without.
        let moved = read_with(format!(
            "{ID_COOKIE}=fedcba9876543210fedcba9876543210.{signed}"
        ));
        assert_eq!(moved.flash, None);
        assert!(moved.send);
        let forged = read_with(format!(
            "{ID_COOKIE}={id}.{}.00",
            URL_SAFE_NO_PAD.encode(payload)
        ));
        assert_eq!(forged.flash, None);
        assert_eq!(forged.id.as_deref(), Some(id));
    }
}
