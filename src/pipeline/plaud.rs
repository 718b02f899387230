//! Plaud share links: finding the audio and the meeting date behind `…plaud.ai/share/<token>`.
//!
//! The chain is the original app's, each attempt logged: the share page (for the date in its
//! `<title>`), the `share-file-temp` API, the `share-content` API, then whatever the page itself
//! links to (direct audio links, the `__NEXT_DATA__` JSON, JSON url fields).

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;
use url::Url;

use super::StageContext;
use crate::config::Config;
use crate::jobs::parse_meeting_date;
use crate::net::describe_error;
use crate::net::retry::provider_message;

/// A URL whose host is `plaud.ai` or ends in `.plaud.ai`.
pub fn is_share_link(url: &Url) -> bool {
    url.host_str().is_some_and(|host| {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        host == "plaud.ai" || host.ends_with(".plaud.ai")
    })
}

/// The token after `/share/` in the link's path.
pub fn share_token(url: &Url) -> Option<String> {
    let mut segments = url.path_segments()?;
    segments.find(|segment| *segment == "share")?;
    segments
        .next()
        .filter(|token| !token.is_empty())
        .map(str::to_string)
}

/// Plaud's share endpoints, built once when the workers start (see [`super::Services`]): it
/// speaks HTTP to Plaud's web and API hosts and hands back the page or the JSON answer, or why
/// there is none; the stage decides what to look for in them and logs each attempt.
#[derive(Debug, Clone)]
pub struct Plaud {
    client: reqwest::Client,
    web_base_url: String,
    api_base_url: String,
}

impl Plaud {
    pub fn from_config(config: &Config, client: reqwest::Client) -> Self {
        Self {
            client,
            web_base_url: config.plaud_web_base_url.clone(),
            api_base_url: config.plaud_api_base_url.clone(),
        }
    }

    /// The share page on Plaud's web host, at the link's path and query.
    async fn share_page(&self, link: &Url) -> Result<String, String> {
        let mut page_url = format!("{}{}", self.web_base_url, link.path());
        if let Some(query) = link.query() {
            page_url.push('?');
            page_url.push_str(query);
        }
        self.text(&page_url).await
    }

    /// The `share-file-temp` API's answer for a share token.
    async fn share_file_temp(&self, token: &str) -> Result<Value, String> {
        self.json(&format!(
            "{}/file/share-file-temp/{token}",
            self.api_base_url
        ))
        .await
    }

    /// The `share-content` API's answer for a share token.
    async fn share_content(&self, token: &str) -> Result<Value, String> {
        self.json(&format!("{}/file/share-content/{token}", self.api_base_url))
            .await
    }

    async fn text(&self, url: &str) -> Result<String, String> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|error| describe_error(&error))?;
        let status = response.status();
        let body = read_limited(response).await?;
        if !status.is_success() {
            let detail = provider_message(&body);
            return Err(if detail.is_empty() {
                format!("the server answered {status}")
            } else {
                format!("the server answered {status}: {detail}")
            });
        }
        Ok(body)
    }

    async fn json(&self, url: &str) -> Result<Value, String> {
        let body = self.text(url).await?;
        serde_json::from_str(&body).map_err(|_| "the answer was not JSON".to_string())
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    pub audio_url: Option<String>,
    /// ISO 8601.
    pub meeting_date: Option<String>,
}

/// Follows the chain until an audio URL is found. Never fails: what it cannot find stays None.
pub async fn resolve(context: &StageContext, link: &Url) -> Findings {
    let mut findings = Findings::default();
    let page = share_page(context, link).await;
    if let Some((_, date)) = &page {
        findings.meeting_date = date.clone();
    }
    let page = page.map(|(page, _)| page);

    let Some(token) = share_token(link) else {
        context
            .log("The Plaud link has no /share/<token> part; the share APIs are skipped")
            .await;
        findings.audio_url = page.as_deref().and_then(audio_url_in_page);
        return findings;
    };
    findings.audio_url = share_file_temp(context, &token).await;
    if findings.audio_url.is_some() {
        return findings;
    }
    let (audio_url, date) = share_content(context, &token).await;
    if findings.meeting_date.is_none() {
        findings.meeting_date = date;
    }
    findings.audio_url = audio_url;
    if findings.audio_url.is_some() {
        return findings;
    }
    if let Some(page) = &page {
        findings.audio_url = audio_url_named_by_page(context, page).await;
    }
    findings
}

/// The share page and the meeting date in its `<title>`; None when it cannot be fetched.
async fn share_page(context: &StageContext, link: &Url) -> Option<(String, Option<String>)> {
    match context.services.plaud.share_page(link).await {
        Ok(page) => {
            let date = page_title(&page).and_then(|title| date_in_text(&title));
            match &date {
                Some(date) => {
                    context
                        .log(format!("Plaud share page fetched; meeting date {date}"))
                        .await
                }
                None => {
                    context
                        .log("Plaud share page fetched; no meeting date in its title")
                        .await
                }
            }
            Some((page, date))
        }
        Err(message) => {
            context
                .log(format!("Plaud share page unavailable: {message}"))
                .await;
            None
        }
    }
}

/// The audio URL from the `share-file-temp` API, if it gives one.
async fn share_file_temp(context: &StageContext, token: &str) -> Option<String> {
    match context.services.plaud.share_file_temp(token).await {
        Ok(json) => match find_url(
            &json,
            &["temp_url", "url", "fileUrl", "audioUrl", "downloadUrl"],
        ) {
            Some(url) => {
                context
                    .log("Plaud share-file-temp API gave the audio URL")
                    .await;
                Some(url)
            }
            None => {
                context
                    .log("Plaud share-file-temp API answered without an audio URL")
                    .await;
                None
            }
        },
        Err(message) => {
            context
                .log(format!("Plaud share-file-temp API failed: {message}"))
                .await;
            None
        }
    }
}

/// The audio URL and the meeting date from the `share-content` API, each if it gives one.
async fn share_content(context: &StageContext, token: &str) -> (Option<String>, Option<String>) {
    match context.services.plaud.share_content(token).await {
        Ok(json) => {
            let date = find_date(&json);
            match find_url(&json, &["fileUrl", "audioUrl", "url"]) {
                Some(url) => {
                    context
                        .log("Plaud share-content API gave the audio URL")
                        .await;
                    (Some(url), date)
                }
                None => {
                    context
                        .log("Plaud share-content API answered without an audio URL")
                        .await;
                    (None, date)
                }
            }
        }
        Err(message) => {
            context
                .log(format!("Plaud share-content API failed: {message}"))
                .await;
            (None, None)
        }
    }
}

/// The last resort: an audio URL the share page itself links to.
async fn audio_url_named_by_page(context: &StageContext, page: &str) -> Option<String> {
    let url = audio_url_in_page(page);
    match &url {
        Some(_) => {
            context
                .log("Found the audio URL in the Plaud share page")
                .await
        }
        None => context.log("The Plaud share page names no audio URL").await,
    }
    url
}

/// Pages and API answers are small; a huge one is not what we are looking for.
async fn read_limited(mut response: reqwest::Response) -> Result<String, String> {
    const LIMIT: usize = 8 * 1024 * 1024;
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| describe_error(&error))?
    {
        if body.len() + chunk.len() > LIMIT {
            return Err("the answer was larger than 8 MB".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// `\u002F`, double-escaped `\\u002F`, and `\/` all mean `/` in pages that embed JSON.
pub fn unescape_slashes(text: &str) -> String {
    static ESCAPED: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)\\+u002f|\\+/").expect("a valid pattern"));
    let text = ESCAPED.replace_all(text, "/");
    static AMP: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)\\+u0026|&amp;").expect("a valid pattern"));
    AMP.replace_all(&text, "&").into_owned()
}

fn page_title(page: &str) -> Option<String> {
    static TITLE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?is)<title[^>]*>(.*?)</title>").expect("a valid pattern"));
    TITLE
        .captures(page)
        .map(|captures| captures[1].trim().to_string())
}

/// A date such as "2025-09-25 20:05:39" anywhere in a text, as ISO 8601.
fn date_in_text(text: &str) -> Option<String> {
    static DATE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?").expect("a valid pattern")
    });
    DATE.find_iter(text)
        .find_map(|found| parse_meeting_date(found.as_str()))
}

fn is_http_url(text: &str) -> bool {
    Url::parse(text).is_ok_and(|url| matches!(url.scheme(), "http" | "https"))
}

/// The first http(s) URL under one of `keys`, at the top level or inside `data`.
fn find_url(json: &Value, keys: &[&str]) -> Option<String> {
    let scopes = [Some(json), json.get("data"), json.pointer("/data/data")];
    scopes.into_iter().flatten().find_map(|scope| {
        keys.iter().find_map(|key| {
            scope
                .get(*key)
                .and_then(Value::as_str)
                .map(unescape_slashes)
                .filter(|url| is_http_url(url))
        })
    })
}

fn find_date(json: &Value) -> Option<String> {
    let scopes = [Some(json), json.get("data")];
    scopes.into_iter().flatten().find_map(|scope| {
        [
            "createTime",
            "create_time",
            "timestamp",
            "startTime",
            "start_time",
        ]
        .iter()
        .find_map(|key| match scope.get(*key)? {
            Value::Number(number) => parse_meeting_date(&number.to_string()),
            Value::String(text) => parse_meeting_date(text),
            _ => None,
        })
    })
}

fn looks_like_audio(url: &str) -> bool {
    Url::parse(url).is_ok_and(|parsed| {
        let path = parsed.path().to_ascii_lowercase();
        [
            ".mp3", ".m4a", ".wav", ".ogg", ".opus", ".webm", ".mp4", ".aac", ".flac",
        ]
        .iter()
        .any(|extension| path.ends_with(extension))
    })
}

/// Searches a page for the audio: direct links, then `__NEXT_DATA__`, then JSON url fields.
pub fn audio_url_in_page(page: &str) -> Option<String> {
    let page = unescape_slashes(page);
    static DIRECT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(?i)https?://[^\s"'<>\\]+?\.(?:mp3|m4a|wav)(?:\?[^\s"'<>\\]*)?"#)
            .expect("a valid pattern")
    });
    if let Some(found) = DIRECT.find(&page) {
        return Some(found.as_str().to_string());
    }

    static NEXT_DATA: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(?is)<script[^>]*id=["']__NEXT_DATA__["'][^>]*>(.*?)</script>"#)
            .expect("a valid pattern")
    });
    if let Some(captures) = NEXT_DATA.captures(&page)
        && let Ok(json) = serde_json::from_str::<Value>(&captures[1])
        && let Some(url) = search_json(&json, 0)
    {
        return Some(url);
    }

    static URL_FIELD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r#"(?i)"(?:temp_url|fileUrl|audioUrl|downloadUrl|url)"\s*:\s*"(https?://[^"]+)""#,
        )
        .expect("a valid pattern")
    });
    URL_FIELD
        .captures_iter(&page)
        .map(|captures| unescape_slashes(&captures[1]))
        .find(|url| is_http_url(url))
}

/// Depth-first search of a JSON tree for an audio URL: one with an audio extension anywhere,
/// else one under a url-like key.
fn search_json(value: &Value, depth: usize) -> Option<String> {
    fn walk(value: &Value, depth: usize, key: Option<&str>, found: &mut Vec<(bool, String)>) {
        if depth > 64 {
            return;
        }
        match value {
            Value::String(text) => {
                let text = unescape_slashes(text);
                if is_http_url(&text) {
                    let url_key = key.is_some_and(|key| {
                        matches!(
                            key,
                            "temp_url"
                                | "url"
                                | "fileUrl"
                                | "audioUrl"
                                | "downloadUrl"
                                | "file_url"
                                | "audio_url"
                        )
                    });
                    if looks_like_audio(&text) {
                        found.push((true, text));
                    } else if url_key {
                        found.push((false, text));
                    }
                } else if text.trim_start().starts_with('{') {
                    // JSON inside a string (double-encoded props).
                    if let Ok(inner) = serde_json::from_str::<Value>(&text) {
                        walk(&inner, depth + 1, None, found);
                    }
                }
            }
            Value::Array(items) => items
                .iter()
                .for_each(|item| walk(item, depth + 1, key, found)),
            Value::Object(map) => map
                .iter()
                .for_each(|(name, item)| walk(item, depth + 1, Some(name), found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(value, depth, None, &mut found);
    found
        .iter()
        .find(|(audio, _)| *audio)
        .or_else(|| found.first())
        .map(|(_, url)| url.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_links_are_recognised() {
        for (link, token) in [
            ("https://web.plaud.ai/share/abc123", Some("abc123")),
            ("https://plaud.ai/share/xyz?x=1", Some("xyz")),
            ("https://app.plaud.ai/s/share/tok/extra", Some("tok")),
            ("https://web.plaud.ai/other", None),
        ] {
            let url = Url::parse(link).unwrap();
            assert!(is_share_link(&url), "{link}");
            assert_eq!(share_token(&url).as_deref(), token, "{link}");
        }
        for link in [
            "https://plaud.ai.evil.com/share/x",
            "https://notplaud.ai/share/x",
        ] {
            assert!(!is_share_link(&Url::parse(link).unwrap()), "{link}");
        }
    }

    #[test]
    fn the_title_gives_the_meeting_date() {
        let page =
            "<html><head><title>Weekly sync 2025-09-25 20:05:39 - Plaud</title></head></html>";
        assert_eq!(
            page_title(page).and_then(|t| date_in_text(&t)).as_deref(),
            Some("2025-09-25T20:05:39.000Z")
        );
    }

    #[test]
    fn audio_is_found_in_pages_however_it_is_written() {
        let direct = r#"<a href="https://cdn.example.com/a/b.mp3?sig=1">x</a>"#;
        assert_eq!(
            audio_url_in_page(direct).as_deref(),
            Some("https://cdn.example.com/a/b.mp3?sig=1")
        );
        let escaped =
            r#"<script>var x = "https:\u002F\u002Fcdn.example.com\u002Frec.m4a";</script>"#;
        assert_eq!(
            audio_url_in_page(escaped).as_deref(),
            Some("https://cdn.example.com/rec.m4a")
        );
        let double = r#"<script>"https:\\u002F\\u002Fcdn.example.com\\u002Fz.wav"</script>"#;
        assert_eq!(
            audio_url_in_page(double).as_deref(),
            Some("https://cdn.example.com/z.wav")
        );
        let next = r#"<script id="__NEXT_DATA__" type="application/json">{"props":{"pageProps":{"file":{"audioUrl":"https://s3.example.com/object?X-Amz=1"}}}}</script>"#;
        assert_eq!(
            audio_url_in_page(next).as_deref(),
            Some("https://s3.example.com/object?X-Amz=1")
        );
        let field =
            r#"<script>window.__x = {"fileUrl":"https:\/\/files.example.com\/get?id=9"}</script>"#;
        assert_eq!(
            audio_url_in_page(field).as_deref(),
            Some("https://files.example.com/get?id=9")
        );
        assert_eq!(audio_url_in_page("<html>nothing</html>"), None);
    }

    #[test]
    fn api_answers_may_be_wrapped_in_data() {
        let json: Value = serde_json::from_str(
            r#"{"status":0,"data":{"fileUrl":"https://cdn.example.com/f.mp3","createTime":1758830739000}}"#,
        )
        .unwrap();
        assert_eq!(
            find_url(&json, &["fileUrl", "audioUrl", "url"]).as_deref(),
            Some("https://cdn.example.com/f.mp3")
        );
        assert_eq!(
            find_date(&json).as_deref(),
            Some("2025-09-25T20:05:39.000Z")
        );
        let not_a_url: Value = serde_json::from_str(r#"{"url":"javascript:alert(1)"}"#).unwrap();
        assert_eq!(find_url(&not_a_url, &["url"]), None);
    }
}
