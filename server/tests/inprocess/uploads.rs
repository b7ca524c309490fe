//! Wheels uploaded for `mite-perf ci check` (`POST /api/wheels`): taken
//! only by a lab started with `--allow-uploaded-builds`, only if they are
//! mite wheels by name and content, within the size bound, from no other
//! site; kept once by SHA-256; and a launch may name only what was
//! uploaded. Who may upload is in the permission matrix (access.rs).

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;

use crate::common::seed::{fake_wheel, send, Answer};
use domain::builds::MiteBuild;
use mite_perf::lab::Lab;
use mite_perf::store::Store;
use mite_perf::web::WebConfig;

struct Fixture {
    dir: std::path::PathBuf,
    store: Store,
    lab: std::sync::Arc<Lab>,
    app: Router,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn fixture(name: &str, allow: bool) -> Fixture {
    let dir = crate::common::temp_dir(&format!("uploads-{name}"));
    let output = dir.join("output");
    std::fs::create_dir_all(&output).expect("output folder");
    let store = Store::connect(&format!("sqlite://{}/lab.db", dir.display()))
        .await
        .expect("store");
    let mut setup = crate::common::seed::lab_setup(&dir, &output);
    setup.policy.allow_uploaded_builds = allow;
    let lab = Lab::new(store.clone(), setup);
    let app = mite_perf::web::router(
        lab.clone(),
        WebConfig::local(crate::common::seed::site_root()),
    )
    .await
    .expect("router");
    Fixture {
        dir,
        store,
        lab,
        app,
    }
}

async fn upload(app: &Router, name: &str, body: Vec<u8>) -> Answer {
    send(
        app,
        Request::post(format!("/api/wheels?name={name}"))
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(Body::from(body))
            .expect("a request"),
    )
    .await
}

async fn launch(app: &Router, mite: &str) -> Answer {
    let form = format!(
        "form[scenarios]=1&form[duration]=5s&form[spawn_rate]=1000000&form[interval]=1s\
         &form[label]=uploads&form[repeat]=1&form[mite]={}",
        crate::common::enc(mite)
    );
    send(
        app,
        Request::post("/api/launch_run")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(Body::from(form))
            .expect("a request"),
    )
    .await
}

const NAME: &str = "mite-2.12.0-py3-none-any.whl";

#[tokio::test]
async fn a_lab_started_without_the_flag_takes_no_wheel_and_runs_none() {
    let f = fixture("refused", false).await;
    let answer = upload(&f.app, NAME, fake_wheel("mite", "2.12.0")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(
        answer.body.contains("--allow-uploaded-builds"),
        "{}",
        answer.body
    );
    // A run naming an upload (queued by some other front) is refused too.
    let answer = launch(&f.app, &format!("upload:{}", "ab".repeat(32))).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(
        answer.body.contains("--allow-uploaded-builds"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn a_mite_wheel_is_kept_once_by_its_hash_and_a_launch_may_name_it() {
    let f = fixture("kept", true).await;
    let wheel = fake_wheel("mite", "2.12.0");
    let sha = mite_perf::mite_env::source::sha256_bytes(&wheel);
    let answer = upload(&f.app, NAME, wheel.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let first: domain::builds::UploadedWheel =
        serde_json::from_str(&answer.body).expect("the answer");
    assert_eq!(first.build, format!("upload:{sha}"));
    assert_eq!(
        (first.new, first.version.as_str(), first.size),
        (true, "2.12.0", wheel.len() as u64)
    );
    let again: domain::builds::UploadedWheel =
        serde_json::from_str(&upload(&f.app, NAME, wheel.clone()).await.body).expect("again");
    assert!(!again.new, "the same bytes are kept once");
    let stored = f.store.wheel(&sha).await.expect("read").expect("stored");
    assert_eq!(
        (stored.file_name.as_str(), stored.size),
        (NAME, wheel.len() as i64)
    );
    assert_eq!(
        f.store.wheel_content(&sha).await.expect("read"),
        Some(wheel.clone())
    );
    let logged = f.store.activity(None, 100).await.expect("activity");
    assert_eq!(
        logged.iter().filter(|a| a.action == "upload wheel").count(),
        1,
        "{logged:?}"
    );

    // A launch may name it, and no other upload.
    let answer = launch(&f.app, &first.build).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let run_id = answer.json()["Queued"]["run_id"].as_i64().expect("queued");
    let run = f.store.run(run_id).await.expect("read").expect("the run");
    assert_eq!(run.params.mite, vec![MiteBuild::Uploaded(sha.clone())]);
    let answer = launch(&f.app, &format!("upload:{}", "cd".repeat(32))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let text = answer.body;
    assert!(
        text.contains("Invalid") && text.contains("was uploaded to this lab"),
        "{text}"
    );
}

#[tokio::test]
async fn what_is_not_a_mite_wheel_is_refused_with_the_reason_and_nothing_kept() {
    let f = fixture("bad", true).await;
    let wheel = fake_wheel("mite", "2.12.0");
    let refusals: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "evil-2.12.0-py3-none-any.whl",
            wheel.clone(),
            StatusCode::BAD_REQUEST,
            "not a mite wheel's name",
        ),
        (
            "..%2Fmite-2.12.0-py3-none-any.whl",
            wheel.clone(),
            StatusCode::BAD_REQUEST,
            "not a mite wheel's name",
        ),
        (
            NAME,
            b"#!/bin/sh\necho pwned\n".to_vec(),
            StatusCode::BAD_REQUEST,
            "not a wheel",
        ),
        (
            NAME,
            fake_wheel("requests", "2.12.0"),
            StatusCode::BAD_REQUEST,
            "no mite-2.12.0.dist-info/METADATA",
        ),
        (
            "mite-2.13.0-py3-none-any.whl",
            wheel.clone(),
            StatusCode::BAD_REQUEST,
            "no mite-2.13.0.dist-info/METADATA",
        ),
        (
            NAME,
            vec![0u8; mite_perf::web::uploads::MAX_WHEEL_BYTES + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
    ];
    for (name, body, status, says) in refusals {
        let answer = upload(&f.app, name, body).await;
        assert_eq!(answer.status, status, "{name}: {}", answer.body);
        assert!(answer.body.contains(says), "{name}: {}", answer.body);
    }
    // From another site's page: refused before anything reads it.
    let answer = send(
        &f.app,
        Request::post(format!("/api/wheels?name={NAME}"))
            .header("sec-fetch-site", "cross-site")
            .body(Body::from(wheel.clone()))
            .expect("a request"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    let sha = mite_perf::mite_env::source::sha256_bytes(&wheel);
    assert_eq!(f.store.wheel(&sha).await.expect("read"), None);
}

#[tokio::test]
async fn a_wheels_commit_is_kept_once_and_a_malformed_one_refused() {
    let f = fixture("commit", true).await;
    let wheel = fake_wheel("mite", "2.12.0");
    let sha = mite_perf::mite_env::source::sha256_bytes(&wheel);
    let (commit, parent) = ("c".repeat(40), "d".repeat(40));
    // Half a commit, or one that is not a hash, a time or parents: refused
    // with the field, and nothing kept.
    for (query, field) in [
        (format!("commit={commit}"), "commit"),
        ("commit_time=1700000000".to_string(), "commit"),
        (format!("parents={parent}"), "commit"),
        ("commit=HEAD&commit_time=1700000000".to_string(), "commit"),
        (format!("commit={commit}&commit_time=soon"), "commit_time"),
        (
            format!("commit={commit}&commit_time=1700000000&parents=main"),
            "parents",
        ),
    ] {
        let answer = upload(&f.app, &format!("{NAME}&{query}"), wheel.clone()).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            answer.body
        );
        assert!(
            answer.body.starts_with(&format!("{field}: ")),
            "{query}: {}",
            answer.body
        );
        assert_eq!(f.store.wheel(&sha).await.expect("read"), None, "{query}");
    }
    let with = |c: &str| format!("{NAME}&commit={c}&commit_time=1700000000&parents={parent}");
    let answer = upload(&f.app, &with(&commit), wheel.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let first: domain::builds::UploadedWheel =
        serde_json::from_str(&answer.body).expect("the answer");
    assert_eq!(first.commit.as_deref(), Some(commit.as_str()));
    // The same bytes said to be another commit: the first word stands.
    let again: domain::builds::UploadedWheel =
        serde_json::from_str(&upload(&f.app, &with(&"e".repeat(40)), wheel).await.body)
            .expect("again");
    assert_eq!(again.commit.as_deref(), Some(commit.as_str()));
    let kept = f
        .store
        .wheel(&sha)
        .await
        .expect("read")
        .expect("kept")
        .commit()
        .expect("its commit");
    assert_eq!(
        (kept.commit.as_str(), kept.time, kept.parents.clone()),
        (commit.as_str(), 1_700_000_000, vec![parent])
    );
}

/// A shared lab taking uploads, with a viewer (`vi`), a runner's token
/// (`ci`, no right to upload), a CI token that may upload (`ci-upload`)
/// and a share link to a run.
struct Shared {
    f: Fixture,
    viewer: String,
    runner_token: String,
    upload_token: String,
    share: String,
}

async fn shared_fixture(name: &str, allow: bool) -> Shared {
    use mite_perf::access::tokens::{new_token, token_hash};
    let dir = crate::common::temp_dir(&format!("uploads-{name}"));
    let output = dir.join("output");
    std::fs::create_dir_all(&output).expect("output folder");
    let store = Store::connect(&format!("sqlite://{}/lab.db", dir.display()))
        .await
        .expect("store");
    let (run_id, _) = crate::common::seed::finished_run(&store, &output).await;
    let hash = mite_perf::access::accounts::hash_password("vi-password".into())
        .await
        .expect("hash");
    store
        .create_user("vi", domain::access::Role::Viewer, Some(&hash))
        .await
        .expect("user");
    let runner_token = new_token().expect("token");
    store
        .create_token(
            "ci",
            domain::access::Role::Runner,
            &token_hash(&runner_token),
        )
        .await
        .expect("token");
    let upload_token = new_token().expect("token");
    store
        .create_token_as(&mite_perf::store::NewToken {
            name: "ci-upload",
            role: domain::access::Role::Runner,
            token_hash: &token_hash(&upload_token),
            owner: None,
            expires_at: None,
            may_upload: true,
        })
        .await
        .expect("token");
    let share = new_token().expect("share secret");
    store
        .create_share_link(run_id, &token_hash(&share), "ru", i64::MAX)
        .await
        .expect("share link");
    let mut setup = crate::common::seed::lab_setup(&dir, &output);
    setup.policy.allow_uploaded_builds = allow;
    let lab = Lab::new(store.clone(), setup);
    let mut config = WebConfig::local(crate::common::seed::site_root());
    config.access.open = mite_perf::access::Openness::Never;
    let app = mite_perf::web::router(lab.clone(), config)
        .await
        .expect("router");
    let signed = send(
        &app,
        Request::post("/signin")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("name=vi&password=vi-password&next=/"))
            .expect("a request"),
    )
    .await;
    let viewer = signed
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(mite_perf::web::SESSION_COOKIE))
        .and_then(|v| v.split(';').next())
        .expect("vi signed in")
        .to_string();
    Shared {
        f: Fixture {
            dir,
            store,
            lab,
            app,
        },
        viewer,
        runner_token,
        upload_token,
        share: format!("{}={share}", mite_perf::access::SHARE_COOKIE),
    }
}

/// A 16 MiB upload whose body notes when anything reads it, and never ends
/// (a slow client, or one that only wants the lab to hold its bytes).
fn watched_upload(
    sign: impl FnOnce(axum::http::request::Builder) -> axum::http::request::Builder,
    read: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Request<Body> {
    let body = futures_util::stream::poll_fn(move |_| {
        read.store(true, std::sync::atomic::Ordering::SeqCst);
        std::task::Poll::<Option<Result<axum::body::Bytes, std::io::Error>>>::Pending
    });
    sign(Request::post(format!("/api/wheels?name={NAME}")))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(
            header::CONTENT_LENGTH,
            mite_perf::web::uploads::MAX_WHEEL_BYTES,
        )
        .body(Body::from_stream(body))
        .expect("a request")
}

/// A header that names a caller (a cookie, `Authorization`) and its value.
type Credential = (header::HeaderName, String);

/// Viewers, share links, runners' tokens without the right to upload,
/// anonymous callers, and anyone on a lab that takes no uploads are
/// refused before a byte of the body is read: the lab holds no one's 16 MiB
/// (before, axum buffered the whole body and only then asked who sent it).
#[tokio::test]
async fn who_may_not_upload_is_refused_before_the_body_is_read() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    for allow in [true, false] {
        let s = shared_fixture(&format!("unread-{allow}"), allow).await;
        let bearer = format!("Bearer {}", s.runner_token);
        let callers: Vec<(&str, Option<Credential>, StatusCode)> = vec![
            ("anonymous", None, StatusCode::UNAUTHORIZED),
            (
                "a viewer",
                Some((header::COOKIE, s.viewer.clone())),
                StatusCode::FORBIDDEN,
            ),
            (
                "a share link",
                Some((header::COOKIE, s.share.clone())),
                StatusCode::FORBIDDEN,
            ),
            (
                "a runner's token",
                Some((header::AUTHORIZATION, bearer.clone())),
                StatusCode::FORBIDDEN,
            ),
        ];
        let mut callers = callers;
        if !allow {
            callers.push((
                "a CI token on a lab that takes no uploads",
                Some((header::AUTHORIZATION, format!("Bearer {}", s.upload_token))),
                StatusCode::FORBIDDEN,
            ));
        }
        for (who, sign, status) in callers {
            let read = Arc::new(AtomicBool::new(false));
            let request = watched_upload(
                |r| match sign {
                    Some((name, value)) => r.header(name, value),
                    None => r,
                },
                read.clone(),
            );
            let answer =
                tokio::time::timeout(std::time::Duration::from_secs(10), send(&s.f.app, request))
                    .await
                    .unwrap_or_else(|_| {
                        panic!("{who} (uploads allowed: {allow}): the lab waits for the body")
                    });
            assert_eq!(answer.status, status, "{who}: {}", answer.body);
            assert!(!read.load(Ordering::SeqCst), "{who}: the body was read");
        }
        // The CI token's upload goes in where uploads are taken; the
        // runner's is told what it lacks.
        let by = |bearer: String| {
            Request::post(format!("/api/wheels?name={NAME}"))
                .header(header::AUTHORIZATION, bearer)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(Body::from(fake_wheel("mite", "2.12.0")))
                .expect("a request")
        };
        let ci = send(&s.f.app, by(format!("Bearer {}", s.upload_token))).await;
        let expected = if allow {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(ci.status, expected, "{}", ci.body);
        let runner = send(&s.f.app, by(bearer)).await;
        assert_eq!(runner.status, StatusCode::FORBIDDEN);
        assert!(runner.body.contains("--may-upload"), "{}", runner.body);
    }
}

/// `serve`'s sweep forgets uploads unused for the retention, never one a
/// queued run names; a launch naming a forgotten wheel is refused, and one
/// naming a kept wheel starts its retention again.
#[tokio::test]
async fn unused_uploads_are_forgotten_but_never_under_a_queued_run() {
    let f = fixture("retention", true).await;
    let named = fake_wheel("mite", "2.12.0");
    let unnamed = fake_wheel("mite", "2.13.0");
    let [named_sha, unnamed_sha] =
        [&named, &unnamed].map(|w| mite_perf::mite_env::source::sha256_bytes(w));
    for (name, wheel) in [
        (NAME, named.clone()),
        ("mite-2.13.0-py3-none-any.whl", unnamed.clone()),
    ] {
        let answer = upload(&f.app, name, wheel).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let queued = launch(&f.app, &format!("upload:{named_sha}")).await;
    assert_eq!(queued.status, StatusCode::OK, "{}", queued.body);
    assert!(queued.body.contains("Queued"), "{}", queued.body);
    // A retention of nothing: whatever no waiting run names goes.
    let forgotten = f
        .lab
        .forget_unused_uploads(std::time::Duration::ZERO)
        .await
        .expect("forget");
    assert_eq!(forgotten, 1);
    assert!(f.store.wheel_kept(&named_sha).await.expect("kept?"));
    assert!(!f.store.wheel_kept(&unnamed_sha).await.expect("kept?"));
    let refused = launch(&f.app, &format!("upload:{unnamed_sha}")).await;
    assert!(
        refused.body.contains("was uploaded to this lab"),
        "{}",
        refused.body
    );
    // A kept wheel's retention starts again with each launch naming it.
    let kept_for_a_day = f
        .lab
        .forget_unused_uploads(std::time::Duration::from_secs(86_400))
        .await
        .expect("forget");
    assert_eq!(kept_for_a_day, 0);
    assert!(f.store.wheel_kept(&named_sha).await.expect("kept?"));
}

/// An upload whose body the test sends when it likes: what was sent so far
/// is read, then the lab waits for the rest.
fn open_upload(
    app: &Router,
    started: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (
    tokio::sync::mpsc::Sender<axum::body::Bytes>,
    tokio::task::JoinHandle<Answer>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<axum::body::Bytes>(4);
    let body = futures_util::stream::unfold(rx, move |mut rx| {
        started.store(true, std::sync::atomic::Ordering::SeqCst);
        async move {
            rx.recv()
                .await
                .map(|bytes| (Ok::<_, std::io::Error>(bytes), rx))
        }
    });
    let request = Request::post(format!("/api/wheels?name={NAME}"))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from_stream(body))
        .expect("a request");
    let app = app.clone();
    (tx, tokio::spawn(async move { send(&app, request).await }))
}

/// Uploads take turns: while the lab reads as many as it takes at once,
/// another is told to come back (with Retry-After), not buffered; once
/// one ends, the next goes in.
#[tokio::test]
async fn uploads_at_once_are_bounded() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    const AT_ONCE: usize = mite_perf::lab::MAX_UPLOADS;
    let f = fixture("at-once", true).await;
    let wheel = fake_wheel("mite", "2.12.0");
    let mut open = Vec::new();
    for _ in 0..AT_ONCE {
        let started = Arc::new(AtomicBool::new(false));
        let (tx, answer) = open_upload(&f.app, started.clone());
        tx.send(axum::body::Bytes::from(wheel[..10].to_vec()))
            .await
            .expect("the first bytes");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !started.load(Ordering::SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "the upload never started"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        open.push((tx, answer));
    }
    let turned_away = upload(&f.app, NAME, wheel.clone()).await;
    assert_eq!(
        turned_away.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        turned_away.body
    );
    assert!(
        turned_away.body.contains("uploads at once"),
        "{}",
        turned_away.body
    );
    assert!(turned_away.headers.contains_key(header::RETRY_AFTER));
    // One ends: the next is taken.
    let (tx, answer) = open.remove(0);
    tx.send(axum::body::Bytes::from(wheel[10..].to_vec()))
        .await
        .expect("the rest");
    drop(tx);
    let done = answer.await.expect("the first upload");
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let next = upload(&f.app, NAME, wheel.clone()).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.body);
    drop(open);
}
