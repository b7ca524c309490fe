//! Helpers for the tests: a running `mite-perf serve` (spoken to with
//! reqwest), headless Chromium (through chromedriver, with fantoccini), a
//! PostgreSQL server of the test's own, and checks that nothing is left.

#![allow(dead_code)]

pub mod seed;

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mite_perf::ports::LabPorts;
use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_mite-perf");

/// The end-to-end tests run side by side (two at a time on two cores), each
/// lab on ports of its own (`own_ports`). A test whose figures another
/// would disturb (a verdict on CPU-seconds) has the machine to itself.
static MACHINE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A test's turn on the machine. When it ends (passed or not) it says how
/// long the test held it and waited for it, a `turn:` line that
/// `scripts/test` ranks to name the slowest tests.
pub struct Turn<G> {
    _guard: G,
    test: String,
    asked: Instant,
    got: Instant,
    alone: bool,
}

impl<G> Turn<G> {
    fn new(guard: G, asked: Instant, alone: bool) -> Self {
        Turn {
            _guard: guard,
            // libtest names each test's thread after the test.
            test: std::thread::current()
                .name()
                .unwrap_or("a test")
                .to_string(),
            asked,
            got: Instant::now(),
            alone,
        }
    }
}

impl<G> Drop for Turn<G> {
    fn drop(&mut self) {
        eprintln!(
            "turn: {} held {:.1} s{}, waited {:.1} s",
            self.test,
            self.got.elapsed().as_secs_f64(),
            if self.alone { " alone" } else { "" },
            (self.got - self.asked).as_secs_f64()
        );
    }
}

/// A turn beside the other end-to-end tests.
pub async fn share_the_machine() -> Turn<tokio::sync::RwLockReadGuard<'static, ()>> {
    let asked = Instant::now();
    Turn::new(MACHINE.read().await, asked, false)
}

/// The machine to this test alone (the others finish first; fair, so it
/// is not starved).
pub async fn have_the_machine() -> Turn<tokio::sync::RwLockWriteGuard<'static, ()>> {
    let asked = Instant::now();
    Turn::new(MACHINE.write().await, asked, true)
}

/// A port of the test's own (a web front, a PostgreSQL cluster, a
/// chromedriver): never handed out twice by this process, free when handed
/// out, and below the kernel's ephemeral range, where the outgoing
/// connections of mite's runners (tests run side by side) take theirs.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    const LOW: u16 = 20_000;
    const HIGH: u16 = 32_000;
    // Spread by process, so two test processes at once rarely meet.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        LOW + (std::process::id() % 50) as u16 * 200,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(port < HIGH, "no free ports left between {LOW} and {HIGH}");
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

/// Five ports of the test's own for a lab (TARGET,CONTROLLER,MESSAGE,
/// COLLECTOR,BUS), so its run can go on beside another test's.
pub fn own_ports() -> LabPorts {
    LabPorts {
        target: free_port(),
        controller: free_port(),
        message: free_port(),
        collector: free_port(),
        bus: free_port(),
    }
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mite-perf-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("create a test folder");
    dir
}

pub fn http_client() -> reqwest::Client {
    mite_perf::http_client::install_crypto();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// `mite-perf serve` on a free port with its own database and output folder.
pub struct Server {
    pub addr: SocketAddr,
    /// The ports its agent's runs use (`MITE_PERF_PORTS`; an explicit
    /// `--ports` in the options wins).
    pub ports: LabPorts,
    pub dir: PathBuf,
    pub db_url: String,
    /// Whether `dir` was made for it (not given in the options): then it
    /// goes with the server, unless the test failed (kept to be read).
    own_dir: bool,
    child: Child,
    client: reqwest::Client,
}

impl Drop for Server {
    /// A test that fails midway still stops its server (and so its run).
    /// A passing test leaves nothing of it in /tmp: its database, log and
    /// runs' folders (collector files, seeded samples) go with it.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if !std::thread::panicking() {
            assert_possible_cpu(&self.dir);
            if self.own_dir {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }
    }
}

pub fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
}

/// How to start a `Server`.
#[derive(Default, Clone)]
pub struct ServeOptions {
    /// The database (default: SQLite in the server's folder).
    pub db_url: Option<String>,
    /// More arguments to `serve`.
    pub args: Vec<String>,
    /// The folder to run in (default: a new one).
    pub dir: Option<PathBuf>,
}

impl Server {
    /// A web front only (`serve --no-agent`) on an existing database, to
    /// look at runs another lab made.
    pub async fn front_for(name: &str, db_url: String) -> Server {
        Server::start_with(
            name,
            ServeOptions {
                db_url: Some(db_url),
                args: vec!["--no-agent".into()],
                dir: None,
            },
        )
        .await
    }

    pub async fn start(name: &str) -> Server {
        Server::start_with(name, ServeOptions::default()).await
    }

    pub async fn start_with(name: &str, options: ServeOptions) -> Server {
        let dir = options.dir.clone().unwrap_or_else(|| temp_dir(name));
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let ports = match options.args.iter().position(|a| a == "--ports") {
            Some(at) => options.args[at + 1]
                .parse()
                .expect("--ports in the options"),
            None => own_ports(),
        };
        let db_url = options
            .db_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}/lab.db", dir.display()));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("serve.log"))
            .expect("log file");
        let child = Command::new(BIN)
            .args([
                "serve",
                "--addr",
                &addr.to_string(),
                "--output-dir",
                "output",
            ])
            .args(&options.args)
            .current_dir(&dir)
            .env("MITE_PERF_DATABASE_URL", &db_url)
            .env("MITE_PERF_PORTS", ports.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start mite-perf serve");
        let server = Server {
            addr,
            ports,
            dir,
            db_url,
            own_dir: options.dir.is_none(),
            child,
            client: http_client(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
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

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn db_url(&self) -> String {
        self.db_url.clone()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> reqwest::Result<(u16, String)> {
        let response = self.client.get(self.url(path)).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }

    /// Calls a server function (URL-encoded arguments) and answers its
    /// status and body.
    pub async fn call_raw(&self, name: &str, form: &str) -> (u16, String) {
        let response = self
            .client
            .post(self.url(&format!("/api/{name}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(form.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("call {name}: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Calls a server function that must succeed; its JSON answer.
    pub async fn call(&self, name: &str, form: &str) -> Value {
        let (status, body) = self.call_raw(name, form).await;
        assert_eq!(status, 200, "{name}({form}) answered {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: {e}: {body}"))
    }

    /// SIGTERM, as an operator would stop it; waits for the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        // Never a pid that has ended (and may be another process's now).
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), nix::sys::signal::Signal::SIGTERM);
        }
        let status = self.wait(Duration::from_secs(40));
        let _ = std::fs::remove_dir_all(&self.dir);
        status
    }

    /// Waits for the server to end by itself.
    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("serve did not end within {timeout:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as a crash would end it; its children live on.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a form value.
pub fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The arguments of `launch_run`.
pub fn launch_form(scenarios: &str, duration: &str, label: &str) -> String {
    format!(
        "form[scenarios]={}&form[duration]={}&form[spawn_rate]=1000000&form[interval]=1s&form[label]={}",
        enc(scenarios),
        enc(duration),
        enc(label)
    )
}

/// Polls `get_run` until the run has one of the `wanted` statuses.
pub async fn wait_status(server: &Server, id: i64, wanted: &[&str], timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let run = server.call("get_run", &format!("run_id={id}")).await;
        if wanted.iter().any(|w| run["status"] == *w) {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "run {id} is {} after {timeout:?}; log:\n{}",
            run["status"],
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Headless Chromium through chromedriver (W3C WebDriver, with fantoccini).
pub struct Browser {
    driver: Child,
    pub client: fantoccini::Client,
    profile: PathBuf,
}

impl Browser {
    pub async fn start() -> Browser {
        Browser::start_with(&[]).await
    }

    /// With more Chromium arguments.
    pub async fn start_with(extra_args: &[&str]) -> Browser {
        Browser::start_configured(extra_args, None).await
    }

    /// Saving downloads into `folder`, without asking.
    pub async fn start_downloading_to(folder: &Path) -> Browser {
        Browser::start_configured(&[], Some(folder)).await
    }

    async fn start_configured(extra_args: &[&str], downloads: Option<&Path>) -> Browser {
        let port = free_port();
        // Its own process group, so Drop ends chromedriver and the browser it started.
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (apt-get install chromium-driver; scripts/setup does)");
        let profile = temp_dir("chromium-profile");
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1000",
        ]
        .iter()
        .chain(extra_args)
        .map(|a| a.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut options = json!({ "binary": "/usr/bin/chromium", "args": args });
        if let Some(folder) = downloads {
            options["prefs"] = json!({
                "download.default_directory": folder.display().to_string(),
                "download.prompt_for_download": false,
            });
        }
        // chromedriver keeps the page's console: every test reads it
        // (`Browser::assert_console_clean`).
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let caps = match caps {
            Value::Object(map) => map,
            _ => unreachable!("an object literal"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connected = fantoccini::ClientBuilder::new(
                hyper_util::client::legacy::connect::HttpConnector::new(),
            )
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
            match connected {
                Ok(client) => break client,
                Err(e) => {
                    assert!(Instant::now() < deadline, "no WebDriver session: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        Browser {
            driver,
            client,
            profile,
        }
    }

    /// Opens `url`, once the page being left said no error.
    pub async fn goto(&self, url: &str) {
        self.assert_console_clean().await;
        self.client.goto(url).await.expect("navigate");
    }

    /// What the pages said at the level of an error (a script's exception,
    /// a hydration panic, a Content-Security-Policy violation, a resource
    /// that failed to load) since the last read.
    pub async fn console_errors(&self) -> Vec<String> {
        let log = self
            .client
            .issue_cmd(ConsoleLog)
            .await
            .expect("chromedriver's console log");
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Fails the test if a page said an error since the last read: the
    /// browser's own errors are failures, whatever the page shows.
    pub async fn assert_console_clean(&self) {
        let errors = self.console_errors().await;
        assert!(
            errors.is_empty(),
            "the browser said {} error(s):\n{}",
            errors.len(),
            errors.join("\n")
        );
    }

    /// Runs JavaScript in the page; `arguments[0]` is the callback for async scripts.
    pub async fn script(&self, script: &str) -> Value {
        self.client
            .execute_async(script, vec![])
            .await
            .expect("run an async script")
    }

    /// Runs a synchronous expression (`return …`) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .expect("run a script")
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
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page has hydrated (its handlers are attached): a
    /// minute at most, for Chromium compiles the debug build's wasm on
    /// cores the suite's mite processes keep busy.
    pub async fn wait_hydrated(&self) {
        self.wait_for(
            "hydration",
            "return document.documentElement.dataset.hydrated === 'true'",
            Duration::from_secs(60),
        )
        .await;
    }

    pub async fn screenshot(&self, path: &Path) {
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(path.with_extension("png"), png);
        }
    }
}

/// Chromium's console log, as chromedriver keeps it (`goog:loggingPrefs`;
/// Selenium's endpoint, which chromedriver serves in W3C mode too).
#[derive(Debug)]
struct ConsoleLog;

impl fantoccini::wd::WebDriverCompatibleCommand for ConsoleLog {
    fn endpoint(
        &self,
        base: &reqwest::Url,
        session: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(r#"{"type":"browser"}"#.to_string()),
        )
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

/// Every process the lab recorded is gone, with its whole group, and the
/// store says how each ended.
pub async fn assert_no_child_left(store: &mite_perf::store::Store, run_id: i64) {
    use mite_perf::os_process;
    let scenarios = store.scenarios(run_id).await.expect("scenarios");
    assert!(!scenarios.is_empty(), "run {run_id} has no scenarios");
    for scenario in scenarios {
        for p in store.processes(scenario.id).await.expect("processes") {
            let pid = p.pid as u32;
            let same = os_process::pid_alive(pid)
                && os_process::start_ticks(pid) == Some(p.start_ticks as u64);
            assert!(!same, "{} (pid {pid}) is still running", p.name);
            assert!(
                os_process::group_members(pid).is_empty(),
                "group {pid} ({}) has members left",
                p.name
            );
            assert!(p.exit_status.is_some(), "{} has no recorded exit", p.name);
        }
    }
}

/// No process listens on a lab's ports.
pub fn assert_ports_free(ports: &LabPorts) {
    // The sockets of processes just reaped close a moment later: up to
    // two seconds, polled, rather than a sleep that is too short or waits
    // for nothing.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let held: Vec<_> =
            mite_perf::ports::lab_port_reports(ports, mite_perf::ports::Tables::Host)
                .into_iter()
                .filter(|port| !port.holders.is_empty())
                .map(|port| (port.port, port.holders))
                .collect();
        if held.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "ports held: {held:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PostgreSQL cluster of the test's own (Debian's `postgresql`, which
/// scripts/setup installs) on a loopback port, deleted on drop.
pub struct Postgres {
    bin: PathBuf,
    pub data: PathBuf,
    pub port: u16,
    run_as: Option<&'static str>,
}

fn postgres_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/setup installs Debian's postgresql)")
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb under /usr/lib/postgresql")
}

impl Postgres {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.run_as {
            // initdb refuses to run as root: run the server as `postgres`.
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    pub fn start() -> Postgres {
        let port = free_port();
        let data = temp_dir(&format!("pg-{port}"));
        let run_as = nix::unistd::Uid::effective()
            .is_root()
            .then_some("postgres");
        if run_as.is_some() {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&data)
                .status();
            assert!(ok.is_ok_and(|s| s.success()), "chown the data folder");
        }
        let pg = Postgres {
            bin: postgres_bin(),
            data,
            port,
            run_as,
        };
        let out = pg
            .command("initdb")
            .args(["--auth=trust", "--username=lab", "--encoding=UTF8", "-D"])
            .arg(&pg.data)
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.server_start();
        pg
    }

    /// Starts the server (again).
    pub fn server_start(&self) {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-l"])
            .arg(self.data.join("server.log"))
            .arg("-o")
            .arg(format!(
                "-p {} -c listen_addresses=127.0.0.1 -k {}",
                self.port,
                self.data.display()
            ))
            .arg("start")
            .stdin(Stdio::null())
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once (clients are cut off), keeping its data.
    pub fn server_stop(&self) {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output()
            .expect("run pg_ctl stop");
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://lab@127.0.0.1:{}/postgres", self.port)
    }

    /// A fresh database on this server, for one test.
    pub async fn fresh_database(&self, name: &str) -> String {
        use sqlx::Executor;
        let pool = sqlx::PgPool::connect(&self.url()).await.expect("connect");
        pool.execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
            .await
            .expect("drop");
        pool.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create");
        pool.close().await;
        format!("postgres://lab@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// The only run folder of a test: `dir/output/YYYY-MM-DD/HH-MM`.
pub fn run_dir(dir: &Path) -> PathBuf {
    let day = std::fs::read_dir(dir.join("output"))
        .expect("output folder")
        .filter_map(Result::ok)
        .find(|e| e.path().is_dir())
        .expect("a day folder")
        .path();
    std::fs::read_dir(day)
        .expect("day folder")
        .filter_map(Result::ok)
        .find(|e| e.path().is_dir())
        .expect("a run folder")
        .path()
}

/// A lab used from the command line (`mite-perf run`, `cleanup`) in a
/// folder of its own, with an SQLite database there.
pub struct CliLab {
    pub dir: PathBuf,
    pub db_url: String,
    /// The ports its runs use (`MITE_PERF_PORTS`; an explicit `--ports`
    /// wins).
    pub ports: LabPorts,
}

impl CliLab {
    pub fn new(name: &str) -> Self {
        let dir = temp_dir(&format!("cli-{name}"));
        let db_url = format!("sqlite://{}/lab.db", dir.display());
        CliLab {
            dir,
            db_url,
            ports: own_ports(),
        }
    }

    /// The same, on another database.
    pub fn with_database(name: &str, db_url: String) -> Self {
        CliLab {
            dir: temp_dir(&format!("cli-{name}")),
            db_url,
            ports: own_ports(),
        }
    }

    pub fn db_url(&self) -> String {
        self.db_url.clone()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(&self.dir)
            .env("MITE_PERF_DATABASE_URL", &self.db_url)
            .env("MITE_PERF_PORTS", self.ports.to_string())
            .stdin(Stdio::null());
        cmd
    }

    pub fn spawn_run(&self, args: &[&str]) -> Child {
        let mut all = vec!["run", "--output-dir", "output"];
        all.extend_from_slice(args);
        self.command(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mite-perf run")
    }

    pub fn cleanup(&self) -> Output {
        self.command(&["cleanup"])
            .output()
            .expect("run mite-perf cleanup")
    }

    pub async fn store(&self) -> mite_perf::store::Store {
        mite_perf::store::Store::connect(&self.db_url)
            .await
            .expect("open the lab's database")
    }
}

impl Drop for CliLab {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_possible_cpu(&self.dir);
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Every `samples.csv` under `dir` holds only CPU readings a process can
/// have: none above 100 % times the machine's cores (a reading divided by
/// a too-short interval once gave 1,071.9 % on 2 cores). Checked as each
/// lab of the suite is dropped, so that every file the suite writes is.
pub fn assert_possible_cpu(dir: &Path) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.file_name().is_some_and(|n| n == "samples.csv") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let mut lines = text.lines();
                let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
                let Some(cpu) = header.iter().position(|c| *c == "cpu") else {
                    panic!("{}: no cpu column in {header:?}", path.display());
                };
                for line in lines {
                    let reading: f64 = line
                        .split(',')
                        .nth(cpu)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| panic!("{}: no CPU in `{line}`", path.display()));
                    assert!(
                        (0.0..=100.0 * cores).contains(&reading),
                        "{}: an impossible CPU reading on {cores} cores: `{line}`",
                        path.display()
                    );
                }
            }
        }
    }
}

/// Waits for a child's output, killing it after `timeout`.
pub fn wait_output(child: Child, timeout: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(result) => result.expect("wait for mite-perf"),
        Err(_) => {
            signal(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("mite-perf did not end within {timeout:?}");
        }
    }
}

/// A finished command's status and output, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Polls the store until run 1's first scenario has stored at least
/// `ticks` samples of the target. A lab that ends first, or one still
/// without them at `timeout`, fails the test with what it printed (its
/// output must be piped): a wait that only says "no samples" hides why.
pub async fn wait_for_samples(
    lab: &CliLab,
    child: &mut Child,
    ticks: usize,
    timeout: Duration,
) -> mite_perf::store::Store {
    let store = lab.store().await;
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the lab ended ({status}) before {ticks} samples\n{}",
                printed(child)
            );
        }
        if let Ok(Some(scenario)) = store.scenarios(1).await.map(|s| s.into_iter().next()) {
            let samples = store
                .scenario_samples(scenario.id)
                .await
                .unwrap_or_default();
            let target = samples
                .iter()
                .filter(|s| s.process == mite_perf::model::ProcessKind::Target)
                .count();
            if target >= ticks {
                return store;
            }
        }
        if Instant::now() >= deadline {
            signal(child.id(), nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            panic!("no samples within {timeout:?}\n{}", printed(child));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What an ended child printed on its piped stdout and stderr.
fn printed(child: &mut Child) -> String {
    use std::io::Read;
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        let _ = pipe.read_to_string(&mut stdout);
    }
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    format!("--- stdout\n{stdout}\n--- stderr\n{stderr}")
}

/// Runs `git ARGS` in `dir` as a throwaway identity; panics if it fails.
pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .status()
        .expect("git runs")
        .success();
    assert!(ok, "git {args:?} in {}", dir.display());
}

/// The process the lab measures for a child it recorded with `command`
/// and `pid`: the child itself, or two generations down where it runs in
/// a sandbox or under py-spy (waiting a moment for it to be there).
pub fn measured(pid: u32, command: &str) -> u32 {
    use mite_perf::supervisor::Measured;
    if mite_perf::profile::started::measured_of(command) == Measured::Itself {
        return pid;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let grandchild = mite_perf::os_process::children(pid)
            .first()
            .and_then(|middle| mite_perf::os_process::children(*middle).first().copied());
        if let Some(grandchild) = grandchild {
            return grandchild;
        }
        assert!(
            Instant::now() < deadline,
            "no grandchild under {pid}: {command}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILLs the runner of scenario `scenario_id` (as a crash would: the
/// runner itself, in its sandbox), and returns its pid.
pub async fn kill_runner(store: &mite_perf::store::Store, scenario_id: i64) -> u32 {
    let runner = recorded(store, scenario_id, "runner").await;
    let pid = measured(runner.pid as u32, &runner.command);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the runner");
    pid
}

/// The first child named `name` (`runner`, `profiler`, …) the lab recorded
/// for a scenario; panics if there is none.
pub async fn recorded(
    store: &mite_perf::store::Store,
    scenario_id: i64,
    name: &str,
) -> mite_perf::store::ProcessRecord {
    store
        .processes(scenario_id)
        .await
        .expect("processes")
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no {name} recorded for scenario {scenario_id}"))
}
