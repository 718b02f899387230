//! `DATABASE_URL`: where the PostgreSQL server is. Unset keeps the SQLite file in `DATA_DIR`.
//!
//! The URL is taken apart here, once, into the parts a connection needs; the password is a
//! [`Secret`] and the URL is only ever shown without it ([`DatabaseUrl::shown`]).

use std::fmt;
use std::time::Duration;

use url::Url;

use super::{ConfigError, Secret, bad};

const VARIABLE: &str = "DATABASE_URL";

/// How the connection is protected. Only plain connections are built in today: the server is
/// expected on loopback or a private network (see the README's PostgreSQL section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// `sslmode=disable` (and `allow`/`prefer`, which fall back to it: TLS is not built in).
    Disable,
}

/// A PostgreSQL server and database, from `postgres://user:password@host:port/database`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Secret>,
    pub database: String,
    pub ssl_mode: SslMode,
    /// `connect_timeout` (seconds), libpq's name; None = the store's own default.
    pub connect_timeout: Option<Duration>,
    pub application_name: Option<String>,
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

impl DatabaseUrl {
    /// Reads `postgres://` or `postgresql://` URLs; anything else is one line naming the
    /// variable (the password never appears in it).
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let url = Url::parse(value).map_err(|error| {
            bad(
                VARIABLE,
                format!(
                    "is not a URL ({error}); expected postgres://user:password@host:5432/database"
                ),
            )
        })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(bad(
                VARIABLE,
                format!(
                    "must start with postgres:// or postgresql:// (got {}://); unset it to keep SQLite in DATA_DIR",
                    url.scheme()
                ),
            ));
        }
        let host = match url.host_str() {
            Some(host) if !host.is_empty() => host.trim_matches(['[', ']']).to_string(),
            _ => {
                return Err(bad(
                    VARIABLE,
                    "has no host (expected postgres://user:password@host:5432/database; Unix sockets are not supported)",
                ));
            }
        };
        let user = decode(url.username())?;
        let user = if user.is_empty() {
            "postgres".to_string()
        } else {
            user
        };
        let password = url
            .password()
            .map(decode)
            .transpose()?
            .filter(|password| !password.is_empty())
            .map(Secret::new);
        let database = decode(url.path().trim_start_matches('/'))?;
        if database.contains('/') {
            return Err(bad(
                VARIABLE,
                format!("names a database with a '/' in it ({database:?})"),
            ));
        }
        let database = if database.is_empty() {
            user.clone()
        } else {
            database
        };
        let mut parsed = Self {
            host,
            port: url.port().unwrap_or(5432),
            user,
            password,
            database,
            ssl_mode: SslMode::Disable,
            connect_timeout: None,
            application_name: None,
        };
        for (key, value) in url.query_pairs() {
            parsed.option(&key, &value)?;
        }
        Ok(parsed)
    }

    fn option(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            "sslmode" => match value {
                "disable" | "allow" | "prefer" => self.ssl_mode = SslMode::Disable,
                "require" | "verify-ca" | "verify-full" => {
                    return Err(bad(
                        VARIABLE,
                        format!(
                            "asks for sslmode={value}, but FocusFlow cannot connect to PostgreSQL over TLS yet; \
                             use sslmode=disable with a server on loopback or a private network (or a TLS tunnel to it)"
                        ),
                    ));
                }
                other => {
                    return Err(bad(
                        VARIABLE,
                        format!("has an unknown sslmode {other:?} (only disable is supported)"),
                    ));
                }
            },
            "connect_timeout" => {
                let seconds: u64 = value.parse().map_err(|_| {
                    bad(
                        VARIABLE,
                        format!("connect_timeout must be whole seconds (got {value:?})"),
                    )
                })?;
                self.connect_timeout = (seconds > 0).then(|| Duration::from_secs(seconds));
            }
            "application_name" => self.application_name = Some(value.to_string()),
            other => {
                return Err(bad(
                    VARIABLE,
                    format!(
                        "has an option FocusFlow does not know: {other:?} (known: sslmode, connect_timeout, application_name)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The URL without its password, for logs and error messages.
    pub fn shown(&self) -> String {
        let password = if self.password.is_some() {
            ":[redacted]"
        } else {
            ""
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "postgres://{}{password}@{host}:{}/{}",
            self.user, self.port, self.database
        )
    }

    /// Whether the server is on this machine (a plain connection then crosses no network).
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

fn decode(text: &str) -> Result<String, ConfigError> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| bad(VARIABLE, "has a part that is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_taken_apart_with_defaults() {
        let url = DatabaseUrl::parse("postgres://ana:p%40ss@db.internal:6543/focus").unwrap();
        assert_eq!(url.host, "db.internal");
        assert_eq!(url.port, 6543);
        assert_eq!(url.user, "ana");
        assert_eq!(url.password.as_ref().map(Secret::expose), Some("p@ss"));
        assert_eq!(url.database, "focus");
        assert!(!url.is_loopback());
        assert_eq!(
            url.shown(),
            "postgres://ana:[redacted]@db.internal:6543/focus"
        );
        assert_eq!(format!("{url:?}"), url.shown());

        let bare = DatabaseUrl::parse("postgresql://127.0.0.1?sslmode=disable").unwrap();
        assert_eq!(
            (bare.user.as_str(), bare.database.as_str(), bare.port),
            ("postgres", "postgres", 5432)
        );
        assert!(bare.is_loopback() && bare.password.is_none());
        let timed = DatabaseUrl::parse("postgres://u@[::1]/d?connect_timeout=3").unwrap();
        assert_eq!(timed.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(timed.shown(), "postgres://u@[::1]:5432/d");
    }

    #[test]
    fn a_bad_url_names_the_variable_and_hides_the_password() {
        for (value, words) in [
            ("mysql://u:secret-pw@h/d", "postgres://"),
            ("postgres://u:secret-pw@/d", "host"),
            ("postgres://u:secret-pw@h/d?sslmode=require", "TLS"),
            ("postgres://u:secret-pw@h/d?sslmode=sometimes", "sslmode"),
            ("postgres://u:secret-pw@h/d?pool=3", "pool"),
            (
                "postgres://u:secret-pw@h/d?connect_timeout=soon",
                "connect_timeout",
            ),
            ("not a url secret-pw", "not a URL"),
        ] {
            let error = DatabaseUrl::parse(value).unwrap_err();
            assert_eq!(error.variable, "DATABASE_URL");
            let line = error.to_string();
            assert!(line.contains(words), "{value}: {line}");
            assert!(!line.contains("secret-pw"), "{line}");
        }
    }
}
