//! END-TO-END (about a minute): measured code is hostile. An uploaded
//! wheel that is real mite, but whose every process first looks for the
//! lab's secrets (a setting only the lab's environment holds, and its
//! database's path) in every process's environment and command line,
//! tries to open the lab's database for writing, to write into its own
//! venv, the pinned one, the database's folder, the runs' output and the
//! uploaded wheels, and to reach the lab's pages, finds nothing and can
//! do none of it, while its run completes and is measured (every process
//! sampled, mite's own messages counted); no process on the host carries
//! the database's URL on its command line. The same probe run outside the
//! lab finds all of it: it can fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::{enc, http_client, text, wait_status, ServeOptions, Server};

/// What a hostile build looks for (the lab's database URL, `secret`, and
/// its file), as Python appended to `mite/__init__.py` (every mite process
/// imports it): it says what it found on stderr (the process's log) in
/// one `MITE-PERF-PROBE {json}` line.
fn probe(
    secret: &str,
    database: &Path,
    pinned_venv: &Path,
    lab_folders: &[&Path],
    lab_port: u16,
) -> String {
    let folders: Vec<String> = lab_folders
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    format!(
        r#"

def _mite_perf_probe():
    import json, os, socket, sys
    secrets = [{secret:?}.encode(), {database:?}.encode()]
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for name in ("environ", "cmdline"):
            try:
                with open("/proc/%s/%s" % (pid, name), "rb") as f:
                    data = f.read()
            except OSError:
                continue
            # Its own process was started with none of them.
            if any(s in data for s in secrets) and pid != str(os.getpid()):
                found.append("%s/%s" % (pid, name))
    opened = []
    for path in ({database:?}, {database:?} + "-wal"):
        for mode in ("r+b", "ab"):
            try:
                # The lab's file, not an empty one this made (in a
                # sandbox's own /tmp, say).
                with open(path, mode):
                    if os.path.getsize(path) > 0:
                        opened.append(path + " " + mode)
            except OSError:
                pass
    written = []
    for venv in (sys.prefix, {pinned:?}):
        target = os.path.join(venv, "mite_perf_poisoned.py")
        try:
            with open(target, "w") as f:
                f.write("poisoned = True\n")
            written.append(target)
        except OSError:
            pass
    # The lab's own folders (its database's, every run's output, the
    # uploaded wheels): in a sandbox such a path, where it exists at all,
    # is its own /tmp's, so the test looks for these files on the host.
    for folder in {folders:?}:
        try:
            with open(os.path.join(folder, "mite_perf_poisoned.py"), "w") as f:
                f.write("poisoned = True\n")
        except OSError:
            pass
    reached = []
    try:
        socket.create_connection(("127.0.0.1", {lab_port}), timeout=1).close()
        reached.append({lab_port})
    except OSError:
        pass
    sys.stderr.write("MITE-PERF-PROBE " + json.dumps(dict(
        command=" ".join(sys.argv[1:2]), found=found, opened=opened,
        written=written, reached=reached)) + "\n")
    sys.stderr.flush()

_mite_perf_probe()
"#,
        database = database.display().to_string(),
        pinned = pinned_venv.display().to_string(),
    )
}

/// A wheel of the installed mite with the probe in it (built by the
/// test, outside any lab).
fn hostile_wheel(dir: &Path, probe: &str) -> PathBuf {
    let checkout = dir.join("mite-src");
    let made = Command::new(mite_perf::mite_env::default_venv().join("bin/python"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mite_checkout.py"
        ))
        .arg(&checkout)
        .arg("2.11.0+hostile")
        .output()
        .expect("run the checkout maker");
    assert!(made.status.success(), "{}", text(&made));
    let init = checkout.join("mite/__init__.py");
    let source = std::fs::read_to_string(&init).expect("mite/__init__.py");
    std::fs::write(&init, source + probe).expect("add the probe");
    let uv = mite_perf::mite_env::data_dir().join("tools/bin/uv");
    let wheels = dir.join("wheels");
    let built = Command::new(uv)
        .args(["build", "--wheel", "--quiet", "--out-dir"])
        .arg(&wheels)
        .arg(&checkout)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .output()
        .expect("uv build");
    assert!(built.status.success(), "{}", text(&built));
    std::fs::read_dir(&wheels)
        .expect("wheels")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .expect("a wheel")
}

/// Every `MITE-PERF-PROBE` report in the logs under `dir`.
fn reports(dir: &Path) -> Vec<Value> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(reports(&path));
        } else if path.extension().is_some_and(|e| e == "log") {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            found.extend(log.lines().filter_map(|line| {
                let json = line.strip_prefix("MITE-PERF-PROBE ")?;
                serde_json::from_str::<Value>(json).ok()
            }));
        }
    }
    found
}

#[tokio::test]
async fn e2e_a_hostile_uploaded_build_finds_no_secret_and_writes_nothing() {
    let _machine = crate::common::share_the_machine().await;
    let dir = crate::common::temp_dir("hostile");
    let database = dir.join("lab.db");
    let pinned = mite_perf::mite_env::default_venv();
    // The database's URL is in the lab's environment only.
    let server = Server::start_with(
        "hostile",
        ServeOptions {
            db_url: Some(format!("sqlite://{}", database.display())),
            args: vec!["--allow-uploaded-builds".into()],
            dir: Some(dir.clone()),
        },
    )
    .await;
    let output = dir.join("output");
    let uploads = mite_perf::mite_env::data_dir().join("builds/uploads");
    std::fs::create_dir_all(&output).expect("the output folder");
    std::fs::create_dir_all(&uploads).expect("the uploads folder");
    let lab_folders = [dir.as_path(), output.as_path(), uploads.as_path()];
    let probe = probe(
        &server.db_url(),
        &database,
        &pinned,
        &lab_folders,
        server.addr.port(),
    );
    let poisoned = |folder: &Path| folder.join("mite_perf_poisoned.py");

    // Outside any sandbox, the probe finds all of it: the lab's
    // environment, its database, the pinned venv, its pages.
    let control = Command::new(pinned.join("bin/python"))
        .arg("-c")
        .arg(&probe)
        .output()
        .expect("the probe outside");
    let outside = String::from_utf8_lossy(&control.stderr).into_owned();
    let outside: Value = serde_json::from_str(
        outside
            .lines()
            .find_map(|l| l.strip_prefix("MITE-PERF-PROBE "))
            .unwrap_or_else(|| panic!("no report: {outside}")),
    )
    .expect("a report");
    for what in ["found", "opened", "written", "reached"] {
        assert!(
            !outside[what].as_array().expect("a list").is_empty(),
            "outside a sandbox the probe finds the lab ({what}): {outside}"
        );
    }
    for folder in [pinned.as_path()].iter().chain(&lab_folders) {
        assert!(
            poisoned(folder).exists(),
            "outside, the probe writes in {}",
            folder.display()
        );
        std::fs::remove_file(poisoned(folder)).expect("the control's file");
    }

    // The same probe in every process of an uploaded build.
    let wheel = hostile_wheel(&dir, &probe);
    let name = wheel
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a name")
        .to_string();
    let answer = http_client()
        .post(server.url(&format!("/api/wheels?name={}", enc(&name))))
        .header("Origin", server.url(""))
        .body(std::fs::read(&wheel).expect("the wheel"))
        .send()
        .await
        .expect("upload");
    let status = answer.status().as_u16();
    let said = answer.text().await.expect("an answer");
    assert_eq!(status, 200, "{said}");
    let uploaded: Value = serde_json::from_str(&said).expect("json");
    let sha = uploaded["sha256"].as_str().expect("its sha256").to_string();
    let form = format!(
        "{}&form[mite]={}",
        crate::common::launch_form("10", "5s", "hostile"),
        enc(&format!("upload:{sha}"))
    );
    let launched = server.call("launch_run", &form).await;
    let run = launched["Queued"]["run_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("queued: {launched}"));
    // While it runs, no process on the host (the lab, its sandboxes,
    // mite) carries the database's URL on its command line, where any
    // user of the host could read it.
    wait_status(
        &server,
        run,
        &["running", "done", "failed"],
        Duration::from_secs(120),
    )
    .await;
    let secret = server.db_url();
    let mut looked = 0;
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        looked += 1;
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(&secret),
            "the database's URL is on the command line of {}: {}",
            entry.path().display(),
            String::from_utf8_lossy(&cmdline).replace('\0', " ")
        );
    }
    assert!(looked > 10, "only {looked} processes read");
    let done = wait_status(&server, run, &["done", "failed"], Duration::from_secs(300)).await;
    assert_eq!(done["status"], "done", "{done}\n{}", server.log());

    // Measured: requests served, every process sampled as it worked, and
    // mite's own messages read (through the sandbox's network).
    let store = mite_perf::store::Store::connect(&server.db_url())
        .await
        .expect("store");
    let scenarios = store.scenarios(run).await.expect("scenarios");
    let samples = store
        .scenario_samples(scenarios[0].id)
        .await
        .expect("samples");
    assert!(
        samples.iter().any(|s| s.requests.unwrap_or(0) > 0),
        "nothing served"
    );
    use mite_perf::model::ProcessKind;
    for kind in [
        ProcessKind::Target,
        ProcessKind::Duplicator,
        ProcessKind::Collector,
        ProcessKind::Runner,
        ProcessKind::Controller,
    ] {
        assert!(
            samples
                .iter()
                .any(|s| s.process == kind && s.cpu > 0.0 && s.mem > 0),
            "the {kind:?} was not seen working"
        );
    }
    let totals = store
        .bus_totals(scenarios[0].id)
        .await
        .expect("mite's view");
    assert!(
        totals.iter().map(|t| t.requests).sum::<i64>() > 0,
        "mite's own messages were not read: {totals:?}"
    );

    // Every mite process ran the probe, and it found nothing.
    let reports = reports(&dir.join("output"));
    let commands: Vec<&str> = reports
        .iter()
        .filter_map(|r| r["command"].as_str())
        .collect();
    for component in ["duplicator", "collector", "runner", "controller"] {
        assert!(
            commands.contains(&component),
            "no report from the {component}: {reports:?}"
        );
    }
    for report in &reports {
        for what in ["found", "opened", "written", "reached"] {
            assert_eq!(
                report[what].as_array().map(Vec::len),
                Some(0),
                "a sandboxed {} {what} something: {report}",
                report["command"]
            );
        }
    }
    for folder in [pinned.as_path()].iter().chain(&lab_folders) {
        assert!(!poisoned(folder).exists(), "{}", folder.display());
    }
    crate::common::assert_no_child_left(&store, run).await;
}

/// A host that cannot sandbox (here: no bubblewrap where the lab looks)
/// refuses the builds nobody vouches for, naming what is missing and the
/// flag that would run them anyway; a release of mite still runs there,
/// unsandboxed, and its provenance says so.
#[tokio::test]
async fn a_host_that_cannot_sandbox_refuses_builds_nobody_vouches_for() {
    let _machine = crate::common::share_the_machine().await;
    let lab = crate::common::CliLab::new("no-sandbox");
    let checkout = lab.dir.join("mite-src");
    std::fs::create_dir_all(checkout.join("mite")).expect("checkout");
    std::fs::write(checkout.join("setup.py"), "raise SystemExit('never run')\n").expect("setup.py");
    let run = |args: &[&str]| {
        let mut all = vec![
            "run",
            "--output-dir",
            "output",
            "--concurrencies",
            "1",
            "--duration",
            "1s",
        ];
        all.extend_from_slice(args);
        crate::common::wait_output(
            lab.command(&all)
                .env(mite_perf::sandbox::BWRAP_ENV, "/nonexistent/bwrap")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("mite-perf run"),
            Duration::from_secs(120),
        )
    };
    let refused = run(&["--mite", "./mite-src"]);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    for words in [
        "mite ./mite-src",
        "bubblewrap is not installed",
        "--insecure-unsandboxed-builds",
    ] {
        assert!(said.contains(words), "{words}: {said}");
    }
    let store = lab.store().await;
    assert!(
        store.scenarios(1).await.expect("scenarios").is_empty(),
        "nothing of it started"
    );
    // The pinned mite is not refused: it runs, unsandboxed, and says so.
    let pinned = run(&[]);
    assert!(pinned.status.success(), "{}", text(&pinned));
    let provenance = store
        .run(2)
        .await
        .expect("query")
        .and_then(|run| run.provenance)
        .expect("provenance");
    assert_eq!(provenance.sandbox, "none (this host cannot sandbox)");
}
