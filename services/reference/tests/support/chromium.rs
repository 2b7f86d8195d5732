//! A headless Chromium driven over the Chrome DevTools Protocol, for checking pages the
//! harness writes: what the page logged to its console, which requests it made, what its DOM
//! says, and a screenshot.
//!
//! The protocol runs over `--remote-debugging-pipe` (JSON messages separated by NUL bytes on
//! file descriptors 3 and 4 of the browser), so no port is opened and no WebSocket client is
//! needed. The browser is Debian's `chromium` (`ci/setup` installs it), run with
//! `--headless --no-sandbox` because CI runs as root; `FAULTLINE_CHROMIUM` names another.
//!
//! ```ignore
//! let mut browser = Chromium::launch()?;
//! let page = browser.load(Path::new("report.html"))?;
//! assert!(page.console.is_empty() && page.requests.is_empty());
//! ```

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long one protocol call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What loading a page showed.
#[derive(Debug, Default)]
pub struct PageLoad {
    /// Console messages of any level, uncaught exceptions, and browser log entries (CSP
    /// violations, failed loads), each as `level: text`.
    pub console: Vec<String>,
    /// URLs requested after the page itself (the page's own file excluded).
    pub requests: Vec<String>,
}

pub struct Chromium {
    child: Child,
    to_browser: std::fs::File,
    from_browser: Receiver<Value>,
    next_id: u64,
    /// Events read while waiting for a response, not yet consumed.
    events: Vec<Value>,
    session: Option<String>,
    _profile: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // Move both ends above 10 so that placing them on 3 and 4 in the child cannot clobber one
    // with the other.
    let high = |fd: RawFd| -> std::io::Result<OwnedFd> {
        // SAFETY: fd is open; F_DUPFD_CLOEXEC returns a new descriptor we then own.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
        // SAFETY: fd came from pipe2 above and is closed exactly once here.
        unsafe { libc::close(fd) };
        if new < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: new is a fresh descriptor owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(new) })
    };
    Ok((high(fds[0])?, high(fds[1])?))
}

/// The browser's program: `FAULTLINE_CHROMIUM`, else `chromium` on PATH.
pub fn program() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("FAULTLINE_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|p| p.is_file())
    })
}

impl Chromium {
    /// Starts a headless Chromium with a fresh profile and attaches to a blank page.
    pub fn launch() -> Result<Self, String> {
        use std::os::fd::AsRawFd;
        let program = program().ok_or(
            "no chromium on PATH: run ci/setup (it installs Debian's chromium) or set FAULTLINE_CHROMIUM",
        )?;
        static LAUNCHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let profile = TempDir(std::env::temp_dir().join(format!(
            "faultline-chromium-{}-{}",
            std::process::id(),
            LAUNCHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        )));
        std::fs::create_dir_all(&profile.0).map_err(|e| e.to_string())?;
        let (browser_reads, we_write) = pipe().map_err(|e| e.to_string())?;
        let (we_read, browser_writes) = pipe().map_err(|e| e.to_string())?;
        let (r, w) = (browser_reads.as_raw_fd(), browser_writes.as_raw_fd());
        let mut command = Command::new(&program);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--remote-debugging-pipe",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--window-size=1200,900",
                "about:blank",
            ])
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (dup2) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", program.display()))?;
        drop(browser_reads);
        drop(browser_writes);
        let (tx, rx) = mpsc::channel();
        let reader = std::fs::File::from(we_read);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        message.pop();
                        if let Ok(value) = serde_json::from_slice::<Value>(&message) {
                            if tx.send(value).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        let mut browser = Self {
            child,
            to_browser: std::fs::File::from(we_write),
            from_browser: rx,
            next_id: 0,
            events: Vec::new(),
            session: None,
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = target["targetId"]
            .as_str()
            .ok_or("no targetId")?
            .to_string();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        browser.session = Some(
            attached["sessionId"]
                .as_str()
                .ok_or("no sessionId")?
                .to_string(),
        );
        for domain in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            browser.call(domain, json!({}))?;
        }
        Ok(browser)
    }

    /// Sends a command (to the page's session once attached) and waits for its result.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("JSON");
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .map_err(|e| format!("{method}: writing to the browser: {e}"))?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = self.from_browser.recv_timeout(left).map_err(|_| {
                format!("{method}: no answer from the browser within {CALL_TIMEOUT:?}")
            })?;
            if message["id"] == json!(id) {
                if let Some(error) = message.get("error") {
                    return Err(format!("{method}: {error}"));
                }
                return Ok(message["result"].clone());
            }
            if message.get("method").is_some() {
                self.events.push(message);
            }
        }
    }

    /// Collects events until `until` matches one or `wait` passes.
    fn collect_events(&mut self, wait: Duration, until: impl Fn(&Value) -> bool) -> bool {
        if self.events.iter().any(&until) {
            return true;
        }
        let deadline = Instant::now() + wait;
        while let Ok(message) = self
            .from_browser
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let done = until(&message);
            if message.get("method").is_some() {
                self.events.push(message);
            }
            if done {
                return true;
            }
        }
        false
    }

    /// Loads `file`, waits for its load event and a moment more for late scripts and
    /// requests, and says what the page logged and requested.
    pub fn load(&mut self, file: &Path) -> Result<PageLoad, String> {
        let file = file
            .canonicalize()
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let url = format!("file://{}", file.display());
        self.events.clear();
        self.call("Page.navigate", json!({"url": url}))?;
        if !self.collect_events(Duration::from_secs(20), |m| {
            m["method"] == "Page.loadEventFired"
        }) {
            return Err(format!("{url}: no load event within 20 s"));
        }
        // Timers, late fetches and their failures.
        self.collect_events(Duration::from_millis(1500), |_| false);
        let mut load = PageLoad::default();
        for event in &self.events {
            let params = &event["params"];
            match event["method"].as_str().unwrap_or("") {
                "Runtime.consoleAPICalled" => {
                    let text: Vec<String> = params["args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            a["value"]
                                .as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| a["description"].to_string())
                        })
                        .collect();
                    load.console.push(format!(
                        "{}: {}",
                        params["type"].as_str().unwrap_or("?"),
                        text.join(" ")
                    ));
                }
                "Runtime.exceptionThrown" => load.console.push(format!(
                    "exception: {}",
                    params["exceptionDetails"]["exception"]["description"]
                        .as_str()
                        .or(params["exceptionDetails"]["text"].as_str())
                        .unwrap_or("?")
                )),
                "Log.entryAdded" => load.console.push(format!(
                    "{}: {}",
                    params["entry"]["level"].as_str().unwrap_or("?"),
                    params["entry"]["text"].as_str().unwrap_or("?")
                )),
                "Network.requestWillBeSent" => {
                    let requested = params["request"]["url"].as_str().unwrap_or("").to_string();
                    if requested != url {
                        load.requests.push(requested);
                    }
                }
                _ => {}
            }
        }
        Ok(load)
    }

    /// Evaluates a JavaScript expression in the page (by the test, through the protocol: the
    /// page's own policy does not apply) and returns its value.
    pub fn evaluate(&mut self, expression: &str) -> Result<Value, String> {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        )?;
        if let Some(exception) = result.get("exceptionDetails") {
            return Err(format!("{expression}: {exception}"));
        }
        Ok(result["result"]["value"].clone())
    }

    /// A PNG of the whole page.
    pub fn screenshot(&mut self) -> Result<Vec<u8>, String> {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        )?;
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().ok_or("no screenshot data")?)
            .map_err(|e| e.to_string())
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        self.session = None;
        let _ = self.call("Browser.close", json!({}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
