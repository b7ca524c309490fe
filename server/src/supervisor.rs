//! Starting and stopping the lab's children: each in its own process group,
//! output captured to a log file, stopped in two stages (a polite signal, a
//! grace period, then SIGKILL of the whole group).
//!
//! Only processes this module started (or that the store recorded as started
//! by the lab, for `cleanup`) are ever signalled.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::child_env::CleanEnv;
use crate::model::ProcessKind;
use crate::os_process;
use crate::sandbox::ScenarioNet;

/// How long a stopped child gets between the polite signal and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("cannot create log file {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {kind} (`{command}`): {source}")]
    Spawn {
        kind: ProcessKind,
        command: String,
        source: std::io::Error,
    },
}

/// What to start.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    pub kind: ProcessKind,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub log_path: PathBuf,
    /// Give the lab the child's stdin (the built-in target's request channel).
    pub pipe_stdin: bool,
    /// Give the lab the child's stdout (the target's request counts); stderr
    /// still goes to the log.
    pub pipe_stdout: bool,
    /// Which process the lab measures for it.
    pub measured: Measured,
    /// The scenario network it joins before it starts (a sandboxed child:
    /// see [`crate::sandbox::net`]).
    pub network: Option<Arc<ScenarioNet>>,
}

/// Which process the lab measures (its pid and sockets) and asks to stop
/// first for a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measured {
    /// The child itself.
    Itself,
    /// Its child's child: `mite-perf under-py-spy` runs py-spy, which runs
    /// mite's runner (see `profile::started`). The child ends as that
    /// process did.
    UnderPySpy,
    /// Its child's child: bubblewrap runs its init in the sandbox's PID
    /// namespace, which runs the command (see [`crate::sandbox`]). The
    /// child ends with the command's exit code, or, where a signal ended
    /// it, 128 plus the signal's number, as a shell says it: read back as
    /// that signal.
    Sandboxed,
}

impl Measured {
    /// Whether the lab measures the child's grandchild.
    pub fn is_grandchild(self) -> bool {
        self != Measured::Itself
    }
}

/// How long the py-spy between a child and its grandchild gets to write its
/// stacks, once the grandchild has ended or py-spy was asked to stop.
pub const GRANDCHILD_WRITE_GRACE: Duration = Duration::from_secs(5);

impl ChildSpec {
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A running child of the lab.
#[derive(Debug)]
pub struct Supervised {
    pub kind: ProcessKind,
    pub pid: u32,
    pub start_ticks: u64,
    pub command: String,
    pub log_path: PathBuf,
    pub started: Instant,
    child: Child,
    exit: Option<ExitStatus>,
    measured: Measured,
    /// The child's child and grandchild, once found (pid and start time).
    middle: Option<(u32, u64)>,
    inner: Option<(u32, u64)>,
}

fn open_log(path: &Path) -> Result<File, SupervisorError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| SupervisorError::Log {
            path: path.to_path_buf(),
            source,
        })
}

/// Starts a child in its own process group. Returns it with its piped stdin
/// and stdout, if asked for.
pub fn spawn(
    spec: &ChildSpec,
) -> Result<(Supervised, Option<ChildStdin>, Option<ChildStdout>), SupervisorError> {
    let log = open_log(&spec.log_path)?;
    let log_err = log.try_clone().map_err(|source| SupervisorError::Log {
        path: spec.log_path.clone(),
        source,
    })?;
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .current_dir(&spec.cwd)
        // Never the lab's own settings: only what a program needs, and
        // what this child is given.
        .basic_env()
        .envs(spec.env.iter().cloned())
        .kill_on_drop(false)
        .stdin(if spec.pipe_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(if spec.pipe_stdout {
            Stdio::piped()
        } else {
            Stdio::from(log)
        })
        .stderr(Stdio::from(log_err));
    match &spec.network {
        // A session of its own (so no terminal it could write into), then
        // the scenario's network. Only system calls between fork and exec.
        Some(network) => {
            let join = network.joiner();
            // SAFETY: setsid and setns are async-signal-safe.
            unsafe {
                command.pre_exec(move || {
                    nix::unistd::setsid()?;
                    join()
                });
            }
        }
        None => {
            command.process_group(0);
        }
    }
    let spawn_error = |source| SupervisorError::Spawn {
        kind: spec.kind,
        command: spec.command_line(),
        source,
    };
    let mut child = command.spawn().map_err(spawn_error)?;
    let Some(pid) = child.id() else {
        return Err(spawn_error(std::io::Error::other(
            "exited before it had a pid",
        )));
    };
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    Ok((
        Supervised {
            kind: spec.kind,
            pid,
            start_ticks: os_process::start_ticks(pid).unwrap_or(0),
            command: spec.command_line(),
            log_path: spec.log_path.clone(),
            started: Instant::now(),
            child,
            exit: None,
            measured: spec.measured,
            middle: None,
            inner: None,
        },
        stdin,
        stdout,
    ))
}

impl Supervised {
    /// The exit status, if the child has ended (reaping it).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(self.ended_as(status));
            }
        }
        self.exit
    }

    /// How the process the lab measures ended, from the child's status.
    fn ended_as(&self, status: ExitStatus) -> ExitStatus {
        match (self.measured, status.code()) {
            (Measured::Sandboxed, Some(code)) => as_shell_said(code).unwrap_or(status),
            _ => status,
        }
    }

    /// Whether the lab measures its grandchild (see [`Measured`]).
    pub fn measures_grandchild(&self) -> bool {
        self.measured.is_grandchild()
    }

    /// The process the lab measures for this child: the child itself, or
    /// its grandchild once it is there (`None` before; after it is gone,
    /// the pid it had).
    pub fn measured_pid(&mut self) -> Option<u32> {
        if self.measured == Measured::Itself {
            return Some(self.pid);
        }
        if self.inner.is_none() {
            let middle = os_process::children(self.pid).into_iter().next()?;
            let inner = os_process::children(middle).into_iter().next()?;
            self.middle = Some((middle, os_process::start_ticks(middle)?));
            self.inner = Some((inner, os_process::start_ticks(inner)?));
        }
        self.inner.map(|(pid, _)| pid)
    }

    /// A process the lab found (pid and start time), while it is still that
    /// process and alive.
    fn still(found: Option<(u32, u64)>) -> Option<Pid> {
        let (pid, ticks) = found?;
        (os_process::start_ticks(pid) == Some(ticks) && os_process::pid_alive(pid))
            .then_some(Pid::from_raw(pid as i32))
    }

    pub fn is_running(&mut self) -> bool {
        self.try_exit().is_none()
    }

    /// Sends `signal` to the child's process group. After the child itself
    /// has ended, the group may live on in processes it started: they are
    /// signalled too, unless the pid now names another live process (pid
    /// reuse: a new group of that number would not be the lab's).
    fn signal_group(&mut self, signal: Signal) {
        let group = Pid::from_raw(self.pid as i32);
        if self.is_running() {
            // ESRCH (the group is gone) is the only expected failure.
            let _ = killpg(group, signal);
        } else if !os_process::pid_alive(self.pid)
            && !os_process::group_members(self.pid).is_empty()
        {
            let _ = killpg(group, signal);
        }
    }

    /// Whether anything of the child's process group is still alive.
    pub fn group_alive(&mut self) -> bool {
        self.is_running()
            || (!os_process::pid_alive(self.pid) && !os_process::group_members(self.pid).is_empty())
    }

    /// The signal that asks this kind of process to stop (see MITE-NOTES.md:
    /// only the controller ends cleanly on SIGINT; duplicator and collector
    /// hang on it, the runner may swallow it).
    pub fn polite_signal(&self) -> Signal {
        polite_signal(self.kind)
    }

    /// Waits up to `timeout` for the child to end.
    pub async fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.exit {
            return Some(status);
        }
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => {
                let status = self.ended_as(status);
                self.exit = Some(status);
                Some(status)
            }
            _ => None,
        }
    }

    /// Asks the child to stop: its polite signal to its process group, or
    /// where the lab measures its grandchild, to the grandchild alone (the
    /// py-spy between them dies on SIGTERM without writing; it writes once
    /// the grandchild has ended).
    fn ask_to_stop(&mut self) {
        let signal = self.polite_signal();
        if !self.measures_grandchild() || !self.is_running() {
            self.signal_group(signal);
            return;
        }
        self.measured_pid();
        match (Self::still(self.inner), Self::still(self.middle)) {
            (Some(inner), _) => {
                let _ = nix::sys::signal::kill(inner, signal);
            }
            // Not there yet, or ended: py-spy stops what it started on
            // SIGINT, writing what it has.
            (None, Some(middle)) if self.measured == Measured::UnderPySpy => {
                let _ = nix::sys::signal::kill(middle, Signal::SIGINT);
            }
            _ => self.signal_group(signal),
        }
    }

    /// A child still running after its grace, whose grandchild the lab
    /// measures under py-spy: py-spy is asked to write what it has (SIGINT;
    /// it stops what it started) before the group is killed.
    async fn let_write(&mut self) {
        if self.measured == Measured::UnderPySpy && self.is_running() {
            if let Some(middle) = Self::still(self.middle) {
                let _ = nix::sys::signal::kill(middle, Signal::SIGINT);
                self.wait_timeout(GRANDCHILD_WRITE_GRACE).await;
            }
        }
    }

    /// The last `lines` lines of the child's log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path, lines)
    }
}

/// Stops children in two stages: the polite signal to every group, up to
/// `grace` for them to end, then SIGKILL to every group still there. Every
/// child is reaped before this returns, and every group it started is gone
/// (or said to survive, for a process stuck in the kernel).
pub async fn stop_all(children: &mut [Supervised], grace: Duration) {
    for child in children.iter_mut() {
        child.ask_to_stop();
    }
    let deadline = Instant::now() + grace;
    // A py-spy between a child and its grandchild writes once the grandchild
    // has ended.
    let write_deadline = deadline + GRANDCHILD_WRITE_GRACE;
    for child in children.iter_mut() {
        let until = if child.measures_grandchild() {
            write_deadline
        } else {
            deadline
        };
        child
            .wait_timeout(until.saturating_duration_since(Instant::now()))
            .await;
    }
    for child in children.iter_mut() {
        child.let_write().await;
    }
    for child in children.iter_mut() {
        child.signal_group(Signal::SIGKILL);
    }
    for child in children.iter_mut() {
        // After SIGKILL the wait is short; the deadline only guards against
        // a process stuck in the kernel.
        child.wait_timeout(Duration::from_secs(5)).await;
    }
    // SIGKILL'd members leave the group within moments.
    let deadline = Instant::now() + Duration::from_secs(5);
    while children.iter_mut().any(|c| c.group_alive()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The signal that asks a process of `kind` to stop.
fn polite_signal(kind: ProcessKind) -> Signal {
    match kind {
        // py-spy writes its profile on SIGINT (Ctrl+C) only.
        ProcessKind::Controller | ProcessKind::Target | ProcessKind::Profiler => Signal::SIGINT,
        _ => Signal::SIGTERM,
    }
}

/// The status of a process a signal ended, from the code a shell (or
/// bubblewrap) says for it: 128 plus the signal's number.
fn as_shell_said(code: i32) -> Option<ExitStatus> {
    let signal = code.checked_sub(128)?;
    // A wait status whose low bits are the signal: "killed by it".
    (1..=64)
        .contains(&signal)
        .then(|| ExitStatus::from_raw(signal))
}

/// How a process ended, in words: `exit 0`, `exit 1`, `killed by SIGKILL`.
pub fn describe_exit(status: &ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exit {code}")
    } else if let Some(signal) = status.signal() {
        match Signal::try_from(signal) {
            Ok(sig) => format!("killed by {}", sig.as_str()),
            Err(_) => format!("killed by signal {signal}"),
        }
    } else {
        "ended".to_string()
    }
}

/// The last `lines` lines of a log file ("" if it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(file) = File::open(path) else {
        return String::new();
    };
    let mut tail = VecDeque::with_capacity(lines);
    for line in BufReader::new(file).lines() {
        let Ok(line) = line else { break };
        if tail.len() == lines {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    Vec::from(tail).join("\n")
}

/// What happened to a process the store recorded, when `cleanup` looked at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedOutcome {
    /// It had already ended.
    AlreadyGone,
    /// The pid now belongs to a different process: left alone.
    PidReused,
    /// It ended on the polite signal.
    Stopped,
    /// It needed SIGKILL.
    Killed,
    /// It survived SIGKILL (stuck in the kernel, or another user's).
    Survived,
}

impl std::fmt::Display for RecordedOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecordedOutcome::AlreadyGone => "already gone",
            RecordedOutcome::PidReused => "gone; its pid now names another process, left alone",
            RecordedOutcome::Stopped => "stopped",
            RecordedOutcome::Killed => "killed (SIGKILL)",
            RecordedOutcome::Survived => "survived SIGKILL",
        })
    }
}

/// Stops a process group the lab recorded in an earlier life (the lab was
/// killed). The pid is signalled only if it still names the same process
/// (same start time) and still leads its own group. Where the lab measured
/// its grandchild (see [`Measured`]), the grandchild is asked first, so the
/// py-spy between them writes what it sampled.
pub async fn stop_recorded(
    kind: ProcessKind,
    measured: Measured,
    pid: u32,
    start_ticks: u64,
    grace: Duration,
) -> RecordedOutcome {
    if !os_process::pid_alive(pid) {
        return RecordedOutcome::AlreadyGone;
    }
    if os_process::start_ticks(pid) != Some(start_ticks)
        || os_process::process_group(pid) != Some(pid)
    {
        return RecordedOutcome::PidReused;
    }
    let group = Pid::from_raw(pid as i32);
    let polite = polite_signal(kind);
    if measured.is_grandchild() {
        // In the group the lab started: its child (py-spy, or bubblewrap's
        // init) and grandchild.
        let in_group = |p: &u32| os_process::process_group(*p) == Some(pid);
        let middle = os_process::children(pid).into_iter().find(in_group);
        let inner = middle.and_then(|m| os_process::children(m).into_iter().find(in_group));
        if let Some(inner) = inner {
            let _ = nix::sys::signal::kill(Pid::from_raw(inner as i32), polite);
            if wait_gone(pid, grace + GRANDCHILD_WRITE_GRACE).await {
                return RecordedOutcome::Stopped;
            }
        }
        if let Some(middle) =
            middle.filter(|m| measured == Measured::UnderPySpy && os_process::pid_alive(*m))
        {
            let _ = nix::sys::signal::kill(Pid::from_raw(middle as i32), Signal::SIGINT);
            if wait_gone(pid, GRANDCHILD_WRITE_GRACE).await {
                return RecordedOutcome::Stopped;
            }
        }
    }
    let _ = killpg(group, polite);
    if wait_gone(pid, grace).await {
        return RecordedOutcome::Stopped;
    }
    let _ = killpg(group, Signal::SIGKILL);
    if wait_gone(pid, Duration::from_secs(3)).await {
        return RecordedOutcome::Killed;
    }
    RecordedOutcome::Survived
}

/// Waits up to `timeout` for `pid` to be gone.
async fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !os_process::pid_alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    !os_process::pid_alive(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(kind: ProcessKind, script: &str, log: &Path) -> ChildSpec {
        ChildSpec {
            kind,
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            cwd: std::env::temp_dir(),
            env: vec![],
            log_path: log.to_path_buf(),
            pipe_stdin: false,
            pipe_stdout: false,
            measured: Measured::Itself,
            network: None,
        }
    }

    fn temp_log(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("mite-perf-sup-{}-{name}.log", std::process::id()))
    }

    #[tokio::test]
    async fn child_gets_its_own_group_and_a_log() {
        let log = temp_log("group");
        let (mut child, _, _) =
            spawn(&sh(ProcessKind::Runner, "echo hello; exit 3", &log)).expect("spawn");
        let status = child
            .wait_timeout(Duration::from_secs(5))
            .await
            .expect("ends");
        assert_eq!(describe_exit(&status), "exit 3");
        assert_eq!(log_tail(&log, 5), "hello");
        let _ = std::fs::remove_file(log);
    }

    /// The lab's own settings never reach a child: its /proc/PID/environ
    /// holds what a program needs and what it was given, nothing of the
    /// environment the lab (here: cargo's test runner, with its CARGO_*
    /// variables) runs in.
    #[tokio::test]
    async fn a_child_inherits_none_of_the_labs_settings() {
        assert!(
            std::env::vars().any(|(name, _)| name.starts_with("CARGO_")),
            "the test runner's environment has settings of its own"
        );
        let log = temp_log("environ");
        let mut spec = sh(ProcessKind::Runner, "sleep 30", &log);
        spec.env = vec![("MITE_CONF_given".into(), "yes".into())];
        let (child, _, _) = spawn(&spec).expect("spawn");
        // Read once `sh` runs: while the exec is under way the file is empty
        // (and before it, the lab's own).
        let read_names = || {
            let environ = std::fs::read(format!("/proc/{}/environ", child.pid)).unwrap_or_default();
            environ
                .split(|b| *b == 0)
                .filter_map(|pair| pair.split(|b| *b == b'=').next())
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .filter(|n| !n.is_empty())
                .collect::<Vec<String>>()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut names = read_names();
        while !names.contains(&"MITE_CONF_given".to_string())
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
            names = read_names();
        }
        let mut children = [child];
        stop_all(&mut children, Duration::from_millis(300)).await;
        let _ = std::fs::remove_file(log);
        assert!(names.contains(&"MITE_CONF_given".to_string()), "{names:?}");
        assert!(names.contains(&"PATH".to_string()), "{names:?}");
        for name in &names {
            assert!(
                !name.starts_with("CARGO")
                    && !name.starts_with("MITE_PERF")
                    && !name.starts_with("RUST"),
                "{name} reached the child: {names:?}"
            );
        }
    }

    #[tokio::test]
    async fn stubborn_group_is_killed_after_grace() {
        let log = temp_log("stubborn");
        // Ignores SIGTERM, and has a grandchild in the same group.
        let script = "trap '' TERM; echo trapped; sleep 30 & sleep 30; wait";
        let (child, _, _) = spawn(&sh(ProcessKind::Duplicator, script, &log)).expect("spawn");
        assert_eq!(os_process::process_group(child.pid), Some(child.pid));
        let pid = child.pid;
        let mut children = [child];
        // Stopped once its trap is set (it says so), however slow its start.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("trapped")) {
            assert!(Instant::now() < deadline, "the shell never set its trap");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let started = Instant::now();
        stop_all(&mut children, Duration::from_millis(300)).await;
        assert!(started.elapsed() < Duration::from_secs(3));
        let status = children[0].try_exit().expect("reaped");
        assert_eq!(describe_exit(&status), "killed by SIGKILL");
        assert!(!os_process::pid_alive(pid));
        let _ = std::fs::remove_file(log);
    }

    #[tokio::test]
    async fn grandchild_of_an_ended_group_leader_is_stopped() {
        let log = temp_log("orphan");
        // The leader starts a grandchild in its group and exits at once.
        let (mut child, _, _) = spawn(&sh(
            ProcessKind::Target,
            "sleep 300 & echo $! ; exit 0",
            &log,
        ))
        .expect("spawn");
        let status = child
            .wait_timeout(Duration::from_secs(5))
            .await
            .expect("the leader ends");
        assert!(status.success());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let grandchild: u32 = log_tail(&log, 1)
            .trim()
            .parse()
            .expect("the grandchild's pid");
        assert!(os_process::pid_alive(grandchild), "the grandchild lives on");
        assert_eq!(os_process::process_group(grandchild), Some(child.pid));
        let mut children = [child];
        stop_all(&mut children, Duration::from_millis(300)).await;
        assert!(
            !os_process::pid_alive(grandchild),
            "the grandchild was left"
        );
        assert!(os_process::group_members(children[0].pid).is_empty());
        let _ = std::fs::remove_file(log);
    }

    /// A child in a sandbox: the lab's child is bubblewrap, the process it
    /// measures and asks to stop is the command two generations down (in a
    /// PID namespace of its own), and a death by signal, which bubblewrap
    /// says as 128 + N, is read back as that signal.
    #[tokio::test]
    async fn a_sandboxed_child_is_measured_stopped_and_its_end_read_back() {
        use crate::sandbox::{Jail, Network, Sandbox, ScenarioNet};
        let sandbox = Sandbox::probe().expect("scripts/setup installs bubblewrap");
        let network = Arc::new(ScenarioNet::create(sandbox.bwrap()).expect("a network"));
        let log = temp_log("sandboxed");
        let sandboxed = |script: &str| {
            let args = Jail::new(Path::new("/tmp"), Network::Scenario)
                .arguments(Path::new("/bin/sh"), &["-c".into(), script.into()]);
            ChildSpec {
                program: sandbox.bwrap().to_path_buf(),
                args: args
                    .into_iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                measured: Measured::Sandboxed,
                network: Some(network.clone()),
                ..sh(ProcessKind::Duplicator, "", &log)
            }
        };
        let (mut child, _, _) = spawn(&sandboxed("exec sleep 30")).expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(5);
        let measured = loop {
            if let Some(pid) = child.measured_pid() {
                break pid;
            }
            assert!(Instant::now() < deadline, "no grandchild");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_ne!(measured, child.pid);
        // Found as soon as it is forked: the same process once it has
        // exec'd the shell, then sleep.
        while !os_process::command_of(measured).starts_with("sleep 30") {
            assert!(
                Instant::now() < deadline,
                "the measured process runs {:?}",
                os_process::command_of(measured)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // In another PID namespace, and still in the lab's process group.
        assert_ne!(
            std::fs::read_link(format!("/proc/{measured}/ns/pid")).ok(),
            std::fs::read_link("/proc/self/ns/pid").ok()
        );
        assert_eq!(os_process::process_group(measured), Some(child.pid));
        let mut children = [child];
        stop_all(&mut children, Duration::from_millis(500)).await;
        let status = children[0].try_exit().expect("reaped");
        assert_eq!(describe_exit(&status), "killed by SIGTERM");
        assert!(!os_process::pid_alive(measured));
        // A code of its own stays a code.
        let (mut child, _, _) = spawn(&sandboxed("exit 3")).expect("spawn");
        let status = child
            .wait_timeout(Duration::from_secs(5))
            .await
            .expect("ends");
        assert_eq!(describe_exit(&status), "exit 3");
        let _ = std::fs::remove_file(log);
    }

    #[tokio::test]
    async fn recorded_process_with_other_start_time_is_left_alone() {
        let log = temp_log("reused");
        let (mut child, _, _) = spawn(&sh(ProcessKind::Runner, "sleep 30", &log)).expect("spawn");
        let outcome = stop_recorded(
            ProcessKind::Runner,
            Measured::Itself,
            child.pid,
            child.start_ticks + 1,
            STOP_GRACE,
        )
        .await;
        assert_eq!(outcome, RecordedOutcome::PidReused);
        assert!(child.is_running());
        let outcome = stop_recorded(
            ProcessKind::Runner,
            Measured::Itself,
            child.pid,
            child.start_ticks,
            STOP_GRACE,
        )
        .await;
        assert_eq!(outcome, RecordedOutcome::Stopped);
        let _ = child.wait_timeout(Duration::from_secs(2)).await;
        let _ = std::fs::remove_file(log);
    }
}
