//! Typed configuration, read once at start-up from the environment (and an optional `.env`).
//!
//! Every variable of the contract lives here. A bad value stops start-up with one line that names
//! the variable; nothing falls back silently. Secrets are wrapped in [`Secret`], whose `Debug`
//! never shows the value.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

pub mod database;
pub mod hosts;
pub mod proxies;
pub mod storage;

pub use database::DatabaseUrl;
pub use hosts::AllowedHosts;
pub use storage::StorageUrl;

/// A value that must never be logged or shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The wire format used to talk to the LLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiStyle {
    /// `POST {root}/chat/completions`
    Chat,
    /// `POST {root}/responses`
    Responses,
}

/// Which speech-to-text provider transcribes audio (`TRANSCRIBER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscriberChoice {
    /// AssemblyAI when its key is set, else OpenAI-compatible when its URL is set, else none.
    Auto,
    AssemblyAi,
    /// `POST {TRANSCRIBE_BASE_URL}/audio/transcriptions` (OpenAI, local whisper servers).
    OpenAi,
    None,
}

impl TranscriberChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::AssemblyAi => "assemblyai",
            Self::OpenAi => "openai",
            Self::None => "none",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct BasicAuth {
    pub user: String,
    pub password: Secret,
}

/// How provider calls (LLM, transcription, Plaud) are retried on transient failures.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            base_delay: Duration::from_millis(1000),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// The rate limiter's default for [`Config::rate_limit_max_tracked`]: more live addresses than
/// this at once, and its tables are cleared. Kept here so the configuration needs nothing of
/// the web layer.
pub const RATE_LIMIT_MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub data_dir: PathBuf,
    /// `DATABASE_URL`: PostgreSQL instead of the SQLite file in `data_dir`.
    pub database_url: Option<DatabaseUrl>,
    /// `STORAGE_URL` (with the `AWS_*` variables): artifacts in an S3-compatible bucket
    /// instead of files in `data_dir`.
    pub storage_url: Option<StorageUrl>,

    pub openai_api_key: Option<Secret>,
    /// API root without a trailing slash, e.g. `https://api.openai.com/v1`.
    pub openai_base_url: String,
    pub openai_model: String,
    pub openai_api_style: ApiStyle,

    pub assemblyai_api_key: Option<Secret>,
    /// Origin without a trailing slash, e.g. `https://api.assemblyai.com`.
    pub assemblyai_base_url: String,
    pub assemblyai_poll_interval: Duration,

    /// As configured; [`Config::transcriber`] resolves `auto`.
    pub transcriber: TranscriberChoice,
    /// API root of an OpenAI-compatible speech-to-text server (same `/v1` rule as the LLM's).
    pub transcribe_base_url: Option<String>,
    /// Optional: local whisper servers need none.
    pub transcribe_api_key: Option<Secret>,
    pub transcribe_model: String,
    /// The largest file the speech-to-text server accepts; larger MP3s are sent in parts.
    pub transcribe_max_upload_bytes: u64,

    /// Transcripts longer than this (estimated at 4 characters a token) are summarised in
    /// parts, then the parts are combined.
    pub summary_max_input_tokens: usize,

    /// `EMBEDDINGS_MODEL`: with it, Ask also ranks passages by meaning (embeddings from an
    /// OpenAI-compatible `/embeddings`), fused with the full-text ranking.
    pub embeddings_model: Option<String>,
    /// API root of the embeddings server; `openai_base_url` when unset.
    pub embeddings_base_url: Option<String>,
    /// The passages' budget in an Ask prompt, in tokens (about 4 characters each).
    pub ask_max_input_tokens: usize,
    /// `prompts/ask.md` beside `PROMPT_PATH`: the Ask prompt.
    pub ask_prompt_path: PathBuf,

    pub basic_auth: Option<BasicAuth>,
    pub rate_limit_window: Duration,
    /// `0` disables rate limiting.
    pub rate_limit_max_requests: u32,
    pub trusted_proxies: Vec<IpNet>,
    /// Where `trusted_proxies` came from, for the start-up log.
    pub trusted_proxies_source: &'static str,
    /// Host names answered (DNS rebinding); see [`hosts`].
    pub allowed_hosts: AllowedHosts,

    pub prompt_path: PathBuf,
    pub title_prompt_path: PathBuf,

    pub plaud_web_base_url: String,
    pub plaud_api_base_url: String,

    pub allow_private_urls: bool,
    /// Non-public ranges that job URLs may reach even when `allow_private_urls` is off.
    pub allow_private_cidrs: Vec<IpNet>,
    pub max_download_bytes: u64,
    pub job_timeout: Duration,
    /// How long a worker's claim on a job lasts without renewal; renewed at a third of it.
    /// A job whose lease ran out is taken over by any process from its checkpoint.
    pub job_lease: Duration,
    pub worker_concurrency: usize,

    pub log_format: LogFormat,
    pub rust_log: String,

    /// The zone times are shown in on pages rendered without JavaScript (with it, the
    /// browser's own zone is used).
    pub display_timezone: crate::zone::Zone,

    /// Where job completion and failure events are POSTed, if anywhere.
    pub webhook_url: Option<String>,
    /// Signs webhook events (HMAC-SHA256) when set.
    pub webhook_secret: Option<Secret>,

    /// How long a provider may stay silent before the call counts as timed out.
    pub provider_read_timeout: Duration,
    pub connect_timeout: Duration,
    /// A client must send its request head within this time (slow clients are cut off).
    pub header_timeout: Duration,

    // Not read from the environment: tuning that tests set directly.
    pub retry: RetryPolicy,
    /// Addresses the rate limiter remembers per bucket before it starts afresh.
    pub rate_limit_max_tracked: usize,
    /// Host names answered without DNS (tests use it to give a name a chosen address).
    pub hosts_override: HashMap<String, Vec<IpAddr>>,
}

/// One bad variable: start-up stops with this single line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable} {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

pub(crate) fn bad(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

impl Config {
    /// Reads the process environment (after `.env`, if the caller loaded it).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any source of variables; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let vars = Vars { get: &get };

        let prompt_path = PathBuf::from(
            vars.string("PROMPT_PATH")
                .unwrap_or_else(|| "prompts/meeting_summary.md".into()),
        );
        let title_prompt_path = match vars.string("TITLE_PROMPT_PATH") {
            Some(path) => PathBuf::from(path),
            None => prompt_path
                .parent()
                .map(|dir| dir.join("title_generator.md"))
                .unwrap_or_else(|| PathBuf::from("title_generator.md")),
        };

        let basic_auth = match (
            vars.string("BASIC_AUTH_USER"),
            vars.string("BASIC_AUTH_PASSWORD"),
        ) {
            (Some(user), Some(password)) => {
                if user.contains(':') {
                    return Err(bad(
                        "BASIC_AUTH_USER",
                        "must not contain ':' (HTTP Basic auth cannot carry it)",
                    ));
                }
                Some(BasicAuth {
                    user,
                    password: Secret::new(password),
                })
            }
            _ => None,
        };

        let rate_limit_window_ms: u64 = vars.parse("RATE_LIMIT_WINDOW_MS", 60_000)?;
        if rate_limit_window_ms == 0 {
            return Err(bad("RATE_LIMIT_WINDOW_MS", "must be at least 1"));
        }
        let worker_concurrency: usize = vars.parse("WORKER_CONCURRENCY", 2)?;
        if !(1..=64).contains(&worker_concurrency) {
            return Err(bad("WORKER_CONCURRENCY", "must be between 1 and 64"));
        }
        let job_timeout_secs: u64 = vars.parse("JOB_TIMEOUT_SECS", 3600)?;
        if job_timeout_secs == 0 {
            return Err(bad("JOB_TIMEOUT_SECS", "must be at least 1"));
        }
        let job_lease_secs: u64 = vars.parse("JOB_LEASE_SECS", 60)?;
        if !(1..=86_400).contains(&job_lease_secs) {
            return Err(bad(
                "JOB_LEASE_SECS",
                format!("must be between 1 and 86400 seconds (got {job_lease_secs})"),
            ));
        }
        let poll_ms: u64 = vars.parse("ASSEMBLYAI_POLL_INTERVAL_MS", 3000)?;
        if poll_ms == 0 {
            return Err(bad("ASSEMBLYAI_POLL_INTERVAL_MS", "must be at least 1"));
        }
        let assemblyai_api_key = vars.string("ASSEMBLYAI_API_KEY").map(Secret::new);
        let transcribe_base_url = vars
            .string("TRANSCRIBE_BASE_URL")
            .map(|value| api_root("TRANSCRIBE_BASE_URL", &value))
            .transpose()?;
        let transcriber = match vars
            .string("TRANSCRIBER")
            .map(|value| value.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("auto") => TranscriberChoice::Auto,
            Some("assemblyai") => TranscriberChoice::AssemblyAi,
            Some("openai") => TranscriberChoice::OpenAi,
            Some("none") => TranscriberChoice::None,
            Some(other) => {
                return Err(bad(
                    "TRANSCRIBER",
                    format!("must be auto, assemblyai, openai or none (got {other:?})"),
                ));
            }
        };
        if transcriber == TranscriberChoice::AssemblyAi && assemblyai_api_key.is_none() {
            return Err(bad(
                "ASSEMBLYAI_API_KEY",
                "must be set when TRANSCRIBER=assemblyai",
            ));
        }
        if transcriber == TranscriberChoice::OpenAi && transcribe_base_url.is_none() {
            return Err(bad(
                "TRANSCRIBE_BASE_URL",
                "must be set when TRANSCRIBER=openai (e.g. https://api.openai.com, or http://localhost:8000/v1 for a local whisper server)",
            ));
        }
        let transcribe_max_upload_bytes: u64 =
            vars.parse("TRANSCRIBE_MAX_UPLOAD_BYTES", 25 * 1024 * 1024)?;
        if transcribe_max_upload_bytes < 64 * 1024 {
            return Err(bad(
                "TRANSCRIBE_MAX_UPLOAD_BYTES",
                "must be at least 65536 (64 KB)",
            ));
        }
        let summary_max_input_tokens: usize = vars.parse("SUMMARY_MAX_INPUT_TOKENS", 6000)?;
        if summary_max_input_tokens < 100 {
            return Err(bad("SUMMARY_MAX_INPUT_TOKENS", "must be at least 100"));
        }
        let ask_max_input_tokens: usize = vars.parse("ASK_MAX_INPUT_TOKENS", 6000)?;
        if ask_max_input_tokens < 100 {
            return Err(bad("ASK_MAX_INPUT_TOKENS", "must be at least 100"));
        }
        let ask_prompt_path = prompt_path
            .parent()
            .map(|dir| dir.join("ask.md"))
            .unwrap_or_else(|| PathBuf::from("ask.md"));
        let read_timeout_secs: u64 = vars.parse("PROVIDER_TIMEOUT_SECS", 300)?;
        if read_timeout_secs == 0 {
            return Err(bad("PROVIDER_TIMEOUT_SECS", "must be at least 1"));
        }

        let (trusted_proxies, trusted_proxies_source) = match vars.string("TRUSTED_PROXIES") {
            Some(value) => (parse_cidrs("TRUSTED_PROXIES", &value)?, "TRUSTED_PROXIES"),
            None if proxies::in_container() => (
                proxies::automatic_here(),
                "automatic: loopback and this container's networks, without their gateways",
            ),
            None => (proxies::automatic_here(), "automatic: loopback only"),
        };

        Ok(Self {
            host: parse_host(vars.string("HOST").as_deref().unwrap_or("0.0.0.0"))?,
            port: vars.parse("PORT", 3000)?,
            data_dir: PathBuf::from(vars.string("DATA_DIR").unwrap_or_else(|| "./data".into())),
            database_url: vars
                .string("DATABASE_URL")
                .map(|value| DatabaseUrl::parse(&value))
                .transpose()?,
            storage_url: vars
                .string("STORAGE_URL")
                .map(|value| StorageUrl::parse(&value, &get))
                .transpose()?,

            openai_api_key: vars.string("OPENAI_API_KEY").map(Secret::new),
            openai_base_url: openai_root(
                vars.string("OPENAI_BASE_URL")
                    .as_deref()
                    .unwrap_or("https://api.openai.com"),
            )?,
            openai_model: vars
                .string("OPENAI_MODEL")
                .unwrap_or_else(|| "gpt-4".into()),
            openai_api_style: match vars.string("OPENAI_API_STYLE").as_deref() {
                None | Some("chat") => ApiStyle::Chat,
                Some("responses") => ApiStyle::Responses,
                Some(other) => {
                    return Err(bad(
                        "OPENAI_API_STYLE",
                        format!("must be \"chat\" or \"responses\" (got {other:?})"),
                    ));
                }
            },

            assemblyai_api_key,
            assemblyai_base_url: base_url(
                "ASSEMBLYAI_BASE_URL",
                vars.string("ASSEMBLYAI_BASE_URL")
                    .as_deref()
                    .unwrap_or("https://api.assemblyai.com"),
            )?,
            assemblyai_poll_interval: Duration::from_millis(poll_ms),

            transcriber,
            transcribe_base_url,
            transcribe_api_key: vars.string("TRANSCRIBE_API_KEY").map(Secret::new),
            transcribe_model: vars
                .string("TRANSCRIBE_MODEL")
                .unwrap_or_else(|| "whisper-1".into()),
            transcribe_max_upload_bytes,
            summary_max_input_tokens,

            embeddings_model: vars
                .string("EMBEDDINGS_MODEL")
                .filter(|model| !model.is_empty()),
            embeddings_base_url: vars
                .string("EMBEDDINGS_BASE_URL")
                .map(|value| api_root("EMBEDDINGS_BASE_URL", &value))
                .transpose()?,
            ask_max_input_tokens,
            ask_prompt_path,

            basic_auth,
            rate_limit_window: Duration::from_millis(rate_limit_window_ms),
            rate_limit_max_requests: vars.parse("RATE_LIMIT_MAX_REQUESTS", 60)?,
            trusted_proxies,
            trusted_proxies_source,
            allowed_hosts: AllowedHosts::parse(
                vars.string("ALLOWED_HOSTS").as_deref(),
                hosts::machine_name().as_deref(),
            )?,

            prompt_path,
            title_prompt_path,

            plaud_web_base_url: base_url(
                "PLAUD_WEB_BASE_URL",
                vars.string("PLAUD_WEB_BASE_URL")
                    .as_deref()
                    .unwrap_or("https://web.plaud.ai"),
            )?,
            plaud_api_base_url: base_url(
                "PLAUD_API_BASE_URL",
                vars.string("PLAUD_API_BASE_URL")
                    .as_deref()
                    .unwrap_or("https://api.plaud.ai"),
            )?,

            allow_private_urls: vars.boolean("ALLOW_PRIVATE_URLS", false)?,
            allow_private_cidrs: parse_cidrs(
                "ALLOW_PRIVATE_CIDRS",
                vars.string("ALLOW_PRIVATE_CIDRS").as_deref().unwrap_or(""),
            )?,
            max_download_bytes: vars.parse("MAX_DOWNLOAD_BYTES", 1_073_741_824)?,
            job_timeout: Duration::from_secs(job_timeout_secs),
            job_lease: Duration::from_secs(job_lease_secs),
            worker_concurrency,

            log_format: match vars.string("LOG_FORMAT").as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(bad(
                        "LOG_FORMAT",
                        format!("must be \"text\" or \"json\" (got {other:?})"),
                    ));
                }
            },
            rust_log: vars.string("RUST_LOG").unwrap_or_else(|| "info".into()),
            display_timezone: match vars.string("DISPLAY_TIMEZONE") {
                None => crate::zone::Zone::UTC,
                Some(name) => parse_timezone(&name)?,
            },

            webhook_url: vars
                .string("WEBHOOK_URL")
                .map(|url| {
                    base_url("WEBHOOK_URL", &url)?;
                    Ok::<_, ConfigError>(url)
                })
                .transpose()?,
            webhook_secret: vars.string("WEBHOOK_SECRET").map(Secret::new),

            provider_read_timeout: Duration::from_secs(read_timeout_secs),
            connect_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(15),
            retry: RetryPolicy::default(),
            rate_limit_max_tracked: RATE_LIMIT_MAX_TRACKED,
            hosts_override: HashMap::new(),
        })
    }

    /// A configuration for tests and tools: every default, data in `data_dir`.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let mut config = Self::from_lookup(|_| None).expect("the defaults are valid");
        config.data_dir = data_dir.into();
        config
    }

    pub fn summaries_enabled(&self) -> bool {
        self.openai_api_key.is_some()
    }

    pub fn transcription_enabled(&self) -> bool {
        self.transcriber() != TranscriberChoice::None
    }

    /// The provider that transcribes, with `auto` resolved (never `Auto`).
    pub fn transcriber(&self) -> TranscriberChoice {
        match self.transcriber {
            TranscriberChoice::Auto if self.assemblyai_api_key.is_some() => {
                TranscriberChoice::AssemblyAi
            }
            TranscriberChoice::Auto if self.transcribe_base_url.is_some() => {
                TranscriberChoice::OpenAi
            }
            TranscriberChoice::Auto => TranscriberChoice::None,
            chosen => chosen,
        }
    }

    /// The template a job gets when it names none: the one `PROMPT_PATH` points at.
    pub fn default_template(&self) -> Option<String> {
        self.prompt_path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
    }

    /// `text` with every configured secret value, and anything that looks like a bearer token
    /// or an OpenAI-style key, replaced by `[redacted]`. Providers echo what they received
    /// ("Incorrect API key provided: sk-…"); their messages go through here before they are
    /// stored in a job, shown or logged.
    pub fn redact(&self, text: &str) -> String {
        static PATTERNS: std::sync::LazyLock<[regex::Regex; 3]> = std::sync::LazyLock::new(|| {
            [
                regex::Regex::new(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}")
                    .expect("a valid pattern"),
                regex::Regex::new(
                    r"(?i)\b(api[_-]?key|access[_-]?token|token|key|secret|password)(=)[^&\s\x22']{4,}",
                )
                .expect("a valid pattern"),
                regex::Regex::new(r"\b(sk|pk|rk)(-)[A-Za-z0-9_*-]{6,}").expect("a valid pattern"),
            ]
        });
        let mut text = text.to_string();
        let secrets = [
            &self.openai_api_key,
            &self.assemblyai_api_key,
            &self.transcribe_api_key,
            &self.webhook_secret,
        ];
        let password = self.basic_auth.as_ref().map(|auth| &auth.password);
        let database_password = self
            .database_url
            .as_ref()
            .and_then(|url| url.password.as_ref());
        let storage_secret = self
            .storage_url
            .as_ref()
            .and_then(|url| url.secret_access_key.as_ref());
        for secret in secrets
            .into_iter()
            .flatten()
            .chain(password)
            .chain(database_password)
            .chain(storage_secret)
        {
            // Shorter values would redact ordinary words; no real key is that short.
            if secret.expose().len() >= 4 && text.contains(secret.expose()) {
                text = text.replace(secret.expose(), "[redacted]");
            }
        }
        for pattern in PATTERNS.iter() {
            if let std::borrow::Cow::Owned(replaced) =
                pattern.replace_all(&text, "${1}${2}[redacted]")
            {
                text = replaced;
            }
        }
        text
    }

    /// The folder of `PROMPT_PATH`, where per-job prompt templates live.
    pub fn prompts_dir(&self) -> PathBuf {
        self.prompt_path
            .parent()
            .map(|dir| dir.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

/// An IANA zone name (`Europe/Berlin`, `UTC`), as `DISPLAY_TIMEZONE` gives it.
fn parse_timezone(name: &str) -> Result<crate::zone::Zone, ConfigError> {
    name.parse().map_err(|_| {
        bad(
            "DISPLAY_TIMEZONE",
            format!(
                "must be an IANA time zone such as Europe/Berlin, America/New_York or UTC \
                 (got {name:?})"
            ),
        )
    })
}

struct Vars<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl Vars<'_> {
    fn string(&self, name: &str) -> Option<String> {
        (self.get)(name).map(|value| value.trim().to_string())
    }

    fn parse<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError> {
        match self.string(name) {
            None => Ok(default),
            Some(value) => value
                .parse()
                .map_err(|_| bad(name, format!("must be a whole number (got {value:?})"))),
        }
    }

    fn boolean(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.string(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(bad(name, format!("must be true or false (got {other:?})"))),
        }
    }
}

fn parse_host(value: &str) -> Result<IpAddr, ConfigError> {
    if value.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    value.trim_matches(['[', ']']).parse().map_err(|_| {
        bad(
            "HOST",
            format!("must be an IP address such as 0.0.0.0 or 127.0.0.1 (got {value:?})"),
        )
    })
}

/// An http(s) URL, returned without its trailing slash.
fn base_url(variable: &'static str, value: &str) -> Result<String, ConfigError> {
    let url = Url::parse(value)
        .map_err(|error| bad(variable, format!("is not a URL ({error}): {value:?}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad(
            variable,
            format!("must be an http or https URL (got {value:?})"),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A bare origin gets `/v1`; a URL with a path is used as given.
fn openai_root(value: &str) -> Result<String, ConfigError> {
    api_root("OPENAI_BASE_URL", value)
}

/// An OpenAI-style API root: a bare origin gets `/v1`; a URL with a path is used as given.
fn api_root(variable: &'static str, value: &str) -> Result<String, ConfigError> {
    let root = base_url(variable, value)?;
    let url = Url::parse(&root).map_err(|error| bad(variable, error.to_string()))?;
    if url.path() == "/" || url.path().is_empty() {
        Ok(format!("{root}/v1"))
    } else {
        Ok(root)
    }
}

fn parse_cidrs(variable: &'static str, value: &str) -> Result<Vec<IpNet>, ConfigError> {
    if value.trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<IpNet>()
                .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    bad(
                        variable,
                        format!("has a malformed CIDR {part:?} (expected e.g. 10.0.0.0/8)"),
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_contract() {
        let config = config(&[]).unwrap();
        assert_eq!(config.port, 3000);
        assert_eq!(config.host.to_string(), "0.0.0.0");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.openai_base_url, "https://api.openai.com/v1");
        assert_eq!(config.openai_model, "gpt-4");
        assert_eq!(config.openai_api_style, ApiStyle::Chat);
        assert_eq!(config.assemblyai_base_url, "https://api.assemblyai.com");
        assert_eq!(config.assemblyai_poll_interval, Duration::from_millis(3000));
        assert_eq!(config.rate_limit_window, Duration::from_secs(60));
        assert_eq!(config.rate_limit_max_requests, 60);
        // Loopback is trusted; a LAN client is not (it could choose its own rate-limit key).
        assert!(proxies::trusted(
            "127.0.0.1".parse().unwrap(),
            &config.trusted_proxies
        ));
        assert!(!proxies::trusted(
            "192.168.1.50".parse().unwrap(),
            &config.trusted_proxies
        ));
        assert_eq!(
            config.title_prompt_path,
            PathBuf::from("prompts/title_generator.md")
        );
        assert_eq!(config.max_download_bytes, 1_073_741_824);
        assert_eq!(config.job_timeout, Duration::from_secs(3600));
        assert_eq!(config.job_lease, Duration::from_secs(60));
        assert_eq!(config.worker_concurrency, 2);
        assert!(!config.allow_private_urls);
        assert!(config.basic_auth.is_none());
        assert_eq!(config.display_timezone, crate::zone::Zone::UTC);
    }

    #[test]
    fn the_display_timezone_is_an_iana_name() {
        let berlin = config(&[("DISPLAY_TIMEZONE", "Europe/Berlin")]).unwrap();
        assert_eq!(
            berlin.display_timezone,
            crate::zone::Zone::named("Europe/Berlin").unwrap()
        );
        let error = config(&[("DISPLAY_TIMEZONE", "Mars/Olympus")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid configuration: DISPLAY_TIMEZONE must be an IANA time zone such as \
             Europe/Berlin, America/New_York or UTC (got \"Mars/Olympus\")"
        );
    }

    #[test]
    fn openai_root_appends_v1_only_to_a_bare_origin() {
        for (given, root) in [
            ("https://api.openai.com", "https://api.openai.com/v1"),
            ("https://api.openai.com/", "https://api.openai.com/v1"),
            ("http://localhost:11434/v1", "http://localhost:11434/v1"),
            (
                "https://openrouter.ai/api/v1/",
                "https://openrouter.ai/api/v1",
            ),
        ] {
            let config = config(&[("OPENAI_BASE_URL", given)]).unwrap();
            assert_eq!(config.openai_base_url, root, "{given}");
        }
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (name, value) in [
            ("PORT", "eighty"),
            ("PORT", "70000"),
            ("OPENAI_API_STYLE", "completions"),
            ("TRUSTED_PROXIES", "10.0.0.0/33"),
            ("LOG_FORMAT", "xml"),
            ("ALLOW_PRIVATE_URLS", "maybe"),
            ("WORKER_CONCURRENCY", "0"),
            ("JOB_LEASE_SECS", "0"),
            ("JOB_LEASE_SECS", "a minute"),
            ("HOST", "example.com"),
            ("OPENAI_BASE_URL", "ftp://example.com"),
            ("MAX_DOWNLOAD_BYTES", "-1"),
            ("DATABASE_URL", "mysql://root@localhost/focusflow"),
            ("DISPLAY_TIMEZONE", "CEST+2"),
        ] {
            let error = config(&[(name, value)]).unwrap_err();
            assert_eq!(error.variable, name);
            assert!(error.to_string().contains(name), "{error}");
        }
    }

    #[test]
    fn the_transcriber_is_chosen_by_what_is_configured() {
        let none = config(&[]).unwrap();
        assert_eq!(none.transcriber(), TranscriberChoice::None);
        assert!(!none.transcription_enabled());
        let local = config(&[("TRANSCRIBE_BASE_URL", "http://localhost:8000")]).unwrap();
        assert_eq!(local.transcriber(), TranscriberChoice::OpenAi);
        assert_eq!(
            local.transcribe_base_url.as_deref(),
            Some("http://localhost:8000/v1")
        );
        assert_eq!(local.transcribe_model, "whisper-1");
        assert_eq!(local.transcribe_max_upload_bytes, 25 * 1024 * 1024);
        let both = config(&[
            ("TRANSCRIBE_BASE_URL", "http://localhost:8000/v1"),
            ("ASSEMBLYAI_API_KEY", "k"),
        ])
        .unwrap();
        assert_eq!(both.transcriber(), TranscriberChoice::AssemblyAi);
        let forced = config(&[
            ("TRANSCRIBER", "openai"),
            ("TRANSCRIBE_BASE_URL", "http://localhost:8000/v1"),
            ("ASSEMBLYAI_API_KEY", "k"),
        ])
        .unwrap();
        assert_eq!(forced.transcriber(), TranscriberChoice::OpenAi);
        let off = config(&[("TRANSCRIBER", "none"), ("ASSEMBLYAI_API_KEY", "k")]).unwrap();
        assert_eq!(off.transcriber(), TranscriberChoice::None);
        assert_eq!(off.summary_max_input_tokens, 6000);
        for (vars, variable) in [
            (vec![("TRANSCRIBER", "whisper")], "TRANSCRIBER"),
            (vec![("TRANSCRIBER", "openai")], "TRANSCRIBE_BASE_URL"),
            (vec![("TRANSCRIBER", "assemblyai")], "ASSEMBLYAI_API_KEY"),
            (
                vec![("TRANSCRIBE_BASE_URL", "localhost:8000")],
                "TRANSCRIBE_BASE_URL",
            ),
            (
                vec![("TRANSCRIBE_MAX_UPLOAD_BYTES", "25MB")],
                "TRANSCRIBE_MAX_UPLOAD_BYTES",
            ),
            (
                vec![("TRANSCRIBE_MAX_UPLOAD_BYTES", "10")],
                "TRANSCRIBE_MAX_UPLOAD_BYTES",
            ),
            (
                vec![("SUMMARY_MAX_INPUT_TOKENS", "0")],
                "SUMMARY_MAX_INPUT_TOKENS",
            ),
        ] {
            let error = config(&vars).unwrap_err();
            assert_eq!(error.variable, variable, "{vars:?}: {error}");
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let config = config(&[
            ("OPENAI_API_KEY", "sk-very-secret"),
            ("ASSEMBLYAI_API_KEY", "aai-very-secret"),
            ("TRANSCRIBE_API_KEY", "tr-very-secret"),
            ("BASIC_AUTH_USER", "ana"),
            ("BASIC_AUTH_PASSWORD", "hunter2"),
            (
                "DATABASE_URL",
                "postgres://focus:pg-very-secret@db:5432/focusflow",
            ),
        ])
        .unwrap();
        let debug = format!("{config:?}");
        for secret in [
            "sk-very-secret",
            "aai-very-secret",
            "tr-very-secret",
            "hunter2",
            "pg-very-secret",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked");
        }
        assert!(debug.contains("postgres://focus:[redacted]@db:5432/focusflow"));
        assert_eq!(
            config.redact("password authentication failed: pg-very-secret"),
            "password authentication failed: [redacted]"
        );
        assert!(config.summaries_enabled() && config.transcription_enabled());
    }

    #[test]
    fn the_s3_secret_is_redacted_and_storage_is_read_with_its_variables() {
        let config = config(&[
            ("STORAGE_URL", "s3://meetings/focusflow"),
            ("AWS_ENDPOINT_URL", "http://garage:3900"),
            ("AWS_ACCESS_KEY_ID", "GK31c2f218a2e44f485b94239e"),
            ("AWS_SECRET_ACCESS_KEY", "s3-very-secret-value"),
        ])
        .unwrap();
        let storage = config.storage_url.as_ref().unwrap();
        assert_eq!(
            (storage.bucket.as_str(), storage.prefix.as_str()),
            ("meetings", "focusflow")
        );
        assert_eq!(storage.endpoint.as_deref(), Some("http://garage:3900"));
        assert!(!format!("{config:?}").contains("s3-very-secret-value"));
        assert_eq!(
            config.redact("SignatureDoesNotMatch for s3-very-secret-value"),
            "SignatureDoesNotMatch for [redacted]"
        );
        // Unset keeps the files in DATA_DIR; a bad URL names the variable.
        assert!(config_defaults().storage_url.is_none());
        let error = super::tests::config(&[("STORAGE_URL", "/mnt/bucket")]).unwrap_err();
        assert_eq!(error.variable, "STORAGE_URL");
    }

    fn config_defaults() -> Config {
        config(&[]).unwrap()
    }

    #[test]
    fn empty_values_count_as_unset() {
        let config = config(&[("OPENAI_API_KEY", ""), ("PORT", " ")]).unwrap();
        assert!(config.openai_api_key.is_none());
        assert_eq!(config.port, 3000);
    }

    #[test]
    fn secrets_and_keys_are_redacted_from_provider_messages() {
        let config = config(&[
            ("OPENAI_API_KEY", "my-llm-key-1234567"),
            ("ASSEMBLYAI_API_KEY", "0123456789abcdef0123456789abcdef"),
            ("BASIC_AUTH_USER", "ana"),
            ("BASIC_AUTH_PASSWORD", "correct horse"),
        ])
        .unwrap();
        let message = "401: Incorrect API key provided: my-llm-key-1234567. Also \
            sk-proj-AbC123xyz_-987, header Authorization: Bearer eyJhbGciOi.J9.xyz, \
            key 0123456789abcdef0123456789abcdef, password correct horse, token=abcdefgh12345";
        let redacted = config.redact(message);
        for secret in [
            "my-llm-key-1234567",
            "sk-proj-AbC123xyz",
            "eyJhbGciOi",
            "0123456789abcdef",
            "correct horse",
            "abcdefgh12345",
        ] {
            assert!(!redacted.contains(secret), "{secret} in {redacted}");
        }
        assert!(redacted.starts_with("401: Incorrect API key provided: [redacted]."));
        // Ordinary text is left alone.
        for ordinary in [
            "the URL did not serve audio (got text/html)",
            "Basic understanding: the token limitation of 8192 tokens was reached",
            "task-manager and disk-based sk-learn",
        ] {
            assert_eq!(config.redact(ordinary), ordinary);
        }
    }

    #[test]
    fn trusted_proxies_accept_bare_addresses_and_none() {
        let config = config(&[("TRUSTED_PROXIES", "172.18.0.2, 10.0.0.0/8")]).unwrap();
        assert_eq!(config.trusted_proxies.len(), 2);
        let none = super::parse_cidrs("TRUSTED_PROXIES", "none").unwrap();
        assert!(none.is_empty());
    }
}
