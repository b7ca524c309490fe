//! Who may do what on a shared lab: accounts and roles, sessions, API
//! tokens, the single-sign-on proxy and the activity log, in process
//! (`tower::ServiceExt::oneshot`) against a temporary SQLite store; and the
//! `user` and `token` commands and `serve`'s refusal to start unguarded,
//! through the binary. No mite runs.

use crate::common::seed::{send, Answer};

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderName, Request, StatusCode};
use axum::Router;

use domain::access::Role;
use mite_perf::access::accounts::hash_password;
use mite_perf::access::tokens::{new_token, token_hash};
use mite_perf::access::{AccessPolicy, Openness, TrustedProxy};
use mite_perf::lab::Lab;
use mite_perf::model::{RunParams, RunStatus};
use mite_perf::store::{AccountChange, Store};
use mite_perf::web::{WebConfig, SESSION_COOKIE};

struct Fixture {
    dir: PathBuf,
    store: Store,
    lab: Arc<Lab>,
    app: Router,
    /// Two finished runs (so that comparisons have two sides).
    run_id: i64,
    other_run_id: i64,
    /// The other run's scenario: a share link of `run_id` must not reach it.
    other_scenario_id: i64,
    /// A profile of the other run's runner (the first run's is profile 1).
    other_profile_id: i64,
    scenario_id: i64,
    /// The first run's requests/s series (it has provenance).
    series_id: String,
    /// API tokens by name (`ci`: runner, `dash`: viewer, `ci-upload`: a
    /// runner that may upload builds).
    tokens: Vec<(String, String)>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The password of each seeded user is their name and `-password`.
fn password(name: &str) -> String {
    format!("{name}-password")
}

async fn fixture(name: &str, policy: AccessPolicy) -> Fixture {
    fixture_on(name, policy, None).await
}

/// The fixture on the database at `url` (default: SQLite in its folder).
async fn fixture_on(name: &str, policy: AccessPolicy, url: Option<String>) -> Fixture {
    fixture_with(name, policy, url, true).await
}

/// The fixture, with its three accounts (`vi`, `ru`, `ad`) or none (an
/// open lab's: its tokens only).
async fn fixture_with(
    name: &str,
    policy: AccessPolicy,
    url: Option<String>,
    accounts: bool,
) -> Fixture {
    let dir = crate::common::temp_dir(&format!("access-{name}"));
    let output = dir.join("output");
    std::fs::create_dir_all(&output).expect("output folder");
    let url = url.unwrap_or_else(|| format!("sqlite://{}/lab.db", dir.display()));
    let store = Store::connect(&url).await.expect("store");
    let (run_id, scenario_id) = crate::common::seed::finished_run(&store, &output).await;
    let (other_run_id, other_scenario_id) =
        crate::common::seed::finished_run(&store, &output).await;
    // Another team's run in the same series (release 2.10.0): its point is
    // only its label's owners' and admins' to mark (nobody here owns it).
    crate::common::seed::measured_run(
        &store,
        "another-team",
        "",
        &crate::common::seed::provenance("2.10.0", "seeded CPU"),
    )
    .await;
    // The first run's provenance: its figures make series (the trends).
    store
        .save_provenance(
            run_id,
            &crate::common::seed::provenance("2.11.0", "seeded CPU"),
        )
        .await
        .expect("provenance");
    let series_id = mite_perf::trend::history::load_series(
        &store,
        &mite_perf::trend::history::SeriesFilter {
            figures: vec!["requests_per_second".into()],
            ..Default::default()
        },
        &Default::default(),
    )
    .await
    .expect("series")
    .first()
    .expect("the first run's series")
    .id
    .clone();
    // A profile of the first run's runner (profile 1), for its downloads,
    // and one of the other run's.
    crate::common::seed::runner_profile(&store, scenario_id).await;
    let other_profile_id = crate::common::seed::runner_profile(&store, other_scenario_id).await;
    // A collector file the first run kept, for its download.
    let scenario_dir = output.join("2026-11-26/10-00/scenario10");
    let collector = crate::common::seed::collector(&store, &scenario_dir, scenario_id).await;
    std::fs::write(collector.join("current"), b"\x80").expect("collector file");
    let users = [
        ("vi", Role::Viewer),
        ("ru", Role::Runner),
        ("ad", Role::Admin),
    ];
    for (user, role) in users.into_iter().filter(|_| accounts) {
        let hash = hash_password(password(user)).await.expect("hash");
        store
            .create_user(user, role, Some(&hash))
            .await
            .expect("user");
    }
    // The seeded runs' label is the runners' (ru's and the ci token's): they
    // may move its baseline.
    for owner in ["ru", "token:ci", "token:ci-upload"] {
        store
            .add_label_owner("seeded", owner)
            .await
            .expect("label owner");
    }
    let mut tokens = Vec::new();
    // The last two only in the permission matrix: an admin's token, and
    // an admin's token that has expired.
    for (token_name, role, may_upload, expires_at) in [
        ("ci", Role::Runner, false, None),
        ("dash", Role::Viewer, false, None),
        ("ci-upload", Role::Runner, true, None),
        ("ops", Role::Admin, false, None),
        ("stale", Role::Admin, false, Some(1_000)),
    ] {
        let token = new_token().expect("token");
        store
            .create_token_as(&mite_perf::store::NewToken {
                name: token_name,
                role,
                token_hash: &token_hash(&token),
                owner: None,
                expires_at,
                may_upload,
            })
            .await
            .expect("token");
        tokens.push((token_name.to_string(), token));
    }
    let mut setup = crate::common::seed::lab_setup(&dir, &output);
    setup.policy.allow_uploaded_builds = true;
    let lab = Lab::new(store.clone(), setup);
    let app = router(&lab, policy).await;
    Fixture {
        dir,
        store,
        lab,
        app,
        run_id,
        other_run_id,
        other_scenario_id,
        other_profile_id,
        scenario_id,
        series_id,
        tokens,
    }
}

async fn router(lab: &Arc<Lab>, access: AccessPolicy) -> Router {
    mite_perf::web::router(
        lab.clone(),
        WebConfig {
            site_root: crate::common::seed::site_root(),
            addr: ([10, 0, 0, 1], 3000).into(),
            public_urls: Vec::new(),
            access,
            metrics_token: None,
            download_idle_limit: mite_perf::web::downloads::IDLE_LIMIT,
        },
    )
    .await
    .expect("router")
}

/// A shared lab's policy: accounts required.
fn shared() -> AccessPolicy {
    AccessPolicy {
        open: Openness::Never,
        ..AccessPolicy::local()
    }
}

/// Signs in through the form; the session cookie (`name=value`).
async fn sign_in(app: &Router, name: &str, password: &str) -> String {
    let answer = post_sign_in(app, name, password, "/").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), "/", "{name} signed in");
    session_cookie(&answer).unwrap_or_else(|| panic!("no session cookie for {name}"))
}

async fn post_sign_in(app: &Router, name: &str, password: &str, next: &str) -> Answer {
    send(
        app,
        Request::post("/signin")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "name={}&password={}&next={}",
                crate::common::enc(name),
                crate::common::enc(password),
                crate::common::enc(next)
            )))
            .expect("a request"),
    )
    .await
}

fn session_cookie(answer: &Answer) -> Option<String> {
    answer
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(SESSION_COOKIE))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

/// A server-function call with the session cookie `cookie`.
fn call(cookie: &str, name: &str, args: String) -> Request<Body> {
    Request::post(format!("/api/{name}"))
        .header(header::COOKIE, cookie)
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(args))
        .expect("a request")
}

/// Who makes a request in the matrix.
#[derive(Clone)]
enum Who {
    Anonymous,
    Session {
        label: &'static str,
        role: Role,
        name: String,
        cookie: String,
    },
    Token {
        label: &'static str,
        role: Role,
        name: String,
        token: String,
        /// Made with `--may-upload`.
        may_upload: bool,
    },
    /// A token past its expiry (an admin's): counts for nothing.
    Expired {
        token: String,
    },
    /// Whoever opened a share link of the fixture's first run: that run's
    /// page, charts and downloads, nothing else (another run's, named by
    /// its scenario's or profile's id, neither).
    Share {
        cookie: String,
    },
    /// Anyone who reaches an open lab (on loopback, no account yet): the
    /// person who started it, with every right.
    Local,
    /// A single-sign-on identity: the matrix's trusted proxy names them
    /// (with its secret, from its address); a name the lab has not seen
    /// is added with the proxy's default role (a viewer).
    Proxied {
        label: &'static str,
        role: Role,
        name: String,
    },
}

impl Who {
    fn label(&self) -> &'static str {
        match self {
            Who::Anonymous => "anonymous",
            Who::Expired { .. } => "expired token",
            Who::Share { .. } => "share link",
            Who::Local => "open loopback",
            Who::Session { label, .. } | Who::Token { label, .. } | Who::Proxied { label, .. } => {
                label
            }
        }
    }

    fn role(&self) -> Option<Role> {
        match self {
            Who::Anonymous | Who::Expired { .. } | Who::Share { .. } => None,
            Who::Session { role, .. } | Who::Token { role, .. } | Who::Proxied { role, .. } => {
                Some(*role)
            }
            Who::Local => Some(Role::Admin),
        }
    }

    /// Whether it holds the right to upload builds.
    fn may_upload(&self) -> bool {
        matches!(
            self,
            Who::Token {
                may_upload: true,
                ..
            } | Who::Local
        )
    }

    /// What runs record as their launcher.
    fn name(&self) -> String {
        match self {
            Who::Anonymous | Who::Expired { .. } | Who::Share { .. } => String::new(),
            Who::Local => nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_default(),
            Who::Session { name, .. } | Who::Proxied { name, .. } => name.clone(),
            Who::Token { name, .. } => format!("token:{name}"),
        }
    }

    fn sign(&self, request: axum::http::request::Builder) -> axum::http::request::Builder {
        match self {
            Who::Anonymous | Who::Local => request,
            Who::Session { cookie, .. } | Who::Share { cookie } => {
                request.header(header::COOKIE, cookie)
            }
            Who::Token { token, .. } | Who::Expired { token } => {
                request.header(header::AUTHORIZATION, format!("Bearer {token}"))
            }
            Who::Proxied { name, .. } => request
                .header(SSO_USER_HEADER, name)
                .header(mite_perf::access::proxy::PROXY_SECRET_HEADER, SSO_SECRET)
                .extension(ConnectInfo(SocketAddr::new(SSO_PROXY.into(), 40000))),
        }
    }
}

/// The permission matrix's single-sign-on proxy (oauth2-proxy in the
/// hosting guide): its address, its secret and the header it names its
/// users in.
const SSO_PROXY: [u8; 4] = [10, 0, 0, 2];
const SSO_SECRET: &str = "0123456789abcdef0123456789abcdef";
const SSO_USER_HEADER: &str = "x-forwarded-user";

/// A shared lab behind the single-sign-on proxy: accounts, tokens and
/// share links too (the hosting guide's set-up).
fn shared_behind_sso() -> AccessPolicy {
    AccessPolicy {
        proxy: Some(
            TrustedProxy::new(
                vec![SSO_PROXY.into()],
                Some(mite_perf::access::secret::Secret::new(SSO_SECRET).expect("secret")),
                Some(HeaderName::from_static(SSO_USER_HEADER)),
                Role::Viewer,
            )
            .expect("a proxy"),
        ),
        ..shared()
    }
}

/// What the matrix asks for.
#[derive(Clone, Copy)]
enum Ask {
    /// A server function with these arguments.
    Call(&'static str, &'static str),
    /// A download (no browser: anonymous gets 401).
    Download(&'static str),
    /// A page, opened by a browser (anonymous is sent to sign in: 303).
    Page(&'static str),
    /// Cancels (or removes) a run the caller launched.
    OwnRun(&'static str),
    /// Cancels (or removes) a run someone else launched.
    OthersRun(&'static str),
    /// Revokes a share link the caller made.
    OwnShare,
    /// Revokes a share link someone else made.
    OthersShare,
    /// A server function anyone may call, signed in or not.
    Open(&'static str),
    /// Uploads a mite wheel (`POST /api/wheels`).
    Upload,
}

impl Ask {
    /// The server function or route asked for, as declared.
    fn target(&self) -> &'static str {
        match self {
            Ask::Call(name, _) | Ask::OwnRun(name) | Ask::OthersRun(name) | Ask::Open(name) => name,
            Ask::OwnShare | Ask::OthersShare => "revoke_share_link",
            Ask::Download(path) | Ask::Page(path) => path,
            Ask::Upload => "/api/wheels",
        }
    }
}

async fn share_link_by(f: &Fixture, maker: &str) -> i64 {
    f.store
        .create_share_link(
            f.run_id,
            &format!("hash-of-{maker}-{}", rand_suffix()),
            maker,
            i64::MAX,
        )
        .await
        .expect("share link")
}

/// A different token hash each time.
fn rand_suffix() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// `{run}`, `{other}`, `{scenario}`, `{other_scenario}`,
/// `{other_profile}`, `{series}` filled in.
fn fill(text: &str, f: &Fixture) -> String {
    text.replace("{run}", &f.run_id.to_string())
        .replace("{other}", &f.other_run_id.to_string())
        .replace("{scenario}", &f.scenario_id.to_string())
        .replace("{other_scenario}", &f.other_scenario_id.to_string())
        .replace("{other_profile}", &f.other_profile_id.to_string())
        .replace("{series}", &f.series_id)
}

async fn queued_run(f: &Fixture, launched_by: &str) -> i64 {
    let params = RunParams {
        concurrencies: vec![1],
        launched_by: launched_by.into(),
        ..RunParams::default()
    };
    f.store
        .create_run(&params, RunStatus::Queued)
        .await
        .expect("queued run")
}

async fn ask(f: &Fixture, app: &Router, who: &Who, what: Ask) -> StatusCode {
    let call = |name: &str, args: String| {
        who.sign(Request::post(format!("/api/{name}")))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(Body::from(args))
            .expect("a request")
    };
    let request = match what {
        Ask::Call(name, args) => call(name, fill(args, f)),
        Ask::Download(path) => who
            .sign(Request::get(fill(path, f)))
            .body(Body::empty())
            .expect("a request"),
        Ask::Page(path) => who
            .sign(Request::get(fill(path, f)))
            .header(header::ACCEPT, "text/html")
            .header("sec-fetch-mode", "navigate")
            .body(Body::empty())
            .expect("a request"),
        Ask::OwnRun(name) => {
            let run = queued_run(f, &who.name()).await;
            call(name, format!("run_id={run}"))
        }
        Ask::OthersRun(name) => {
            let run = queued_run(f, "someone-else").await;
            call(name, format!("run_id={run}"))
        }
        Ask::OwnShare => {
            let link = share_link_by(f, &who.name()).await;
            call("revoke_share_link", format!("link_id={link}"))
        }
        Ask::OthersShare => {
            let link = share_link_by(f, "someone-else").await;
            call("revoke_share_link", format!("link_id={link}"))
        }
        Ask::Open(name) => call(name, String::new()),
        Ask::Upload => who
            .sign(Request::post(
                "/api/wheels?name=mite-9.9.9-py3-none-any.whl",
            ))
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(Body::from(crate::common::seed::fake_wheel("mite", "9.9.9")))
            .expect("a request"),
    };
    send(app, request).await.status
}

/// What `who` must get asking `what`, which needs at least `least`.
fn expected(who: &Who, what: &Ask, least: Role) -> StatusCode {
    match who.role() {
        // A credential that is no longer valid is refused as such, pages
        // and open calls too: never taken for anonymous.
        _ if matches!(who, Who::Expired { .. }) => StatusCode::UNAUTHORIZED,
        _ if matches!(what, Ask::Open(_)) => StatusCode::OK,
        None if matches!(who, Who::Share { .. }) => {
            if shows_only_the_shared_run(what, least) {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            }
        }
        None if matches!(what, Ask::Page(_)) => StatusCode::SEE_OTHER,
        None => StatusCode::UNAUTHORIZED,
        Some(role) if matches!(what, Ask::Upload) => {
            if role >= least && who.may_upload() {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            }
        }
        Some(role) if role >= least => StatusCode::OK,
        Some(_) => StatusCode::FORBIDDEN,
    }
}

/// Whether `what` reads the shared run (the fixture's first) and nothing
/// else: what a viewer may, naming that run, its scenario or its profile
/// and no other run's ids (comparisons are not the run's own, even of it
/// with itself); of the pages, its run page only.
fn shows_only_the_shared_run(what: &Ask, least: Role) -> bool {
    let text = match what {
        Ask::Call(_, args) => *args,
        Ask::Download(path) => path,
        Ask::Page(path) => return *path == "/runs/{run}",
        _ => return false,
    };
    least == Role::Viewer
        && !text.contains("{other")
        && !text.starts_with("/compare")
        && ["{run}", "{scenario}", "/profiles/1/"]
            .iter()
            .any(|named| text.contains(named))
}

/// How `what` is written in the matrix's table.
fn row_name(what: &Ask) -> String {
    match what {
        Ask::Call(name, _) => format!("{name}()"),
        Ask::Download(path) => format!("GET {path}"),
        Ask::Page(path) => format!("page {path}"),
        Ask::OwnRun(name) => format!("{name}(own run)"),
        Ask::OthersRun(name) => format!("{name}(another's run)"),
        Ask::OwnShare => "revoke_share_link(own link)".into(),
        Ask::OthersShare => "revoke_share_link(another's link)".into(),
        Ask::Open(name) => format!("{name}() (open)"),
        Ask::Upload => "POST /api/wheels".into(),
    }
}

/// Asks `app` every check as every caller: what was answered otherwise
/// than expected, and the table of answers.
async fn run_matrix(
    f: &Fixture,
    app: &Router,
    callers: &[Who],
    checks: &[(Ask, Role)],
) -> (Vec<String>, String) {
    let mut table = format!("{:<56}", "request \\ caller");
    for who in callers {
        let _ = write!(table, "{:>14}", who.label());
    }
    table.push('\n');
    let mut wrong = Vec::new();
    for (what, least) in checks {
        let name = row_name(what);
        let _ = write!(table, "{name:<56}");
        for who in callers {
            let expected = expected(who, what, *least);
            let got =
                tokio::time::timeout(std::time::Duration::from_secs(20), ask(f, app, who, *what))
                    .await
                    .unwrap_or_else(|_| {
                        panic!("{name} by {} did not answer within 20 s", who.label())
                    });
            let _ = write!(table, "{:>14}", got.as_u16());
            if got != expected {
                wrong.push(format!(
                    "{name} by {}: {got}, expected {expected}",
                    who.label()
                ));
            }
        }
        table.push('\n');
    }
    (wrong, table)
}

/// Opens a share link of the fixture's first run, made by signed-in
/// `maker`: the cookie that holds it.
async fn share_cookie(f: &Fixture, maker: &str) -> String {
    let made = send(
        &f.app,
        call(maker, "share_run", format!("run_id={}&days=7", f.run_id)),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let made: serde_json::Value = serde_json::from_str(&made.body).expect("json");
    let path = made["path"].as_str().expect("the link");
    let opened = send(
        &f.app,
        Request::get(path).body(Body::empty()).expect("a request"),
    )
    .await;
    opened
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("the share link's cookie")
        .to_string()
}

#[tokio::test]
async fn every_server_function_and_download_answers_what_each_role_allows() {
    permission_matrix(fixture("matrix", shared_behind_sso()).await).await;
}

/// The matrix on PostgreSQL, as a hosted lab keeps its accounts, sessions,
/// tokens and share links.
#[tokio::test]
async fn every_server_function_and_download_answers_what_each_role_allows_on_postgres() {
    let pg = crate::common::Postgres::start();
    let url = pg.fresh_database("matrix").await;
    permission_matrix(fixture_on("matrix-pg", shared_behind_sso(), Some(url)).await).await;
}

async fn permission_matrix(f: Fixture) {
    let mut callers = vec![Who::Anonymous];
    for (label, name, role) in [
        ("viewer", "vi", Role::Viewer),
        ("runner", "ru", Role::Runner),
        ("admin", "ad", Role::Admin),
    ] {
        callers.push(Who::Session {
            label,
            role,
            name: name.into(),
            cookie: sign_in(&f.app, name, &password(name)).await,
        });
    }
    for ((name, token), (label, role, may_upload)) in f.tokens.iter().zip([
        ("token runner", Role::Runner, false),
        ("token viewer", Role::Viewer, false),
        ("token upload", Role::Runner, true),
        ("token admin", Role::Admin, false),
    ]) {
        callers.push(Who::Token {
            label,
            role,
            name: name.clone(),
            token: token.clone(),
            may_upload,
        });
    }
    let (_, stale) = f.tokens.last().expect("the expired token");
    callers.push(Who::Expired {
        token: stale.clone(),
    });
    let runner = sign_in(&f.app, "ru", &password("ru")).await;
    callers.push(Who::Share {
        cookie: share_cookie(&f, &runner).await,
    });
    // Single sign-on: a name the lab has never seen (added as a viewer by
    // its first request), and one an admin made an admin.
    let sso_admin = "sso-admin@example.com";
    f.store
        .create_user(sso_admin, Role::Admin, None)
        .await
        .expect("an admin known by single sign-on");
    callers.push(Who::Proxied {
        label: "sso new",
        role: Role::Viewer,
        name: "sso-new@example.com".into(),
    });
    callers.push(Who::Proxied {
        label: "sso admin",
        role: Role::Admin,
        name: sso_admin.into(),
    });
    check_every_endpoint(&f, &callers, "the permission matrix").await;
}

/// An open lab (on loopback with no account yet: the README's first
/// command): whoever reaches it may do all an admin may, uploads too; a
/// credential that is no longer valid is still refused as such, never
/// taken for the open lab's caller.
#[tokio::test]
async fn an_open_loopback_lab_answers_everyone_as_its_admin() {
    let f = fixture_with("matrix-open", AccessPolicy::local(), None, false).await;
    assert!(!f.store.has_users().await.expect("users"), "no account");
    let (_, stale) = f.tokens.last().expect("the expired token");
    let callers = [
        Who::Local,
        Who::Expired {
            token: stale.clone(),
        },
    ];
    check_every_endpoint(&f, &callers, "the open lab's matrix").await;
}

/// The matrix's rows ([`matrix_checks`]) asked by each of `callers`, every
/// answer as expected, and every endpoint the lab serves among the rows.
async fn check_every_endpoint(f: &Fixture, callers: &[Who], title: &str) {
    let checks = matrix_checks();
    let (wrong, table) = run_matrix(f, &f.app, callers, &checks).await;
    println!("{title}:\n{table}");
    assert!(wrong.is_empty(), "{}\n{table}", wrong.join("\n"));
    assert_every_endpoint_is_asked(&checks);
}

/// Every request the matrix makes, and the role each needs at least.
fn matrix_checks() -> Vec<(Ask, Role)> {
    let launch = "form[scenarios]=1&form[duration]=5s&form[spawn_rate]=1000000&form[interval]=1s&form[label]=matrix";
    vec![
        (Ask::Call("get_queue", ""), Role::Viewer),
        (Ask::Call("list_runs", "page=1&label="), Role::Viewer),
        (Ask::Call("get_run", "run_id={run}"), Role::Viewer),
        (
            Ask::Call("get_charts", "scenario_id={scenario}"),
            Role::Viewer,
        ),
        (
            Ask::Call(
                "get_chart_points",
                "scenario_id={scenario}&bucket_ms=1000&after_ms=-1",
            ),
            Role::Viewer,
        ),
        (Ask::Call("get_ports", ""), Role::Viewer),
        (Ask::Call("get_builds", ""), Role::Viewer),
        (Ask::Call("get_library", ""), Role::Viewer),
        (Ask::Download("/profiles/1/flamegraph.svg"), Role::Viewer),
        (Ask::Download("/profiles/1/stacks.folded"), Role::Viewer),
        (Ask::Download("/profiles/1/speedscope.json"), Role::Viewer),
        // Another run's, named by its ids: a share link of the first run
        // reaches none of them.
        (Ask::Call("get_run", "run_id={other}"), Role::Viewer),
        (
            Ask::Call("get_charts", "scenario_id={other_scenario}"),
            Role::Viewer,
        ),
        (
            Ask::Call(
                "get_chart_points",
                "scenario_id={other_scenario}&bucket_ms=1000&after_ms=-1",
            ),
            Role::Viewer,
        ),
        (
            Ask::Call("get_mite_view", "scenario_id={other_scenario}"),
            Role::Viewer,
        ),
        (Ask::Download("/runs/{other}/samples.csv"), Role::Viewer),
        (
            Ask::Download("/scenarios/{other_scenario}/samples.csv"),
            Role::Viewer,
        ),
        (
            Ask::Download("/scenarios/{other_scenario}/processes.csv"),
            Role::Viewer,
        ),
        (
            Ask::Download("/scenarios/{other_scenario}/transactions.csv"),
            Role::Viewer,
        ),
        (
            Ask::Download("/profiles/{other_profile}/flamegraph.svg"),
            Role::Viewer,
        ),
        (
            Ask::Download("/profiles/{other_profile}/stacks.folded"),
            Role::Viewer,
        ),
        (
            Ask::Download("/profiles/{other_profile}/speedscope.json"),
            Role::Viewer,
        ),
        (Ask::Page("/runs/{other}"), Role::Viewer),
        (
            Ask::Call("compare_runs", "runs={run},{other}"),
            Role::Viewer,
        ),
        (
            Ask::Call("get_compare_charts", "runs={run},{other}"),
            Role::Viewer,
        ),
        (Ask::Call("get_matrix", "run_id={run}"), Role::Viewer),
        (Ask::Call("get_agents", ""), Role::Viewer),
        (Ask::Call("get_trends", "figure="), Role::Viewer),
        (Ask::Call("get_series", "id={series}"), Role::Viewer),
        (
            Ask::Call(
                "mark_trend",
                "series={series}&build=2.11.0&kind=acknowledged&set=true",
            ),
            Role::Runner,
        ),
        // Another team's point: its label's owners' and admins' only.
        (
            Ask::Call(
                "mark_trend",
                "series={series}&build=2.10.0&kind=excluded&set=true",
            ),
            Role::Admin,
        ),
        (Ask::Download("/runs/{run}/samples.csv"), Role::Viewer),
        (Ask::Download("/runs/{run}/figures.csv"), Role::Viewer),
        (Ask::Download("/runs/{run}/chart.html"), Role::Viewer),
        (
            Ask::Download("/scenarios/{scenario}/samples.csv"),
            Role::Viewer,
        ),
        (
            Ask::Download("/scenarios/{scenario}/logs/runner"),
            Role::Viewer,
        ),
        (
            Ask::Download("/compare.csv?runs={run},{other}"),
            Role::Viewer,
        ),
        (Ask::Page("/"), Role::Viewer),
        (Ask::Page("/runs"), Role::Viewer),
        (Ask::Page("/runs/{run}"), Role::Viewer),
        (Ask::Page("/compare?runs={run},{other}"), Role::Viewer),
        (Ask::Page("/ports"), Role::Viewer),
        (Ask::Page("/agents"), Role::Viewer),
        (Ask::Page("/trends"), Role::Viewer),
        (Ask::Page("/trends/{series}"), Role::Viewer),
        (Ask::Page("/activity"), Role::Admin),
        (Ask::Call("launch_run", launch), Role::Runner),
        // A runner's with the right to upload only (the token column).
        (Ask::Upload, Role::Runner),
        // A range that is not one: answered (200) without asking PyPI.
        (
            Ask::Call("backfill_releases", "range=not-a-range"),
            Role::Runner,
        ),
        (Ask::Call("mark_baseline", "run_id={run}"), Role::Runner),
        (Ask::OwnRun("cancel_run"), Role::Runner),
        (Ask::OwnRun("remove_queued_run"), Role::Runner),
        (Ask::OthersRun("cancel_run"), Role::Admin),
        (Ask::OthersRun("remove_queued_run"), Role::Admin),
        (Ask::Call("cleanup_ports", ""), Role::Admin),
        (Ask::Call("get_activity", ""), Role::Admin),
        (Ask::Call("share_run", "run_id={run}&days=7"), Role::Runner),
        (Ask::Call("get_share_links", "run_id={run}"), Role::Runner),
        (Ask::OwnShare, Role::Runner),
        (Ask::OthersShare, Role::Admin),
        (Ask::Open("who_am_i"), Role::Viewer),
        (
            Ask::Call("get_mite_view", "scenario_id={scenario}"),
            Role::Viewer,
        ),
        (Ask::Download("/runs/{run}/transactions.csv"), Role::Viewer),
        (
            Ask::Download("/scenarios/{scenario}/transactions.csv"),
            Role::Viewer,
        ),
        (
            Ask::Download("/scenarios/{scenario}/processes.csv"),
            Role::Viewer,
        ),
        (
            Ask::Download("/scenarios/{scenario}/collector/current"),
            Role::Viewer,
        ),
        (
            Ask::Download("/compare/flamegraph.svg?runs={run},{run}&concurrency=10"),
            Role::Viewer,
        ),
    ]
}

/// Every server function and every route is in `checks`, or is one of
/// the few anyone may reach (each with its own test).
fn assert_every_endpoint_is_asked(checks: &[(Ask, Role)]) {
    let asked: Vec<String> = checks
        .iter()
        .map(|(what, _)| {
            what.target()
                .split('?')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    // (the charts' script: router::the_charts_script_is_served_whole_from_the_lab)
    let elsewhere = [
        "/assets/echarts.min.js",
        "/signin",
        "/signout",
        "/share/{secret}",
        "/healthz",
        "/metrics",
    ];
    // Not an empty list: what the lab serves is there to be covered.
    let (functions, routes) = (declared_server_functions(), declared_routes());
    assert!(
        functions.len() >= 25 && functions.iter().any(|f| f == "launch_run"),
        "{functions:?}"
    );
    assert!(
        routes.iter().any(|r| r == "/runs/{id}") && routes.iter().any(|r| r.ends_with(".csv")),
        "{routes:?}"
    );
    let mut missing = Vec::new();
    for endpoint in functions {
        if !asked.contains(&endpoint) {
            missing.push(format!("server function {endpoint}"));
        }
    }
    for route in routes {
        let covered =
            asked.iter().any(|a| same_route(a, &route)) || elsewhere.contains(&route.as_str());
        if !covered {
            missing.push(format!("route {route}"));
        }
    }
    assert!(missing.is_empty(), "not in the matrix: {missing:?}");
}

/// The matrix can fail: a build whose scenario download forgot its
/// per-run check (its handler asks only that the request carry a
/// credential) answers a share link of another run with the data, and the
/// same rows and callers catch it in the share link's column.
#[tokio::test]
async fn a_download_that_forgets_its_per_run_check_fails_the_matrix() {
    let f = fixture("forgetful", shared()).await;
    let runner = sign_in(&f.app, "ru", &password("ru")).await;
    let callers = [
        Who::Anonymous,
        Who::Session {
            label: "viewer",
            role: Role::Viewer,
            name: "vi".into(),
            cookie: sign_in(&f.app, "vi", &password("vi")).await,
        },
        Who::Share {
            cookie: share_cookie(&f, &runner).await,
        },
    ];
    let checks = [(
        Ask::Download("/scenarios/{other_scenario}/samples.csv"),
        Role::Viewer,
    )];
    let (wrong, table) = run_matrix(&f, &f.app, &callers, &checks).await;
    assert!(wrong.is_empty(), "the lab as built: {wrong:?}\n{table}");
    async fn any_credential(headers: axum::http::HeaderMap) -> StatusCode {
        if headers.contains_key(header::COOKIE) || headers.contains_key(header::AUTHORIZATION) {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        }
    }
    let forgetful = Router::new()
        .route(
            "/scenarios/{id}/samples.csv",
            axum::routing::get(any_credential),
        )
        .fallback_service(f.app.clone());
    let (wrong, table) = run_matrix(&f, &forgetful, &callers, &checks).await;
    assert_eq!(
        wrong,
        ["GET /scenarios/{other_scenario}/samples.csv by share link: 200 OK, expected 403 Forbidden"],
        "{table}"
    );
}

#[tokio::test]
async fn sessions_live_in_the_database_with_safe_cookies_and_no_password_in_clear() {
    let f = fixture("cookies", shared()).await;
    let answer = post_sign_in(&f.app, "ru", &password("ru"), "/runs").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/runs");
    let set_cookie = answer
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(SESSION_COOKIE))
        .expect("a session cookie")
        .to_string();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(flag), "{flag} missing: {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    // Behind HTTPS the cookie goes over HTTPS only.
    let https = router(
        &f.lab,
        AccessPolicy {
            secure_cookies: true,
            ..shared()
        },
    )
    .await;
    let answer = post_sign_in(&https, "ru", &password("ru"), "/").await;
    let set_cookie = answer
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");

    // The session is a row of the database: another web front on the same
    // database (a restarted lab) knows the browser.
    let cookie = session_cookie(&answer).expect("cookie");
    let other_front = router(&f.lab, shared()).await;
    let me = send(
        &other_front,
        Request::post("/api/who_am_i")
            .header(header::COOKIE, &cookie)
            .header(header::ACCEPT, "application/json")
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let me: serde_json::Value = serde_json::from_str(&me.body).expect("json");
    assert_eq!(me["name"], "ru");
    assert_eq!(me["role"], "Runner");
    assert_eq!(me["identity"], "Account");

    // Passwords are argon2 hashes, never the password.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}/lab.db", f.dir.display()))
        .await
        .expect("the database");
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT name, password_hash FROM users")
            .fetch_all(&pool)
            .await
            .expect("users");
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tower_sessions")
        .fetch_one(&pool)
        .await
        .expect("sessions");
    assert!(sessions >= 2, "{sessions} sessions stored");
    assert_eq!(rows.len(), 3);
    for (name, hash) in rows {
        let hash = hash.expect("a hash");
        assert!(hash.starts_with("$argon2"), "{name}: {hash}");
        assert!(
            !hash.contains(&password(&name)),
            "{name}'s password in clear"
        );
    }
    // A wrong password opens no session.
    let wrong = post_sign_in(&f.app, "ru", "not-the-password", "/runs").await;
    assert_eq!(wrong.status, StatusCode::SEE_OTHER);
    assert_eq!(wrong.location(), "/signin?failed=1&next=/runs");
    assert_eq!(session_cookie(&wrong), None);
}

/// Slowed, not locked: past five failures a name waits a second, then
/// twice as long after each further failure, and goes in once the wait is
/// over (before, five failures locked it out for ten minutes).
#[tokio::test]
async fn repeated_failed_sign_ins_are_slowed_with_429() {
    use mite_perf::access::throttle::FIRST_WAIT;
    let f = fixture("throttle", shared()).await;
    let retry_after = |answer: &Answer| -> u64 {
        answer
            .headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("Retry-After")
    };
    for attempt in 0..5 {
        let answer = post_sign_in(&f.app, "ad", "guess", "/").await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "attempt {attempt}");
        assert!(answer.location().starts_with("/signin?failed=1"));
    }
    // Now even the right password waits, a moment.
    let slowed = post_sign_in(&f.app, "ad", &password("ad"), "/").await;
    assert_eq!(
        slowed.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        slowed.body
    );
    assert!(
        slowed.body.contains("try again in 1 second"),
        "{}",
        slowed.body
    );
    assert_eq!(retry_after(&slowed), FIRST_WAIT.as_secs());
    assert_eq!(session_cookie(&slowed), None);
    // Another user is not slowed by these.
    sign_in(&f.app, "ru", &password("ru")).await;
    // Once the wait is over, another failure doubles it.
    tokio::time::sleep(FIRST_WAIT).await;
    let answer = post_sign_in(&f.app, "ad", "guess", "/").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let slowed = post_sign_in(&f.app, "ad", &password("ad"), "/").await;
    assert_eq!(slowed.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&slowed), 2 * FIRST_WAIT.as_secs());
    // And once that is over, the right password goes in.
    tokio::time::sleep(2 * FIRST_WAIT).await;
    sign_in(&f.app, "ad", &password("ad")).await;
    let log = f.store.activity(None, 100).await.expect("activity");
    let failures = log
        .iter()
        .filter(|a| a.action == "sign-in failed" && a.actor == "ad");
    assert_eq!(failures.count(), 6);
    assert!(log.iter().any(|a| a.action == "sign-in" && a.actor == "ru"));
}

/// A sign-in from `from`, in a browser holding `device` (its device cookie).
async fn sign_in_from(
    app: &Router,
    name: &str,
    password: &str,
    from: [u8; 4],
    device: Option<&str>,
) -> Answer {
    let mut request =
        Request::post("/signin").header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(device) = device {
        request = request.header(header::COOKIE, format!("mite_perf_device={device}"));
    }
    let mut request = request
        .body(Body::from(format!(
            "name={}&password={}&next=/",
            crate::common::enc(name),
            crate::common::enc(password)
        )))
        .expect("a request");
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(from.into(), 40000)));
    send(app, request).await
}

fn device_cookie(answer: &Answer) -> Option<String> {
    answer
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("mite_perf_device="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

/// A flood of guesses from many addresses at one admin, many at once: the
/// password checks take turns (never more than one at a time, the rest
/// told to come back), strangers are slowed, and the admin's own browser
/// still signs in. One address spraying names is stopped without
/// slowing anyone else. Typed names are bounded before they reach the log.
#[tokio::test]
async fn a_sign_in_flood_neither_locks_out_the_real_user_nor_takes_the_cpu() {
    use mite_perf::access::throttle::HASH_PERMITS;
    let f = fixture("flood", shared()).await;
    let home = sign_in_from(&f.app, "ad", &password("ad"), [198, 51, 100, 1], None).await;
    assert_eq!(home.location(), "/", "{}", home.body);
    let device = device_cookie(&home).expect("her browser is remembered");

    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for wave in 0..5u8 {
        let guesses = (0..24u8).map(|i| {
            let app = f.app.clone();
            async move {
                sign_in_from(&app, "ad", "guess", [192, 0, 2, wave * 24 + i], None)
                    .await
                    .status
            }
        });
        for status in futures_util::future::join_all(guesses).await {
            *statuses.entry(status.as_u16()).or_default() += 1;
        }
    }
    let peak = f.lab.password_checks().peak();
    assert!(peak >= 1 && peak <= HASH_PERMITS, "{peak} checks at once");
    assert!(statuses.get(&429).is_some_and(|n| *n > 0), "{statuses:?}");
    // A stranger now waits; her own browser goes in, from a new address.
    let stranger = sign_in_from(&f.app, "ad", &password("ad"), [203, 0, 113, 9], None).await;
    assert_eq!(
        stranger.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{statuses:?}"
    );
    assert!(
        stranger.body.contains("from elsewhere"),
        "{}",
        stranger.body
    );
    let back = sign_in_from(
        &f.app,
        "ad",
        &password("ad"),
        [203, 0, 113, 10],
        Some(&device),
    )
    .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    assert_eq!(back.location(), "/");
    assert!(session_cookie(&back).is_some());

    // One address spraying names (some far too long) is stopped; the
    // others are not slowed by it.
    let sprayer = [192, 0, 2, 200];
    let long = "x".repeat(5000);
    for i in 0..25 {
        let name = if i % 2 == 0 {
            format!("nobody{i}")
        } else {
            // Different within the 256 bytes the throttle keeps of a name.
            format!("{i}{long}")
        };
        sign_in_from(&f.app, &name, "guess", sprayer, None).await;
    }
    let sprayed = sign_in_from(&f.app, "vi", &password("vi"), sprayer, None).await;
    assert_eq!(sprayed.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(sprayed.body.contains("this address"), "{}", sprayed.body);
    let viewer = sign_in_from(&f.app, "vi", &password("vi"), [198, 51, 100, 7], None).await;
    assert_eq!(viewer.location(), "/", "{}", viewer.body);
    let log = f.store.activity(None, 1000).await.expect("activity");
    let longest = log.iter().map(|a| a.actor.chars().count()).max();
    assert!(longest.is_some_and(|n| n <= 65), "{longest:?}");
}

#[tokio::test]
async fn a_signed_out_colleague_opening_a_csv_link_signs_in_and_gets_the_file() {
    let f = fixture("links", shared()).await;
    let link = format!("/runs/{}/samples.csv", f.run_id);
    let opened = send(
        &f.app,
        Request::get(&link)
            .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*")
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER);
    let to = opened.location().to_string();
    assert_eq!(to, format!("/signin?next=/runs/{}/samples.csv", f.run_id));
    // The sign-in page carries the link on.
    let page = send(
        &f.app,
        Request::get(&to)
            .header(header::ACCEPT, "text/html")
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(r#"action="/signin""#), "{}", page.body);
    assert!(
        page.body
            .contains(&format!(r#"name="next" value="{link}""#)),
        "the link rides along even before the page's script runs: {}",
        page.body
    );
    let signed = post_sign_in(&f.app, "vi", &password("vi"), &link).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    assert_eq!(signed.location(), link);
    let cookie = session_cookie(&signed).expect("cookie");
    let file = send(
        &f.app,
        Request::get(&link)
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(file.status, StatusCode::OK);
    assert!(
        file.body.starts_with(mite_perf::reports::csv::HEADER),
        "{}",
        &file.body[..80.min(file.body.len())]
    );
    assert_eq!(
        file.body.lines().count(),
        61,
        "header + 30 ticks of 2 processes"
    );
    // Never sent on to another site.
    for outside in ["//evil.example/x", "https://evil.example/"] {
        let answer = post_sign_in(&f.app, "vi", &password("vi"), outside).await;
        assert_eq!(answer.location(), "/", "{outside}");
    }
    // Signing out ends the session.
    let out = send(
        &f.app,
        Request::post("/signout")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = send(
        &f.app,
        Request::get(&link)
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tokens_and_proxy_names_count_only_when_valid() {
    use mite_perf::access::proxy::PROXY_SECRET_HEADER;
    let proxy: std::net::IpAddr = [10, 0, 0, 2].into();
    let secret = "0123456789abcdef0123456789abcdef";
    let policy = AccessPolicy {
        proxy: Some(
            TrustedProxy::new(
                vec![proxy],
                Some(mite_perf::access::secret::Secret::new(secret).expect("secret")),
                Some(HeaderName::from_static("x-forwarded-user")),
                Role::Viewer,
            )
            .expect("a proxy"),
        ),
        ..shared()
    };
    let f = fixture("proxy", policy).await;
    // Every request carries the proxy's secret: only the proxy's address
    // makes it the proxy's.
    let queue_as = |auth: Option<String>, user: Option<&str>, from: std::net::IpAddr| {
        let mut request = Request::post("/api/get_queue")
            .header(header::ACCEPT, "application/json")
            .header(PROXY_SECRET_HEADER, secret)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        if let Some(user) = user {
            request = request.header("x-forwarded-user", user);
        }
        let mut request = request.body(Body::empty()).expect("a request");
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(from, 40000)));
        request
    };
    let (_, ci) = &f.tokens[0];
    let ok = send(&f.app, queue_as(Some(format!("Bearer {ci}")), None, proxy)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    // The last character changed (to one it is not: a token ending in 0
    // made this the real token once in 16 runs).
    let (kept, last) = ci.split_at(ci.len() - 1);
    let mistyped = format!("Bearer {kept}{}", if last == "0" { "1" } else { "0" });
    let bad = send(&f.app, queue_as(Some(mistyped), None, proxy)).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.body.contains("not valid"), "{}", bad.body);
    let basic = send(&f.app, queue_as(Some("Basic YWQ6eA==".into()), None, proxy)).await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    assert!(f.store.revoke_token("ci").await.expect("revoke"));
    let revoked = send(&f.app, queue_as(Some(format!("Bearer {ci}")), None, proxy)).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);

    // The proxy's header, from the proxy: a user, added as a viewer.
    let stranger: std::net::IpAddr = [10, 0, 0, 66].into();
    let named = send(&f.app, queue_as(None, Some("mo@example.com"), proxy)).await;
    assert_eq!(named.status, StatusCode::OK, "{}", named.body);
    let user = f
        .store
        .user_by_name("mo@example.com")
        .await
        .expect("user")
        .expect("added");
    assert_eq!((user.role, user.password_hash), (Role::Viewer, None));
    // The same header from anyone else is ignored: nobody.
    let forged = send(&f.app, queue_as(None, Some("ad"), stranger)).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    // A name the lab cannot take is refused, not guessed at.
    let odd = send(&f.app, queue_as(None, Some("a b"), proxy)).await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST, "{}", odd.body);
    // A proxy user cannot sign in with a password (they have none).
    let no_password = post_sign_in(&f.app, "mo@example.com", "", "/").await;
    assert_eq!(no_password.location(), "/signin?failed=1&next=/");

    // An admin makes them a runner: they launch, under their own name.
    assert_eq!(
        f.store
            .set_role("mo@example.com", Role::Runner)
            .await
            .expect("role"),
        AccountChange::Done
    );
    let mut launch = Request::post("/api/launch_run")
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-forwarded-user", "mo@example.com")
        .header(PROXY_SECRET_HEADER, secret)
        .header("x-forwarded-for", "192.0.2.7")
        .body(Body::from(
            "form[scenarios]=1&form[duration]=5s&form[spawn_rate]=1000000&form[interval]=1s&form[label]=sso&form[launched_by]=someone-else",
        ))
        .expect("a request");
    launch
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(proxy, 40000)));
    let launched = send(&f.app, launch).await;
    assert_eq!(launched.status, StatusCode::OK, "{}", launched.body);
    let run_id = serde_json::from_str::<serde_json::Value>(&launched.body).expect("json")["Queued"]
        ["run_id"]
        .as_i64()
        .expect("queued");
    let run = f.store.run(run_id).await.expect("run").expect("stored");
    assert_eq!(
        run.params.launched_by, "mo@example.com",
        "never the typed name"
    );
    let log = f.store.activity(None, 10).await.expect("activity");
    let entry = log.iter().find(|a| a.action == "launch").expect("logged");
    assert_eq!(
        (
            entry.actor.as_str(),
            entry.subject.as_str(),
            entry.source.as_str()
        ),
        (
            "mo@example.com",
            format!("run {run_id}").as_str(),
            "192.0.2.7"
        ),
        "who, what and from where (the client the proxy forwarded for)"
    );
}

/// The proxy on the lab's own host (the hosting guide's set-up): any local
/// process connects from 127.0.0.1 too, so an address alone would make
/// `curl -H 'X-Forwarded-User: ad' http://127.0.0.1:3000/…` the admin. The
/// proxy proves itself with its secret; without one the lab will not start.
#[tokio::test]
async fn a_local_process_cannot_forge_the_proxy_header() {
    use mite_perf::access::proxy::PROXY_SECRET_HEADER;
    use mite_perf::access::secret::Secret;
    let loopback: std::net::IpAddr = [127, 0, 0, 1].into();
    let secret = "5c1d0e3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d";
    let proxy = |secret: Option<Secret>| {
        TrustedProxy::new(
            vec![loopback],
            secret,
            Some(HeaderName::from_static("x-forwarded-user")),
            Role::Viewer,
        )
    };
    // Without a secret, a proxy is refused at start (at any address:
    // `a_proxy_without_its_secret_is_refused_at_any_address`).
    let why = proxy(None).expect_err("a loopback proxy without a secret is refused");
    assert!(
        why.to_string().contains("--trusted-proxy-secret-file"),
        "{why}"
    );

    let f = fixture(
        "proxy-local",
        AccessPolicy {
            proxy: Some(proxy(Some(Secret::new(secret).expect("secret"))).expect("a proxy")),
            ..shared()
        },
    )
    .await;
    let queue_as = |user: &str, presented: Option<&str>| {
        let mut request = Request::post("/api/get_queue")
            .header(header::ACCEPT, "application/json")
            .header("x-forwarded-user", user);
        if let Some(presented) = presented {
            request = request.header(PROXY_SECRET_HEADER, presented);
        }
        let mut request = request.body(Body::empty()).expect("a request");
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(loopback, 40000)));
        request
    };
    // A local process naming the admin: nobody.
    let forged = send(&f.app, queue_as("ad", None)).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{}", forged.body);
    let guessed = send(&f.app, queue_as("ad", Some(&secret.replace('5', "6")))).await;
    assert_eq!(guessed.status, StatusCode::UNAUTHORIZED, "{}", guessed.body);
    // The proxy, with its secret: the admin it names.
    let proven = send(&f.app, queue_as("ad", Some(secret))).await;
    assert_eq!(proven.status, StatusCode::OK, "{}", proven.body);
    let mut who = Request::post("/api/who_am_i")
        .header(header::ACCEPT, "application/json")
        .header("x-forwarded-user", "ad")
        .header(PROXY_SECRET_HEADER, secret)
        .body(Body::empty())
        .expect("a request");
    who.extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(loopback, 40000)));
    let me: serde_json::Value = serde_json::from_str(&send(&f.app, who).await.body).expect("json");
    assert_eq!(
        (me["name"].as_str(), me["identity"].as_str()),
        (Some("ad"), Some("Proxy")),
        "{me}"
    );
}

/// DNS rebinding: a page on evil.example has its name resolved to 127.0.0.1
/// and calls the open loopback lab "from the same origin" (the browser
/// says same-origin, and Origin matches Host). The lab answers only to the
/// names it serves, so nothing runs and nothing is read.
/// FAULTS.md 26: behind HTTPS the lab answers only to the names it serves,
/// so `serve --behind-https` without `--public-url` has none to answer to:
/// refused at start (exit 2, naming the flag), nothing opened or written.
#[test]
fn serve_behind_https_without_its_public_name_is_refused() {
    let dir = crate::common::temp_dir("behind-https-no-name");
    let out = std::process::Command::new(crate::common::BIN)
        .args(["serve", "--behind-https", "--addr", "127.0.0.1:0"])
        .args(["--output-dir", "output"])
        .current_dir(&dir)
        .env(
            "MITE_PERF_DATABASE_URL",
            format!("sqlite://{}/lab.db", dir.display()),
        )
        .stdin(std::process::Stdio::null())
        .output()
        .expect("serve");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("--public-url https://"), "{said}");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("the folder")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "written before refusing: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_rebinding_page_reaches_no_handler() {
    let dir = crate::common::temp_dir("access-rebinding");
    let output = dir.join("output");
    std::fs::create_dir_all(&output).expect("output");
    let store = Store::connect(&format!("sqlite://{}/lab.db", dir.display()))
        .await
        .expect("store");
    let (run_id, _) = crate::common::seed::finished_run(&store, &output).await;
    let lab = Lab::new(store.clone(), crate::common::seed::lab_setup(&dir, &output));
    let app = mite_perf::web::router(
        lab.clone(),
        WebConfig {
            site_root: crate::common::seed::site_root(),
            addr: ([127, 0, 0, 1], 3000).into(),
            public_urls: vec!["https://lab.example.com".parse().expect("url")],
            access: AccessPolicy::local(),
            metrics_token: None,
            download_idle_limit: mite_perf::web::downloads::IDLE_LIMIT,
        },
    )
    .await
    .expect("router");
    let launch = |host: &str| {
        Request::post("/api/launch_run")
            .header(header::HOST, host)
            .header(header::ORIGIN, format!("http://{host}"))
            .header("sec-fetch-site", "same-origin")
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(
                "form[scenarios]=1&form[duration]=5s&form[spawn_rate]=1000000&form[interval]=1s&form[label]=rebound",
            ))
            .expect("a request")
    };
    let read = |host: &str, path: &str| {
        Request::get(path)
            .header(header::HOST, host)
            .body(Body::empty())
            .expect("a request")
    };
    for host in [
        "evil.example:3000",
        "evil.example",
        "127.0.0.1.evil.example:3000",
    ] {
        let launched = send(&app, launch(host)).await;
        assert_eq!(
            launched.status,
            StatusCode::MISDIRECTED_REQUEST,
            "{host}: {}",
            launched.body
        );
        assert!(launched.body.contains("--public-url"), "{}", launched.body);
        for path in ["/", "/healthz", &format!("/runs/{run_id}/samples.csv")] {
            let answer = send(&app, read(host, path)).await;
            assert_eq!(
                answer.status,
                StatusCode::MISDIRECTED_REQUEST,
                "{host}{path}"
            );
        }
    }
    assert_eq!(
        store.queued_count().await.expect("queue"),
        0,
        "nothing was queued by the rebinding page"
    );
    // The names the lab serves go on.
    for host in [
        "127.0.0.1:3000",
        "localhost:3000",
        "[::1]:3000",
        "lab.example.com",
    ] {
        let answer = send(&app, read(host, &format!("/runs/{run_id}/samples.csv"))).await;
        assert_eq!(answer.status, StatusCode::OK, "{host}: {}", answer.body);
    }
    let launched = send(&app, launch("localhost:3000")).await;
    assert_eq!(launched.status, StatusCode::OK, "{}", launched.body);
    assert_eq!(store.queued_count().await.expect("queue"), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_loopback_lab_needs_no_sign_in_until_its_first_account() {
    let dir = crate::common::temp_dir("access-open");
    let output = dir.join("output");
    std::fs::create_dir_all(&output).expect("output");
    let store = Store::connect(&format!("sqlite://{}/lab.db", dir.display()))
        .await
        .expect("store");
    let lab = Lab::new(store.clone(), crate::common::seed::lab_setup(&dir, &output));
    let app = router(&lab, AccessPolicy::local()).await;
    let who = send(
        &app,
        Request::post("/api/who_am_i")
            .header(header::ACCEPT, "application/json")
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    let me: serde_json::Value = serde_json::from_str(&who.body).expect("json");
    assert_eq!(me["identity"], "Local", "{me}");
    assert_eq!(me["role"], "Admin", "{me}");
    let queue = || {
        Request::post("/api/get_queue")
            .header(header::ACCEPT, "application/json")
            .body(Body::empty())
            .expect("a request")
    };
    assert_eq!(send(&app, queue()).await.status, StatusCode::OK);
    let hash = hash_password(password("ad")).await.expect("hash");
    store
        .create_user("ad", Role::Admin, Some(&hash))
        .await
        .expect("user");
    assert_eq!(send(&app, queue()).await.status, StatusCode::UNAUTHORIZED);
    // Its accounts gone behind its back (the store refuses to remove the
    // last admin; SQL does not): it stays closed while it serves.
    let sql = sqlx::SqlitePool::connect(&format!("sqlite://{}/lab.db", dir.display()))
        .await
        .expect("the database");
    sqlx::query("DELETE FROM users")
        .execute(&sql)
        .await
        .expect("delete");
    assert!(!store.has_users().await.expect("users"));
    assert_eq!(send(&app, queue()).await.status, StatusCode::UNAUTHORIZED);

    // A lab on every address decides at start that it is never open: with
    // no account at all, nobody gets in.
    let everywhere = mite_perf::web::router(
        lab.clone(),
        WebConfig {
            site_root: crate::common::seed::site_root(),
            addr: ([0, 0, 0, 0], 3000).into(),
            public_urls: Vec::new(),
            access: AccessPolicy::local().for_address(([0, 0, 0, 0], 3000).into()),
            metrics_token: None,
            download_idle_limit: mite_perf::web::downloads::IDLE_LIMIT,
        },
    )
    .await
    .expect("router");
    assert_eq!(
        send(&everywhere, queue()).await.status,
        StatusCode::UNAUTHORIZED
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn runs_show_who_launched_and_who_cancelled_them_and_a_new_password_ends_sessions() {
    let f = fixture("who", shared()).await;
    let ru = sign_in(&f.app, "ru", &password("ru")).await;
    let ad = sign_in(&f.app, "ad", &password("ad")).await;
    // A run of ru's, running (on this host: no worker runs here).
    let params = RunParams {
        concurrencies: vec![1],
        launched_by: "ru".into(),
        ..RunParams::default()
    };
    let run_id = f
        .store
        .create_run(&params, RunStatus::Running)
        .await
        .expect("run");
    let seen_by_ru = send(&f.app, call(&ru, "get_run", format!("run_id={run_id}"))).await;
    let view: serde_json::Value = serde_json::from_str(&seen_by_ru.body).expect("json");
    assert_eq!(view["params"]["launched_by"], "ru");
    assert_eq!(view["can_cancel"], true, "ru's own run");
    let page = send(
        &f.app,
        Request::get(format!("/runs/{run_id}"))
            .header(header::COOKIE, &ad)
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert!(
        page.body.contains(r#"<span class="launched-by">ru</span>"#),
        "launcher on the page"
    );
    assert!(page.body.contains("Cancel run"), "an admin may cancel it");
    let cancelled = send(&f.app, call(&ad, "cancel_run", format!("run_id={run_id}"))).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    let run = f.store.run(run_id).await.expect("run").expect("stored");
    assert_eq!(run.cancelled_by.as_deref(), Some("ad"));
    assert!(
        run.cancel_requested,
        "the executing host is asked to stop it"
    );
    let seen = send(&f.app, call(&ru, "get_run", format!("run_id={run_id}"))).await;
    let view: serde_json::Value = serde_json::from_str(&seen.body).expect("json");
    assert_eq!(view["cancelled_by"], "ad");
    let log = f.store.activity(None, 10).await.expect("activity");
    assert!(
        log.iter().any(|a| a.actor == "ad"
            && a.action == "cancel"
            && a.subject == format!("run {run_id}")),
        "{log:?}"
    );

    // A new password (as `mite-perf user passwd` sets it) ends ru's sessions.
    let hash = hash_password("a-new-password".into()).await.expect("hash");
    assert!(f.store.set_password("ru", &hash).await.expect("passwd"));
    let after = send(&f.app, call(&ru, "get_queue", String::new())).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    // A removed user is signed out at once (once another admin exists:
    // the last one may not go).
    assert_eq!(
        f.store.remove_user("ad").await.expect("remove"),
        AccountChange::LastAdmin
    );
    assert_eq!(
        f.store.set_role("vi", Role::Admin).await.expect("role"),
        AccountChange::Done
    );
    assert_eq!(
        f.store.remove_user("ad").await.expect("remove"),
        AccountChange::Done
    );
    let gone = send(&f.app, call(&ad, "get_queue", String::new())).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_user_and_token_commands_manage_accounts_and_serve_refuses_an_unguarded_address() {
    let dir = crate::common::temp_dir("access-cli");
    let db = format!("sqlite://{}/lab.db", dir.display());
    let secret = dir.join("secret");
    std::fs::write(&secret, "correct horse battery\n").expect("password file");
    let cli = |args: &[&str]| {
        std::process::Command::new(crate::common::BIN)
            .args(args)
            .env("MITE_PERF_DATABASE_URL", &db)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("mite-perf")
    };
    let text = |out: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let secret_arg = secret.display().to_string();

    // Off loopback, without an admin: refused, with what to do.
    let port = crate::common::free_port().to_string();
    let serve_args = [
        "serve",
        "--addr",
        &format!("0.0.0.0:{port}"),
        "--output-dir",
    ];
    let output_dir = dir.join("output").display().to_string();
    let refused = cli(&[&serve_args[..], &[output_dir.as_str()]].concat());
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("mite-perf user add NAME --role admin"),
        "{}",
        text(&refused)
    );

    let added = cli(&[
        "user",
        "add",
        "ana",
        "--role",
        "admin",
        "--password-file",
        &secret_arg,
    ]);
    assert!(added.status.success(), "{}", text(&added));
    // The database the lab made (accounts, sessions) is its user's only.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("lab.db"))
            .expect("the database")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    let again = cli(&[
        "user",
        "add",
        "ana",
        "--role",
        "viewer",
        "--password-file",
        &secret_arg,
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again).contains("already a user named ana"),
        "{}",
        text(&again)
    );
    let no_terminal = cli(&["user", "add", "bo", "--role", "runner"]);
    assert_eq!(no_terminal.status.code(), Some(1));
    assert!(
        text(&no_terminal).contains("--password-file"),
        "{}",
        text(&no_terminal)
    );
    let bad_role = cli(&[
        "user",
        "add",
        "bo",
        "--role",
        "root",
        "--password-file",
        &secret_arg,
    ]);
    assert_eq!(bad_role.status.code(), Some(2), "{}", text(&bad_role));
    assert!(cli(&[
        "user",
        "add",
        "bo",
        "--role",
        "runner",
        "--password-file",
        &secret_arg
    ])
    .status
    .success());
    let last_admin = cli(&["user", "role", "ana", "viewer"]);
    assert_eq!(last_admin.status.code(), Some(2));
    assert!(
        text(&last_admin).contains("last admin"),
        "{}",
        text(&last_admin)
    );
    assert!(cli(&["user", "role", "bo", "admin"]).status.success());
    let list = cli(&["user", "list"]);
    let listed = text(&list);
    assert!(listed.contains("ana") && listed.contains("bo"), "{listed}");
    assert!(!listed.contains("correct horse"), "{listed}");
    assert!(
        cli(&["user", "passwd", "bo", "--password-file", &secret_arg])
            .status
            .success()
    );
    assert!(cli(&["user", "remove", "bo"]).status.success());
    // ana is the last admin now: she may not go, nor stop being one.
    let last = cli(&["user", "remove", "ana"]);
    assert_eq!(last.status.code(), Some(2), "{}", text(&last));
    assert!(text(&last).contains("last admin"), "{}", text(&last));
    assert_eq!(cli(&["user", "remove", "bo"]).status.code(), Some(2));

    let made = cli(&["token", "create", "nightly", "--role", "runner"]);
    assert!(made.status.success(), "{}", text(&made));
    let token = String::from_utf8_lossy(&made.stdout).trim().to_string();
    assert!(
        mite_perf::access::tokens::looks_like_token(&token),
        "{token}"
    );
    let tokens = text(&cli(&["token", "list"]));
    assert!(
        tokens.contains("nightly") && !tokens.contains(&token),
        "{tokens}"
    );
    // A token of a user's, for 30 days, at most their role.
    let owned = cli(&[
        "token",
        "create",
        "anas",
        "--role",
        "admin",
        "--owner",
        "ana",
        "--expires",
        "30d",
    ]);
    assert!(owned.status.success(), "{}", text(&owned));
    let mine = text(&cli(&["token", "list", "--owner", "ana"]));
    assert!(
        mine.contains("anas") && mine.contains("owner ana") && mine.contains("expires 20"),
        "{mine}"
    );
    assert!(!mine.contains("nightly"), "{mine}");
    let nobody = cli(&[
        "token", "create", "x", "--role", "viewer", "--owner", "nobody",
    ]);
    assert_eq!(nobody.status.code(), Some(2), "{}", text(&nobody));
    // The right to upload builds: for a runner's (or admin's) token, said
    // in the list; an ordinary token has none.
    let viewer_upload = cli(&["token", "create", "up", "--role", "viewer", "--may-upload"]);
    assert_eq!(
        viewer_upload.status.code(),
        Some(2),
        "{}",
        text(&viewer_upload)
    );
    assert!(
        text(&viewer_upload).contains("--may-upload"),
        "{}",
        text(&viewer_upload)
    );
    let uploader = cli(&[
        "token",
        "create",
        "ci-up",
        "--role",
        "runner",
        "--may-upload",
    ]);
    assert!(uploader.status.success(), "{}", text(&uploader));
    let listed = text(&cli(&["token", "list"]));
    let line = |name: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}: {listed}"))
            .to_string()
    };
    assert!(line("ci-up").contains("may upload"), "{listed}");
    assert!(!line("nightly").contains("may upload"), "{listed}");

    // The token works on a lab serving that database.
    let store = Store::connect(&db).await.expect("store");
    let output = dir.join("output");
    std::fs::create_dir_all(&output).expect("output");
    let lab = Lab::new(store.clone(), crate::common::seed::lab_setup(&dir, &output));
    let app = router(&lab, shared()).await;
    let queue = Request::post("/api/get_queue")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .expect("a request");
    assert_eq!(send(&app, queue).await.status, StatusCode::OK);
    assert!(cli(&["token", "revoke", "nightly"]).status.success());
    let queue = Request::post("/api/get_queue")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .expect("a request");
    assert_eq!(send(&app, queue).await.status, StatusCode::UNAUTHORIZED);
    let actions: Vec<String> = store
        .activity(None, 100)
        .await
        .expect("activity")
        .into_iter()
        .rev()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        actions,
        [
            "user add",
            "user add",
            "user role",
            "user passwd",
            "user remove",
            "token create",
            "token create",
            "token create",
            "token revoke"
        ]
    );

    // With an admin, the same address is served.
    let mut serve = std::process::Command::new(crate::common::BIN)
        .args(serve_args)
        .arg(&output_dir)
        .env("MITE_PERF_DATABASE_URL", &db)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve");
    let client = crate::common::http_client();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let health = loop {
        if let Ok(answer) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
        {
            break answer.status().as_u16();
        }
        assert!(std::time::Instant::now() < deadline, "serve did not answer");
        assert!(matches!(serve.try_wait(), Ok(None)), "serve ended");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(health, 200);
    let anonymous = client
        .post(format!("http://127.0.0.1:{port}/api/get_queue"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(anonymous.status().as_u16(), 401);
    crate::common::signal(serve.id(), nix::sys::signal::Signal::SIGTERM);
    assert!(serve.wait().expect("exit").success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_share_link_shows_one_run_to_anyone_until_it_is_revoked_or_expires() {
    let f = fixture("share", shared()).await;
    let hash = hash_password(password("ru2")).await.expect("hash");
    f.store
        .create_user("ru2", Role::Runner, Some(&hash))
        .await
        .expect("user");
    let ru = sign_in(&f.app, "ru", &password("ru")).await;
    let ru2 = sign_in(&f.app, "ru2", &password("ru2")).await;
    let vi = sign_in(&f.app, "vi", &password("vi")).await;
    let get = |cookie: &str, path: String| {
        Request::get(path)
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .expect("a request")
    };
    let run = f.run_id;
    let share = |days: &str| format!("run_id={run}&days={days}");
    let refused = send(&f.app, call(&vi, "share_run", share("7"))).await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "viewers do not share"
    );
    for days in ["0", "91"] {
        let bad = send(&f.app, call(&ru, "share_run", share(days))).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{days}: {}", bad.body);
    }
    let missing = send(
        &f.app,
        call(&ru, "share_run", "run_id=424242&days=7".into()),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let made = send(&f.app, call(&ru, "share_run", share("7"))).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let made: serde_json::Value = serde_json::from_str(&made.body).expect("json");
    let path = made["path"].as_str().expect("the link").to_string();
    let link_id = made["id"].as_i64().expect("id");
    assert!(path.starts_with("/share/mps_"), "{path}");

    // Anyone opening it lands on the run, holding the link in a cookie.
    let opened = send(
        &f.app,
        Request::get(&path).body(Body::empty()).expect("a request"),
    )
    .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
    assert_eq!(opened.location(), format!("/runs/{run}"));
    let set_cookie = opened
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_string();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(flag), "{flag}: {set_cookie}");
    }
    let max_age: i64 = set_cookie
        .split("Max-Age=")
        .nth(1)
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.parse().ok())
        .expect("Max-Age");
    assert!(
        (604_700..=604_800).contains(&max_age),
        "kept for the link's 7 days: {max_age}"
    );
    let cookie = set_cookie
        .split(';')
        .next()
        .expect("name=value")
        .to_string();

    // That run, its charts and downloads; nothing else.
    let scenario = f.scenario_id;
    let other = f.other_run_id;
    let other_scenario = f.other_scenario_id;
    let checks = [
        (
            call(&cookie, "get_run", format!("run_id={run}")),
            StatusCode::OK,
        ),
        (
            call(&cookie, "get_charts", format!("scenario_id={scenario}")),
            StatusCode::OK,
        ),
        (
            call(&cookie, "get_matrix", format!("run_id={run}")),
            StatusCode::OK,
        ),
        (
            get(&cookie, format!("/runs/{run}/samples.csv")),
            StatusCode::OK,
        ),
        (
            get(&cookie, format!("/scenarios/{scenario}/samples.csv")),
            StatusCode::OK,
        ),
        (
            get(&cookie, format!("/scenarios/{scenario}/logs/runner")),
            StatusCode::OK,
        ),
        (get(&cookie, format!("/runs/{run}")), StatusCode::OK),
        (
            call(&cookie, "get_run", format!("run_id={other}")),
            StatusCode::FORBIDDEN,
        ),
        // Another run's scenario, named by its own id: its charts, mite's
        // view of it and every download of it.
        (
            call(
                &cookie,
                "get_charts",
                format!("scenario_id={other_scenario}"),
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            call(
                &cookie,
                "get_chart_points",
                format!("scenario_id={other_scenario}&bucket_ms=1000&after_ms=-1"),
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            call(
                &cookie,
                "get_mite_view",
                format!("scenario_id={other_scenario}"),
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            get(&cookie, format!("/scenarios/{other_scenario}/samples.csv")),
            StatusCode::FORBIDDEN,
        ),
        (
            get(
                &cookie,
                format!("/scenarios/{other_scenario}/processes.csv"),
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            get(
                &cookie,
                format!("/scenarios/{other_scenario}/transactions.csv"),
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            get(&cookie, format!("/scenarios/{other_scenario}/logs/runner")),
            StatusCode::FORBIDDEN,
        ),
        (
            get(
                &cookie,
                format!("/scenarios/{other_scenario}/collector/current"),
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            get(&cookie, format!("/runs/{other}/samples.csv")),
            StatusCode::FORBIDDEN,
        ),
        (
            get(&cookie, format!("/compare.csv?runs={run},{other}")),
            StatusCode::FORBIDDEN,
        ),
        (
            call(&cookie, "list_runs", "page=1&label=".into()),
            StatusCode::FORBIDDEN,
        ),
        (
            call(&cookie, "get_queue", String::new()),
            StatusCode::FORBIDDEN,
        ),
        (
            call(&cookie, "share_run", share("7")),
            StatusCode::FORBIDDEN,
        ),
        (
            call(
                &cookie,
                "launch_run",
                "form[scenarios]=1&form[duration]=5s".into(),
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            call(&cookie, "cancel_run", format!("run_id={run}")),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (request, expected) in checks {
        let what = request.uri().to_string();
        let answer = send(&f.app, request).await;
        assert_eq!(answer.status, expected, "{what}: {}", answer.body);
    }

    // Its maker or an admin revokes it; another runner may not.
    let listed = send(
        &f.app,
        call(&ru2, "get_share_links", format!("run_id={run}")),
    )
    .await;
    let listed: serde_json::Value = serde_json::from_str(&listed.body).expect("json");
    assert_eq!(listed[0]["created_by"], "ru");
    assert_eq!(
        listed[0]["path"],
        serde_json::Value::Null,
        "the secret is shown once"
    );
    let not_theirs = send(
        &f.app,
        call(&ru2, "revoke_share_link", format!("link_id={link_id}")),
    )
    .await;
    assert_eq!(not_theirs.status, StatusCode::FORBIDDEN);
    let revoked = send(
        &f.app,
        call(&ru, "revoke_share_link", format!("link_id={link_id}")),
    )
    .await;
    assert_eq!(
        (revoked.status, revoked.body.as_str()),
        (StatusCode::OK, "true")
    );
    let after = send(&f.app, call(&cookie, "get_run", format!("run_id={run}"))).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    let reopened = send(
        &f.app,
        Request::get(&path).body(Body::empty()).expect("a request"),
    )
    .await;
    assert_eq!(reopened.status, StatusCode::NOT_FOUND);
    assert!(
        reopened.body.contains("expired, was revoked"),
        "{}",
        reopened.body
    );

    // A link past its expiry opens nothing either.
    let made = send(&f.app, call(&ru, "share_run", share("1"))).await;
    let made: serde_json::Value = serde_json::from_str(&made.body).expect("json");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}/lab.db", f.dir.display()))
        .await
        .expect("the database");
    sqlx::query("UPDATE share_links SET expires_at = 1 WHERE id = $1")
        .bind(made["id"].as_i64().expect("id"))
        .execute(&pool)
        .await
        .expect("expire it");
    let expired = send(
        &f.app,
        Request::get(made["path"].as_str().expect("path"))
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(expired.status, StatusCode::NOT_FOUND);
    let log = f.store.activity(None, 100).await.expect("activity");
    assert!(log.iter().any(|a| a.actor == "ru" && a.action == "share"));
    assert!(log
        .iter()
        .any(|a| a.actor == "ru" && a.action == "share revoke"));
}

/// With the database down, a signed-in browser's session cannot be read:
/// the lab answers its 503 (a page for a browser, the server function's
/// error for a call), not the session layer's empty 500, and sets no
/// cookie.
#[tokio::test]
async fn a_session_the_database_cannot_read_gets_the_labs_503() {
    let f = fixture("sessions-down", shared()).await;
    let ad = sign_in(&f.app, "ad", &password("ad")).await;
    f.store.close().await;
    let page = send(
        &f.app,
        Request::get(format!("/runs/{}", f.run_id))
            .header(header::COOKIE, &ad)
            .header(header::ACCEPT, "text/html")
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        page.body
    );
    assert!(
        page.body.contains("database is unavailable"),
        "{}",
        page.body
    );
    assert!(page.headers.get(header::SET_COOKIE).is_none());
    assert!(page.headers.get(header::RETRY_AFTER).is_some());
    let called = send(&f.app, call(&ad, "get_queue", String::new())).await;
    assert_eq!(
        called.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        called.body
    );
    assert!(called.body.contains("Unavailable"), "{}", called.body);
    let download = send(
        &f.app,
        Request::get(format!("/runs/{}/samples.csv", f.run_id))
            .header(header::COOKIE, &ad)
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(
        download.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        download.body
    );
    assert!(download.headers.get(header::SET_COOKIE).is_none());
}

/// A token belongs to its owner: it acts with at most their role (the
/// owner demoted, the token is too), dies with their account, and stops
/// working when it expires; share links die with their maker.
#[tokio::test]
async fn tokens_expire_stay_within_their_owners_role_and_die_with_them() {
    let f = fixture("token-owners", shared()).await;
    let make =
        |name: &'static str, role: Role, owner: Option<&'static str>, expires: Option<i64>| {
            let store = f.store.clone();
            async move {
                let token = new_token().expect("token");
                store
                    .create_owned_token(name, role, &token_hash(&token), owner, expires)
                    .await
                    .expect("stored");
                token
            }
        };
    let as_token = |token: &str, name: &str, args: String| {
        Request::post(format!("/api/{name}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(args))
            .expect("a request")
    };
    let who = |body: &str| -> serde_json::Value { serde_json::from_str(body).expect("json") };

    let now = mite_perf::clock::now_ms();
    let expired = make("old", Role::Runner, None, Some(now - 1000)).await;
    let answer = send(&f.app, as_token(&expired, "get_queue", String::new())).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    assert!(answer.body.contains("expired"), "{}", answer.body);
    let fresh = make("fresh", Role::Runner, None, Some(now + 3_600_000)).await;
    let answer = send(&f.app, as_token(&fresh, "get_queue", String::new())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    // ad's admin token acts as a viewer once ad is one, and dies with ad.
    assert_eq!(
        f.store.set_role("ru", Role::Admin).await.expect("role"),
        AccountChange::Done
    );
    let ads = make("ads", Role::Admin, Some("ad"), None).await;
    let me = send(&f.app, as_token(&ads, "who_am_i", String::new())).await;
    assert_eq!(who(&me.body)["role"], "Admin", "{}", me.body);
    assert_eq!(
        f.store.set_role("ad", Role::Viewer).await.expect("role"),
        AccountChange::Done
    );
    let me = send(&f.app, as_token(&ads, "who_am_i", String::new())).await;
    assert_eq!(who(&me.body)["role"], "Viewer", "{}", me.body);
    let launch = send(
        &f.app,
        as_token(
            &ads,
            "launch_run",
            "form[scenarios]=1&form[duration]=5s".into(),
        ),
    )
    .await;
    assert_eq!(launch.status, StatusCode::FORBIDDEN, "{}", launch.body);
    assert_eq!(
        f.store.remove_user("ad").await.expect("remove"),
        AccountChange::Done
    );
    let gone = send(&f.app, as_token(&ads, "get_queue", String::new())).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED, "{}", gone.body);
    assert!(f.store.tokens(Some("ad")).await.expect("tokens").is_empty());
}

/// A label's baseline is its owners' (the launcher of its first run to
/// finish, or named by an admin) and admins': another team's runner cannot
/// move it, and so cannot move that team's CI verdicts. Every move is in
/// the activity log. FAULTS.md 54: a run queued (and removed at once)
/// claims nothing, so a runner cannot squat another team's label; and
/// ownership ends with the account: an account made again under the name
/// inherits none.
#[tokio::test]
async fn only_a_labels_owners_or_an_admin_move_its_baseline() {
    let f = fixture("label-owners", shared()).await;
    let hash = hash_password(password("rb")).await.expect("hash");
    f.store
        .create_user("rb", Role::Runner, Some(&hash))
        .await
        .expect("another team's runner");
    // rb queues a run of team-a's label first and removes it at once.
    let rb = sign_in(&f.app, "rb", &password("rb")).await;
    let squat = send(
        &f.app,
        call(
            &rb,
            "launch_run",
            "form[scenarios]=1&form[duration]=5s&form[spawn_rate]=1000000&form[interval]=1s&form[label]=team-a".into(),
        ),
    )
    .await;
    assert_eq!(squat.status, StatusCode::OK, "{}", squat.body);
    let squatted = squat.json()["Queued"]["run_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("queued: {}", squat.body));
    let removed = send(
        &f.app,
        call(&rb, "remove_queued_run", format!("run_id={squatted}")),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert!(
        f.store
            .label_owners("team-a")
            .await
            .expect("owners")
            .is_empty(),
        "a queued run claimed the label"
    );
    // ru's run of it finishes first: it is ru's.
    let params = RunParams {
        label: "team-a".into(),
        concurrencies: vec![1],
        launched_by: "ru".into(),
        ..RunParams::default()
    };
    let finished = |params: RunParams| {
        let store = f.store.clone();
        async move {
            let run = store
                .create_run(&params, RunStatus::Running)
                .await
                .expect("run");
            store
                .finish_run(run, RunStatus::Done, None)
                .await
                .expect("finished");
            run
        }
    };
    let run = finished(params.clone()).await;
    let later = finished(RunParams {
        launched_by: "rb".into(),
        ..params.clone()
    })
    .await;
    assert_eq!(
        f.store.label_owners("team-a").await.expect("owners"),
        ["ru"],
        "the launcher of its first finished run owns it"
    );
    let moved = send(
        &f.app,
        call(&rb, "mark_baseline", format!("run_id={later}")),
    )
    .await;
    assert_eq!(moved.status, StatusCode::FORBIDDEN, "{}", moved.body);
    assert!(moved.body.contains("belongs to ru"), "{}", moved.body);
    assert_eq!(f.store.baseline_of("team-a").await.expect("baseline"), None);
    let ru = sign_in(&f.app, "ru", &password("ru")).await;
    let marked = send(&f.app, call(&ru, "mark_baseline", format!("run_id={run}"))).await;
    assert_eq!(marked.status, StatusCode::OK, "{}", marked.body);
    let ad = sign_in(&f.app, "ad", &password("ad")).await;
    let by_admin = send(
        &f.app,
        call(&ad, "mark_baseline", format!("run_id={later}")),
    )
    .await;
    assert_eq!(by_admin.status, StatusCode::OK, "{}", by_admin.body);
    assert_eq!(
        f.store.baseline_of("team-a").await.expect("baseline"),
        Some(later)
    );
    // Named an owner, rb may.
    assert!(f
        .store
        .add_label_owner("team-a", "rb")
        .await
        .expect("owner"));
    let now_ok = send(&f.app, call(&rb, "mark_baseline", format!("run_id={run}"))).await;
    assert_eq!(now_ok.status, StatusCode::OK, "{}", now_ok.body);
    // A run that failed claims nothing; a name that is no account claims
    // nothing either.
    for (label, launcher, status) in [
        ("team-b", "ru", RunStatus::Failed),
        ("team-c", "nobody-here", RunStatus::Done),
    ] {
        let run = f
            .store
            .create_run(
                &RunParams {
                    label: label.into(),
                    launched_by: launcher.into(),
                    ..params.clone()
                },
                RunStatus::Running,
            )
            .await
            .expect("run");
        f.store.finish_run(run, status, None).await.expect("ended");
        assert!(f
            .store
            .label_owners(label)
            .await
            .expect("owners")
            .is_empty());
    }
    let log = f.store.activity(None, 100).await.expect("activity");
    let moves: Vec<(&str, &str)> = log
        .iter()
        .rev()
        .filter(|a| a.action == "mark baseline")
        .map(|a| (a.actor.as_str(), a.subject.as_str()))
        .collect();
    let (first, second, third) = (
        format!("run {run} of team-a"),
        format!("run {later} of team-a"),
        format!("run {run} of team-a"),
    );
    assert_eq!(
        moves,
        [
            ("ru", first.as_str()),
            ("ad", second.as_str()),
            ("rb", third.as_str())
        ]
    );

    // Ownership ends with the account, and with its tokens: ru removed,
    // then made again, owns nothing and may not move the baseline.
    let token = new_token().expect("token");
    f.store
        .create_owned_token("ru-ci", Role::Runner, &token_hash(&token), Some("ru"), None)
        .await
        .expect("ru's token");
    f.store
        .add_label_owner("team-d", "token:ru-ci")
        .await
        .expect("owner");
    assert_eq!(
        f.store.remove_user("ru").await.expect("remove"),
        AccountChange::Done
    );
    assert_eq!(
        f.store.label_owners("team-a").await.expect("owners"),
        ["rb"]
    );
    assert!(f
        .store
        .label_owners("team-d")
        .await
        .expect("owners")
        .is_empty());
    let hash = hash_password(password("ru")).await.expect("hash");
    f.store
        .create_user("ru", Role::Runner, Some(&hash))
        .await
        .expect("ru made again");
    assert_eq!(
        f.store.label_owners("team-a").await.expect("owners"),
        ["rb"],
        "inherited nothing"
    );
    let ru = sign_in(&f.app, "ru", &password("ru")).await;
    let refused = send(&f.app, call(&ru, "mark_baseline", format!("run_id={run}"))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    // A revoked token's labels go with it.
    f.store
        .add_label_owner("team-e", "token:ci")
        .await
        .expect("owner");
    assert!(f.store.revoke_token("ci").await.expect("revoke"));
    assert!(f
        .store
        .label_owners("team-e")
        .await
        .expect("owners")
        .is_empty());
}

/// `/metrics`, in the OpenMetrics text format, for an admin's API token or
/// the metrics token a scraper holds; nobody else.
#[tokio::test]
async fn metrics_are_for_admins_and_the_metrics_token() {
    use mite_perf::access::secret::Secret;
    let f = fixture("metrics", shared()).await;
    let scraper = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c";
    let app = mite_perf::web::router(
        f.lab.clone(),
        WebConfig {
            site_root: crate::common::seed::site_root(),
            addr: ([10, 0, 0, 1], 3000).into(),
            public_urls: Vec::new(),
            access: shared(),
            metrics_token: Some(Secret::new(scraper).expect("token")),
            download_idle_limit: mite_perf::web::downloads::IDLE_LIMIT,
        },
    )
    .await
    .expect("router");
    let admin_token = new_token().expect("token");
    f.store
        .create_token("prom-admin", Role::Admin, &token_hash(&admin_token))
        .await
        .expect("admin token");
    let scrape = |bearer: Option<&str>| {
        let mut request = Request::get("/metrics");
        if let Some(bearer) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {bearer}"));
        }
        request.body(Body::empty()).expect("a request")
    };
    assert_eq!(
        send(&app, scrape(None)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, scrape(Some("not-a-token"))).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The fixture's tokens below an admin may not; its admin token may,
    // and its expired one is no token at all.
    for (name, token) in &f.tokens {
        let answer = send(&app, scrape(Some(token))).await;
        let expected = match name.as_str() {
            "ops" => StatusCode::OK,
            "stale" => StatusCode::UNAUTHORIZED,
            _ => StatusCode::FORBIDDEN,
        };
        assert_eq!(answer.status, expected, "{name}: {}", answer.body);
    }
    for bearer in [scraper, admin_token.as_str()] {
        let answer = send(&app, scrape(Some(bearer))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert!(
            answer
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with("application/openmetrics-text")),
            "{:?}",
            answer.headers
        );
        for line in [
            "mite_perf_runs{status=\"done\"} 3",
            "mite_perf_agents_alive 0",
            "# TYPE mite_perf_http_request_duration_seconds histogram",
            "# TYPE mite_perf_sampler_tick_lag_seconds histogram",
            "# TYPE mite_perf_database_errors counter",
        ] {
            assert!(answer.body.contains(line), "{line}:\n{}", answer.body);
        }
        assert!(answer.body.ends_with("# EOF\n"), "{}", answer.body);
    }
    // The scrapes before are counted under their route.
    let answer = send(&app, scrape(Some(scraper))).await;
    assert!(
        answer.body.lines().any(|l| l.starts_with(
            "mite_perf_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"2xx\"}"
        )),
        "{}",
        answer.body
    );
}

/// A lab bound to `[::]` sees local peers as IPv4-mapped addresses
/// (`::ffff:127.0.0.1`): the proxy named as 127.0.0.1 is matched in
/// canonical form, so it is recognised, and only with its secret.
#[tokio::test]
async fn a_proxy_is_matched_by_its_canonical_address() {
    use mite_perf::access::proxy::PROXY_SECRET_HEADER;
    use mite_perf::access::secret::Secret;
    let secret = "5c1d0e3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d";
    let f = fixture(
        "proxy-canonical",
        AccessPolicy {
            proxy: Some(
                TrustedProxy::new(
                    vec![[127, 0, 0, 1].into()],
                    Some(Secret::new(secret).expect("secret")),
                    Some(HeaderName::from_static("x-forwarded-user")),
                    Role::Viewer,
                )
                .expect("a proxy"),
            ),
            ..shared()
        },
    )
    .await;
    let mapped: std::net::IpAddr = "::ffff:127.0.0.1".parse().expect("an address");
    let queue_as = |presented: Option<&str>| {
        let mut request = Request::post("/api/get_queue")
            .header(header::ACCEPT, "application/json")
            .header("x-forwarded-user", "ad");
        if let Some(presented) = presented {
            request = request.header(PROXY_SECRET_HEADER, presented);
        }
        let mut request = request.body(Body::empty()).expect("a request");
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(mapped, 40000)));
        request
    };
    let proven = send(&f.app, queue_as(Some(secret))).await;
    assert_eq!(proven.status, StatusCode::OK, "{}", proven.body);
    let forged = send(&f.app, queue_as(None)).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{}", forged.body);
}

/// `/metrics` counts requests by method: the standard methods and
/// "other", never whatever a client typed (hyper takes any token as a
/// method, so each made-up one grew the label set for good).
#[tokio::test]
async fn made_up_methods_are_counted_as_other() {
    use mite_perf::access::secret::Secret;
    let f = fixture("metrics-methods", shared()).await;
    let scraper = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d";
    let app = mite_perf::web::router(
        f.lab.clone(),
        WebConfig {
            site_root: crate::common::seed::site_root(),
            addr: ([10, 0, 0, 1], 3000).into(),
            public_urls: Vec::new(),
            access: shared(),
            metrics_token: Some(Secret::new(scraper).expect("token")),
            download_idle_limit: mite_perf::web::downloads::IDLE_LIMIT,
        },
    )
    .await
    .expect("router");
    for i in 0..3 {
        let made_up = format!("FROBNICATE{i}");
        let answer = send(
            &app,
            Request::builder()
                .method(made_up.as_str())
                .uri("/healthz")
                .body(Body::empty())
                .expect("a request"),
        )
        .await;
        assert!(
            answer.status.is_client_error(),
            "{made_up}: {}",
            answer.status
        );
    }
    let scraped = send(
        &app,
        Request::get("/metrics")
            .header(header::AUTHORIZATION, format!("Bearer {scraper}"))
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(scraped.status, StatusCode::OK, "{}", scraped.body);
    assert!(!scraped.body.contains("FROBNICATE"), "{}", scraped.body);
    assert!(
        scraped
            .body
            .lines()
            .any(|l| l
                .starts_with("mite_perf_http_requests_total{method=\"other\",route=\"/healthz\"")),
        "{}",
        scraped.body
    );
}

/// Behind HTTPS every answer tells browsers to come back over HTTPS only
/// (Strict-Transport-Security); a lab on plain HTTP says nothing of it.
#[tokio::test]
async fn behind_https_every_answer_carries_hsts() {
    let f = fixture("hsts", shared()).await;
    let https = router(
        &f.lab,
        AccessPolicy {
            secure_cookies: true,
            ..shared()
        },
    )
    .await;
    for path in ["/healthz", "/signin", "/api/get_queue", "/no-such-page"] {
        let answer = send(
            &https,
            Request::get(path).body(Body::empty()).expect("a request"),
        )
        .await;
        let hsts = answer
            .headers
            .get(header::STRICT_TRANSPORT_SECURITY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{path} ({}): no HSTS", answer.status));
        let max_age: u64 = hsts
            .strip_prefix("max-age=")
            .and_then(|v| v.split(';').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{path}: {hsts}"));
        assert!(max_age >= 180 * 24 * 3600, "{path}: {hsts}");
        let plain = send(
            &f.app,
            Request::get(path).body(Body::empty()).expect("a request"),
        )
        .await;
        assert!(
            !plain
                .headers
                .contains_key(header::STRICT_TRANSPORT_SECURITY),
            "{path} over plain HTTP"
        );
    }
}

/// `serve --trusted-proxy ADDR` without the proxy's secret is refused
/// whatever the address: not only loopback, but the host's own LAN
/// address, a docker bridge's gateway and loopback written as an
/// IPv4-mapped address (which `Ipv6Addr::is_loopback` does not see), each
/// of which every local process can connect from.
#[tokio::test]
async fn a_proxy_without_its_secret_is_refused_at_any_address() {
    let dir = crate::common::temp_dir("access-proxy-refused");
    let db = format!("sqlite://{}/lab.db", dir.display());
    let output = dir.join("output").display().to_string();
    for address in [
        "127.0.0.1",
        "10.0.0.5",
        "172.17.0.1",
        "::ffff:127.0.0.1",
        "::1",
    ] {
        let port = crate::common::free_port();
        let mut serve = std::process::Command::new(crate::common::BIN)
            .args([
                "serve",
                "--no-agent",
                "--addr",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--output-dir", &output])
            .args(["--trusted-user-header", "X-Forwarded-User"])
            .args(["--trusted-proxy", address])
            .env("MITE_PERF_DATABASE_URL", &db)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("serve");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let status = loop {
            if let Some(status) = serve.try_wait().expect("serve's status") {
                break Some(status);
            }
            if std::time::Instant::now() > deadline
                || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                crate::common::signal(serve.id(), nix::sys::signal::Signal::SIGKILL);
                let _ = serve.wait();
                break None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let output = serve.wait_with_output().expect("serve's output");
        let said = String::from_utf8_lossy(&output.stderr).to_string();
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(2),
            "a proxy at {address} without a secret was trusted: {said}"
        );
        assert!(
            said.contains("--trusted-proxy-secret-file"),
            "{address}: {said}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The server functions the lab serves, from the server-function registry
/// (every `#[server]` of any module registers there), by endpoint name.
fn declared_server_functions() -> Vec<String> {
    let mut names: Vec<String> = leptos::server_fn::axum::server_fn_paths()
        .filter_map(|(path, _)| path.strip_prefix("/api/"))
        .map(String::from)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The routes the lab's router declares: its pages, from the route list
/// the router is built from, and every `.route("/path", …)` of the web
/// layer's files (axum's router does not list its routes).
fn declared_routes() -> Vec<String> {
    let mut routes = mite_perf::web::page_paths();
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut files = vec![web.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .expect("the web layer's folder")
                    .map(|e| e.expect("an entry").path()),
            );
            continue;
        }
        if path.extension().is_some_and(|e| e == "rs") {
            let source = std::fs::read_to_string(&path).expect("a web file");
            routes.extend(
                source
                    .split(".route(")
                    .skip(1)
                    .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
                    .map(String::from),
            );
        }
    }
    routes.sort();
    routes.dedup();
    routes
}

/// Whether `asked` (`/runs/12/samples.csv`, with the fixture's ids still as
/// `{run}`) is an instance of `route` (`/runs/{id}/samples.csv`).
fn same_route(asked: &str, route: &str) -> bool {
    let asked: Vec<&str> = asked.split('/').collect();
    let route: Vec<&str> = route.split('/').collect();
    asked.len() == route.len()
        && asked
            .iter()
            .zip(&route)
            .all(|(a, r)| a == r || (r.starts_with('{') && (a.starts_with('{') || !a.is_empty())))
}

/// FAULTS.md 55: a trend's points are marked (excluded, acknowledged) by
/// an admin or the owners of their runs' labels only: another team's
/// runner cannot hide a change. A commit an uploader claimed shows as
/// claimed, by whom, and only an admin leaves every point of that
/// uploader out.
#[tokio::test]
async fn trend_points_are_their_labels_owners_to_mark_and_a_claimants_an_admins() {
    use domain::provenance::BuildProvenance;
    let f = fixture("trend-marks", shared()).await;
    let hash = hash_password(password("rb")).await.expect("hash");
    f.store
        .create_user("rb", Role::Runner, Some(&hash))
        .await
        .expect("another team's runner");
    // An uploaded wheel that says it is a commit of mite, in the series.
    let sha = "c".repeat(64);
    let mut provenance = crate::common::seed::provenance("2.11.0", "seeded CPU");
    provenance.builds = vec![BuildProvenance {
        asked: format!("upload:{sha}"),
        mite_version: "2.12.0.dev0".into(),
        python_version: "3.11.7".into(),
        git_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        wheel_sha256: Some(sha),
        claimed_by: Some("token:ci".into()),
        ..BuildProvenance::default()
    }];
    crate::common::seed::measured_run(&f.store, "seeded", "token:ci", &provenance).await;
    let series = |cookie: String| {
        let f = &f;
        async move {
            let answer = send(
                &f.app,
                call(&cookie, "get_series", format!("id={}", f.series_id)),
            )
            .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            answer.json()
        }
    };
    let ru = sign_in(&f.app, "ru", &password("ru")).await;
    let view = series(ru.clone()).await;
    let claimed = view["points"]
        .as_array()
        .expect("points")
        .iter()
        .find(|p| p["claimed_by"] == "token:ci")
        .unwrap_or_else(|| panic!("the claimed point: {view:#}"))
        .clone();
    let build = claimed["build"].as_str().expect("build").to_string();
    assert!(build.contains("@ 0123456789"), "{build}");
    assert_eq!(claimed["claimant_excluded"], false);
    // The seeded label is ru's: rb may not mark its points.
    let rb = sign_in(&f.app, "rb", &password("rb")).await;
    let mark = |build: &str, kind: &str| {
        format!(
            "series={}&build={}&kind={kind}&set=true",
            f.series_id,
            crate::common::enc(build)
        )
    };
    let refused = send(&f.app, call(&rb, "mark_trend", mark("2.11.0", "excluded"))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.contains("comes from runs of `seeded`"),
        "{}",
        refused.body
    );
    let own = send(
        &f.app,
        call(&ru, "mark_trend", mark("2.11.0", "acknowledged")),
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    // Every point of one uploader: an admin's call only.
    let refused = send(&f.app, call(&ru, "mark_trend", mark(&build, "claimant"))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let not_claimed = send(&f.app, call(&ru, "mark_trend", mark("2.11.0", "claimant"))).await;
    assert_eq!(
        not_claimed.status,
        StatusCode::FORBIDDEN,
        "{}",
        not_claimed.body
    );
    let ad = sign_in(&f.app, "ad", &password("ad")).await;
    let none = send(&f.app, call(&ad, "mark_trend", mark("2.11.0", "claimant"))).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST, "{}", none.body);
    let done = send(&f.app, call(&ad, "mark_trend", mark(&build, "claimant"))).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let view = series(ru.clone()).await;
    for point in view["points"].as_array().expect("points") {
        let theirs = point["claimed_by"] == "token:ci";
        assert_eq!(point["claimant_excluded"], theirs, "{point}");
        let excluded_by = point["excluded_by"].as_str().unwrap_or_default();
        assert_eq!(
            excluded_by.contains("every point token:ci claimed"),
            theirs,
            "{point}"
        );
    }
    let log = f.store.activity(None, 20).await.expect("activity");
    assert!(
        log.iter().any(|a| a.actor == "ad"
            && a.action == "exclude claimant"
            && a.subject.starts_with("every point token:ci claimed")),
        "{log:?}"
    );
}

/// A simple index of mite's versions `2.0.0` to `2.29.0` on a loopback
/// port, as PyPI's JSON answers it; its root URL.
async fn local_index() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let versions: Vec<String> = (0..30).map(|minor| format!("2.{minor}.0")).collect();
    let body = serde_json::json!({ "name": "mite", "versions": versions }).to_string();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.pypi.simple.v1+json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/simple")
}

/// FAULTS.md 57: one click of the release backfill queued up to 50 runs
/// into a queue of 100, for any runner. Now one click queues at most
/// `MAX_RELEASES_PER_CLICK`, and a member who is not an admin may have at
/// most `MAX_QUEUED_PER_MEMBER` runs waiting, launched or backfilled.
#[tokio::test]
async fn one_backfill_click_queues_a_bounded_number_within_a_members_share() {
    use mite_perf::lab::MAX_QUEUED_PER_MEMBER;
    use mite_perf::trend::backfill::MAX_RELEASES_PER_CLICK;
    // The only test of this binary that asks an index (the others' ranges
    // are refused before): a local one.
    std::env::set_var(mite_perf::mite_env::pypi::INDEX_ENV, local_index().await);
    let f = fixture("backfill-share", shared()).await;
    let ru = sign_in(&f.app, "ru", &password("ru")).await;
    let backfill = |range: &str| call(&ru, "backfill_releases", format!("range={range}"));
    // Thirty releases in one click: refused, nothing queued.
    let many = send(&f.app, backfill("2.0.0..2.29.0")).await;
    assert_eq!(many.status, StatusCode::OK, "{}", many.body);
    let said = many.json()["Invalid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        said.contains(&format!(
            "30 releases in 2.0.0..2.29.0: at most {MAX_RELEASES_PER_CLICK}"
        )),
        "{}",
        many.body
    );
    assert_eq!(f.store.queued_count().await.expect("queue"), 0);
    // Ten at a time, twice.
    for range in ["2.0.0..2.9.0", "2.10.0..2.19.0"] {
        let queued = send(&f.app, backfill(range)).await;
        assert_eq!(queued.status, StatusCode::OK, "{}", queued.body);
        assert_eq!(
            queued.json()["Queued"].as_array().map(Vec::len),
            Some(MAX_RELEASES_PER_CLICK),
            "{}",
            queued.body
        );
    }
    // Past ru's share of the queue: refused whole, the rest of the queue
    // left to the others.
    let past = send(&f.app, backfill("2.20.0..2.29.0")).await;
    assert_eq!(past.status, StatusCode::TOO_MANY_REQUESTS, "{}", past.body);
    assert!(
        past.body.contains("may have 25 runs waiting"),
        "{}",
        past.body
    );
    let launch = |cookie: &str| {
        call(
            cookie,
            "launch_run",
            "form[scenarios]=1&form[duration]=5s&form[spawn_rate]=1000000&form[interval]=1s&form[label]=share".into(),
        )
    };
    let room = MAX_QUEUED_PER_MEMBER - 2 * MAX_RELEASES_PER_CLICK as i64;
    for _ in 0..room {
        let answer = send(&f.app, launch(&ru)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let over = send(&f.app, launch(&ru)).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS, "{}", over.body);
    assert_eq!(
        f.store.queued_count_by("ru").await.expect("ru's"),
        MAX_QUEUED_PER_MEMBER
    );
    // Others still launch; an admin's share is the queue's.
    let ad = sign_in(&f.app, "ad", &password("ad")).await;
    for _ in 0..MAX_QUEUED_PER_MEMBER + 1 {
        let answer = send(&f.app, launch(&ad)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
}
