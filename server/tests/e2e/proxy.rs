//! The lab behind a real reverse proxy: nginx, started by the test on
//! loopback ports with the server block of `deploy/nginx.conf` (TLS left
//! out), in front of `mite-perf serve` started with the arguments of
//! `deploy/mite-perf-web.service`. Clients connect to nginx from addresses
//! of their own (127.0.0.2, 127.0.0.3, …: all of 127/8 is loopback), so
//! the lab must take each client's address from the proxy, as a shared
//! lab's users reach it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{free_port, temp_dir, ServeOptions, Server, BIN};

/// nginx, as Debian installs it (scripts/setup).
const NGINX: &str = "/usr/sbin/nginx";

/// The documented proxy, on a loopback port of the test's own.
struct Nginx {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        crate::common::signal(self.child.id(), nix::sys::signal::Signal::SIGQUIT);
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first `server { … }` block of `text`.
fn server_block(text: &str) -> String {
    let start = text.find("server {").expect("a server block");
    let mut depth = 0;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return text[start..=start + i].to_string();
                }
            }
            _ => {}
        }
    }
    panic!("the server block does not end")
}

/// `text` with `from` replaced by `to`, which must be there.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` is not in:\n{text}");
    text.replace(from, to)
}

impl Nginx {
    /// deploy/nginx.conf's server, on 127.0.0.1:PORT in plain HTTP, proxying
    /// to `lab`, with the proxy's secret read from `secret_conf`.
    fn start(lab: std::net::SocketAddr, secret_conf: &Path) -> Nginx {
        let deployed = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx.conf"),
        )
        .expect("deploy/nginx.conf");
        let mut server = server_block(&deployed);
        let port = free_port();
        server = replaced(
            &server,
            "listen 443 ssl;",
            &format!("listen 127.0.0.1:{port};"),
        );
        server = server
            .lines()
            .filter(|line| !line.trim_start().starts_with("ssl_"))
            .collect::<Vec<_>>()
            .join("\n");
        server = replaced(&server, "http://127.0.0.1:3000", &format!("http://{lab}"));
        if server.contains("/etc/nginx/mite-perf-proxy-secret.conf") {
            server = server.replace(
                "/etc/nginx/mite-perf-proxy-secret.conf",
                &secret_conf.display().to_string(),
            );
        }
        let dir = temp_dir("nginx");
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{server}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), &conf).expect("nginx.conf");
        let child = Command::new(NGINX)
            .args(["-e", &format!("{d}/error.log"), "-p"])
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {NGINX} (scripts/setup installs it): {e}"));
        let mut nginx = Nginx { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx ended ({status}): {}\n{conf}", nginx.errors());
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen: {}",
                nginx.errors()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }

    fn errors(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

/// `serve`'s arguments in deploy/mite-perf-web.service, its files mapped to
/// the test's (`--addr` and `--output-dir` are the test server's own).
fn deployed_serve_args(secret: &Path) -> Vec<String> {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/mite-perf-web.service"),
    )
    .expect("deploy/mite-perf-web.service");
    let exec = unit
        .replace("\\\n", " ")
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=").map(str::to_string))
        .expect("ExecStart");
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(words.get(1), Some(&"serve"), "{exec}");
    let mut args = Vec::new();
    let mut rest = words[2..].iter();
    while let Some(word) = rest.next() {
        match *word {
            "--addr" | "--output-dir" | "--site-root" => {
                rest.next();
            }
            "--trusted-proxy-secret-file" => {
                rest.next();
                args.push(word.to_string());
                args.push(secret.display().to_string());
            }
            other => args.push(other.to_string()),
        }
    }
    args
}

/// A browser at one address, reaching the lab through nginx.
struct Client {
    http: reqwest::Client,
    base: String,
}

/// What a sign-in answered.
struct SignIn {
    status: u16,
    location: String,
    retry_after: Option<u64>,
    cookies: Vec<String>,
}

impl SignIn {
    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .and_then(|c| c.split(';').next())
            .map(str::to_string)
    }
}

impl Client {
    fn at(from: [u8; 4], port: u16) -> Client {
        mite_perf::http_client::install_crypto();
        Client {
            http: reqwest::Client::builder()
                .local_address(IpAddr::from(from))
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .expect("a client"),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn sign_in(&self, name: &str, password: &str, device: Option<&str>) -> SignIn {
        let mut request = self
            .http
            .post(format!("{}/signin", self.base))
            .header("host", "lab.example.com")
            // A client's own claim is never believed: nginx replaces it.
            .header("x-forwarded-for", "203.0.113.99")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "name={}&password={}&next=/",
                crate::common::enc(name),
                crate::common::enc(password)
            ));
        if let Some(device) = device {
            request = request.header("cookie", format!("mite_perf_device={device}"));
        }
        let answer = request.send().await.expect("nginx answers");
        let header = |name: &str| {
            answer
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        SignIn {
            status: answer.status().as_u16(),
            location: header("location").unwrap_or_default(),
            retry_after: header("retry-after").and_then(|v| v.parse().ok()),
            cookies: answer
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect(),
        }
    }
}

/// The hosting guide's deployment (deploy/nginx.conf in front of
/// deploy/mite-perf-web.service, password accounts, no single sign-on).
/// Before the lab took the client's address from its proven proxy, every
/// client was 127.0.0.1: five bad passwords for ana from anyone locked her
/// out even on her remembered browser, and twenty on any names locked out
/// every browser the lab did not remember. Now a stranger's failures slow
/// the stranger, her remembered browser goes in whatever others typed, and
/// the activity log names each client.
#[tokio::test]
async fn the_sign_in_throttle_sees_each_client_behind_the_documented_nginx() {
    let _turn = crate::common::share_the_machine().await;
    let dir = temp_dir("behind-nginx");
    let db = format!("sqlite://{}/lab.db", dir.display());
    let password_file = dir.join("password");
    std::fs::write(&password_file, "ana-password-1\n").expect("password");
    for (name, role) in [("ana", "admin"), ("bo", "runner")] {
        let added = Command::new(BIN)
            .args(["user", "add", name, "--role", role, "--password-file"])
            .arg(&password_file)
            .env("MITE_PERF_DATABASE_URL", &db)
            .stdin(Stdio::null())
            .output()
            .expect("mite-perf user add");
        assert!(added.status.success(), "{added:?}");
    }
    // The proxy's secret, as deploy/nginx.conf makes it.
    let secret = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let secret_file = dir.join("proxy-secret");
    std::fs::write(&secret_file, format!("{secret}\n")).expect("secret");
    let secret_conf = dir.join("mite-perf-proxy-secret.conf");
    std::fs::write(
        &secret_conf,
        format!("proxy_set_header X-Mite-Perf-Proxy-Secret \"{secret}\";\n"),
    )
    .expect("secret conf");
    let server = Server::start_with(
        "behind-nginx",
        ServeOptions {
            db_url: Some(db),
            args: deployed_serve_args(&secret_file),
            dir: Some(dir.clone()),
        },
    )
    .await;
    let nginx = Nginx::start(server.addr, &secret_conf);
    let at = |host: u8| Client::at([127, 0, 0, host], nginx.port);
    let (ana, stranger, colleague, newcomer) = (at(3), at(2), at(3), at(4));

    // Ana signs in on her own browser, which the lab remembers.
    let home = ana.sign_in("ana", "ana-password-1", None).await;
    assert_eq!(
        (home.status, home.location.as_str()),
        (303, "/"),
        "{}",
        server.log()
    );
    let device = home
        .cookie("mite_perf_device")
        .expect("her browser is remembered");

    // A stranger guesses her password five times, then sprays names.
    for _ in 0..5 {
        let guess = stranger.sign_in("ana", "guess", None).await;
        assert_eq!(guess.status, 303, "a failure goes back to the form");
    }
    let back = ana.sign_in("ana", "ana-password-1", Some(&device)).await;
    assert_eq!(
        (back.status, back.location.as_str()),
        (303, "/"),
        "ana's remembered browser is locked out by a stranger's guesses: {:?}\n{}",
        back.retry_after,
        nginx.errors()
    );
    assert!(back.cookie("mite_perf_session").is_some());
    // A colleague behind the same address guessing her name: her
    // remembered browser still goes in.
    for _ in 0..6 {
        colleague.sign_in("ana", "guess", None).await;
    }
    let again = ana.sign_in("ana", "ana-password-1", Some(&device)).await;
    assert_eq!((again.status, again.location.as_str()), (303, "/"));

    let long = "x".repeat(5000);
    for i in 0..25 {
        let name = if i % 2 == 0 {
            format!("nobody{i}")
        } else {
            format!("{i}{long}")
        };
        stranger.sign_in(&name, "guess", None).await;
    }
    // The stranger is slowed (and told when to come back)…
    let slowed = stranger.sign_in("bo", "ana-password-1", None).await;
    assert_eq!(slowed.status, 429, "the stranger is slowed");
    assert!(slowed.retry_after.is_some_and(|s| s >= 1), "Retry-After");
    // …and nobody else: a browser the lab never saw signs bo in.
    let bo = newcomer.sign_in("bo", "ana-password-1", None).await;
    assert_eq!(
        (bo.status, bo.location.as_str()),
        (303, "/"),
        "a new browser elsewhere is locked out by a stranger's failures: {:?}",
        bo.retry_after
    );

    // The activity log names each client as nginx saw it, never what a
    // client claimed.
    let store = mite_perf::store::Store::connect(&server.db_url())
        .await
        .expect("store");
    let log = store.activity(None, 1000).await.expect("activity");
    let sources = |action: &str| -> std::collections::BTreeSet<String> {
        log.iter()
            .filter(|a| a.action == action)
            .map(|a| a.source.clone())
            .collect()
    };
    assert_eq!(
        sources("sign-in failed"),
        ["127.0.0.2", "127.0.0.3"].map(String::from).into(),
        "{log:?}"
    );
    assert_eq!(
        sources("sign-in"),
        ["127.0.0.3", "127.0.0.4"].map(String::from).into()
    );
    // A local process speaking to the lab directly cannot name a client:
    // without the proxy's secret its X-Forwarded-For counts for nothing.
    let direct = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("http://{}/signin", server.addr))
        .header("host", "lab.example.com")
        .header("x-forwarded-for", "198.51.100.77")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=bo&password=guess&next=/")
        .send()
        .await
        .expect("the lab answers");
    assert_eq!(direct.status().as_u16(), 303);
    let log = store.activity(None, 5).await.expect("activity");
    assert_eq!(log[0].source, "127.0.0.1", "{log:?}");
    drop(nginx);
}
