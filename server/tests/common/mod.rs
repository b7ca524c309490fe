//! Helpers for the browser-lab tests: a running `mite-perf serve`, a tiny
//! HTTP/1.1 client, and a tiny WebDriver client for headless Chromium.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const BIN: &str = env!("CARGO_BIN_EXE_mite-perf");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mite-perf-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("create a test folder");
    dir
}

/// `mite-perf serve` on a free port with its own database and output folder.
pub struct Server {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    child: Child,
}

impl Drop for Server {
    /// A test that fails midway still stops its server (and so its run).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    pub async fn start(name: &str) -> Server {
        let dir = temp_dir(name);
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let log = std::fs::File::create(dir.join("serve.log")).expect("log file");
        let child = Command::new(BIN)
            .args([
                "serve",
                "--addr",
                &addr.to_string(),
                "--output-dir",
                "output",
            ])
            .current_dir(&dir)
            .env(
                "MITE_PERF_DATABASE_URL",
                format!("sqlite://{}/lab.db", dir.display()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start mite-perf serve");
        let server = Server { addr, dir, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = server.get("/healthz").await {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not answer: {}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn db_url(&self) -> String {
        format!("sqlite://{}/lab.db", self.dir.display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http(self.addr, "GET", path, None).await
    }

    /// Calls a server function (URL-encoded arguments, JSON answer).
    pub async fn call(&self, name: &str, form: &str) -> Value {
        let (status, body) = http(
            self.addr,
            "POST",
            &format!("/api/{name}"),
            Some(("application/x-www-form-urlencoded", form.to_string())),
        )
        .await
        .expect("call a server function");
        assert_eq!(status, 200, "{name}({form}) answered {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: {e}: {body}"))
    }

    /// SIGTERM, as an operator would stop it; waits for the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("serve did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A minimal HTTP/1.1 client (one request per connection, chunked bodies decoded).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, String)>,
) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n");
    if let Some((content_type, body)) = &body {
        request.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    if let Some((_, body)) = &body {
        request.push_str(body);
    }
    stream.write_all(request.as_bytes()).await?;
    let read = async {
        // Read the head, then exactly the body it announces (servers such as
        // chromedriver keep the connection open).
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let head_end = loop {
            if let Some(i) = find(&raw, b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break raw.len();
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        let chunked = head.contains("transfer-encoding: chunked");
        loop {
            let body = &raw[head_end..];
            let complete = match length {
                Some(n) => body.len() >= n,
                None if chunked => {
                    find(body, b"0\r\n\r\n").is_some_and(|i| i == 0 || body[..i].ends_with(b"\r\n"))
                }
                None => false,
            };
            if complete {
                break;
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        let status = String::from_utf8_lossy(&raw[..head_end])
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = String::from_utf8_lossy(&raw[head_end..]).into_owned();
        Ok::<_, std::io::Error>((status, if chunked { dechunk(&body) } else { body }))
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .map_err(|_| std::io::Error::other("no complete answer within 120 s"))?
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// Headless Chromium through chromedriver (the W3C WebDriver protocol).
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    profile: PathBuf,
}

impl Browser {
    pub async fn start() -> Browser {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        // Its own process group, so Drop ends chromedriver and the browser it started.
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (apt-get install chromium-driver; scripts/setup does)");
        let profile = temp_dir("chromium-profile");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http(addr, "GET", "/status", None).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                         "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync",
                         "--window-size=1400,1000",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
            profile,
        };
        let answer = browser.command("POST", "/session", Some(caps)).await;
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_string();
        browser
    }

    async fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (_, text) = http(
            self.addr,
            method,
            path,
            body.map(|b| ("application/json", b.to_string())),
        )
        .await
        .expect("talk to chromedriver");
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        if let Some(error) = value["value"].get("error") {
            panic!(
                "WebDriver {method} {path}: {error}: {}",
                value["value"]["message"]
            );
        }
        value.get("value").cloned().unwrap_or(Value::Null)
    }

    pub async fn goto(&self, url: &str) {
        self.command(
            "POST",
            &format!("/session/{}/url", self.session),
            Some(json!({"url": url})),
        )
        .await;
    }

    /// Runs JavaScript in the page; `arguments[0]` is the callback for async scripts.
    pub async fn script(&self, script: &str) -> Value {
        self.command(
            "POST",
            &format!("/session/{}/execute/async", self.session),
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Runs a synchronous expression (`return …`) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.command(
            "POST",
            &format!("/session/{}/execute/sync", self.session),
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Waits until `script` (returning a boolean) holds.
    pub async fn wait_for(&self, what: &str, script: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.eval(script).await.as_bool() == Some(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; page text: {}",
                self.eval("return document.body.innerText").await
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self
            .command(
                "GET",
                &format!("/session/{}/screenshot", self.session),
                None,
            )
            .await;
        if let Some(b64) = png.as_str() {
            let _ = std::fs::write(path.with_extension("b64"), b64);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.driver.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Processes alive in the process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    mite_perf::ports::process_group(*pid) == Some(pgid)
                        && mite_perf::ports::pid_alive(*pid)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every process the lab recorded is gone, with its whole group, and the
/// store says how each ended.
pub async fn assert_no_child_left(store: &mite_perf::store::Store, run_id: i64) {
    for scenario in store.scenarios(run_id).await.expect("scenarios") {
        for p in store.processes(scenario.id).await.expect("processes") {
            let pid = p.pid as u32;
            let same = mite_perf::ports::pid_alive(pid)
                && mite_perf::ports::start_ticks(pid) == Some(p.start_ticks as u64);
            assert!(!same, "{} (pid {pid}) is still running", p.name);
            assert!(
                group_members(pid).is_empty(),
                "group {pid} ({}) has members left",
                p.name
            );
            assert!(p.exit_status.is_some(), "{} has no recorded exit", p.name);
        }
    }
}

pub fn assert_ports_free() {
    for port in mite_perf::ports::lab_port_reports() {
        assert!(
            port.holders.is_empty(),
            "port {} is held: {:?}",
            port.port,
            port.holders
        );
    }
}
