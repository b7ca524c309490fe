//! END-TO-END, the slow tier (about five minutes, the machine to itself):
//! `mite-perf bisect` over ten commits of a git repository of the
//! installed mite, one of which burns CPU on every message mite sends (and
//! every later commit keeps it), against a closed lab the test starts:
//! good against bad first, a few probes, the first bad commit against its
//! parent; it names the slow commit and exits 0.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::ci::{burn_per_message, closed_lab, head, mite_repository};
use crate::common::{git, text, wait_output, BIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the slow tier: scripts/test --slow"]
async fn e2e_bisect_names_the_commit_that_burns_cpu() {
    let _turn = crate::common::have_the_machine().await;
    let dir = crate::common::temp_dir("bisect");
    let repo = dir.join("mite");
    mite_repository(&repo);
    let init = repo.join("mite/__init__.py");
    let context = repo.join("mite/context.py");
    let mut slow = String::new();
    for i in 1..=10 {
        if i == 6 {
            let source = std::fs::read_to_string(&context).expect("mite/context.py");
            std::fs::write(&context, burn_per_message(source)).expect("burn");
        } else {
            let mut source = std::fs::read_to_string(&init).expect("mite/__init__.py");
            source.push_str(&format!("# change {i}\n"));
            std::fs::write(&init, source).expect("comment");
        }
        git(&repo, &["commit", "-q", "-am", &format!("change {i}")]);
        if i == 6 {
            slow = head(&repo);
        }
    }
    let lab_dir = dir.join("lab");
    std::fs::create_dir_all(&lab_dir).expect("lab folder");
    let (server, token) = closed_lab(&lab_dir, &[]).await;
    let child = Command::new(BIN)
        .args(["bisect", "--lab", &server.url(""), "--repo"])
        .arg(&repo)
        .args(["--good", "main~10", "--bad", "main"])
        .args([
            "--concurrency",
            "10",
            "--duration",
            "4s",
            "--interval",
            "250ms",
            "--repeat",
            "3",
            "--poll",
            "1s",
        ])
        .arg("--wheel-cache")
        .arg(dir.join("wheels"))
        .env("MITE_PERF_TOKEN", &token)
        .env_remove("MITE_PERF_LAB")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mite-perf bisect");
    let output = wait_output(child, Duration::from_secs(1200));
    let said = text(&output);
    assert_eq!(output.status.code(), Some(0), "{said}\n{}", server.log());
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains(&format!("first bad commit: {slow} change 6")),
        "{said}"
    );
    assert!(!report.contains("warning:"), "{said}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
