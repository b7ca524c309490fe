//! The sandbox against real bubblewrap (installed by scripts/setup).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::*;

fn sandbox() -> Sandbox {
    Sandbox::probe().expect("this host can sandbox (scripts/setup installs bubblewrap)")
}

/// A folder outside `/tmp` (a sandbox has a `/tmp` of its own, where
/// writing a file of the same name would prove nothing): not under the
/// checkout either, which CI clones into `/tmp`.
fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new("/var/tmp/mite-perf-sandbox-tests")
        .join(format!("{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp folder");
    dir
}

/// What a hostile build would try, as a shell script: find this test
/// process's settings in any process's environment or command line, read
/// the lab's database, write into a venv and into another run's folder.
fn snooping(marker: &str, database: &Path, venv: &Path, other_run: &Path) -> String {
    // A pattern that does not match the script's own command line.
    let (head, last) = marker.split_at(marker.len() - 1);
    let marker_pattern = format!("{head}[{last}]");
    format!(
        "found=0; for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do \
           if tr '\\0' '\\n' < $f 2>/dev/null | grep -q '{marker_pattern}'; then found=$((found+1)); fi; \
         done; echo found=$found; \
         if cat {db} >/dev/null 2>&1; then echo db=read; else echo db=closed; fi; \
         if echo x >> {db} 2>/dev/null; then echo db=written; fi; \
         if echo x > {venv}/poisoned 2>/dev/null; then echo venv=written; else echo venv=closed; fi; \
         if echo x > {other}/x 2>/dev/null; then echo other=written; else echo other=closed; fi",
        db = database.display(),
        venv = venv.display(),
        other = other_run.display(),
    )
}

#[test]
fn a_sandboxed_program_finds_none_of_the_labs_secrets_files_or_venvs() {
    let dir = temp_dir("secrets");
    let database = dir.join("lab.db");
    std::fs::write(&database, "the lab's database").expect("write");
    let venv = dir.join("venv");
    let other_run = dir.join("output/another-run");
    std::fs::create_dir_all(&venv).expect("venv");
    std::fs::create_dir_all(&other_run).expect("run folder");
    // The test runner's own settings stand for the lab's: every process of
    // the test has CARGO_MANIFEST_DIR in its environment.
    let marker = "CARGO_MANIFEST_DIR";
    assert!(std::env::var_os(marker).is_some());
    let script = snooping(marker, &database, &venv, &other_run);
    // The script itself gets nothing of this process's environment: what
    // it finds, it finds in other processes.
    let run = |command: &mut Command| {
        let output = command
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .output()
            .expect("run the script");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    // Unsandboxed, the same script finds all of it: it can fail.
    let open = run(Command::new("/bin/sh").arg("-c").arg(&script));
    assert!(!open.contains("found=0"), "{open}");
    assert!(
        open.contains("db=read") && open.contains("venv=written"),
        "{open}"
    );

    let before = std::fs::read_to_string(&database).expect("read");
    // Sandboxed, with the venv bound read-only: nothing.
    let jail = Jail::new(Path::new("/tmp"), Network::Loopback).read_only(&venv);
    let shut =
        run(&mut sandbox().command(&jail, Path::new("/bin/sh"), &["-c".into(), script.into()]));
    // None of the lab's processes is even there to read.
    assert!(shut.contains("found=0"), "{shut}");
    for closed in ["db=closed", "venv=closed", "other=closed"] {
        assert!(shut.contains(closed), "{closed}: {shut}");
    }
    assert!(!shut.contains("written"), "{shut}");
    assert_eq!(std::fs::read_to_string(&database).expect("read"), before);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_sandboxed_program_sees_only_its_own_processes() {
    let output = sandbox()
        .command(
            &Jail::new(Path::new("/tmp"), Network::Loopback),
            Path::new("/bin/sh"),
            &["-c".into(), "ls /proc | grep -c '^[0-9]'".into()],
        )
        .output()
        .expect("run");
    let seen: u32 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a count");
    // bubblewrap's init, the shell, ls and grep: not the host's hundreds.
    assert!(seen <= 6, "{seen} processes in sight");
}

#[test]
fn a_scenario_network_reaches_itself_and_nothing_of_the_host() {
    let sandbox = sandbox();
    let net = ScenarioNet::create(sandbox.bwrap()).expect("a scenario network");
    // A port of the host's loopback: the lab's pages, say.
    let host = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let host_port = host.local_addr().expect("addr").port();
    let script = format!(
        "import socket, sys, time\n\
         try:\n    socket.create_connection(('127.0.0.1', {host_port}), timeout=2); print('host=reached')\n\
         except OSError: print('host=unreachable')\n\
         s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
         print('listening', s.getsockname()[1]); sys.stdout.flush(); time.sleep(30)\n"
    );
    let mut command = sandbox.command(
        &Jail::new(Path::new("/tmp"), Network::Scenario),
        Path::new("/usr/bin/python3"),
        &["-c".into(), script.into()],
    );
    command.stdout(Stdio::piped()).stdin(Stdio::null());
    // SAFETY: joining two namespaces between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, net.joiner());
    }
    let mut child = command.spawn().expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let second = lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(first, "host=unreachable");
    let inner: u16 = second
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{second}"));
    // The lab sees the scenario's listener through the holder, and the
    // host's tables do not have it.
    let listens = |entries: Vec<procfs::net::TcpNetEntry>| {
        entries
            .iter()
            .any(|s| s.state == procfs::net::TcpState::Listen && s.local_address.port() == inner)
    };
    let holder = procfs::process::Process::new(net.inside_pid() as i32).expect("the holder");
    assert!(listens(holder.tcp().expect("its table")));
    assert!(!listens(procfs::net::tcp().expect("the host's")));
    let _ = child.kill();
    let _ = child.wait();
    drop(net);
}

#[test]
fn a_build_run_by_bubblewrap_is_recorded_as_sandboxed() {
    let sandbox = sandbox();
    let jail = Jail::new(Path::new("/tmp"), Network::Scenario);
    let args: Vec<String> = jail
        .arguments(Path::new("/venv/bin/mite"), &["runner".into()])
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let line = std::iter::once(sandbox.bwrap().display().to_string())
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(is_sandbox_command(&line), "{line}");
    assert!(!is_sandbox_command("/venv/bin/mite runner"));
    assert!(
        sandbox.version().starts_with("bubblewrap "),
        "{}",
        sandbox.version()
    );
    assert_eq!(Isolation::Sandboxed(sandbox).refuses_untrusted(), None);
    let impossible = Isolation::Impossible("no bwrap".into());
    assert_eq!(impossible.refuses_untrusted(), Some("no bwrap"));
    assert!(impossible.describe().starts_with("none"));
    assert_eq!(Isolation::detect(true), Isolation::Insecure);
}
