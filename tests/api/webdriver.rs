//! A small W3C WebDriver client over the reqwest this crate already uses (a WebDriver crate would
//! bring a second reqwest), and a chromedriver started on a free loopback port.
//!
//! Only what the browser test needs: sessions, navigation, elements by CSS selector, clicks,
//! keys, text, scripts, screenshots, the window size, and Chrome's DevTools pass-through for a
//! phone-sized viewport and full-page pictures.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver, or None when it is not installed.
pub fn find_chromedriver() -> Option<PathBuf> {
    let candidates = std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
                .into_iter()
                .map(PathBuf::from),
        );
    candidates.into_iter().find(|path| path.is_file())
}

/// The browser binary itself (Debian's /usr/bin/chromium is a shell wrapper).
fn find_chromium() -> Option<PathBuf> {
    std::env::var_os("CHROME_BIN")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/usr/lib/chromium/chromium",
                "/usr/bin/chromium",
                "/usr/bin/chromium-browser",
                "/usr/bin/google-chrome",
            ]
            .into_iter()
            .map(PathBuf::from),
        )
        .find(|path| path.is_file())
}

/// A chromedriver process, stopped when dropped.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    pub async fn start(binary: &Path) -> Self {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(response) = client.get(format!("{}/status", driver.url)).send().await
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser session.
pub struct Browser {
    client: reqwest::Client,
    base: String,
}

#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Headless Chromium with a fresh profile in `profile`.
    pub async fn new(driver: &Driver, profile: &Path) -> Self {
        Self::start(driver, profile, true).await
    }

    /// The same with JavaScript turned off, as some people browse: pages must work with forms
    /// and links alone. (WebDriver's own commands still work: chromedriver runs its scripts in
    /// a world of its own, not the page's.)
    pub async fn without_javascript(driver: &Driver, profile: &Path) -> Self {
        Self::start(driver, profile, false).await
    }

    async fn start(driver: &Driver, profile: &Path, javascript: bool) -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut options = json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        });
        if let Some(binary) = find_chromium() {
            options["binary"] = json!(binary);
        }
        if !javascript {
            options["args"]
                .as_array_mut()
                .expect("the arguments are a list")
                .push(json!("--blink-settings=scriptEnabled=false"));
            options["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
        }
        let body = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": options,
                }
            }
        });
        let response: Value = client
            .post(format!("{}/session", driver.url))
            .json(&body)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .unwrap();
        let session = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {response:#}"))
            .to_string();
        Self {
            client,
            base: format!("{}/session/{session}", driver.url),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_call(method.clone(), path, body)
            .await
            .unwrap_or_else(|error| panic!("WebDriver {method} {path}: {error:#}"))
    }

    /// The command's `value`, or the WebDriver error object.
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Value> {
        let post = method == reqwest::Method::POST;
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        // WebDriver wants a JSON body on every POST, even an empty one.
        if post {
            request = request.json(&body.unwrap_or_else(|| json!({})));
        }
        let response = request.send().await.expect("chromedriver answers");
        let ok = response.status().is_success();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let value = body.get("value").cloned().unwrap_or(Value::Null);
        if ok { Ok(value) } else { Err(value) }
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn refresh(&self) {
        self.call(reqwest::Method::POST, "/refresh", None).await;
    }

    /// The first element matching `css`, if any.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        let found = self
            .try_call(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await
            .ok()?;
        found[ELEMENT].as_str().map(|id| Element(id.to_string()))
    }

    pub async fn find(&self, css: &str) -> Element {
        self.try_find(css)
            .await
            .unwrap_or_else(|| panic!("no element matches {css}"))
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        found
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item[ELEMENT].as_str())
                    .map(|id| Element(id.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn click(&self, element: &Element) {
        // Into the middle of the window first: chromedriver scrolls an element to the top edge,
        // where the page's sticky top bar covers it (a person sees it before clicking).
        let _ = self
            .try_call(
                reqwest::Method::POST,
                "/execute/sync",
                Some(json!({
                    "script": "arguments[0].scrollIntoView({ block: 'center' }); return true;",
                    "args": [{ ELEMENT: element.0 }],
                })),
            )
            .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/click", element.0),
            None,
        )
        .await;
    }

    /// Empties an input or a text area.
    pub async fn clear(&self, element: &Element) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/clear", element.0),
            None,
        )
        .await;
    }

    pub async fn send_keys(&self, element: &Element, text: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// The element's rendered text; None when it went away (a swap replaced it).
    pub async fn text(&self, element: &Element) -> Option<String> {
        self.try_call(
            reqwest::Method::GET,
            &format!("/element/{}/text", element.0),
            None,
        )
        .await
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
    }

    /// The text of the first element matching `css`, if there is one.
    pub async fn text_of(&self, css: &str) -> Option<String> {
        let element = self.try_find(css).await?;
        self.text(&element).await
    }

    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    pub async fn set_window_rect(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// A Chrome DevTools command through chromedriver.
    pub async fn devtools(&self, command: &str, params: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({ "cmd": command, "params": params })),
        )
        .await
    }

    /// Makes the page `width`×`height` CSS pixels, as a phone (`mobile`) or a desktop would.
    pub async fn emulate_viewport(&self, width: u32, height: u32, mobile: bool) {
        self.devtools(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        )
        .await;
    }

    pub async fn emulate_dark_mode(&self, dark: bool) {
        self.devtools(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": if dark { "dark" } else { "light" } }] }),
        )
        .await;
    }

    /// The visible part of the page as a PNG file.
    pub async fn screenshot(&self, path: &Path) {
        let encoded = self.call(reqwest::Method::GET, "/screenshot", None).await;
        write_png(path, encoded.as_str().unwrap_or_default());
    }

    /// The whole page, below the fold too, as a PNG file.
    pub async fn screenshot_full_page(&self, path: &Path) {
        let shot = self
            .devtools(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await;
        write_png(path, shot["data"].as_str().unwrap_or_default());
    }

    /// Waits until `check` gives a value, or fails naming `what`.
    pub async fn wait_for<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(value) = check().await {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "the browser never showed: {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn quit(self) {
        let _ = self.client.delete(self.base.clone()).send().await;
    }
}

fn write_png(path: &Path, encoded: &str) {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("a base64 screenshot");
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG screenshot");
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}
