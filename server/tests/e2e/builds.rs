//! mite builds made by the lab with the real uv (scripts/setup's) and pip:
//! a local checkout installed, reused while unchanged, reinstalled once its
//! files change; builds that cannot be had refused with the reason. A tiny
//! package named `mite` stands in for mite's source so that each install
//! takes seconds; the end-to-end tests (e2e_compare) install real mite.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use domain::builds::MiteBuild;
use domain::dependencies::Resolution;
use mite_perf::mite_env::builds::{BuildCache, BuildError};
use mite_perf::mite_env::{self, MiteEnv};

/// A checkout of a package called mite, at `version`, with a `mite` command.
fn fake_checkout(dir: &Path, version: &str) {
    std::fs::create_dir_all(dir.join("mite")).expect("mkdir");
    std::fs::write(
        dir.join("pyproject.toml"),
        format!(
            "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
             [project]\nname = \"mite\"\nversion = \"{version}\"\n\n[project.scripts]\nmite = \"mite:main\"\n"
        ),
    )
    .expect("pyproject");
    std::fs::write(
        dir.join("mite/__init__.py"),
        "def main():\n    print('fake mite')\n",
    )
    .expect("module");
}

fn cache(dir: &Path, uv: bool) -> BuildCache {
    let pinned = MiteEnv::locate(&mite_env::default_venv()).expect("scripts/setup's mite venv");
    let mut cache = BuildCache::new(pinned, Some(dir.join("builds")));
    assert!(cache.uv.is_some(), "scripts/setup installs uv");
    if !uv {
        cache.uv = None;
    }
    cache
}

async fn install(
    cache: &BuildCache,
    build: &MiteBuild,
) -> (Result<mite_env::builds::Installed, BuildError>, Vec<String>) {
    let said = Mutex::new(Vec::new());
    let say = |m: &str| said.lock().expect("lock").push(m.to_string());
    // Installers run in a sandbox, as on an agent.
    let sandbox = mite_perf::sandbox::Sandbox::probe().expect("scripts/setup installs bubblewrap");
    let result = cache.install(build, Some(&sandbox), &say).await;
    (result, said.into_inner().expect("lock"))
}

async fn checkout_is_installed_reused_and_reinstalled(uv: bool) {
    let dir = crate::common::temp_dir(if uv { "builds-uv" } else { "builds-pip" });
    let checkout: PathBuf = dir.join("mite-src");
    fake_checkout(&checkout, "0.0.1");
    crate::common::git(&checkout, &["init", "-q"]);
    crate::common::git(&checkout, &["add", "."]);
    crate::common::git(&checkout, &["commit", "-q", "-m", "fake mite"]);
    let cache = cache(&dir, uv);
    let build = MiteBuild::Checkout(checkout.clone());

    let (first, said) = install(&cache, &build).await;
    let first = first.expect("installs");
    assert_eq!(first.env.mite_version, "0.0.1");
    assert!(
        first.env.venv.starts_with(dir.join("builds")),
        "{:?}",
        first.env.venv
    );
    assert!(said[0].starts_with("installing mite"), "{said:?}");
    // What the venv holds is kept with the build, and how it was resolved.
    let packages = &first.provenance.packages;
    assert!(
        packages.contains(&"mite==0.0.1".to_string()),
        "{packages:?}"
    );
    match (uv, &first.provenance.resolution) {
        (true, Some(Resolution::Snapshot { as_of })) => {
            assert_eq!(packages, &["mite==0.0.1"]);
            assert_eq!(cache.snapshot().await.expect("the snapshot"), *as_of);
        }
        (false, Some(Resolution::Unpinned)) => {}
        (_, other) => panic!("uv {uv}: resolved as {other:?}"),
    }
    assert_eq!(first.provenance.git_dirty, Some(false));
    assert_eq!(
        first.provenance.git_commit.as_ref().map(String::len),
        Some(40)
    );

    // Unchanged: reused, nothing said.
    let (again, said) = install(&cache, &build).await;
    assert_eq!(again.expect("reused").env.venv, first.env.venv);
    assert!(said.is_empty(), "{said:?}");

    // Changed (uncommitted): reinstalled, and the build says it is dirty.
    fake_checkout(&checkout, "0.0.2");
    let (changed, said) = install(&cache, &build).await;
    let changed = changed.expect("reinstalls");
    assert_eq!(changed.env.mite_version, "0.0.2");
    assert_eq!(changed.env.venv, first.env.venv);
    assert_eq!(changed.provenance.git_dirty, Some(true));
    assert!(
        said[0].contains("changed since it was installed"),
        "{said:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_checkout_is_installed_with_uv_kept_and_reinstalled_when_it_changes() {
    let _turn = crate::common::share_the_machine().await;
    checkout_is_installed_reused_and_reinstalled(true).await;
}

#[tokio::test]
async fn without_uv_pip_does_the_same() {
    let _turn = crate::common::share_the_machine().await;
    checkout_is_installed_reused_and_reinstalled(false).await;
}

#[tokio::test]
async fn builds_that_cannot_be_had_are_refused_with_the_reason() {
    let _turn = crate::common::share_the_machine().await;
    let dir = crate::common::temp_dir("builds-refused");
    let cache = cache(&dir, true);
    std::fs::create_dir_all(dir.join("empty")).expect("mkdir");
    let cases = [
        (
            MiteBuild::Checkout(dir.join("empty")),
            "is not a mite checkout",
        ),
        (MiteBuild::Checkout(dir.join("missing")), "cannot read"),
        (
            MiteBuild::Wheel(dir.join("mite-9.9.9-py3-none-any.whl")),
            "cannot read",
        ),
        // A version PyPI does not have: uv's own words say why.
        (
            MiteBuild::Version("0.0.0.1".into()),
            "cannot install mite 0.0.0.1",
        ),
    ];
    for (build, expected) in cases {
        let (result, _) = install(&cache, &build).await;
        let err = result.expect_err("refused").to_string();
        assert!(err.contains(expected), "{build}: {err}");
    }
    // The pinned build is its release installed like any other: alike.rs.
    let _ = std::fs::remove_dir_all(dir);
}

/// An uploaded wheel (as the lab's database keeps it) is written out,
/// checked against its hash, installed with the real uv and recorded by
/// its SHA-256; bytes that are not what the hash says, a file changed on
/// disk, and a hash the agent never received are refused with the reason.
#[tokio::test]
async fn an_uploaded_wheel_is_checked_placed_and_installed_by_its_hash() {
    let _turn = crate::common::share_the_machine().await;
    let dir = crate::common::temp_dir("builds-uploaded");
    let cache = cache(&dir, true);
    let name = "mite-0.0.7-py3-none-any.whl";
    let wheel = crate::common::seed::fake_wheel("mite", "0.0.7");
    let sha = mite_perf::mite_env::source::sha256_bytes(&wheel);
    let build = MiteBuild::Uploaded(sha.clone());

    let (missing, _) = install(&cache, &build).await;
    let err = missing.expect_err("nothing placed yet").to_string();
    assert!(err.contains("is not on this agent"), "{err}");
    let other = crate::common::seed::fake_wheel("mite", "0.0.8");
    let err = cache
        .place_upload(&sha, name, &other)
        .expect_err("other bytes")
        .to_string();
    assert!(err.contains("the stored bytes have SHA-256"), "{err}");
    let err = cache
        .place_upload(&sha, "../../mite-0.0.7-py3-none-any.whl", &wheel)
        .expect_err("a path")
        .to_string();
    assert!(err.contains("not a mite wheel's name"), "{err}");

    let path = cache.place_upload(&sha, name, &wheel).expect("placed");
    assert!(path.starts_with(&cache.root), "{}", path.display());
    let (installed, said) = install(&cache, &build).await;
    let installed = installed.expect("installed");
    assert_eq!(installed.env.mite_version, "0.0.7", "{said:?}");
    assert_eq!(
        installed.provenance.wheel_sha256.as_deref(),
        Some(sha.as_str())
    );
    assert_eq!(installed.provenance.asked, format!("upload:{sha}"));

    // Changed on disk after it was placed: refused, not installed.
    std::fs::write(&path, &other).expect("tamper");
    let (tampered, _) = install(&cache, &build).await;
    let err = tampered.expect_err("tampered").to_string();
    assert!(err.contains("is not what was uploaded"), "{err}");
    // The next run places it again from the database, and it installs.
    cache
        .place_upload(&sha, name, &wheel)
        .expect("placed again");
    let (healed, _) = install(&cache, &build).await;
    let healed = healed.expect("installed");
    assert_eq!(healed.env.mite_version, "0.0.7");
    // Once the lab no longer keeps it, the host's copy goes: the wheel and
    // the venv made of it.
    assert_eq!(cache.held_uploads(), std::slice::from_ref(&sha));
    cache.forget_upload(&sha).expect("forgotten");
    assert!(cache.held_uploads().is_empty());
    assert!(!healed.env.venv.exists() && !path.exists());
    let _ = std::fs::remove_dir_all(dir);
}

/// A fault: Ctrl+C while a build installs. The installer's whole process
/// group (here a build backend that would sleep a minute) is stopped, the
/// run ends `interrupted` before any of mite's processes started, and the
/// half-made venv is made again by the next run that asks for the build.
#[tokio::test]
async fn a_stop_while_installing_ends_the_installer_and_interrupts_the_run() {
    let _turn = crate::common::share_the_machine().await;
    use std::time::{Duration, Instant};
    let lab = crate::common::CliLab::new("stop-installing");
    let checkout = lab.dir.join("sleepy-src");
    // Inside the checkout: the only folder its sandboxed back end may write.
    let started = checkout.join("backend-started");
    std::fs::create_dir_all(checkout.join("mite")).expect("mkdir");
    std::fs::write(checkout.join("mite/__init__.py"), "").expect("module");
    // It names itself, so the test finds it from outside its sandbox's
    // PID namespace.
    std::fs::write(
        checkout.join("setup.py"),
        format!(
            "import ctypes, time\nctypes.CDLL(None).prctl(15, b'mite-perf-sleepy', 0, 0, 0)\n\
             open({:?}, 'w').write('started')\ntime.sleep(60)\n\
             from setuptools import setup\nsetup(name='mite', version='0.0.1', packages=['mite'])\n",
            started.display().to_string()
        ),
    )
    .expect("setup.py");
    let child = lab.spawn_run(&[
        "--mite",
        "./sleepy-src",
        "--concurrencies",
        "1",
        "--duration",
        "1s",
        "--builds-dir",
        "builds",
    ]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let sleepy = || {
        procfs::process::all_processes()
            .expect("processes")
            .flatten()
            .find(|p| p.stat().is_ok_and(|s| s.comm == "mite-perf-sleep"))
            .map(|p| p.pid())
    };
    let backend: i32 = loop {
        if let (true, Some(pid)) = (started.exists(), sleepy()) {
            break pid;
        }
        assert!(Instant::now() < deadline, "the build backend never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    crate::common::signal(child.id(), nix::sys::signal::Signal::SIGINT);
    let output = crate::common::wait_output(child, Duration::from_secs(60));
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        crate::common::text(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("run 1: interrupted (stopped while installing mite ./sleepy-src)"),
        "{}",
        crate::common::text(&output)
    );
    // The backend (a grandchild of the lab, through uv) is gone.
    let gone = Instant::now() + Duration::from_secs(10);
    while nix::sys::signal::kill(nix::unistd::Pid::from_raw(backend), None).is_ok() {
        assert!(
            Instant::now() < gone,
            "the build backend {backend} was left running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let store = lab.store().await;
    let run = store.run(1).await.expect("query").expect("run 1");
    assert_eq!(run.status, mite_perf::model::RunStatus::Interrupted);
    // It stopped before its scenarios were even recorded: nothing of
    // mite's ever started.
    assert_eq!(store.scenarios(1).await.expect("scenarios").len(), 0);
    assert_eq!(
        run.error.as_deref(),
        Some("stopped while installing mite ./sleepy-src")
    );
}
